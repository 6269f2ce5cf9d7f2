"""``POST pods/{name}/binding``: assigns an unscheduled pod to a node.

Mirrors upstream's BindingREST (pkg/registry/core/pod/storage/storage.go).
A ``v1 Binding`` names the pod and its target node; the pod's
``spec.nodeName`` is set only while it is still empty, its annotations get
the binding's, and its ``PodScheduled`` condition becomes True (with the
pod's generation as ``observedGeneration``, KEP-5067), all in one
compare-and-swap of the stored pod. Like upstream, this bypasses the pod
strategy (``spec`` is otherwise immutable) by writing storage directly, and
a pod that is already assigned or being deleted is a 409 Conflict on
``pods/binding``. The answer is a ``Status`` of Success with code 201.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.core_v1 import pod_conditions
from kajitori.machinery import errors, field, times
from kajitori.storage import interface as storage

Object = dict[str, Any]

BINDING_KIND = errors.GroupKind("", "Binding")
BINDING_RESOURCE = errors.GroupResource("", "pods/binding")
_ATTEMPTS = 16


def validate_binding(binding: Object) -> field.ErrorList:
    """Upstream's ValidatePodBinding: the target must name a Node."""
    errs = field.ErrorList()
    target = binding.get("target") or {}
    if target.get("kind") not in (None, "", "Node"):
        errs.append(field.invalid("target.kind", target.get("kind"), "must be empty or 'Node'"))
    if not target.get("name"):
        errs.append(field.required("target.name", ""))
    return errs


async def create(store: Any, namespace: str, name: str, binding: Object, ctx: Any) -> Object:
    """Bind pod ``namespace/name`` to ``binding.target.name``; ``store`` serves pods.

    Admitted as upstream's handler and BindingREST admit it: mutating
    admission on the decoded Binding, then the name and static checks, then
    validating admission, then the pod's compare-and-swap.
    """
    _as_decoded(binding, namespace)
    await store.admission.admit_subresource(store, "CREATE", name, namespace, binding, ctx)
    meta = binding.get("metadata") or {}
    if meta.get("name") and meta["name"] != name:
        raise errors.bad_request("name in URL does not match name in Binding object")
    errs = validate_binding(binding)
    if errs:
        raise errors.invalid(BINDING_KIND, meta.get("name") or name, list(errs))
    await store.admission.validate_subresource(store, "CREATE", name, namespace, binding, ctx)
    if not ctx.dry_run:
        await _assign(store, namespace, name, binding)
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": 201,
    }


def _as_decoded(binding: Object, namespace: str) -> None:
    """The Binding as admission sees it: ``v1 Binding`` in the request's namespace."""
    binding.setdefault("kind", "Binding")
    binding.setdefault("apiVersion", "v1")
    meta = binding.get("metadata")
    if not isinstance(meta, dict):
        meta = binding["metadata"] = {}
    if not meta.get("namespace"):
        meta["namespace"] = namespace  # as upstream's handler fills the request's namespace


async def _assign(store: Any, namespace: str, name: str, binding: Object) -> None:
    key = store.key(namespace, name)
    # The watch cache's newest pod first (a guess checked against storage before
    # refusing, as in Store.guaranteed_update), so most bindings read no storage,
    # and, when a watcher already decoded it, decode nothing either.
    guess = True
    for _ in range(_ATTEMPTS):
        cached = store.cached_for_update(key) if guess else None
        kv, shared = cached if cached is not None else (None, None)
        guessed = kv is not None
        guess = False
        if kv is None:
            kv = await store._read_for_update(key, name)
        pod = store.decode(kv) if shared is None else _bindable_copy(shared)
        problem = _bind(pod, binding)
        if problem:
            if guessed and await store._moved_on(key, name, kv):
                continue
            raise errors.conflict(BINDING_RESOURCE, name, problem)
        try:
            await store.backend.update(
                key, store.encode(pod, key), expected_revision=kv.mod_revision
            )
        except storage.RevisionConflictError:
            continue
        except storage.StorageError as exc:
            raise store._translate(exc, name) from exc
        return
    raise errors.conflict(store.gr, name, "too many concurrent updates, please retry")


def _bindable_copy(pod: Object) -> Object:
    """``pod`` with new dicts and lists wherever ``_bind`` or ``encode`` write; the rest shared.

    ``pod`` is the watch cache's object, which its watchers share: the copy
    has its own top level, ``metadata`` (``encode`` takes the
    resourceVersion out and puts it back), ``annotations``, ``spec``,
    ``status``, its ``conditions`` list and each condition. Everything else
    (containers, volumes, ...) is only read and encoded, so it stays shared.
    """
    copy = dict(pod)
    meta = copy["metadata"] = dict(pod["metadata"])
    if "annotations" in meta and type(meta["annotations"]) is dict:
        meta["annotations"] = dict(meta["annotations"])
    if type(pod.get("spec")) is dict:
        copy["spec"] = dict(pod["spec"])
    status = pod.get("status")
    if type(status) is dict:
        status = copy["status"] = dict(status)
        conditions = status.get("conditions")
        if type(conditions) is list:
            status["conditions"] = [dict(c) if type(c) is dict else c for c in conditions]
    return copy


def _bind(pod: Object, binding: Object) -> str:
    """Assign ``pod`` in place; the reason it cannot be, or "".

    Writes only what ``_bindable_copy`` copies (keep the two in step).
    """
    meta = pod.setdefault("metadata", {})
    spec = pod.setdefault("spec", {})
    if meta.get("deletionTimestamp"):
        return f"pod {meta.get('name')} is being deleted, cannot be assigned to a host"
    if spec.get("nodeName"):
        return f'pod {meta.get("name")} is already assigned to node "{spec["nodeName"]}"'
    spec["nodeName"] = binding["target"]["name"]
    annotations = (binding.get("metadata") or {}).get("annotations") or {}
    if annotations:
        meta.setdefault("annotations", {}).update(annotations)
    _set_scheduled(pod)
    return ""


def _set_scheduled(pod: Object) -> None:
    """Upstream's UpdatePodCondition(PodScheduled=True): transition time only on change.

    The condition speaks for the generation of the pod as stored when it is
    bound (binding itself leaves the generation alone).
    """
    now = times.now_rfc3339()
    conditions = pod.setdefault("status", {}).setdefault("conditions", [])
    for condition in conditions:
        if condition.get("type") == "PodScheduled":
            if condition.get("status") != "True":
                condition["lastTransitionTime"] = now
            condition.update(status="True", lastProbeTime=None)
            condition.pop("reason", None)
            condition.pop("message", None)
            pod_conditions.observe(condition, pod)
            return
    conditions.append(
        pod_conditions.observe(
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": now,
            },
            pod,
        )
    )
