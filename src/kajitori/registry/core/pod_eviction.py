"""``POST pods/{name}/eviction``: delete a pod unless that breaks its PodDisruptionBudget.

Mirrors upstream's EvictionREST (pkg/registry/core/pod/storage/eviction.go).
The body is a ``policy/v1`` Eviction (``policy/v1beta1`` is accepted too)
naming the pod and carrying the ``deleteOptions`` the pod is deleted with.
The order of decisions:

1. A pod that has already caused its disruption (Succeeded, Failed,
   Pending, or already being deleted) is deleted at once; no budget applies.
   A live pod is deleted only at the resourceVersion that was looked at, so
   it cannot have become ready in between.
2. Otherwise the budgets in the pod's namespace whose selector matches the
   pod are looked up (an empty selector matches nothing here). More than one
   is a 500 the eviction API does not resolve; none means delete.
3. An unready pod under a budget is deleted without spending the budget when
   ``unhealthyPodEvictionPolicy`` is ``AlwaysAllow``, or (``IfHealthyBudget``,
   the default) when the budget is currently satisfied.
4. Otherwise the budget must allow a disruption: its status must be current
   (``observedGeneration``), and ``disruptionsAllowed`` above 0, else 429
   with a ``DisruptionBudget`` cause. The budget's status is then written
   with one disruption fewer and the pod listed in ``disruptedPods``, as a
   compare-and-swap on the budget (a lost race re-reads and decides again),
   so two concurrent evictions can never both spend the last disruption.
5. The pod gets the ``DisruptionTarget`` condition, whose
   ``observedGeneration`` is the pod's generation as stored at that moment
   (KEP-5067; the graceful delete then bumps it), and is deleted with the
   eviction's options. The answer is a ``Status`` of Success (HTTP 201).

The budgets are reached through the registry's PodDisruptionBudget store,
which the composition root hands to ``install`` (registry modules do not
know each other's stores).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from kajitori.api.core_v1 import pod_conditions
from kajitori.api.policy_v1 import helpers
from kajitori.machinery import errors, labels, times
from kajitori.registry import resource
from kajitori.registry.generic.request import RequestContext, UserInfo
from kajitori.registry.generic.store import DeleteOptions, ListOptions, Store

Object = dict[str, Any]
BudgetStore = Callable[[], Store | None]

EVICTION_VERSIONS = ("policy/v1", "policy/v1beta1")
DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"
VIOLATION_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."
MULTIPLE_BUDGETS_MESSAGE = (
    "This pod has more than one PodDisruptionBudget, which the eviction subresource "
    "does not support."
)
# Upstream's MaxDisruptedPodSize: evictions the controller has not yet confirmed.
MAX_DISRUPTED_PODS = 2000
# Upstream's EvictionsRetry: attempts at the budget's compare-and-swap.
_BUDGET_ATTEMPTS = 20
_IGNORE_BUDGET_PHASES = ("Succeeded", "Failed", "Pending")
_TERMINAL_PHASES = ("Succeeded", "Failed")
_SYSTEM = RequestContext(user=UserInfo("system:apiserver", ("system:masters",)))


def install(
    infos: Sequence[resource.ResourceInfo], budgets: BudgetStore
) -> list[resource.ResourceInfo]:
    """``infos`` with ``pods/eviction`` served by a handler that reads ``budgets()``."""
    handler = eviction_handler(budgets)
    out: list[resource.ResourceInfo] = []
    for info in infos:
        if info.group == "" and info.plural == "pods" and info.version == "v1":
            info = dataclasses.replace(
                info,
                extra_subresources=(*info.extra_subresources, "eviction"),
                subresource_create={**info.subresource_create, "eviction": handler},
            )
        out.append(info)
    return out


def eviction_handler(budgets: BudgetStore) -> resource.SubresourceCreate:
    async def create(pods: Any, namespace: str, name: str, eviction: Object, ctx: Any) -> Object:
        await _admit(pods, namespace, name, eviction, ctx)
        return await Eviction(pods, budgets(), ctx).run(namespace, name, eviction)

    return create


async def _admit(pods: Store, namespace: str, name: str, eviction: Object, ctx: Any) -> None:
    """Admission of the request as upstream's create handler runs it: a CREATE of the Eviction.

    Mutating admission, the Eviction's own checks, then validating admission;
    the pod deletion that follows is not admitted again by webhooks and
    policies (upstream deletes without admission).
    """
    if isinstance(eviction.get("metadata"), dict) and not eviction["metadata"].get("namespace"):
        eviction["metadata"]["namespace"] = namespace  # as upstream fills the request's namespace
    if eviction.get("apiVersion") in (None, "policy/v1beta1"):
        eviction["apiVersion"] = "policy/v1"  # admission sees the v1 Eviction (same fields)
    eviction.setdefault("kind", "Eviction")
    await pods.admission.admit_subresource(pods, "CREATE", name, namespace, eviction, ctx)
    _check_eviction(name, eviction)
    await pods.admission.validate_subresource(pods, "CREATE", name, namespace, eviction, ctx)


def _success() -> Object:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


def too_many_requests(cause: str, retry_after: int = 0) -> errors.StatusError:
    """Upstream's NewTooManyRequests with one ``DisruptionBudget`` cause."""
    return errors.StatusError(
        429,
        "TooManyRequests",
        VIOLATION_MESSAGE,
        causes=[errors.StatusCause(DISRUPTION_BUDGET_CAUSE, cause)],
        retry_after_seconds=retry_after,
    )


def _still_processing(budget: str) -> errors.StatusError:
    return too_many_requests(
        f"The disruption budget {budget} is still being processed by the server.", 10
    )


def _is_ready(pod: Object) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def _phase(pod: Object) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def can_ignore_budget(pod: Object) -> bool:
    """Pods whose disruption already happened (or never started) need no budget."""
    deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
    return _phase(pod) in _IGNORE_BUDGET_PHASES or deleting


def _should_enforce_resource_version(pod: Object) -> bool:
    deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
    return _phase(pod) not in _TERMINAL_PHASES and not deleting


def budget_selects(budget: Object, pod: Object) -> bool:
    """Whether ``budget`` guards ``pod``: an empty or invalid selector guards nothing."""
    if (budget.get("metadata") or {}).get("namespace") != (pod.get("metadata") or {}).get(
        "namespace"
    ):
        return False
    try:
        selector = labels.selector_from_label_selector((budget.get("spec") or {}).get("selector"))
    except labels.SelectorError:
        return False
    if selector.empty:
        return False
    return selector.matches((pod.get("metadata") or {}).get("labels") or {})


def delete_options(eviction: Object, ctx: Any) -> DeleteOptions:
    """The eviction's ``deleteOptions``; its ``dryRun`` must agree with the request's."""
    raw = eviction.get("deleteOptions") or {}
    dry_run = raw.get("dryRun") or []
    if dry_run and ctx.dry_run and dry_run != ["All"]:
        raise errors.bad_request(
            f"Non-matching dry-run options in request and content: [All] and {dry_run}"
        )
    if dry_run == ["All"]:
        ctx.dry_run = True
    preconditions = raw.get("preconditions") or {}
    grace = raw.get("gracePeriodSeconds")
    return DeleteOptions(
        grace_period_seconds=None if grace is None else max(int(grace), 0),
        propagation_policy=raw.get("propagationPolicy") or "",
        orphan_dependents=raw.get("orphanDependents"),
        preconditions_uid=preconditions.get("uid") or "",
        preconditions_resource_version=preconditions.get("resourceVersion") or "",
    )


def _check_eviction(name: str, eviction: Object) -> None:
    version = eviction.get("apiVersion")
    if eviction.get("kind") not in (None, "Eviction") or version not in (None, *EVICTION_VERSIONS):
        raise errors.bad_request(f"not a Eviction object: {version} {eviction.get('kind')}")
    if ((eviction.get("metadata") or {}).get("name") or "") != name:
        raise errors.bad_request("name in URL does not match name in Eviction object")


class Eviction:
    """One eviction request: the steps of the module docstring over the pod and budget stores."""

    def __init__(self, pods: Store, budgets: Store | None, ctx: Any) -> None:
        self.pods = pods
        self.budgets = budgets
        self.ctx = ctx

    async def run(self, namespace: str, name: str, eviction: Object) -> Object:
        _check_eviction(name, eviction)
        options = delete_options(eviction, self.ctx)
        # Step 1: pods that need no budget.
        pod = await self._delete_if_no_budget_applies(namespace, name, options)
        if pod is None:
            return _success()
        # Step 2: the budget guarding the pod.
        budgets = await self._budgets_for(pod)
        if len(budgets) > 1:
            raise errors.StatusError(500, "", MULTIPLE_BUDGETS_MESSAGE)
        if budgets:
            unready_allowed = self._unready_allowed(pod, budgets[0])
            if unready_allowed:
                # Step 3: delete only the pod we looked at (it may turn ready).
                pinned = not options.preconditions_resource_version
                if pinned:
                    rv = pod["metadata"]["resourceVersion"]
                    options = dataclasses.replace(options, preconditions_resource_version=rv)
                return await self._delete_unready(namespace, name, options, budgets[0], pinned)
            # Step 4: spend one disruption.
            await self._check_and_decrement(pod, budgets[0])
        # Step 5.
        await self._delete(namespace, name, options)
        return _success()

    async def _delete_if_no_budget_applies(
        self, namespace: str, name: str, options: DeleteOptions
    ) -> Object | None:
        """Step 1; the pod when a budget may apply, None once it was deleted.

        A live pod is deleted only at the version looked at; when it changed
        meanwhile (and the client pinned no version itself) look again, as
        upstream retries conflicts here.
        """
        for attempt in range(_BUDGET_ATTEMPTS):
            pod = await self.pods.get(namespace, name)
            if not can_ignore_budget(pod):
                return pod
            pinned = options
            if _should_enforce_resource_version(pod) and not options.preconditions_resource_version:
                rv = pod["metadata"]["resourceVersion"]
                pinned = dataclasses.replace(options, preconditions_resource_version=rv)
            try:
                await self._delete(namespace, name, pinned)
                return None
            except errors.StatusError as exc:
                retry = exc.code == 409 and not options.preconditions_resource_version
                if not retry or attempt == _BUDGET_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _budgets_for(self, pod: Object) -> list[Object]:
        if self.budgets is None:
            return []
        namespace = pod["metadata"].get("namespace", "")
        listed = await self.budgets.list(namespace, ListOptions())
        return [b for b in listed.items if budget_selects(b, pod)]

    @staticmethod
    def _unready_allowed(pod: Object, budget: Object) -> bool:
        if _is_ready(pod):
            return False
        spec, status = budget.get("spec") or {}, budget.get("status") or {}
        if spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
            return True
        desired = int(status.get("desiredHealthy") or 0)
        return int(status.get("currentHealthy") or 0) >= desired and desired > 0

    async def _delete_unready(
        self, namespace: str, name: str, options: DeleteOptions, budget: Object, pinned: bool
    ) -> Object:
        try:
            await self._delete(namespace, name, options)
        except errors.StatusError as exc:
            if exc.code == 409 and pinned:
                # The pod changed since we looked (maybe it became ready): retry later.
                raise _still_processing(budget["metadata"]["name"]) from exc
            raise
        return _success()

    async def _check_and_decrement(self, pod: Object, budget: Object) -> None:
        assert self.budgets is not None
        name = budget["metadata"]["name"]
        namespace = budget["metadata"].get("namespace", "")
        for _ in range(_BUDGET_ATTEMPTS):
            updated = _decremented(budget, pod["metadata"]["name"], dry_run=self.ctx.dry_run)
            if self.ctx.dry_run:
                return
            try:
                await self._write_budget_status(namespace, updated)
                return
            except errors.StatusError as exc:
                if exc.code != 409:
                    raise
            budget = await self.budgets.get(namespace, name)
        raise errors.timeout(f'couldn\'t update PodDisruptionBudget "{name}" due to conflicts', 10)

    async def _write_budget_status(self, namespace: str, budget: Object) -> None:
        assert self.budgets is not None
        rv = budget["metadata"]["resourceVersion"]

        async def replace(current: Object) -> Object:
            return budget

        await self.budgets.guaranteed_update(
            namespace,
            budget["metadata"]["name"],
            replace,
            _SYSTEM,
            subresource="status",
            precondition_rv=rv,
        )

    async def _delete(self, namespace: str, name: str, options: DeleteOptions) -> None:
        if not self.ctx.dry_run:
            await self._mark_disruption_target(namespace, name, options)
        await self.pods.delete(namespace, name, options, self.ctx)

    async def _mark_disruption_target(
        self, namespace: str, name: str, options: DeleteOptions
    ) -> None:
        """Add ``DisruptionTarget=True`` first, honouring the delete's preconditions."""

        async def add_condition(pod: Object) -> Object:
            meta = pod["metadata"]
            if options.preconditions_uid and options.preconditions_uid != meta.get("uid"):
                raise errors.conflict(self.pods.gr, name, _precondition("UID", options, meta))
            rv = options.preconditions_resource_version
            if rv and rv != meta.get("resourceVersion"):
                raise errors.conflict(
                    self.pods.gr, name, _precondition("ResourceVersion", options, meta)
                )
            _set_disruption_target(pod)
            return pod

        updated, _ = await self.pods.guaranteed_update(
            namespace, name, add_condition, _SYSTEM, subresource="status"
        )
        if options.preconditions_resource_version:
            # We changed the pod ourselves; the delete must expect our version.
            options.preconditions_resource_version = updated["metadata"]["resourceVersion"]


def _precondition(what: str, options: DeleteOptions, meta: Object) -> str:
    if what == "UID":
        wanted, found = options.preconditions_uid, meta.get("uid")
    else:
        wanted, found = options.preconditions_resource_version, meta.get("resourceVersion")
    return (
        f"the {what} in the precondition ({wanted}) does not match the {what} in record "
        f"({found}). The object might have been modified"
    )


def _set_disruption_target(pod: Object) -> None:
    """Upstream's conditionAppender, at the generation of the pod as stored now."""
    conditions = pod.setdefault("status", {}).setdefault("conditions", [])
    wanted = pod_conditions.observe(
        {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "EvictionByEvictionAPI",
            "message": "Eviction API: evicting",
        },
        pod,
    )
    for condition in conditions:
        if condition.get("type") == "DisruptionTarget":
            if condition.get("status") != "True":
                condition["lastTransitionTime"] = times.now_rfc3339()
            condition.update(wanted)
            return
    conditions.append({**wanted, "lastProbeTime": None, "lastTransitionTime": times.now_rfc3339()})


def _decremented(budget: Object, pod_name: str, *, dry_run: bool) -> Object:
    """``budget`` with one disruption spent on ``pod_name``, or the 429/403 refusing it."""
    meta, status = budget["metadata"], dict(budget.get("status") or {})
    name = meta["name"]
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        raise _still_processing(name)
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise errors.forbidden(
            errors.GroupResource("policy", "poddisruptionbudget"),
            name,
            "pdb disruptions allowed is negative",
        )
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
        raise errors.forbidden(
            errors.GroupResource("policy", "poddisruptionbudget"),
            name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        )
    if allowed == 0:
        raise too_many_requests(
            f"The disruption budget {name} needs {int(status.get('desiredHealthy') or 0)} "
            f"healthy pods and has {int(status.get('currentHealthy') or 0)} currently"
        )
    status["disruptionsAllowed"] = allowed - 1
    if allowed - 1 == 0:
        helpers.update_disruption_allowed_condition(status)
    if not dry_run:
        status["disruptedPods"] = {
            **(status.get("disruptedPods") or {}),
            pod_name: times.now_rfc3339(),
        }
    return {**budget, "status": status}
