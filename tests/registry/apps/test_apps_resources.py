"""Registry declarations, strategies and tables of the apps/v1 resources."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from kajitori.registry import resource
from kajitori.registry.apps import (
    controllerrevisions,
    daemonsets,
    deployments,
    replicasets,
    statefulsets,
)

Object = dict[str, Any]
NOW = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("info", "short_names", "has_scale"),
    [
        pytest.param(deployments.RESOURCE, ("deploy",), True, id="deployments"),
        pytest.param(replicasets.RESOURCE, ("rs",), True, id="replicasets"),
        pytest.param(statefulsets.RESOURCE, ("sts",), True, id="statefulsets"),
        pytest.param(daemonsets.RESOURCE, ("ds",), False, id="daemonsets"),
    ],
)
def test_workloads_are_declared_as_upstream(
    info: resource.ResourceInfo, short_names: tuple[str, ...], has_scale: bool
) -> None:
    """Workloads are namespaced, in category all, with status and (some) scale."""
    assert info.namespaced and info.group_version == "apps/v1"
    assert info.short_names == short_names
    assert info.categories == ("all",)
    assert info.status is not None
    assert (info.scale is not None) == has_scale
    assert info.tracks_generation


def test_controller_revisions_have_no_short_name_or_status() -> None:
    """ControllerRevisions are plain: no short name, category, status or generation."""
    info = controllerrevisions.RESOURCE
    assert (info.short_names, info.categories, info.status, info.tracks_generation) == (
        (),
        (),
        None,
        False,
    )


def _deployment() -> Object:
    return {
        "metadata": {
            "name": "web",
            "namespace": "default",
            "creationTimestamp": "2025-01-01T11:55:00Z",
        },
        "spec": {
            "replicas": 3,
            "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}],
            },
            "template": {
                "spec": {
                    "containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "redis"}]
                }
            },
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }


def test_deployment_row_matches_kubectl() -> None:
    """NAME READY UP-TO-DATE AVAILABLE AGE + wide CONTAINERS IMAGES SELECTOR."""
    names = [c.name for c in deployments.COLUMNS]
    assert names == [
        "Name",
        "Ready",
        "Up-to-date",
        "Available",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]
    assert [c.priority for c in deployments.COLUMNS][-3:] == [1, 1, 1]
    assert list(deployments.deployment_row(_deployment(), NOW)) == [
        "web",
        "2/3",
        3,
        2,
        "5m",
        "a,b",
        "nginx,redis",
        "app=web,tier in (a,b)",
    ]


def test_deployment_create_resets_status_and_update_keeps_it() -> None:
    """Status sent to the main endpoint is dropped on create and ignored on update."""
    strategy = deployments.STRATEGY
    obj = _deployment()
    strategy.prepare_for_create(obj)
    assert obj["status"] == {}
    new = _deployment()
    new["status"] = {"readyReplicas": 99}
    strategy.prepare_for_update(new, _deployment())
    assert new["status"] == _deployment()["status"]


def test_deployment_generation_bumps_on_spec_change_only() -> None:
    """A label change does not bump generation; a replica change does."""
    strategy = deployments.STRATEGY
    old = _deployment()
    labelled = _deployment()
    labelled["metadata"]["labels"] = {"x": "y"}
    scaled = _deployment()
    scaled["spec"]["replicas"] = 5
    assert not strategy.bumps_generation(labelled, old)
    assert strategy.bumps_generation(scaled, old)


def test_daemon_set_row_shows_node_selector() -> None:
    """DaemonSet rows show the status counts and the pod node selector."""
    obj = {
        "metadata": {"name": "agent"},
        "spec": {
            "template": {
                "spec": {"nodeSelector": {"os": "linux", "arch": "amd64"}, "containers": []}
            }
        },
        "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1},
    }
    row = list(daemonsets.daemon_set_row(obj, NOW))
    assert row[:8] == ["agent", 2, 2, 1, 0, 0, "arch=amd64,os=linux", "<unknown>"]


def test_replica_set_status_replicas_is_selectable() -> None:
    """replicasets support the status.replicas field selector."""
    extract = replicasets.RESOURCE.all_selectable_fields["status.replicas"]
    assert extract({"status": {"replicas": 3}}) == "3"
    assert extract({}) == "0"


def test_controller_revision_row_names_its_controller() -> None:
    """The CONTROLLER cell is "<kind>.<group>/<name>" of the controller reference."""
    obj = {
        "metadata": {
            "name": "web-7d9f",
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": True}
            ],
        },
        "revision": 2,
    }
    assert list(controllerrevisions.controller_revision_row(obj, NOW)) == [
        "web-7d9f",
        "statefulset.apps/web",
        2,
        "<unknown>",
    ]
