"""The plugin's clusters used directly, as this repository's own tests load the plugin:
isolation between clusters, controllers on and off, start failures and stop."""

from __future__ import annotations

from pathlib import Path

import pytest

from kajitori.testing import inprocess
from kajitori.testing.cluster import wait_until
from kajitori.testing.pytest_plugin import ClusterFactory


def test_two_clusters_in_one_test_share_nothing(kajitori_cluster_factory: ClusterFactory) -> None:
    """Objects, data directory, port and CA of one cluster are invisible to the other."""
    first = kajitori_cluster_factory(controllers=False)
    second = kajitori_cluster_factory(controllers=False)
    assert first.url != second.url
    assert first.data_dir != second.data_dir
    first.kubectl("create", "configmap", "only-here", "--from-literal=k=v")
    assert first.kubectl("get", "configmap", "only-here", "-o", "name").stdout.strip() == (
        "configmap/only-here"
    )
    missing = second.kubectl("get", "configmap", "only-here", check=False)
    assert missing.returncode == 1
    assert 'configmaps "only-here" not found' in missing.stderr
    # Each cluster has its own CA, so credentials for one are no good for the other.
    assert (first.data_dir / "pki" / "ca.crt").read_bytes() != (
        second.data_dir / "pki" / "ca.crt"
    ).read_bytes()


def test_controllers_on_and_off(kajitori_cluster_factory: ClusterFactory) -> None:
    """With controllers a new namespace gets its default ServiceAccount; without, nothing does."""
    on = kajitori_cluster_factory(controllers=True)
    off = kajitori_cluster_factory(controllers=False)
    for cluster in (on, off):
        cluster.kubectl("create", "namespace", "team")
    wait_until(
        lambda: (
            on.kubectl("get", "serviceaccount", "default", "-n", "team", check=False).returncode
            == 0
        ),
        timeout=20,
        what="the default ServiceAccount in the cluster with controllers",
    )
    # The cluster with controllers has had its chance to act; the other one did nothing.
    listed = off.kubectl("get", "serviceaccounts,configmaps", "-n", "team", "-o", "name")
    assert listed.stdout.strip() == ""


def test_a_cluster_that_cannot_start_says_why(tmp_path: Path) -> None:
    """A data directory that is a file fails start() with the cause, and leaves no thread."""
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    cluster = inprocess.InProcessCluster(not_a_dir, inprocess.ClusterOptions(controllers=False))
    with pytest.raises(inprocess.ClusterStartError, match="did not start"):
        cluster.start()
    assert not cluster.running


def test_stop_is_idempotent_and_the_port_is_released(tmp_path: Path) -> None:
    """After stop() the cluster's thread is gone and a second stop() does nothing."""
    cluster = inprocess.InProcessCluster(tmp_path, inprocess.ClusterOptions(controllers=False))
    with cluster:
        assert cluster.running
        assert cluster.ready_seconds is not None
    assert not cluster.running
    cluster.stop()
    result = cluster.kubectl("get", "namespaces", "--request-timeout=2s", check=False)
    assert result.returncode != 0
