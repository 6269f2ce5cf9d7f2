"""The access review kinds answer from the authorizer and validate as upstream."""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.auth import authorizer, rbac
from kajitori.machinery import errors
from kajitori.registry.authentication import selfsubjectreviews
from kajitori.registry.authorization import reviews
from kajitori.registry.generic.request import RequestContext, UserInfo

Object = dict[str, Any]
ALICE = UserInfo("alice", ("system:authenticated",), uid="u-1")


def _authorizer() -> authorizer.Union:
    index = rbac.PolicyIndex()
    index.replace(
        "clusterroles",
        [
            {
                "metadata": {"name": "r"},
                "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}],
            }
        ],
    )
    index.replace(
        "rolebindings",
        [
            {
                "metadata": {"name": "b", "namespace": "demo"},
                "roleRef": {"kind": "ClusterRole", "name": "r"},
                "subjects": [{"kind": "User", "name": "alice"}],
            }
        ],
    )
    return authorizer.Union(
        [authorizer.PrivilegedGroups("system:masters"), rbac.RBACAuthorizer(index)]
    )


def _by_kind() -> dict[str, Any]:
    return {info.kind: info for info in reviews.resources(_authorizer())}


def _sar(kind: str, spec: Object) -> Object:
    return {"apiVersion": "authorization.k8s.io/v1", "kind": kind, "spec": spec}


POD_IN_DEMO = {"verb": "get", "resource": "pods", "namespace": "demo"}


async def test_subject_access_review_answers_for_the_named_user() -> None:
    """Allowed with upstream's reason; the spec is echoed and status filled."""
    info = _by_kind()["SubjectAccessReview"]
    answer = await info.virtual_create(
        "", _sar(info.kind, {"user": "alice", "resourceAttributes": POD_IN_DEMO}), RequestContext()
    )
    assert answer["status"] == {
        "allowed": True,
        "reason": 'RBAC: allowed by RoleBinding "b/demo" of ClusterRole "r" to User "alice"',
    }
    assert answer["spec"]["user"] == "alice"


async def test_self_subject_access_review_asks_about_the_caller() -> None:
    """The caller, not the spec, is the subject; a denial is allowed=false without denied."""
    info = _by_kind()["SelfSubjectAccessReview"]
    spec = {"resourceAttributes": {**POD_IN_DEMO, "verb": "delete"}}
    answer = await info.virtual_create("", _sar(info.kind, spec), RequestContext(user=ALICE))
    assert answer["status"] == {"allowed": False}


@pytest.mark.parametrize(
    ("kind", "namespace", "spec", "code", "message"),
    [
        pytest.param(
            "SubjectAccessReview",
            "",
            {"resourceAttributes": POD_IN_DEMO},
            422,
            'SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: Invalid value: "": at least one of user or group must be specified',
            id="sar-needs-user",
        ),
        pytest.param(
            "SelfSubjectAccessReview",
            "",
            {},
            422,
            'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: null: '
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            id="ssar-needs-attributes",
        ),
        pytest.param(
            "LocalSubjectAccessReview",
            "other",
            {"user": "alice", "resourceAttributes": POD_IN_DEMO},
            400,
            "spec.resourceAttributes.namespace must match namespace: other",
            id="lsar-namespace-mismatch",
        ),
        pytest.param(
            "SelfSubjectRulesReview",
            "",
            {},
            400,
            "no namespace on request",
            id="ssrr-needs-namespace",
        ),
    ],
)
async def test_reviews_refuse_bad_specs(
    kind: str, namespace: str, spec: Object, code: int, message: str
) -> None:
    """Validation and namespace checks, with upstream's codes and messages."""
    info = _by_kind()[kind]
    with pytest.raises(errors.StatusError) as caught:
        await info.virtual_create(namespace, _sar(kind, spec), RequestContext(user=ALICE))
    assert (caught.value.code, caught.value.message) == (code, message)


async def test_local_subject_access_review_in_its_namespace() -> None:
    """A LocalSubjectAccessReview in the URL's namespace is answered."""
    info = _by_kind()["LocalSubjectAccessReview"]
    review = _sar(info.kind, {"user": "alice", "resourceAttributes": POD_IN_DEMO})
    answer = await info.virtual_create("demo", review, RequestContext())
    assert answer["status"]["allowed"] is True
    assert answer["metadata"]["namespace"] == "demo"


async def test_self_subject_rules_review_lists_rules_without_echoing_spec() -> None:
    """Resource and non-resource rules of the caller in the namespace; the privileged get '*'."""
    info = _by_kind()["SelfSubjectRulesReview"]
    review = _sar(info.kind, {"namespace": "demo"})
    answer = await info.virtual_create("", review, RequestContext(user=ALICE))
    assert answer["spec"] == {}
    assert answer["status"] == {
        "resourceRules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}],
        "nonResourceRules": [],
        "incomplete": False,
    }
    root = UserInfo("root", ("system:masters",))
    privileged = await info.virtual_create("", review, RequestContext(user=root))
    assert privileged["status"]["nonResourceRules"] == [{"verbs": ["*"], "nonResourceURLs": ["*"]}]


async def test_self_subject_review_reports_the_caller() -> None:
    """kubectl auth whoami's answer: username, uid and groups."""
    answer = await selfsubjectreviews.create("", {}, RequestContext(user=ALICE))
    assert answer["status"] == {
        "userInfo": {"username": "alice", "uid": "u-1", "groups": ["system:authenticated"]}
    }
