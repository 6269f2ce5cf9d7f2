"""The ValidatingAdmissionPolicy CEL evaluator without a server.

Composition (a variable runs only when read, so ``false && variables.bad``
is false, and a failing variable becomes the reading expression's error in
upstream's words), evaluation errors, null ``oldObject`` on create, and
the authorizer library (group/resource/namespace/name checks, paths,
service accounts, ``requestResource``, ``allowed``/``reason``) answered by
the given authorizer as the request's user.
"""

from __future__ import annotations

import pytest

from kajitori.admission.policy import cel_env
from kajitori.registry.authorization.authorizer import Attributes, Decision, RuleSet
from kajitori.registry.generic.request import UserInfo

REQUEST = {
    "operation": "CREATE",
    "resource": {"group": "", "version": "v1", "resource": "configmaps"},
    "namespace": "ns",
    "name": "c",
}


class Recorder:
    """Allows alice to read secrets in ns; remembers every question."""

    def __init__(self) -> None:
        self.asked: list[Attributes] = []

    def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        self.asked.append(attrs)
        allowed = attrs.user.name == "alice" and attrs.resource == "secrets"
        return ("Allow", "granted") if allowed else ("NoOpinion", "no rule")

    def rules_for(self, user: UserInfo, namespace: str) -> RuleSet:
        return RuleSet()


def inputs(recorder: Recorder, **variables: str) -> cel_env.Inputs:
    return cel_env.Inputs(
        object={"data": {"a": "1"}},
        old_object=None,
        request=REQUEST,
        namespace_object=None,
        params=None,
        has_params=False,
        authorizer=cel_env.AuthorizerBinding(UserInfo("alice", ("dev",)), recorder),
        variables=variables,
    )


def test_variables_are_lazy_and_their_errors_are_upstreams() -> None:
    got = inputs(
        Recorder(), bad="object.data.missing", good="object.data.a", both="variables.good + '!'"
    )
    assert cel_env.evaluate("variables.both == '1!'", got) is True
    assert cel_env.evaluate("false && variables.bad == 'x'", got) is False
    with pytest.raises(cel_env.ExpressionError) as raised:
        cel_env.evaluate("variables.bad == 'x'", got)
    assert str(raised.value) == (
        "expression 'variables.bad == 'x'' resulted in error: composited variable \"bad\" "
        "fails to evaluate: no such key: missing"
    )
    assert cel_env.evaluate("oldObject == null && request.operation == 'CREATE'", got) is True


def test_authorizer_library_asks_as_the_request_user() -> None:
    recorder = Recorder()
    got = inputs(recorder)
    check = "authorizer.group('').resource('secrets').namespace('ns').name('s').check('get')"
    assert cel_env.evaluate(check + ".allowed()", got) is True
    assert cel_env.evaluate(check + ".reason()", got) == "granted"
    asked = recorder.asked[-1]
    assert (asked.user.name, asked.verb, asked.resource, asked.namespace, asked.name) == (
        "alice", "get", "secrets", "ns", "s",
    )  # fmt: skip
    account = "authorizer.serviceAccount('ns', 'robot').group('').resource('secrets').check('list')"
    assert cel_env.evaluate(account + ".allowed()", got) is False
    assert recorder.asked[-1].user.name == "system:serviceaccount:ns:robot"
    assert cel_env.evaluate("authorizer.requestResource.check('create').allowed()", got) is False
    assert (recorder.asked[-1].resource, recorder.asked[-1].name) == ("configmaps", "c")
    assert cel_env.evaluate("authorizer.path('/healthz').check('get').errored()", got) is False
    assert recorder.asked[-1].path == "/healthz" and not recorder.asked[-1].resource_request
