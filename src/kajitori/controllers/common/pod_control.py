"""Creating and deleting a controller's pods, with upstream's events (RealPodControl).

Mirrors upstream's PodControlInterface (pkg/controller/controller_utils.go):
every workload controller creates its pods from its template through here,
so the pod shape (labels, annotations, finalizers and spec copied from the
template; ``generateName`` from the owner's name; a controlling owner
reference) and the events (``SuccessfulCreate`` ``Created pod: x``,
``FailedCreate`` ``Error creating: ...``, ``SuccessfulDelete``
``Deleted pod: x``, ``FailedDelete`` ``Error deleting: ...``) are the same
for all of them.

``PodControl`` is the seam planners' executors are tested through;
``FakePodControl`` records the actions it was asked for.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from typing import Any, Protocol

from kajitori.client import events, rest
from kajitori.machinery import names

Object = dict[str, Any]


class PodControl(Protocol):
    async def create_pod(
        self, namespace: str, template: Object, *, owner: Object, owner_ref: Object
    ) -> Object:
        """Create one pod from ``template`` owned by ``owner``; returns it; raises ``ApiError``."""

    async def delete_pod(self, namespace: str, name: str, *, owner: Object) -> None:
        """Delete pod ``name``; raises ``ApiError`` (NotFound included: callers decide)."""


def namespace_terminating(exc: BaseException) -> bool:
    """A create refused because the namespace is going away (cause ``NamespaceTerminating``).

    Controllers treat it as no error: the namespace controller is emptying it.
    """
    if not isinstance(exc, rest.ApiError):
        return False
    causes = (exc.status.get("details") or {}).get("causes") or ()
    return any(cause.get("type") == "NamespaceTerminating" for cause in causes)


# Every pod of an owner asks for the same prefix: the name check runs once per owner name.
@functools.lru_cache(maxsize=4096)
def pod_prefix(owner_name: str) -> str:
    """``<owner>-`` for generateName, or the bare name when the dash would make it invalid."""
    prefix = f"{owner_name}-"
    return owner_name if names.name_is_dns_subdomain(prefix, True) else prefix


def pod_from_template(
    template: Object, *, owner: Object, owner_ref: Object | None, copy_spec: bool = True
) -> Object:
    """The pod upstream's GetPodFromTemplate makes (no name: the server generates it).

    ``copy_spec=False`` shares the template's ``spec`` (the metadata is still
    new): only for a pod that is serialized and dropped, never changed.
    """
    template_meta = template.get("metadata") or {}
    metadata: Object = {
        "generateName": pod_prefix(owner["metadata"]["name"]),
        "namespace": owner["metadata"].get("namespace", ""),
        "labels": dict(template_meta.get("labels") or {}),
    }
    if template_meta.get("annotations"):
        metadata["annotations"] = dict(template_meta["annotations"])
    if template_meta.get("finalizers"):
        metadata["finalizers"] = list(template_meta["finalizers"])
    if owner_ref is not None:
        metadata["ownerReferences"] = [owner_ref]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": copy.deepcopy(template.get("spec") or {})
        if copy_spec
        else template.get("spec") or {},
    }


class RealPodControl:
    """Pods through the API as the controller's own identity, recording events on the owner."""

    def __init__(self, client: rest.Client, recorder: events.EventRecorder) -> None:
        self.client = client
        self.recorder = recorder

    async def create_pod(
        self, namespace: str, template: Object, *, owner: Object, owner_ref: Object
    ) -> Object:
        # The pod is only serialized into the request (before the first await), so
        # the template's spec is shared, not deep-copied for every pod.
        pod = pod_from_template(template, owner=owner, owner_ref=owner_ref, copy_spec=False)
        if not pod["metadata"]["labels"]:
            raise ValueError("unable to create pods, no labels")
        try:
            created = await self.client.create(rest.PODS, pod, namespace=namespace)
        except rest.ApiError as exc:
            self.recorder.event(owner, "Warning", "FailedCreate", f"Error creating: {exc.message}")
            raise
        self.recorder.event(
            owner, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}"
        )
        return created

    async def delete_pod(self, namespace: str, name: str, *, owner: Object) -> None:
        try:
            await self.client.delete(rest.PODS, name, namespace=namespace)
        except rest.ApiError as exc:
            if not exc.not_found:
                self.recorder.event(
                    owner, "Warning", "FailedDelete", f"Error deleting: {exc.message}"
                )
            raise
        self.recorder.event(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")


@dataclasses.dataclass(slots=True)
class FakePodControl:
    """Records ``("create", namespace, pod)`` and ``("delete", namespace, name)`` actions."""

    actions: list[tuple[str, str, Any]] = dataclasses.field(default_factory=list)
    create_error: rest.ApiError | None = None
    _counter: int = 0

    async def create_pod(
        self, namespace: str, template: Object, *, owner: Object, owner_ref: Object
    ) -> Object:
        if self.create_error is not None:
            raise self.create_error
        pod = pod_from_template(template, owner=owner, owner_ref=owner_ref)
        self._counter += 1
        pod["metadata"]["name"] = f"{pod['metadata']['generateName']}{self._counter}"
        self.actions.append(("create", namespace, pod))
        return pod

    async def delete_pod(self, namespace: str, name: str, *, owner: Object) -> None:
        self.actions.append(("delete", namespace, name))
