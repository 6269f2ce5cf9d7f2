"""Admission webhooks without a network: equivalent versions and their views, match
conditions, the configurations' defaults and order, AdmissionReview checks and errors.

Rules and selectors are admission.matching's, shared with the policy plugin:
tests/admission/test_matching.py."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from tests.admission import test_matching

from kajitori.admission.policy import cel_env
from kajitori.admission.webhooks import conditions, review
from kajitori.admission.webhooks.accessors import webhooks_of
from kajitori.admission.webhooks.attributes import (
    GVK,
    GVR,
    SCALE_KIND,
    Attributes,
    Versions,
    view_for,
)
from kajitori.registry.authorization.authorizer import Attributes as AuthzAttributes
from kajitori.registry.authorization.authorizer import Decision
from kajitori.registry.generic.request import UserInfo

Object = dict[str, Any]

RESOURCES = test_matching.RESOURCES


def _attrs(*args: Any, **kwargs: Any) -> Attributes:
    """``test_matching.attrs`` for an object named ``x`` in ``default``."""
    return test_matching.attrs(*args, **{"namespace": "default", "name": "x", **kwargs})


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
    v1 = view_for(
        attrs, test_matching._info("apps", "v1", "deployments"), GVK("apps", "v1", "Deployment")
    )
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
    assert (hook.failure_policy, hook.criteria.match_policy, hook.reinvocation_policy) == (
        "Fail",
        "Equivalent",
        "Never",
    )
    assert hook.timeout_seconds == 10
    assert hook.criteria.namespace_selector.empty and hook.criteria.object_selector.empty


def test_a_bad_selector_is_kept_as_its_problem() -> None:
    selector = {"matchExpressions": [{"key": "a", "operator": "Near"}]}
    (hook,) = webhooks_of(
        {"metadata": {"name": "cfg"}, "webhooks": [{"name": "a", "objectSelector": selector}]}
    )
    assert hook.criteria.object_selector.selector is None
    assert hook.criteria.object_selector.problem == '"Near" is not a valid label selector operator'


# ----- match conditions -----------------------------------------------------------------------


class OnlyAlice:
    """An authorizer that lets alice list secrets and nothing else."""

    def authorize(self, attrs: AuthzAttributes) -> tuple[Decision, str]:
        if attrs.user.name == "alice" and (attrs.verb, attrs.resource) == ("list", "secrets"):
            return "Allow", ""
        return "NoOpinion", ""


def _inputs(labels: dict[str, str], user: str = "alice") -> cel_env.Inputs:
    request = {"operation": "CREATE", "userInfo": {"username": user}}
    return cel_env.Inputs(
        object={"metadata": {"name": "x", "labels": labels}},
        old_object=None,
        request=request,
        namespace_object=None,
        params=None,
        has_params=False,
        authorizer=cel_env.AuthorizerBinding(UserInfo(user), OnlyAlice()),
    )


def test_conditions_all_true_match_and_a_false_one_skips() -> None:
    both = ["request.operation == 'CREATE'", "request.userInfo.username == 'alice'"]
    assert conditions.evaluate(both, _inputs({}), ignore_failures=False).matches
    no = [*both, "'team' in object.metadata.labels"]
    assert conditions.evaluate(no, _inputs({}), ignore_failures=False) == (
        conditions.MatchResult(False)
    )


def test_a_condition_that_is_not_true_skips() -> None:
    """Upstream skips on any result but true: a string from an untyped read is no error."""
    named = ["object.metadata.name"]
    assert conditions.evaluate(named, _inputs({}), ignore_failures=False) == (
        conditions.MatchResult(False)
    )


def test_conditions_may_ask_the_authorizer() -> None:
    """Upstream declares ``authorizer`` for webhooks' matchConditions."""
    check = ["authorizer.group('').resource('secrets').check('list').allowed()"]
    assert conditions.evaluate(check, _inputs({}), ignore_failures=False).matches
    assert not conditions.evaluate(check, _inputs({}, user="bob"), ignore_failures=False).matches


def test_condition_errors_follow_the_failure_policy() -> None:
    broken = ["object.metadata.labels.team == 'a'"]
    failed = conditions.evaluate(broken, _inputs({}), ignore_failures=False)
    assert failed == conditions.MatchResult(
        False,
        "expression 'object.metadata.labels.team == 'a'' resulted in error: no such key: team",
    )
    assert conditions.evaluate(broken, _inputs({}), ignore_failures=True) == (
        conditions.MatchResult(False)
    )
    # Several errors are bracketed, as Go's error aggregate prints them.
    twice = [*broken, "object.metadata.labels.app == 'b'"]
    assert conditions.evaluate(twice, _inputs({}), ignore_failures=False).error == (
        "[expression 'object.metadata.labels.team == 'a'' resulted in error: no such key: team, "
        "expression 'object.metadata.labels.app == 'b'' resulted in error: no such key: app]"
    )
    # A false condition wins over an error: the webhook is skipped, no refusal.
    mixed = [*broken, "false"]
    assert conditions.evaluate(mixed, _inputs({}), ignore_failures=False) == (
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
