"""Strategy: every kind-specific decision the generic store delegates.

The generic store (``registry.generic.store``) knows no kinds. Everything a
resource does differently is one of these hooks, named after upstream's
``RESTCreateStrategy``/``RESTUpdateStrategy``/``RESTDeleteStrategy``
(k8s.io/apiserver/pkg/registry/rest). A subresource such as ``status`` is a
subclass that overrides only what differs (upstream's ``podStatusStrategy``
embedding ``podStrategy``).

The order in which the store calls the hooks lives in one place,
``registry.generic.hooks``; strategies never call each other's hooks.

Objects are plain JSON dicts in wire form (see docs/decisions/0005).
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

from kajitori.api import normalize
from kajitori.machinery import field

Object = dict[str, Any]


def zero_status(api_version: Any, kind: Any) -> Object:
    """A kind's zero status as upstream encodes it ({} for kinds without a Go type)."""
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return {}
    return orjson.loads(_zero_status_json(api_version, kind))


@functools.lru_cache(maxsize=256)
def _zero_status_json(api_version: str, kind: str) -> bytes:
    probe: Object = {"apiVersion": api_version, "kind": kind, "status": {}}
    normalize.go_shape(probe)
    return orjson.dumps(probe.get("status") or {})


class Strategy:
    """Default behaviour for a top-level resource; subclass and override.

    Hooks that may mutate say so; validation hooks never mutate.
    """

    def set_defaults(self, obj: Object) -> None:
        """Apply the version's defaulting (upstream's SetDefaults_*), in place.

        Called right after decoding a request body, before admission, for
        create, update and the result of a patch.
        """

    def set_defaults_for_update(self, obj: Object, old: Object) -> None:
        """``set_defaults`` for an update of ``old``; a strategy may skip what it discards.

        A status endpoint puts the stored spec back (``prepare_for_update``),
        so defaulting a body's spec that equals the stored one is wasted work.
        """
        self.set_defaults(obj)

    def prepare_for_create(self, obj: Object) -> None:
        """Clear what a client may not set on create (usually ``status``), in place."""

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        """Carry over what a client may not change on this endpoint, in place.

        For a main resource with a status subresource that is ``status``
        (copied from ``old``); for the status subresource it is everything but
        ``status``.
        """

    def validate(self, obj: Object) -> field.ErrorList:
        """All problems with a new object, ObjectMeta included. Must not mutate."""
        return field.ErrorList()

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        """All problems with an update (immutability included). Must not mutate."""
        return field.ErrorList()

    def warnings_on_create(self, obj: Object) -> list[str]:
        """Non-fatal advice returned as ``Warning`` headers."""
        return []

    def warnings_on_update(self, obj: Object, old: Object) -> list[str]:
        return []

    def canonicalize(self, obj: Object) -> None:
        """Normalise equivalent forms before storing, in place."""

    def allow_create_on_update(self) -> bool:
        """Whether PUT to a missing object creates it (true for a few kinds)."""
        return False

    def allow_unconditional_update(self) -> bool:
        """Whether an update without resourceVersion is accepted."""
        return True

    def bumps_generation(self, obj: Object, old: Object) -> bool:
        """Whether this update changes the desired state (``metadata.generation`` + 1).

        Upstream bumps generation when anything but metadata and status changes.
        """
        return _spec_of(obj) != _spec_of(old)

    # Upstream's RESTGracefulDeleteStrategy (pods): a delete first stores the object
    # marked with its grace period, even a period of 0 (then deletes it at once).
    graceful = False

    def graceful_deletion_seconds(self, obj: Object, requested: int | None) -> int:
        """Grace period to apply on delete; 0 deletes at once (most kinds)."""
        return 0

    def deletion_pending(self, obj: Object) -> bool:
        """Whether something besides metadata.finalizers holds a deleted object back.

        Upstream's namespaces wait for ``spec.finalizers`` to empty (the
        namespace controller removes "kubernetes" once the content is gone).
        """
        return False

    def prepare_for_delete(self, obj: Object) -> None:
        """Mark an object whose deletion has begun but cannot finish yet, in place."""

    def decode_problem(self, obj: Object) -> str | None:
        """A problem upstream finds while *decoding* the body (400, not 422), or None.

        E.g. bad base64 in a Secret's ``data``: Go's decoder fails before
        validation ever runs.
        """
        return None


_NOT_SPEC = frozenset(("metadata", "status", "apiVersion", "kind"))


def _spec_of(obj: Object) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in _NOT_SPEC}


class StatusStrategy(Strategy):
    """The ``status`` subresource of a kind: only status (and some metadata) may change.

    Wraps the main strategy so validation stays the kind's own.
    """

    def __init__(self, main: Strategy) -> None:
        self.main = main

    def set_defaults(self, obj: Object) -> None:
        self.main.set_defaults(obj)

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        for key in list(obj):
            if key not in _NOT_SPEC:
                del obj[key]
        for key, value in old.items():
            if key not in _NOT_SPEC:
                obj[key] = value
        # Upstream's status strategies reset metadata changes too, except
        # labels/annotations kept by ResetObjectMetaForStatus semantics.
        meta = obj.setdefault("metadata", {})
        old_meta = old.get("metadata", {})
        for key in ("labels", "annotations", "finalizers", "ownerReferences"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return self.main.validate_update(obj, old)

    def bumps_generation(self, obj: Object, old: Object) -> bool:
        return False

    def allow_unconditional_update(self) -> bool:
        return self.main.allow_unconditional_update()


class SpecWithStatusStrategy(Strategy):
    """Helper base for kinds with a status subresource: the main endpoint ignores status."""

    def prepare_for_create(self, obj: Object) -> None:
        # Upstream resets status to its Go zero value; encoded, that keeps the fields
        # without omitempty (a StatefulSet's "replicas": 0 and "availableReplicas": 0).
        obj["status"] = zero_status(obj.get("apiVersion"), obj.get("kind"))

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        if "status" in old:
            obj["status"] = old["status"]
        else:
            obj.pop("status", None)
