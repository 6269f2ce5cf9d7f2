"""PriorityClass validation, the Priority admission plugin and the pods/binding write."""

from __future__ import annotations

import types
from typing import Any

import pytest

from kajitori.admission.plugins import priority
from kajitori.api.scheduling_v1 import validation
from kajitori.machinery import errors
from kajitori.registry.core import pod_binding, pods
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.scheduling import priorityclasses

Object = dict[str, Any]

POD_STORE: Any = types.SimpleNamespace(info=pods.RESOURCE)
CLASS_STORE: Any = types.SimpleNamespace(info=priorityclasses.RESOURCE)


def _class(name: str, value: int, *, default: bool = False, policy: str = "") -> Object:
    obj: Object = {"metadata": {"name": name}, "value": value, "globalDefault": default}
    if policy:
        obj["preemptionPolicy"] = policy
    return obj


def _plugin(*classes: Object) -> priority.Priority:
    async def list_classes() -> list[Object]:
        return list(classes)

    return priority.Priority(list_classes)


def _pod(**spec: Any) -> Object:
    return {"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [], **spec}}


@pytest.mark.parametrize(
    ("obj", "detail"),
    [
        pytest.param(_class("high", 1000), None, id="user-class"),
        pytest.param(
            _class("huge", 1_000_000_001),
            "maximum allowed value of a user defined priority is 1000000000",
            id="above-user-ceiling",
        ),
        pytest.param(
            _class("system-mine", 5),
            "priority class names with 'system-' prefix are reserved for system use only. "
            "error: system-mine is not a known system priority class",
            id="reserved-prefix",
        ),
        pytest.param(
            _class("system-node-critical", 5),
            "priority class names with 'system-' prefix are reserved for system use only. "
            "error: value of system-node-critical PriorityClass must be 2000001000",
            id="system-class-wrong-value",
        ),
        pytest.param(_class("system-cluster-critical", 2_000_000_000), None, id="system-class"),
    ],
)
def test_priority_class_validation(obj: Object, detail: str | None) -> None:
    """Upstream's ValidatePriorityClass: reserved prefix and the user ceiling."""
    errs = validation.validate_priority_class(obj)
    assert [e.detail for e in errs] == ([detail] if detail else [])


def test_value_and_preemption_policy_cannot_change() -> None:
    """value is Forbidden to change; preemptionPolicy is immutable."""
    old = _class("c", 1, policy="Never")
    new = _class("c", 2, policy="PreemptLowerPriority")
    for obj in (old, new):
        obj["metadata"]["resourceVersion"] = "5"
    errs = validation.validate_priority_class_update(new, old)
    assert [(e.field, e.detail) for e in errs] == [
        ("value", "may not be changed in an update."),
        ("preemptionPolicy", "field is immutable"),
    ]


async def test_a_named_class_sets_priority_and_policy() -> None:
    """priorityClassName resolves to spec.priority and spec.preemptionPolicy."""
    pod = _pod(priorityClassName="high")
    await _plugin(_class("high", 1000, policy="Never")).admit(
        POD_STORE, "CREATE", pod, None, RequestContext()
    )
    assert (pod["spec"]["priority"], pod["spec"]["preemptionPolicy"]) == (1000, "Never")


async def test_without_a_class_the_global_default_applies() -> None:
    """No name: the global default class's name and value; none: priority 0."""
    pod = _pod()
    await _plugin(_class("dflt", 7, default=True)).admit(
        POD_STORE, "CREATE", pod, None, RequestContext()
    )
    assert (pod["spec"]["priorityClassName"], pod["spec"]["priority"]) == ("dflt", 7)
    bare = _pod()
    await _plugin().admit(POD_STORE, "CREATE", bare, None, RequestContext())
    assert bare["spec"]["priority"] == 0
    assert "priorityClassName" not in bare["spec"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            {"priorityClassName": "nope"},
            'pods "p" is forbidden: no PriorityClass with name nope was found',
            id="unknown-class",
        ),
        pytest.param(
            {"priorityClassName": "high", "priority": 5},
            'pods "p" is forbidden: the integer value of priority (5) must not be provided in '
            "pod spec; priority admission controller computed 1000 from the given "
            "PriorityClass name",
            id="priority-given",
        ),
    ],
)
async def test_pods_that_contradict_their_class_are_forbidden(spec: Object, message: str) -> None:
    """Upstream's Forbidden messages."""
    with pytest.raises(errors.StatusError) as caught:
        await _plugin(_class("high", 1000)).admit(
            POD_STORE, "CREATE", _pod(**spec), None, RequestContext()
        )
    assert (caught.value.code, caught.value.message) == (403, message)


async def test_only_one_class_may_be_the_global_default() -> None:
    """A second globalDefault class is refused."""
    plugin = _plugin(_class("first", 1, default=True))
    with pytest.raises(
        errors.StatusError, match="PriorityClass first is already marked as default"
    ):
        await plugin.validate(
            CLASS_STORE, "CREATE", _class("second", 2, default=True), None, RequestContext()
        )


async def test_system_classes_cannot_be_deleted() -> None:
    """Deleting system-node-critical is Forbidden; a user class may go."""
    plugin = _plugin()
    system = priorityclasses.system_class("system-node-critical")
    with pytest.raises(errors.StatusError, match="this is a system priority class"):
        await plugin.validate_delete(CLASS_STORE, system, RequestContext())
    await plugin.validate_delete(CLASS_STORE, _class("mine", 1), RequestContext())


@pytest.mark.parametrize(
    ("pod", "problem"),
    [
        pytest.param({"metadata": {"name": "p"}, "spec": {}}, "", id="unassigned"),
        pytest.param(
            {"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}},
            'pod p is already assigned to node "n1"',
            id="assigned",
        ),
        pytest.param(
            {"metadata": {"name": "p", "deletionTimestamp": "2025-01-01T00:00:00Z"}, "spec": {}},
            "pod p is being deleted, cannot be assigned to a host",
            id="deleting",
        ),
    ],
)
def test_binding_assigns_only_unassigned_live_pods(pod: Object, problem: str) -> None:
    """The binding sets nodeName, merges annotations and marks PodScheduled True."""
    binding = {"metadata": {"annotations": {"a": "b"}}, "target": {"name": "n2"}}
    assert pod_binding._bind(pod, binding) == problem
    if not problem:
        assert pod["spec"]["nodeName"] == "n2"
        assert pod["metadata"]["annotations"] == {"a": "b"}
        assert pod["status"]["conditions"][0]["type"] == "PodScheduled"
        assert pod["status"]["conditions"][0]["status"] == "True"


def test_a_binding_must_target_a_node_by_name() -> None:
    """Upstream's ValidatePodBinding."""
    errs = pod_binding.validate_binding({"target": {"kind": "Pod"}})
    assert [str(e) for e in errs] == [
        "target.kind: Invalid value: \"Pod\": must be empty or 'Node'",
        "target.name: Required value",
    ]
