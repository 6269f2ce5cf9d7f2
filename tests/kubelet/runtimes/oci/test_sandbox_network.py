"""The pod's /etc/hosts (upstream's managedHostsFileContent) and the image config handed to spec.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kajitori.kubelet.images import puller
from kajitori.kubelet.runtimes.oci import sandbox_network, spec, store_images

Object = dict[str, Any]
HEADER = sandbox_network.HOSTS_HEADER + sandbox_network.LOCALHOST_LINES


def pod(**spec_: Any) -> Object:
    return {"metadata": {"name": "p", "namespace": "ns"}, "spec": spec_}


@pytest.mark.parametrize(
    ("given", "ip", "host", "wanted"),
    [
        pytest.param(pod(), "10.244.0.5", "", HEADER + "10.244.0.5\tp\n", id="pod-network"),
        pytest.param(pod(), "", "", HEADER, id="no-ip-yet"),
        pytest.param(
            pod(hostname="web", subdomain="svc"),
            "10.244.0.5",
            "",
            HEADER + "10.244.0.5\tweb.svc.ns.svc.cluster.local\tweb\n",
            id="subdomain-fqdn",
        ),
        pytest.param(
            pod(hostAliases=[{"ip": "1.2.3.4", "hostnames": ["a", "b"]}]),
            "10.244.0.5",
            "",
            HEADER + "10.244.0.5\tp\n\n# Entries added by HostAliases.\n1.2.3.4\ta\tb\n",
            id="host-aliases",
        ),
        pytest.param(
            pod(hostNetwork=True, hostAliases=[{"ip": "1.2.3.4", "hostnames": ["a"]}]),
            "",
            "127.0.0.1 localhost\n192.0.2.1 node",
            "# Kubernetes-managed hosts file (host network).\n"
            "127.0.0.1 localhost\n192.0.2.1 node\n"
            "\n# Entries added by HostAliases.\n1.2.3.4\ta\n",
            id="host-network-keeps-the-nodes-file",
        ),
    ],
)
def test_the_hosts_file_follows_upstreams_layout(
    given: Object, ip: str, host: str, wanted: str
) -> None:
    """Header, localhost block, the pod's own line, then hostAliases; hostNetwork: the node's."""
    assert (
        sandbox_network.hosts_file(given, ip, cluster_domain="cluster.local", host=host) == wanted
    )


def test_mounts_cover_only_the_name_files_that_were_written(tmp_path: Path) -> None:
    """No files (a runtime without a pod network): no mounts; hosts alone: one bind mount."""
    assert sandbox_network.mounts(tmp_path) == []
    (tmp_path / sandbox_network.HOSTS_FILE).write_text("x")
    (mount,) = sandbox_network.mounts(tmp_path)
    assert mount["destination"] == "/etc/hosts" and mount["type"] == "bind"


def test_the_stored_image_config_reaches_the_container_as_upstream_combines_it() -> None:
    """Entrypoint + Cmd from the store; command replaces both, args replace only Cmd."""
    config = puller.ImageConfig(
        env=("A=1",), entrypoint=("/entry",), cmd=("serve",), working_dir="/app", user="1000"
    )
    image = spec.ImageConfig.from_config(store_images.config_blob(config))
    assert image == spec.ImageConfig(("/entry",), ("serve",), ("A=1",), "/app", "1000")
    assert spec.command_line({"args": ["x"]}, image) == ["/entry", "x"]
    assert spec.command_line({"command": ["/bin/sh"]}, image) == ["/bin/sh"]
    assert spec.command_line({}, image) == ["/entry", "serve"]
