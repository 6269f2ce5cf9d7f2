"""The webhook plugins' decisions with the HTTPS call replaced: dry run and side effects,
parallel validating webhooks, patches where there is no object, failure policies."""

from __future__ import annotations

import asyncio
import base64
import json
from types import SimpleNamespace
from typing import Any

import pytest

from kajitori.admission.webhooks.accessors import Webhook, webhooks_of
from kajitori.admission.webhooks.attributes import Versions
from kajitori.admission.webhooks.client import ServiceResolver, WebhookClients
from kajitori.admission.webhooks.dispatch import (
    MutatingWebhook,
    Namespaces,
    ValidatingWebhook,
    WebhookDispatcher,
)
from kajitori.machinery import errors
from kajitori.registry import install
from kajitori.registry.generic.request import RequestContext, RequestTarget

Object = dict[str, Any]
CONFIGMAPS = next(r for r in install.all_resources() if r.plural == "configmaps")
STORE: Any = SimpleNamespace(info=CONFIGMAPS)


class FakeClients(WebhookClients):
    """Answers by webhook name; records the order calls started in."""

    def __init__(self, answers: dict[str, Any]) -> None:
        super().__init__(ServiceResolver(lambda: None, lambda: None))
        self.answers = answers
        self.started: list[str] = []

    async def post(self, webhook: Webhook, review: Object) -> Any:
        self.started.append(webhook.name)
        answer = self.answers[webhook.name]
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            return await answer(review)
        uid = review["request"]["uid"]
        return {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": uid, **answer},
        }


class FixedSource:
    def __init__(self, *configurations: Object) -> None:
        self.hooks = [w for c in configurations for w in webhooks_of(c)]

    async def webhooks(self) -> list[Webhook]:
        return self.hooks

    async def stop(self) -> None:
        pass


def _config(name: str, *webhooks: Object) -> Object:
    return {"metadata": {"name": name, "resourceVersion": "1"}, "webhooks": list(webhooks)}


def _webhook(name: str, **fields: Any) -> Object:
    return {
        "name": name,
        "rules": [
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["configmaps"],
                "operations": ["*"],
            }
        ],
        "sideEffects": "None",
        **fields,
    }


def _dispatcher(source: FixedSource, clients: FakeClients, *, mutating: bool) -> WebhookDispatcher:
    return WebhookDispatcher(
        source,  # type: ignore[arg-type]
        namespaces=Namespaces(lambda: None),
        versions=Versions(install.all_resources),
        clients=clients,
        mutating=mutating,
    )


def _configmap() -> Object:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "default"},
        "data": {"a": "1"},
    }


def _ctx(**fields: Any) -> RequestContext:
    return RequestContext(target=RequestTarget("", "v1", "configmaps"), **fields)


async def test_dry_run_refuses_webhooks_with_side_effects_and_calls_the_others() -> None:
    clients = FakeClients({"none.example.com": {"allowed": True}})
    source = FixedSource(
        _config(
            "a",
            _webhook("none.example.com", sideEffects="NoneOnDryRun"),
            _webhook("some.example.com", sideEffects="Some"),
        )
    )
    plugin = ValidatingWebhook(_dispatcher(source, clients, mutating=False))
    with pytest.raises(errors.StatusError) as raised:
        await plugin.validate(STORE, "CREATE", _configmap(), None, _ctx(dry_run=True))
    assert (raised.value.code, raised.value.message) == (
        400,
        'admission webhook "some.example.com" does not support dry run',
    )
    assert clients.started == ["none.example.com"]
    # The same request for real: both are called.
    clients.answers["some.example.com"] = {"allowed": True}
    await plugin.validate(STORE, "CREATE", _configmap(), None, _ctx())
    assert clients.started[1:] == ["none.example.com", "some.example.com"]


async def test_validating_webhooks_run_at_once_and_the_first_refusal_in_order_wins() -> None:
    both_started = asyncio.Event()
    seen: list[str] = []

    def waiting(name: str, allowed: bool) -> Any:
        async def answer(review: Object) -> Object:
            seen.append(name)
            if len(seen) == 2:
                both_started.set()
            await asyncio.wait_for(both_started.wait(), 5)  # only if both are in flight at once
            status = {"message": f"{name} says no"}
            return {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {"uid": review["request"]["uid"], "allowed": allowed, "status": status},
            }

        return answer

    clients = FakeClients(
        {
            "first.example.com": waiting("first", False),
            "second.example.com": waiting("second", False),
        }
    )
    source = FixedSource(
        _config("a", _webhook("first.example.com")), _config("b", _webhook("second.example.com"))
    )
    plugin = ValidatingWebhook(_dispatcher(source, clients, mutating=False))
    with pytest.raises(errors.StatusError) as raised:
        await plugin.validate(STORE, "CREATE", _configmap(), None, _ctx())
    assert raised.value.message == (
        'admission webhook "first.example.com" denied the request: first says no'
    )


async def test_a_patch_for_delete_is_an_error_and_ignore_skips_bad_answers() -> None:
    patch = base64.b64encode(json.dumps([{"op": "remove", "path": "/data"}]).encode()).decode()
    clients = FakeClients(
        {
            "broken.example.com": {"allowed": True, "patch": patch},  # no patchType
            "patcher.example.com": {"allowed": True, "patch": patch, "patchType": "JSONPatch"},
        }
    )
    source = FixedSource(
        _config(
            "a",
            _webhook("broken.example.com", failurePolicy="Ignore"),
            _webhook("patcher.example.com"),
        )
    )
    plugin = MutatingWebhook(_dispatcher(source, clients, mutating=True))
    with pytest.raises(errors.StatusError) as raised:
        await plugin.validate_delete(STORE, _configmap(), _ctx())
    assert (raised.value.code, raised.value.message) == (
        500,
        'Internal error occurred: admission webhook "patcher.example.com" attempted to modify '
        "the object, which is not supported for this operation",
    )
    # On CREATE the same patch applies; the ignored webhook's bad answer changes nothing.
    obj = _configmap()
    await plugin.admit(STORE, "CREATE", obj, None, _ctx())
    assert "data" not in obj


async def test_fail_policy_refuses_with_the_call_error() -> None:
    clients = FakeClients({"strict.example.com": {"allowed": True, "uid": "wrong"}})
    source = FixedSource(_config("a", _webhook("strict.example.com")))
    plugin = MutatingWebhook(_dispatcher(source, clients, mutating=True))
    with pytest.raises(errors.StatusError) as raised:
        await plugin.admit(STORE, "CREATE", _configmap(), None, _ctx())
    assert raised.value.code == 500
    assert raised.value.message.startswith(
        'Internal error occurred: failed calling webhook "strict.example.com": received invalid '
        'webhook response: expected response.uid="'
    )
    assert raised.value.message.endswith('", got "wrong"')


async def test_cluster_scoped_objects_ignore_the_namespace_selector() -> None:
    nodes = next(r for r in install.all_resources() if r.plural == "nodes")
    clients = FakeClients({"nodes.example.com": {"allowed": False}})
    rule = {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["nodes"], "operations": ["*"]}
    selector = {"matchLabels": {"never": "there"}}
    source = FixedSource(
        _config("a", _webhook("nodes.example.com", rules=[rule], namespaceSelector=selector))
    )
    plugin = ValidatingWebhook(_dispatcher(source, clients, mutating=False))
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    ctx = RequestContext(target=RequestTarget("", "v1", "nodes"))
    with pytest.raises(errors.StatusError) as raised:
        await plugin.validate(SimpleNamespace(info=nodes), "CREATE", node, None, ctx)  # type: ignore[arg-type]
    assert (
        raised.value.message
        == 'admission webhook "nodes.example.com" denied the request without explanation'
    )


async def test_review_version_is_the_first_known_one_the_webhook_lists() -> None:
    seen: list[str] = []

    async def old_style(review: Object) -> Object:
        seen.append(review["apiVersion"])
        # v1beta1 answers were never checked for uid or kind.
        return {"response": {"allowed": True}}

    clients = FakeClients({"old.example.com": old_style, "future.example.com": {"allowed": True}})
    source = FixedSource(
        _config("a", _webhook("old.example.com", admissionReviewVersions=["v9", "v1beta1"]))
    )
    plugin = ValidatingWebhook(_dispatcher(source, clients, mutating=False))
    await plugin.validate(STORE, "CREATE", _configmap(), None, _ctx())
    assert seen == ["admission.k8s.io/v1beta1"]
    source.hooks = webhooks_of(
        _config("b", _webhook("future.example.com", admissionReviewVersions=["v9"]))
    )
    with pytest.raises(errors.StatusError) as raised:
        await plugin.validate(STORE, "CREATE", _configmap(), None, _ctx())
    assert raised.value.message == (
        'Internal error occurred: failed calling webhook "future.example.com": could not create '
        "admission objects: webhook does not accept known AdmissionReview versions (v1, v1beta1)"
    )
