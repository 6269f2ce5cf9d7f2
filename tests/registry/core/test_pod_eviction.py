"""``pods/{name}/eviction`` over HTTP against an in-process API server (no controllers run)."""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.client import rest

Object = dict[str, Any]
NS = "default"


# Pods need ``default/default`` (admission) and no controller makes it here.
pytestmark = pytest.mark.usefixtures("module_namespace")


async def _pod(
    client: rest.Client, name: str, *, app: str = "web", phase: str = "Running", ready: bool = True
) -> Object:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "nginx:1"}]},
    }
    await client.create(rest.PODS, pod, namespace=NS)
    status = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    return await client.patch(
        rest.PODS, name, {"status": status}, namespace=NS, subresource="status"
    )


async def _pdb(
    client: rest.Client,
    name: str,
    *,
    allowed: int,
    current: int = 3,
    desired: int = 2,
    selector: Object | None = None,
    policy: str | None = None,
    observed: int | None = None,
) -> Object:
    spec: Object = {
        "minAvailable": desired,
        "selector": selector or {"matchLabels": {"app": "web"}},
    }
    if policy:
        spec["unhealthyPodEvictionPolicy"] = policy
    body = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name}}
    created = await client.create(rest.PODDISRUPTIONBUDGETS, {**body, "spec": spec}, namespace=NS)
    created["status"] = {
        "observedGeneration": created["metadata"]["generation"] if observed is None else observed,
        "disruptionsAllowed": allowed,
        "currentHealthy": current,
        "desiredHealthy": desired,
        "expectedPods": current,
    }
    return await client.update_status(rest.PODDISRUPTIONBUDGETS, created)


def _eviction(name: str, *, version: str = "policy/v1", **delete_options: Any) -> Object:
    body: Object = {"apiVersion": version, "kind": "Eviction", "metadata": {"name": name}}
    if delete_options:
        body["deleteOptions"] = delete_options
    return body


async def _evict(client: rest.Client, name: str, body: Object | None = None) -> Object:
    return await client.create(
        rest.PODS, body or _eviction(name), namespace=NS, subresource="eviction"
    )


async def _gone_or_deleting(client: rest.Client, name: str) -> bool:
    try:
        pod = await client.get(rest.PODS, name, namespace=NS)
    except rest.ApiError as exc:
        return exc.not_found
    return bool(pod["metadata"].get("deletionTimestamp"))


async def test_a_pod_without_a_budget_is_evicted_and_marked_as_a_disruption_target(
    admin: rest.Client,
) -> None:
    """No PDB: 201 Success; the pod is deleting and carries DisruptionTarget=True."""
    await _pod(admin, "free", app="other")
    answer = await _evict(admin, "free")
    assert answer["status"] == "Success"
    pod = await admin.get(rest.PODS, "free", namespace=NS)
    assert pod["metadata"].get("deletionTimestamp")
    target = [c for c in pod["status"]["conditions"] if c["type"] == "DisruptionTarget"]
    assert target and target[0]["status"] == "True"
    assert target[0]["reason"] == "EvictionByEvictionAPI"


async def test_an_eviction_the_budget_cannot_afford_is_429_with_a_disruption_budget_cause(
    admin: rest.Client,
) -> None:
    """disruptionsAllowed 0: 429 TooManyRequests, upstream's message and cause; the pod stays."""
    await _pod(admin, "web-1")
    await _pdb(admin, "web", allowed=0, current=2, desired=2)
    with pytest.raises(rest.ApiError) as caught:
        await _evict(admin, "web-1")
    status = caught.value.status
    assert status["code"] == 429 and status["reason"] == "TooManyRequests"
    assert status["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert status["details"]["causes"] == [
        {
            "reason": "DisruptionBudget",
            "message": "The disruption budget web needs 2 healthy pods and has 2 currently",
        }
    ]
    assert not await _gone_or_deleting(admin, "web-1")


async def test_an_eviction_spends_one_disruption_and_records_the_pod(admin: rest.Client) -> None:
    """allowed 1 → 0 with the pod in disruptedPods and InsufficientPods; the next one is 429."""
    await _pod(admin, "web-1")
    await _pod(admin, "web-2")
    await _pdb(admin, "web", allowed=1)
    await _evict(admin, "web-1")
    assert await _gone_or_deleting(admin, "web-1")
    pdb = await admin.get(rest.PODDISRUPTIONBUDGETS, "web", namespace=NS)
    assert pdb["status"]["disruptionsAllowed"] == 0
    assert list(pdb["status"]["disruptedPods"]) == ["web-1"]
    condition = pdb["status"]["conditions"][0]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "DisruptionAllowed",
        "False",
        "InsufficientPods",
    )
    with pytest.raises(rest.ApiError) as caught:
        await _evict(admin, "web-2")
    assert caught.value.code == 429


async def test_a_pod_under_two_budgets_is_refused_with_a_500(admin: rest.Client) -> None:
    """Upstream does not pick between budgets: 500 with its message."""
    await _pod(admin, "web-1")
    await _pdb(admin, "a", allowed=1)
    await _pdb(admin, "b", allowed=1)
    with pytest.raises(rest.ApiError) as caught:
        await _evict(admin, "web-1")
    assert caught.value.code == 500
    assert "more than one PodDisruptionBudget" in caught.value.status["message"]


@pytest.mark.parametrize(
    ("phase", "ready", "policy", "evicted"),
    [
        pytest.param("Succeeded", False, None, True, id="terminal-pods-are-free"),
        pytest.param("Pending", False, None, True, id="pending-pods-are-free"),
        pytest.param("Running", False, "AlwaysAllow", True, id="unready-always-allow"),
        pytest.param("Running", False, None, False, id="unready-unhealthy-budget"),
        pytest.param("Running", False, "IfHealthyBudget", False, id="unready-if-healthy-budget"),
    ],
)
async def test_pods_a_budget_with_no_disruptions_left_still_lets_go(
    admin: rest.Client, phase: str, ready: bool, policy: str | None, evicted: bool
) -> None:
    """With allowed=0 and 1 of 2 healthy, only terminal/pending pods and AlwaysAllow pass."""
    await _pod(admin, "web-1", phase=phase, ready=ready)
    await _pdb(admin, "web", allowed=0, current=1, desired=2, policy=policy)
    if evicted:
        await _evict(admin, "web-1")
    else:
        with pytest.raises(rest.ApiError) as caught:
            await _evict(admin, "web-1")
        assert caught.value.code == 429
    assert await _gone_or_deleting(admin, "web-1") is evicted
    pdb = await admin.get(rest.PODDISRUPTIONBUDGETS, "web", namespace=NS)
    assert "disruptedPods" not in pdb["status"]


async def test_an_unready_pod_goes_without_spending_a_satisfied_budget(admin: rest.Client) -> None:
    """IfHealthyBudget: 3 healthy ≥ 2 desired, so an unready pod is deleted and nothing is spent."""
    await _pod(admin, "web-1", ready=False)
    await _pdb(admin, "web", allowed=1, current=3, desired=2)
    await _evict(admin, "web-1")
    assert await _gone_or_deleting(admin, "web-1")
    pdb = await admin.get(rest.PODDISRUPTIONBUDGETS, "web", namespace=NS)
    assert pdb["status"]["disruptionsAllowed"] == 1


async def test_a_budget_not_yet_observed_by_the_controller_asks_to_retry(
    admin: rest.Client,
) -> None:
    """observedGeneration behind generation: 429 "still being processed", retry after 10 s."""
    await _pod(admin, "web-1")
    await _pdb(admin, "web", allowed=1, observed=0)
    with pytest.raises(rest.ApiError) as caught:
        await _evict(admin, "web-1")
    status = caught.value.status
    assert status["code"] == 429
    assert status["details"]["retryAfterSeconds"] == 10
    assert status["details"]["causes"][0]["message"] == (
        "The disruption budget web is still being processed by the server."
    )


async def test_a_dry_run_eviction_changes_nothing(admin: rest.Client) -> None:
    """deleteOptions.dryRun=[All]: Success, but the pod and the budget are untouched."""
    await _pod(admin, "web-1")
    await _pdb(admin, "web", allowed=1)
    answer = await _evict(admin, "web-1", _eviction("web-1", dryRun=["All"]))
    assert answer["status"] == "Success"
    assert not await _gone_or_deleting(admin, "web-1")
    pdb = await admin.get(rest.PODDISRUPTIONBUDGETS, "web", namespace=NS)
    assert pdb["status"]["disruptionsAllowed"] == 1


async def test_v1beta1_evictions_and_delete_options_are_honoured(admin: rest.Client) -> None:
    """A policy/v1beta1 body with gracePeriodSeconds 0 removes the pod at once."""
    await _pod(admin, "web-1", app="other")
    await _evict(admin, "web-1", _eviction("web-1", version="policy/v1beta1", gracePeriodSeconds=0))
    with pytest.raises(rest.ApiError) as caught:
        await admin.get(rest.PODS, "web-1", namespace=NS)
    assert caught.value.not_found


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "other"}},
            "name in URL does not match name in Eviction object",
            id="name-mismatch",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web-1"}},
            "not a Eviction object: v1 Binding",
            id="wrong-kind",
        ),
    ],
)
async def test_malformed_evictions_are_bad_requests(
    admin: rest.Client, body: Object, message: str
) -> None:
    """The body must be an Eviction naming the pod in the URL."""
    await _pod(admin, "web-1")
    path = rest.PODS.path(namespace=NS, name="web-1", subresource="eviction")
    with pytest.raises(rest.ApiError) as caught:
        await admin.request("POST", path, body=body)
    assert caught.value.code == 400 and caught.value.status["message"] == message


async def test_discovery_lists_pods_eviction_as_policy_v1_eviction(admin: rest.Client) -> None:
    """kubectl drain finds the eviction API through this entry of /api/v1."""
    listing = await admin.request("GET", "/api/v1")
    entry = next(r for r in listing["resources"] if r["name"] == "pods/eviction")
    assert (entry["group"], entry["version"], entry["kind"]) == ("policy", "v1", "Eviction")
    assert entry["verbs"] == ["create"]
