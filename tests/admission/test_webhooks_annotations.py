"""The webhook plugins' audit annotations with the HTTPS call replaced.

Upstream's keys and values: ``mutation.webhook.admission.k8s.io/round_<r>_index_<i>``
for every mutating call (a reinvocation is round 1), the failed-open records
of both dispatchers, and a webhook's ``auditAnnotations`` only when their
keys are qualified names.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.admission.test_webhooks_dispatch import (
    STORE,
    FakeClients,
    FixedSource,
    _config,
    _configmap,
    _ctx,
    _dispatcher,
    _webhook,
)

from kajitori.admission.chain import AdmissionChain
from kajitori.admission.webhooks.dispatch import MutatingWebhook, ValidatingWebhook
from kajitori.admission.webhooks.review import CallError

Object = dict[str, Any]


def _patch(*operations: Object) -> Object:
    encoded = base64.b64encode(json.dumps(list(operations)).encode()).decode()
    return {"allowed": True, "patchType": "JSONPatch", "patch": encoded}


def _mutation(configuration: str, webhook: str, mutated: bool) -> str:
    flag = "true" if mutated else "false"
    return f'{{"configuration":"{configuration}","webhook":"{webhook}","mutated":{flag}}}'


async def test_reinvoked_webhooks_are_recorded_in_round_one() -> None:
    clients = FakeClients(
        {
            "first.example.com": {"allowed": True},
            "second.example.com": _patch({"op": "add", "path": "/data/b", "value": "2"}),
        }
    )
    source = FixedSource(
        _config(
            "m",
            _webhook("first.example.com", reinvocationPolicy="IfNeeded"),
            _webhook("second.example.com"),
        )
    )
    # The second pass is the admission chain's (upstream's reinvoker).
    chain = AdmissionChain([MutatingWebhook(_dispatcher(source, clients, mutating=True))])
    ctx = _ctx()
    await chain.admit(STORE, "CREATE", _configmap(), None, ctx)
    assert clients.started == ["first.example.com", "second.example.com", "first.example.com"]
    prefix = "mutation.webhook.admission.k8s.io/"
    assert ctx.audit_annotations == {
        prefix + "round_0_index_0": _mutation("m", "first.example.com", False),
        prefix + "round_0_index_1": _mutation("m", "second.example.com", True),
        "patch.webhook.admission.k8s.io/round_0_index_1": (
            '{"configuration":"m","webhook":"second.example.com",'
            '"patch":[{"op":"add","path":"/data/b","value":"2"}],"patchType":"JSONPatch"}'
        ),
        prefix + "round_1_index_0": _mutation("m", "first.example.com", False),
    }


async def test_failing_open_is_recorded_and_bad_keys_are_dropped() -> None:
    down = CallError("down.example.com", "failed to call webhook: connection refused")
    annotated = {"allowed": True, "auditAnnotations": {"ok": "1", "not ok": "2"}}
    clients = FakeClients({"down.example.com": down, "noted.example.com": annotated})
    webhooks = (
        _webhook("down.example.com", failurePolicy="Ignore"),
        _webhook("noted.example.com"),
    )
    ctx = _ctx()
    mutating = MutatingWebhook(
        _dispatcher(FixedSource(_config("m", *webhooks)), clients, mutating=True)
    )
    await mutating.admit(STORE, "CREATE", _configmap(), None, ctx)
    assert ctx.audit_annotations == {
        "failed-open.mutation.webhook.admission.k8s.io/round_0_index_0": "down.example.com",
        "mutation.webhook.admission.k8s.io/round_0_index_0": _mutation(
            "m", "down.example.com", False
        ),
        "noted.example.com/ok": "1",
        "mutation.webhook.admission.k8s.io/round_0_index_1": _mutation(
            "m", "noted.example.com", False
        ),
    }
    ctx = _ctx()
    source = FixedSource(_config("v", *webhooks))
    validating = ValidatingWebhook(_dispatcher(source, clients, mutating=False))
    await validating.validate(STORE, "CREATE", _configmap(), None, ctx)
    assert ctx.audit_annotations == {
        "failed-open.validating.webhook.admission.k8s.io/round_0_index_0": "down.example.com",
        "noted.example.com/ok": "1",
    }
