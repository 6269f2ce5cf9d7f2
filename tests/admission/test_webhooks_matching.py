"""Admission webhooks without a network: rule matching, equivalent versions, match
conditions, the configurations' defaults and order, AdmissionReview checks and errors."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Any

import pytest

from kajitori.admission.webhooks import conditions, review, rules
from kajitori.admission.webhooks.accessors import webhooks_of
from kajitori.admission.webhooks.attributes import (
    GVK,
    GVR,
    SCALE_KIND,
    Attributes,
    Versions,
    view_for,
)
from kajitori.registry import install
from kajitori.registry.generic.request import ANONYMOUS, UserInfo
from kajitori.registry.resource import ResourceInfo

Object = dict[str, Any]

RESOURCES = install.all_resources(legacy_versions=True)


def _info(group: str, version: str, plural: str) -> ResourceInfo:
    return next(r for r in RESOURCES if (r.group, r.version, r.plural) == (group, version, plural))


def _attrs(
    group: str = "",
    version: str = "v1",
    plural: str = "pods",
    *,
    subresource: str = "",
    operation: str = "CREATE",
    namespace: str = "default",
    obj: Object | None = None,
    old: Object | None = None,
) -> Attributes:
    info = _info(group, version, plural)
    kind = SCALE_KIND if subresource == "scale" else GVK(group, version, info.kind)
    return Attributes(
        operation=operation,
        name="x",
        namespace=namespace,
        resource=GVR(group, version, plural),
        subresource=subresource,
        kind=kind,
        obj=obj,
        old=old,
        info=info,
        user=ANONYMOUS,
        dry_run=False,
        options=None,
    )


def _rule(
    resources: Iterable[str],
    *,
    groups: Iterable[str] = ("",),
    versions: Iterable[str] = ("v1",),
    operations: Iterable[str] = ("CREATE",),
    scope: str = "*",
) -> Object:
    return {
        "apiGroups": list(groups),
        "apiVersions": list(versions),
        "resources": list(resources),
        "operations": list(operations),
        "scope": scope,
    }


# ----- rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resources", "subresource", "expected"),
    [
        (["pods"], "", True),
        (["pods"], "status", False),  # a plain resource rule leaves subresources alone
        (["pods/status"], "status", True),
        (["pods/status"], "", False),
        (["*"], "", True),
        (["*"], "status", False),
        (["*/*"], "status", True),
        (["*/status"], "status", True),
        (["*/scale"], "status", False),
        (["configmaps"], "", False),
    ],
)
def test_resources_and_subresources(resources: list[str], subresource: str, expected: bool) -> None:
    attrs = _attrs(subresource=subresource, operation="UPDATE")
    rule = _rule(resources, operations=["UPDATE"])
    assert rules.matches(rule, attrs, attrs.resource) is expected


def test_operations_groups_and_versions() -> None:
    attrs = _attrs(operation="DELETE")
    assert not rules.matches(_rule(["pods"]), attrs, attrs.resource)
    assert rules.matches(_rule(["pods"], operations=["*"]), attrs, attrs.resource)
    assert not rules.matches(
        _rule(["pods"], operations=["*"], groups=["apps"]), attrs, attrs.resource
    )
    assert rules.matches(
        _rule(["pods"], operations=["*"], groups=["*"], versions=["*"]), attrs, attrs.resource
    )
    assert not rules.matches(
        _rule(["pods"], operations=["*"], versions=["v2"]), attrs, attrs.resource
    )


def test_scope_treats_namespaces_as_cluster_scoped() -> None:
    pod = _attrs()
    node = _attrs(plural="nodes", namespace="")
    namespace = _attrs(plural="namespaces", namespace="team")  # a namespace's own name
    for attrs, namespaced in ((pod, True), (node, False), (namespace, False)):
        resource = attrs.resource.resource
        assert (
            rules.matches(_rule([resource], scope="Namespaced"), attrs, attrs.resource)
            is namespaced
        )
        assert rules.matches(_rule([resource], scope="Cluster"), attrs, attrs.resource) is (
            not namespaced
        )


def test_admission_configuration_resources_are_exempt() -> None:
    attrs = _attrs()
    assert not rules.is_exempt(attrs)
    attrs.kind = GVK("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration")
    assert rules.is_exempt(attrs)
    attrs.kind = GVK("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration")
    assert rules.is_exempt(attrs)


# ----- equivalent versions --------------------------------------------------------------------


def _deployment() -> Object:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
        "status": {"replicas": 1},
    }


def test_equivalents_of_a_legacy_request_list_apps_v1_first() -> None:
    attrs = _attrs("apps", "v1beta1", "deployments", obj=_deployment())
    found = Versions(lambda: RESOURCES).equivalents(attrs)
    assert found[0].resource == GVR("apps", "v1", "deployments")
    assert found[0].kind == GVK("apps", "v1", "Deployment")
    assert {e.resource for e in found} >= {
        GVR("apps", "v1beta1", "deployments"),
        GVR("apps", "v1beta2", "deployments"),
        GVR("extensions", "v1beta1", "deployments"),
    }


def test_views_convert_to_the_webhooks_version_and_back() -> None:
    stored = _deployment()
    attrs = _attrs("apps", "v1beta1", "deployments", obj=stored)
    # Matched through apps/v1: the stored shape itself (a copy).
    v1 = view_for(attrs, _info("apps", "v1", "deployments"), GVK("apps", "v1", "Deployment"))
    assert v1.obj == stored and v1.obj is not stored
    # Matched as requested: the legacy version's shape, and back to apps/v1.
    beta = view_for(attrs, attrs.info, attrs.kind)
    assert beta.obj is not None and beta.obj["apiVersion"] == "apps/v1beta1"
    assert beta.back(beta.obj)["apiVersion"] == "apps/v1"


def test_scale_view_carries_only_replicas_back() -> None:
    stored = _deployment()
    attrs = _attrs("apps", "v1", "deployments", subresource="scale", obj=stored, old=stored)
    view = view_for(attrs, attrs.info, SCALE_KIND)
    assert view.obj is not None
    assert view.obj["kind"] == "Scale" and view.obj["spec"] == {"replicas": 2}
    assert view.obj["status"] == {"replicas": 1, "selector": "app=web"}
    back = view.back({**view.obj, "spec": {"replicas": 5}, "status": {"replicas": 9}})
    assert back["spec"]["replicas"] == 5 and back["status"] == {"replicas": 1}


# ----- configurations ----------------------------------------------------------------------


def test_webhooks_get_upstreams_defaults() -> None:
    (hook,) = webhooks_of(
        {"metadata": {"name": "cfg"}, "webhooks": [{"name": "a.example.com", "rules": []}]}
    )
    assert hook.uid == "cfg/a.example.com/0"
    assert (hook.failure_policy, hook.match_policy, hook.reinvocation_policy) == (
        "Fail",
        "Equivalent",
        "Never",
    )
    assert hook.timeout_seconds == 10
    assert hook.namespace_selector.empty and hook.object_selector.empty


def test_a_bad_selector_is_kept_as_its_problem() -> None:
    selector = {"matchExpressions": [{"key": "a", "operator": "Near"}]}
    (hook,) = webhooks_of(
        {"metadata": {"name": "cfg"}, "webhooks": [{"name": "a", "objectSelector": selector}]}
    )
    assert hook.object_selector.selector is None
    assert hook.object_selector.problem == '"Near" is not a valid label selector operator'


# ----- match conditions -----------------------------------------------------------------------


def _variables(labels: dict[str, str]) -> Object:
    return {
        "object": {"metadata": {"name": "x", "labels": labels}},
        "oldObject": None,
        "request": {"operation": "CREATE", "userInfo": {"username": "alice"}},
    }


def test_conditions_all_true_match_and_a_false_one_skips() -> None:
    both = [
        ("create", "request.operation == 'CREATE'"),
        ("alice", "request.userInfo.username == 'alice'"),
    ]
    assert conditions.evaluate(both, _variables({}), ignore_failures=False).matches
    no = [*both, ("labelled", "'team' in object.metadata.labels")]
    assert conditions.evaluate(no, _variables({}), ignore_failures=False) == (
        conditions.MatchResult(False)
    )


def test_condition_errors_follow_the_failure_policy() -> None:
    broken = [("team", "object.metadata.labels.team == 'a'")]
    failed = conditions.evaluate(broken, _variables({}), ignore_failures=False)
    assert failed == conditions.MatchResult(
        False,
        "expression 'object.metadata.labels.team == 'a'' resulted in error: no such key: team",
    )
    assert conditions.evaluate(broken, _variables({}), ignore_failures=True) == (
        conditions.MatchResult(False)
    )
    # A false condition wins over an error: the webhook is skipped, no refusal.
    mixed = [*broken, ("never", "false")]
    assert conditions.evaluate(mixed, _variables({}), ignore_failures=False) == (
        conditions.MatchResult(False)
    )


# ----- AdmissionReview ------------------------------------------------------------------------


def _answer(**response: Any) -> Object:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "u1", "allowed": True, **response},
    }


def test_request_carries_request_and_matched_resource() -> None:
    attrs = _attrs("apps", "v1beta1", "deployments", obj=_deployment())
    attrs.user = UserInfo("alice", ("devs",), "id-1", (("scopes", ("a",)),))
    invocation = review.Invocation(
        GVR("apps", "v1", "deployments"), "", GVK("apps", "v1", "Deployment")
    )
    request = review.admission_request("u1", attrs, invocation, attrs.obj, None)
    assert request["kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert request["requestKind"] == {"group": "apps", "version": "v1beta1", "kind": "Deployment"}
    assert request["requestResource"]["version"] == "v1beta1"
    assert request["userInfo"] == {
        "username": "alice",
        "uid": "id-1",
        "groups": ["devs"],
        "extra": {"scopes": ["a"]},
    }
    assert request["oldObject"] is None and "subResource" not in request


def test_response_checks() -> None:
    with pytest.raises(review.InvalidResponse, match=r'expected response.uid="u1", got "u2"'):
        review.verify_response("u1", "v1", False, _answer(uid="u2"))
    with pytest.raises(review.InvalidResponse, match="webhook response was absent"):
        review.verify_response("u1", "v1", False, {"kind": "AdmissionReview"})
    wrong_kind = {**_answer(), "apiVersion": "admission.k8s.io/v1beta1"}
    with pytest.raises(
        review.InvalidResponse,
        match=re.escape(
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, "
            "got admission.k8s.io/v1beta1, Kind=AdmissionReview"
        ),
    ):
        review.verify_response("u1", "v1", False, wrong_kind)
    patch = base64.b64encode(b"[]").decode()
    with pytest.raises(review.InvalidResponse, match="validating webhook may not return"):
        review.verify_response("u1", "v1", False, _answer(patch=patch, patchType="JSONPatch"))
    with pytest.raises(
        review.InvalidResponse, match=r"response\.patch but not response\.patchType"
    ):
        review.verify_response("u1", "v1", True, _answer(patch=patch))
    checked = review.verify_response("u1", "v1", True, _answer(patch=patch, patchType="JSONPatch"))
    assert checked.patch == b"[]" and checked.patch_type == "JSONPatch"
    # v1beta1 answers are taken as they come: any uid, a patch is a JSON patch.
    old = review.verify_response("u1", "v1beta1", True, {"response": {"uid": "?", "patch": patch}})
    assert old.patch_type == "JSONPatch"


def test_denial_errors() -> None:
    plain = review.denial_error("deny.example.com", {"message": "no thanks"})
    assert plain.message == 'admission webhook "deny.example.com" denied the request: no thanks'
    assert (plain.code, plain.reason) == (400, "")
    coded = review.denial_error("d", {"code": 403, "reason": "Forbidden"})
    assert coded.message == 'admission webhook "d" denied the request: Forbidden'
    assert coded.code == 403
    silent = review.denial_error("d", None)
    assert silent.message == 'admission webhook "d" denied the request without explanation'
    assert review.denial_error("d", {"code": 200}).code == 400
    dry = review.dry_run_unsupported("d")
    assert (dry.code, dry.message) == (400, 'admission webhook "d" does not support dry run')


def test_call_errors_fail_closed_as_internal_errors() -> None:
    error = review.CallError("w", "failed to call webhook: boom").to_status_error()
    assert (error.code, error.reason) == (500, "InternalError")
    assert error.message == (
        'Internal error occurred: failed calling webhook "w": failed to call webhook: boom'
    )
