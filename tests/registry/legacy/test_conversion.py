"""Old workload versions: their defaults, conversion to and from apps/v1, their declarations."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kajitori.registry import install
from kajitori.registry.legacy import resources as legacy

Object = dict[str, Any]

MAX_INT32 = 2**31 - 1


def _info(group: str, version: str, plural: str) -> Any:
    (info,) = [
        r for r in legacy.resources() if (r.group, r.version, r.plural) == (group, version, plural)
    ]
    return info


def _workload(api_version: str, kind: str, **spec: Any) -> Object:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "web"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
            **spec,
        },
    }


@pytest.mark.parametrize(
    ("group", "version", "plural", "kind", "expected"),
    [
        pytest.param(
            "apps",
            "v1beta1",
            "statefulsets",
            "StatefulSet",
            {
                "selector": {"matchLabels": {"app": "web"}},
                "updateStrategy": {"type": "OnDelete"},
                "podManagementPolicy": "OrderedReady",
                "replicas": 1,
                "revisionHistoryLimit": 10,
            },
            id="apps-v1beta1-statefulset",
        ),
        pytest.param(
            "apps",
            "v1beta1",
            "deployments",
            "Deployment",
            {
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
                },
                "revisionHistoryLimit": 2,
                "progressDeadlineSeconds": 600,
            },
            id="apps-v1beta1-deployment",
        ),
        pytest.param(
            "extensions",
            "v1beta1",
            "deployments",
            "Deployment",
            {
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1},
                },
                "revisionHistoryLimit": MAX_INT32,
                "progressDeadlineSeconds": MAX_INT32,
            },
            id="extensions-deployment",
        ),
        pytest.param(
            "extensions",
            "v1beta1",
            "daemonsets",
            "DaemonSet",
            {
                "selector": {"matchLabels": {"app": "web"}},
                "updateStrategy": {"type": "OnDelete"},
                "revisionHistoryLimit": 10,
            },
            id="extensions-daemonset",
        ),
        pytest.param(
            "extensions",
            "v1beta1",
            "replicasets",
            "ReplicaSet",
            {"selector": {"matchLabels": {"app": "web"}}, "replicas": 1},
            id="extensions-replicaset",
        ),
        pytest.param(
            "apps",
            "v1beta2",
            "daemonsets",
            "DaemonSet",
            {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}},
            id="apps-v1beta2-daemonset",
        ),
    ],
)
def test_to_storage_applies_the_old_versions_defaults(
    group: str, version: str, plural: str, kind: str, expected: Object
) -> None:
    """A body in an old version gets that version's defaults and becomes apps/v1."""
    info = _info(group, version, plural)
    assert info.conversion is not None
    stored = info.conversion.to_storage(_workload(f"{group}/{version}", kind))
    assert stored["apiVersion"] == "apps/v1"
    for key, value in expected.items():
        assert stored["spec"][key] == value, key


@pytest.mark.parametrize(
    ("group", "version"),
    [
        pytest.param("apps", "v1beta1", id="v1beta1"),
        pytest.param("extensions", "v1beta1", id="ext"),
    ],
)
def test_selector_defaulting_copies_template_labels_onto_an_unlabelled_object(
    group: str, version: str
) -> None:
    """Before apps/v1 an object without labels took its template's; labelled ones keep theirs."""
    info = _info(group, version, "deployments")
    bare = info.conversion.to_storage(_workload(f"{group}/{version}", "Deployment"))
    assert bare["metadata"]["labels"] == {"app": "web"}
    labelled = _workload(f"{group}/{version}", "Deployment")
    labelled["metadata"]["labels"] = {"tier": "front"}
    assert info.conversion.to_storage(labelled)["metadata"]["labels"] == {"tier": "front"}


def test_apps_v1beta2_does_not_default_the_selector() -> None:
    """apps/v1beta2 already required a selector: none is made up (validation refuses it)."""
    info = _info("apps", "v1beta2", "deployments")
    stored = info.conversion.to_storage(_workload("apps/v1beta2", "Deployment"))
    assert "selector" not in stored["spec"]


def test_explicit_values_win_over_old_defaults() -> None:
    """Defaults fill only what the body leaves unset."""
    info = _info("extensions", "v1beta1", "deployments")
    body = _workload("extensions/v1beta1", "Deployment", revisionHistoryLimit=3)
    body["spec"]["selector"] = {"matchLabels": {"app": "web"}, "matchExpressions": []}
    stored = info.conversion.to_storage(body)
    assert stored["spec"]["revisionHistoryLimit"] == 3
    assert stored["spec"]["selector"]["matchExpressions"] == []


def test_rollback_to_travels_as_upstreams_annotation() -> None:
    """spec.rollbackTo (gone in apps/v1) is kept in an annotation and comes back on read."""
    info = _info("extensions", "v1beta1", "deployments")
    body = _workload("extensions/v1beta1", "Deployment", rollbackTo={"revision": 3})
    stored = info.conversion.to_storage(body)
    assert "rollbackTo" not in stored["spec"]
    assert stored["metadata"]["annotations"] == {"deprecated.deployment.rollback.to": "3"}
    back = info.conversion.from_storage(stored)
    assert back["spec"]["rollbackTo"] == {"revision": 3}
    assert "annotations" not in back["metadata"]


def test_template_generation_travels_as_upstreams_annotation() -> None:
    """An extensions DaemonSet reads its templateGeneration from the apps/v1 annotation."""
    info = _info("extensions", "v1beta1", "daemonsets")
    stored = info.conversion.to_storage(_workload("extensions/v1beta1", "DaemonSet"))
    stored["metadata"]["annotations"] = {"deprecated.daemonset.template.generation": "2"}
    back = info.conversion.from_storage(stored)
    assert back["spec"]["templateGeneration"] == 2
    # apps/v1beta2 has no such field: the annotation stays an annotation there.
    v1beta2 = _info("apps", "v1beta2", "daemonsets").conversion.from_storage(stored)
    assert "templateGeneration" not in v1beta2["spec"]
    assert v1beta2["metadata"]["annotations"] == stored["metadata"]["annotations"]


def test_from_storage_returns_a_copy_and_leaves_the_stored_object_alone() -> None:
    """Watch events are shared between watchers: converting one must not touch it."""
    info = _info("apps", "v1beta1", "statefulsets")
    stored = info.conversion.to_storage(_workload("apps/v1beta1", "StatefulSet"))
    before = copy.deepcopy(stored)
    old = info.conversion.from_storage(stored)
    assert old["apiVersion"] == "apps/v1beta1"
    assert stored == before
    old["spec"]["replicas"] = 7
    assert stored["spec"]["replicas"] == 1


def test_a_body_with_a_spec_of_the_wrong_type_is_left_for_the_decoder() -> None:
    """Conversion never raises on malformed input; the type check reports it afterwards."""
    info = _info("apps", "v1beta1", "deployments")
    stored = info.conversion.to_storage(
        {"apiVersion": "apps/v1beta1", "kind": "Deployment", "spec": "x"}
    )
    assert stored["spec"] == "x"


@pytest.mark.parametrize(
    ("group", "version", "plural", "warning"),
    [
        pytest.param(
            "apps",
            "v1beta1",
            "statefulsets",
            "apps/v1beta1 StatefulSet is deprecated in v1.9+, unavailable in v1.16+; "
            "use apps/v1 StatefulSet",
            id="statefulset",
        ),
        pytest.param(
            "extensions",
            "v1beta1",
            "daemonsets",
            "extensions/v1beta1 DaemonSet is deprecated in v1.8+, unavailable in v1.16+; "
            "use apps/v1 DaemonSet",
            id="daemonset",
        ),
    ],
)
def test_old_versions_share_the_apps_v1_storage_and_warn(
    group: str, version: str, plural: str, warning: str
) -> None:
    """Same keys, same encryption resource, Orphan by default, and upstream's warning."""
    info = _info(group, version, plural)
    (stored,) = [
        r
        for r in install.all_resources()
        if (r.group, r.version, r.plural) == ("apps", "v1", plural)
    ]
    assert info.storage_prefix() == stored.storage_prefix()
    assert info.storage_group_resource == stored.group_resource
    assert info.storage_gvk == ("apps", "v1", stored.kind)
    assert info.default_propagation_policy == "Orphan"
    assert info.deprecation_warning == warning
    assert info.scale is None and info.short_names == () and info.categories == ()


def test_the_served_set_is_upstreams_plus_the_removed_versions() -> None:
    """legacy_versions adds exactly the 11 old resources, after apps/v1."""
    upstream = install.all_resources()
    served = install.all_resources(legacy_versions=True)
    assert served[: len(upstream)] == upstream
    added = {(r.group_version, r.plural) for r in served[len(upstream) :]}
    assert added == {
        ("apps/v1beta1", "deployments"),
        ("apps/v1beta1", "statefulsets"),
        ("apps/v1beta1", "controllerrevisions"),
        ("apps/v1beta2", "deployments"),
        ("apps/v1beta2", "statefulsets"),
        ("apps/v1beta2", "daemonsets"),
        ("apps/v1beta2", "replicasets"),
        ("apps/v1beta2", "controllerrevisions"),
        ("extensions/v1beta1", "deployments"),
        ("extensions/v1beta1", "daemonsets"),
        ("extensions/v1beta1", "replicasets"),
    }


@pytest.mark.parametrize(
    ("group", "version", "kind", "extra"),
    [
        pytest.param("apps", "v1beta1", "StatefulSet", None, id="sts"),
        pytest.param("extensions", "v1beta1", "Deployment", "rollbackTo", id="deploy"),
        pytest.param("extensions", "v1beta1", "DaemonSet", "templateGeneration", id="ds"),
    ],
)
def test_old_versions_have_openapi_definitions(
    group: str, version: str, kind: str, extra: str | None
) -> None:
    """Each old kind has a schema under its own group-version-kind, with its own fields."""
    plural = {"StatefulSet": "statefulsets", "Deployment": "deployments"}.get(kind, "daemonsets")
    defs = _info(group, version, plural).conversion.definitions()
    prefix = f"io.k8s.api.{group}.{version}."
    top = defs[prefix + kind]
    assert top["x-kubernetes-group-version-kind"] == [
        {"group": group, "version": version, "kind": kind}
    ]
    assert defs[prefix + kind + "List"]["properties"]["items"]["items"]["$ref"] == (
        "#/$defs/" + prefix + kind
    )
    if extra is not None:
        assert extra in defs[prefix + kind + "Spec"]["properties"]
