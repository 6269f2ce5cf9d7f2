"""The cheap paths every create takes still decide what the slow paths decided.

A plain create asks NamespaceLifecycle about its namespace and the
MutatingAdmissionPolicy plugin about its bindings, and both answer from the
shared listers without a coroutine of their own (session 14's CPU fixes).
These tests drive those paths through the real server: a create in a
namespace whose deletion the lister already shows is refused without a
storage read; right after a delete, the force-live window still refuses; a
binding created a moment ago (its lister behind this server's write) mutates
the very next create, and one deleted a moment ago no longer does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from kajitori.admission.chain import AdmissionChain
from kajitori.admission.plugins.namespace_lifecycle import NamespaceLifecycle
from kajitori.admission.policy.mutating import MutatingAdmissionPolicy
from kajitori.client import rest
from kajitori.cmd.apiserver import APIServerProcess

Object = dict[str, Any]
GV = "admissionregistration.k8s.io/v1"
GROUP = "admissionregistration.k8s.io"
POLICIES = rest.Resource(GROUP, "v1", "mutatingadmissionpolicies", False, "MutatingAdmissionPolicy")
BINDINGS = rest.Resource(
    GROUP, "v1", "mutatingadmissionpolicybindings", False, "MutatingAdmissionPolicyBinding"
)


async def wait_until(predicate: Callable[[], bool], *, timeout: float) -> None:
    """Poll ``predicate`` on the event loop until it holds; AssertionError after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def _plugin(process: APIServerProcess, kind: type[Any]) -> Any:
    assert process.registry is not None
    store = process.registry.lookup("", "v1", "configmaps")
    assert store is not None and isinstance(store.admission, AdmissionChain)
    return next(p for p in store.admission.plugins if isinstance(p, kind))


def _configmap(name: str) -> Object:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}


def _namespace(name: str) -> Object:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


async def test_a_create_is_refused_from_the_listers_terminating_namespace(
    apiserver: APIServerProcess, admin: rest.Client
) -> None:
    """Once the lister shows the deletion, the refusal needs no storage read."""
    plugin: NamespaceLifecycle = _plugin(apiserver, NamespaceLifecycle)
    reads: list[str] = []
    real_get = plugin.get_namespace

    async def counted(name: str) -> Object:
        reads.append(name)
        return await real_get(name)

    plugin.get_namespace = counted
    await admin.create(rest.NAMESPACES, _namespace("going"))
    await admin.create(rest.CONFIGMAPS, _configmap("before"), namespace="going")
    await admin.delete(rest.NAMESPACES, "going")  # no namespace controller: stays Terminating
    # Right after the delete the force-live window reads storage, and refuses.
    with pytest.raises(rest.ApiError) as live:
        await admin.create(rest.CONFIGMAPS, _configmap("after"), namespace="going")
    assert live.value.code == 403 and reads[-1:] == ["going"]
    lister = plugin.namespaces
    assert lister is not None
    await wait_until(
        lambda: bool(
            (lister.cached_get("", "going") or {}).get("metadata", {}).get("deletionTimestamp")
        ),
        timeout=10,
    )
    plugin._force_live.clear()  # the window over: the lister alone answers
    reads.clear()
    with pytest.raises(rest.ApiError) as cached:
        await admin.create(rest.CONFIGMAPS, _configmap("later"), namespace="going")
    assert cached.value.code == 403
    assert cached.value.message == (
        'configmaps "later" is forbidden: unable to create new content in namespace going '
        "because it is being terminated"
    )
    assert reads == []
    # An active namespace the lister holds: allowed, still without a storage read.
    await admin.create(rest.CONFIGMAPS, _configmap("fine"), namespace="default")
    assert reads == []


def _label_policy(name: str) -> Object:
    expression = 'Object{metadata: Object.metadata{labels: {"mutated": "yes"}}}'
    return {
        "apiVersion": GV,
        "kind": "MutatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["configmaps"],
                    }
                ]
            },
            "mutations": [
                {
                    "patchType": "ApplyConfiguration",
                    "applyConfiguration": {"expression": expression},
                }
            ],
            "reinvocationPolicy": "Never",
        },
    }


def _binding(name: str) -> Object:
    return {
        "apiVersion": GV,
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name},
    }


async def test_a_binding_applies_to_the_next_create_and_stops_at_its_delete(
    apiserver: APIServerProcess, admin: rest.Client
) -> None:
    """The "no bindings" shortcut never hides a binding written a moment ago, nor keeps a gone one."""
    plugin: MutatingAdmissionPolicy = _plugin(apiserver, MutatingAdmissionPolicy)
    plain = await admin.create(rest.CONFIGMAPS, _configmap("plain"), namespace="default")
    assert "labels" not in plain["metadata"]
    await wait_until(plugin.bindings.cached_empty, timeout=10)  # the shortcut is on
    await admin.create(POLICIES, _label_policy("label"))
    await admin.create(BINDINGS, _binding("label"))
    first = await admin.create(rest.CONFIGMAPS, _configmap("first"), namespace="default")
    assert first["metadata"]["labels"] == {"mutated": "yes"}
    await admin.delete(BINDINGS, "label")
    gone = await admin.create(rest.CONFIGMAPS, _configmap("gone"), namespace="default")
    assert "labels" not in gone["metadata"]
    await wait_until(plugin.bindings.cached_empty, timeout=10)
    again = await admin.create(rest.CONFIGMAPS, _configmap("again"), namespace="default")
    assert "labels" not in again["metadata"]


VALIDATING_POLICIES = rest.Resource(
    GROUP, "v1", "validatingadmissionpolicies", False, "ValidatingAdmissionPolicy"
)
VALIDATING_BINDINGS = rest.Resource(
    GROUP, "v1", "validatingadmissionpolicybindings", False, "ValidatingAdmissionPolicyBinding"
)


def _deny_policy(name: str) -> Object:
    return {
        "apiVersion": GV,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "DELETE"],
                        "resources": ["configmaps"],
                    }
                ]
            },
            "validations": [{"expression": "false", "message": "no configmaps here"}],
        },
    }


def _deny_binding(name: str) -> Object:
    return {
        "apiVersion": GV,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }


async def test_a_validating_binding_denies_the_next_write_and_stops_at_its_delete(
    apiserver: APIServerProcess, admin: rest.Client
) -> None:
    """ValidatingAdmissionPolicy's "no bindings" shortcut (creates and deletes) hides no
    binding written a moment ago and keeps no deleted one."""
    from kajitori.admission.policy.validating import ValidatingAdmissionPolicy

    plugin: ValidatingAdmissionPolicy = next(
        p
        for p in _plugin_chain(apiserver)
        if type(p) is ValidatingAdmissionPolicy  # not its mutating subclass
    )
    await admin.create(rest.CONFIGMAPS, _configmap("kept"), namespace="default")
    await wait_until(plugin.bindings.cached_empty, timeout=10)  # the shortcut is on
    await admin.create(VALIDATING_POLICIES, _deny_policy("deny"))
    await admin.create(VALIDATING_BINDINGS, _deny_binding("deny"))
    for attempt in (
        admin.create(rest.CONFIGMAPS, _configmap("refused"), namespace="default"),
        admin.delete(rest.CONFIGMAPS, "kept", namespace="default"),
    ):
        with pytest.raises(rest.ApiError) as caught:
            await attempt
        assert caught.value.code == 422
        assert "no configmaps here" in caught.value.message
    await admin.delete(VALIDATING_BINDINGS, "deny")
    await admin.create(rest.CONFIGMAPS, _configmap("allowed"), namespace="default")
    await wait_until(plugin.bindings.cached_empty, timeout=10)
    await admin.delete(rest.CONFIGMAPS, "kept", namespace="default")


def _plugin_chain(process: APIServerProcess) -> list[Any]:
    assert process.registry is not None
    store = process.registry.lookup("", "v1", "configmaps")
    assert store is not None and isinstance(store.admission, AdmissionChain)
    return list(store.admission.plugins)
