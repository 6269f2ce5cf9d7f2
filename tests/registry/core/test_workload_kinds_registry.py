"""Nodes, endpoints, replication controllers and core events: strategies and tables."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from kajitori.registry.core import endpoints, events, nodes, replicationcontrollers

Object = dict[str, Any]
NOW = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)
CREATED = "2025-01-01T11:00:00Z"


def _node(**extra: Any) -> Object:
    node: Object = {
        "metadata": {
            "name": "n1",
            "creationTimestamp": CREATED,
            "labels": {"node-role.kubernetes.io/control-plane": ""},
        },
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}],
            "nodeInfo": {
                "kubeletVersion": "v1.37.0",
                "osImage": "Debian",
                "kernelVersion": "6.1",
                "containerRuntimeVersion": "containerd://2.0",
            },
            "capacity": {"cpu": "2"},
        },
    }
    node.update(extra)
    return node


def test_node_table_row_matches_kubectl_get_nodes() -> None:
    """STATUS, ROLES, VERSION and the wide columns follow printNode."""
    row = nodes.node_row(_node(spec={"unschedulable": True}), NOW)
    assert list(row) == [
        "n1",
        "Ready,SchedulingDisabled",
        "control-plane",
        "60m",
        "v1.37.0",
        "192.168.1.10",
        "<none>",
        "Debian",
        "6.1",
        "containerd://2.0",
    ]


def test_nodes_keep_status_on_create_and_default_allocatable() -> None:
    """Nodes register with status; allocatable defaults to capacity; spec.unschedulable selects."""
    node = _node()
    nodes.STRATEGY.set_defaults(node)
    nodes.STRATEGY.prepare_for_create(node)
    assert node["status"]["allocatable"] == {"cpu": "2"}
    assert list(nodes.STRATEGY.validate(node)) == []
    assert nodes.RESOURCE.selectable_fields["spec.unschedulable"](node) == "false"
    assert (nodes.RESOURCE.namespaced, nodes.RESOURCE.short_names) == (False, ("no",))


def test_node_taints_are_validated() -> None:
    """A taint effect outside upstream's list is refused."""
    node = _node(spec={"taints": [{"key": "k", "effect": "Never"}]})
    assert [str(e) for e in nodes.STRATEGY.validate(node)] == [
        'spec.taints[0].effect: Unsupported value: "Never": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"'
    ]


@pytest.mark.parametrize(
    ("subsets", "cell"),
    [
        pytest.param([], "<none>", id="none"),
        pytest.param(
            [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}], "10.0.0.1:80", id="one"
        ),
        pytest.param(
            [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 6)], "ports": [{"port": 80}]}],
            "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more...",
            id="more",
        ),
        pytest.param([{"addresses": [{"ip": "10.0.0.1"}]}], "10.0.0.1", id="no-ports"),
    ],
)
def test_endpoints_column(subsets: list[Object], cell: str) -> None:
    """ENDPOINTS lists at most three addresses, as formatEndpoints."""
    assert endpoints.format_endpoints({"subsets": subsets}) == cell


def test_endpoints_refuse_loopback_and_empty_subsets() -> None:
    """Subsets need addresses, and addresses may not be loopback."""
    obj = {
        "metadata": {"name": "web", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": "127.0.0.1"}]}, {"ports": [{"port": 80}]}],
    }
    endpoints.RESOURCE.strategy.set_defaults(obj)
    assert [str(e) for e in endpoints.RESOURCE.strategy.validate(obj)] == [
        'subsets[0].addresses[0].ip: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)',
        "subsets[1]: Required value: must specify `addresses` or `notReadyAddresses`",
    ]


def _rc(**spec: Any) -> Object:
    rc: Object = {
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": CREATED},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "nginx"}]},
            },
            **spec,
        },
    }
    replicationcontrollers.STRATEGY.set_defaults(rc)
    return rc


def test_rc_defaults_selector_labels_and_replicas_from_the_template() -> None:
    """An RC without selector takes the template's labels; replicas default to 1."""
    rc = _rc()
    assert rc["spec"]["selector"] == {"app": "web"}
    assert rc["metadata"]["labels"] == {"app": "web"}
    assert rc["spec"]["replicas"] == 1
    assert list(replicationcontrollers.STRATEGY.validate(rc)) == []
    replicationcontrollers.STRATEGY.prepare_for_create(rc)
    assert list(replicationcontrollers.rc_row(rc, NOW)) == [
        "web",
        1,
        0,
        0,
        "60m",
        "app",
        "nginx",
        "app=web",
    ]


def test_rc_selector_must_match_template_labels() -> None:
    """A selector that does not match the template is refused as upstream."""
    rc = _rc(selector={"app": "other"})
    assert (
        'spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template `labels`'
        in [str(e) for e in replicationcontrollers.STRATEGY.validate(rc)]
    )
    info = replicationcontrollers.RESOURCE
    assert (info.short_names, info.categories, info.subresource_names) == (
        ("rc",),
        ("all",),
        ("status", "scale"),
    )


def test_event_row_and_selectors() -> None:
    """LAST SEEN, TYPE, REASON, OBJECT, MESSAGE and the wide cells follow printEvent."""
    event = {
        "metadata": {"name": "web.1", "namespace": "default"},
        "involvedObject": {
            "kind": "Pod",
            "name": "web",
            "namespace": "default",
            "fieldPath": "spec.containers{app}",
        },
        "reason": "Pulled",
        "type": "Normal",
        "message": "Pulled image  \n",
        "source": {"component": "kubelet", "host": "n1"},
        "firstTimestamp": "2025-01-01T11:50:00Z",
        "lastTimestamp": "2025-01-01T11:59:00Z",
        "count": 2,
    }
    assert list(events.event_row(event, NOW)) == [
        "60s",
        "Normal",
        "Pulled",
        "pod/web",
        "spec.containers{app}",
        "kubelet, n1",
        "Pulled image",
        "10m",
        2,
        "web.1",
    ]
    fields = events.RESOURCE.all_selectable_fields
    assert fields["involvedObject.name"](event) == "web"
    assert fields["source"](event) == "kubelet"
    assert list(events.RESOURCE.strategy.validate(event)) == []


def test_event_namespace_must_match_the_involved_object() -> None:
    """An event about an object in another namespace is refused."""
    event = {
        "metadata": {"name": "e", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "other"},
    }
    assert [str(e) for e in events.RESOURCE.strategy.validate(event)] == [
        'involvedObject.namespace: Invalid value: "other": does not match event.namespace'
    ]
