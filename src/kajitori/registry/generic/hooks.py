"""The order of a write, written once (upstream: rest.BeforeCreate / BeforeUpdate).

Create:  defaults → system metadata a client may not set wiped →
managedFields → mutating admission → system metadata (namespace, name
from generateName, uid, creationTimestamp, generation) → strategy
``prepare_for_create`` → strategy ``validate`` → warnings → canonicalize →
validating admission → storage.

Update:  defaults → managedFields → mutating admission → metadata carried
over from the stored object (uid, creationTimestamp, deletion fields) →
strategy ``prepare_for_update`` → generation bump → ``validate_update`` →
warnings → canonicalize → validating admission → storage.

managedFields: the request's field manager gets an ``Update`` entry for
what it added or changed (``machinery.fieldmanager.managers.update``), as
upstream's fieldmanager wrapping the update. Both a create's entry and an
update's are worked out where upstream's handlers do it, before mutating
admission, so what admission and ``prepare_for_create`` /
``prepare_for_update`` add (a pod's token volume, its default tolerations, a
Service's cluster IPs) is no manager's, as upstream (decisions 0062, 0070);
a server-side apply computed
its ownership already and skips this step (``applied=True``). Requests
without a field manager (in-process callers below the server) are not
tracked; the server always names one.

Delete:  preconditions → validating admission → graceful deletion and
finalizers decide whether the object goes now or is marked
(``deletionTimestamp``) and stays until its finalizers are gone.

No resource reorders these steps; a resource changes behaviour only through
its strategy's hooks.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from kajitori.api import definitions
from kajitori.machinery import errors, field, shapes
from kajitori.machinery import names as namegen
from kajitori.machinery.fieldmanager import fieldpath, managers
from kajitori.machinery.times import now_rfc3339
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.strategy import Strategy
from kajitori.registry.generic.uids import new_uid
from kajitori.registry.resource import ResourceInfo, Rollback

if TYPE_CHECKING:
    from kajitori.registry.generic.store import DeleteOptions, Store

Object = dict[str, Any]

ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"


class Admission(Protocol):
    """Admission as the store sees it; ``kajitori.admission`` implements it."""

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        """Mutating admission: may change ``obj`` in place or raise a StatusError."""

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        """Validating admission: may only raise."""

    async def validate_delete(
        self, store: Store, obj: Object, ctx: RequestContext, options: DeleteOptions | None = None
    ) -> None:
        """Validating admission for DELETE (``options``: the request's DeleteOptions)."""

    async def admit_subresource(
        self,
        store: Store,
        operation: str,
        name: str,
        namespace: str,
        obj: Object,
        ctx: RequestContext,
    ) -> None:
        """Mutating admission of a CONNECT's options or a pods/eviction Eviction."""

    async def validate_subresource(
        self,
        store: Store,
        operation: str,
        name: str,
        namespace: str,
        obj: Object,
        ctx: RequestContext,
    ) -> None:
        """Validating admission of a CONNECT's options or a pods/eviction Eviction."""


class _NoAdmission:
    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        return None

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        return None

    async def validate_delete(
        self, store: Store, obj: Object, ctx: RequestContext, options: DeleteOptions | None = None
    ) -> None:
        return None

    async def admit_subresource(
        self,
        store: Store,
        operation: str,
        name: str,
        namespace: str,
        obj: Object,
        ctx: RequestContext,
    ) -> None:
        return None

    async def validate_subresource(
        self,
        store: Store,
        operation: str,
        name: str,
        namespace: str,
        obj: Object,
        ctx: RequestContext,
    ) -> None:
        return None


NO_ADMISSION: Admission = _NoAdmission()


def strategy_for(info: ResourceInfo, subresource: str) -> Strategy:
    if subresource == "status" and info.status is not None:
        return info.status
    return info.extra_strategies.get(subresource, info.strategy)


# ----- create ---------------------------------------------------------------


async def before_create(
    store: Store,
    namespace: str,
    obj: Object,
    ctx: RequestContext,
    rollbacks: list[Rollback],
    *,
    applied: bool = False,
) -> Object:
    info = store.info
    strategy = info.strategy
    meta = obj.setdefault("metadata", {})
    _check_namespace(info, namespace, meta)
    strategy.set_defaults(obj)
    _wipe_system_metadata(meta)
    if not applied:
        # Upstream's position (its create handler): the object as sent and
        # defaulted, before mutating admission and the strategy's
        # ``prepare_for_create``, whose additions no manager owns.
        track_managed_fields(info, obj, None, ctx, subresource="")
    await store.admission.admit(store, "CREATE", obj, None, ctx)
    _fill_system_metadata(info, obj)
    strategy.prepare_for_create(obj)
    if info.allocator is not None:
        rollbacks.append(
            await info.allocator.allocate(store.backend, obj, None, dry_run=ctx.dry_run)
        )
    _raise_if_invalid(info, obj, strategy.validate(obj))
    for warning in strategy.warnings_on_create(obj):
        ctx.warn(warning)
    _drop_empty_metadata(meta)
    strategy.canonicalize(obj)
    await store.admission.validate(store, "CREATE", obj, None, ctx)
    return obj


def _check_namespace(info: ResourceInfo, namespace: str, meta: Object) -> None:
    """The URL's namespace wins; a different one in the body is a 400, as upstream."""
    if not info.namespaced:
        meta.pop("namespace", None)
        return
    body_namespace = meta.get("namespace")
    if body_namespace and body_namespace != namespace:
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    meta["namespace"] = namespace


def _wipe_system_metadata(meta: Object) -> None:
    """What a client may not set on a create is gone before anything reads the object.

    Upstream's WipeObjectMetaSystemFields, at the start of its create handler;
    ``_fill_system_metadata`` sets uid and creationTimestamp again later.
    """
    for transient in (
        "uid",
        "creationTimestamp",
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ):
        meta.pop(transient, None)


def _fill_system_metadata(info: ResourceInfo, obj: Object) -> None:
    meta = obj["metadata"]
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = namegen.simple_name_generator(meta["generateName"])
    meta["uid"] = new_uid()
    meta["creationTimestamp"] = now_rfc3339()
    for transient in (  # again: mutating admission may have set one
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ):
        meta.pop(transient, None)
    if info.tracks_generation:
        meta["generation"] = 1
    else:
        meta.pop("generation", None)


def _drop_empty_metadata(meta: Object) -> None:
    """Empty maps, lists and strings in metadata are not stored.

    Every ObjectMeta field is ``omitempty`` upstream, so e.g. the ``labels: {}``
    left by removing the last label (a merge patch setting it to null) is gone
    once the object is encoded. Numbers stay: deletionGracePeriodSeconds 0 is
    a set pointer there.
    """
    # ``not v`` first: a set field is never compared with the three.
    for key in [k for k, v in meta.items() if not v and v in ({}, [], "")]:
        del meta[key]


def _raise_if_invalid(info: ResourceInfo, obj: Object, errs: field.ErrorList) -> None:
    if errs:
        name = obj.get("metadata", {}).get("name") or obj.get("metadata", {}).get(
            "generateName", ""
        )
        raise errors.invalid(info.group_kind, name, errs)


# ----- update ---------------------------------------------------------------


async def before_update(
    store: Store,
    obj: Object,
    old: Object,
    ctx: RequestContext,
    *,
    subresource: str,
    rollbacks: list[Rollback],
    applied: bool = False,
) -> Object:
    info = store.info
    strategy = strategy_for(info, subresource)
    meta = obj.setdefault("metadata", {})
    old_meta = old["metadata"]
    _check_identity(info, meta, old_meta)
    strategy.set_defaults_for_update(obj, old)
    if not applied:
        # Upstream's position (its update and patch handlers run the field
        # manager as a transformer before mutating admission): the object as
        # sent (or patched) and defaulted against the live one, so what
        # admission, the carried system metadata and ``prepare_for_update``
        # change is not the request's manager's (decision 0070).
        track_managed_fields(info, obj, old, ctx, subresource=subresource)
    await store.admission.admit(store, "UPDATE", obj, old, ctx)
    _carry_system_metadata(meta, old_meta)
    strategy.prepare_for_update(obj, old)
    if info.allocator is not None and not subresource:
        rollbacks.append(
            await info.allocator.allocate(store.backend, obj, old, dry_run=ctx.dry_run)
        )
    if info.tracks_generation:
        generation = old_meta.get("generation", 1)
        meta["generation"] = generation + 1 if strategy.bumps_generation(obj, old) else generation
    _raise_if_invalid(info, obj, strategy.validate_update(obj, old))
    for warning in strategy.warnings_on_update(obj, old):
        ctx.warn(warning)
    _drop_empty_metadata(meta)
    strategy.canonicalize(obj)
    await store.admission.validate(store, "UPDATE", obj, old, ctx)
    return obj


def ownership_scope(info: ResourceInfo, subresource: str) -> managers.Scope:
    """What a write through this endpoint may own: status only via ``/status``."""
    if subresource == "status":
        return _STATUS_ONLY
    if not subresource and info.status is not None:
        return _NOT_STATUS
    return managers.WHOLE


_STATUS_ONLY = managers.Scope(only=(("f:status",),))
_NOT_STATUS = managers.Scope(reset=(("f:status",),))


def track_managed_fields(
    info: ResourceInfo, obj: Object, old: Object | None, ctx: RequestContext, *, subresource: str
) -> None:
    """Record the request's manager in ``metadata.managedFields`` (operation Update).

    managedFields sent in the request replace the stored ones when they
    decode and are not empty (a client may edit ownership; ``[{}]`` clears
    it); otherwise the stored ones are kept, so clients unaware of them
    never drop them. Upstream: FieldManager.Update.
    """
    if not ctx.field_manager:
        return
    meta = obj["metadata"]
    entries = _requested_entries(meta.get("managedFields"), subresource)
    if entries is None:
        entries = _stored_entries(old)
    schema = definitions.schema_for(*info.storage_gvk)
    scope = ownership_scope(info, subresource)
    if old is None and not entries and _track_create(info, obj, ctx, schema, scope, subresource):
        return
    updated = managers.update_stored(
        old,
        obj,
        entries,
        manager=ctx.field_manager,
        api_version=info.group_version,
        schema=schema,
        now=now_rfc3339(),
        subresource=subresource,
        scope=scope,
    )
    if updated:
        meta["managedFields"] = updated
    else:
        meta.pop("managedFields", None)


def _track_create(
    info: ResourceInfo,
    obj: Object,
    ctx: RequestContext,
    schema: Any,
    scope: managers.Scope,
    subresource: str,
) -> bool:
    """A create's entry: it owns every field the object has (False: take the general path).

    Those are the same fields for every object of one shape, so they are
    remembered per shape (machinery.shapes); for objects with lists (no
    shape) they are remembered by the object's text, and a new text gets
    them from one walk (``managers.created_fields_v1``).
    """
    meta = obj["metadata"]
    body = {k: v for k, v in meta.items() if k != "managedFields"}
    tracked = {**obj, "metadata": body}
    shape = shapes.signature(tracked)
    text_key = None
    if shape is not None:
        shape = (shape, subresource, scope.reset, scope.only)
        encoded = _CREATE_FIELDS.get(schema, shape)
    else:
        # Objects with lists: by their text. A controller's objects from one
        # template (a ReplicaSet's pods) are the same text here, before
        # admission adds what differs (the token volume's name).
        text_key = _create_text_key(info, tracked, scope, subresource)
        held = _CREATE_TREES.get(text_key) if text_key is not None else None
        # A custom resource's schema may be replaced meanwhile: only its own counts.
        encoded = held[1] if held is not None and held[0] is schema else None
    if encoded is not None:
        fieldpath.note_canonical(encoded)  # read back unchecked at the object's next write
        fields_v1 = orjson.loads(encoded)
        _set_create_entry(meta, ctx.field_manager, info.group_version, subresource, fields_v1)
        return True
    fields_v1 = managers.created_fields_v1(obj, schema, scope)
    if fields_v1 is None:
        return False
    if shape is not None:
        _CREATE_FIELDS.put(schema, shape, orjson.dumps(fields_v1))
    elif text_key is not None:
        _CREATE_TREES.put(text_key, (schema, orjson.dumps(fields_v1)))
    _set_create_entry(meta, ctx.field_manager, info.group_version, subresource, fields_v1)
    return True


def _create_text_key(
    info: ResourceInfo, tracked: Object, scope: managers.Scope, subresource: str
) -> bytes | None:
    """``_CREATE_TREES``' key: the kind, scope and JSON text of ``tracked``, or None.

    The metadata fields no manager owns are left out when they hold a scalar
    (a value below them would be owned), so objects differing only in their
    names share an entry.
    """
    meta = tracked["metadata"]
    unowned = [
        k for k in managers.UNOWNED_METADATA if k in meta and not isinstance(meta[k], dict | list)
    ]
    if unowned:
        tracked = {**tracked, "metadata": {k: v for k, v in meta.items() if k not in unowned}}
    text = shapes.JsonMemo.key(tracked)
    if text is None:
        return None
    head = repr((info.storage_gvk, subresource, scope.reset, scope.only)).encode()
    return head + b"\0" + text


# The fieldsV1 (encoded) a create's manager gets, per schema and object shape.
_CREATE_FIELDS = shapes.ShapeMemo()
# The same for objects without a shape (they hold lists): (schema, encoded) by
# ``_create_text_key`` (a 16-byte digest of it).
_CREATE_TREES = shapes.JsonMemo(2048, digest=True)


def _set_create_entry(
    meta: Object, manager: str, api_version: str, subresource: str, fields_v1: Object
) -> None:
    """managedFields of one ``Update`` entry, as ``managers.encode`` writes it; none if empty."""
    if not fields_v1:
        meta.pop("managedFields", None)
        return
    entry: Object = {"manager": manager, "operation": managers.UPDATE}
    if api_version:
        entry["apiVersion"] = api_version
    entry["time"] = now_rfc3339()
    entry["fieldsType"] = "FieldsV1"
    entry["fieldsV1"] = fields_v1
    if subresource:
        entry["subresource"] = subresource
    meta["managedFields"] = [entry]


def _requested_entries(raw: Any, subresource: str) -> list[managers.Stored] | None:
    if subresource or not raw:
        return None
    try:
        return managers.read(raw)
    except managers.ManagedFieldsError:
        return None


def _stored_entries(old: Object | None) -> list[managers.Stored]:
    if old is None:
        return []
    try:
        return managers.read(old["metadata"].get("managedFields"))
    except managers.ManagedFieldsError:
        return []


def _check_identity(info: ResourceInfo, meta: Object, old_meta: Object) -> None:
    name = old_meta["name"]
    if meta.get("name") and meta["name"] != name:
        raise errors.bad_request(
            f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
        )
    if info.namespaced:
        body_ns = meta.get("namespace")
        if body_ns and body_ns != old_meta.get("namespace"):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
    uid = meta.get("uid")
    if uid and uid != old_meta.get("uid"):
        raise errors.conflict(
            info.group_resource,
            name,
            f"Precondition failed: UID in precondition: {uid}, UID in object meta: {old_meta.get('uid')}",
        )


def _carry_system_metadata(meta: Object, old_meta: Object) -> None:
    """Fields only the server sets survive any update, as upstream's BeforeUpdate."""
    meta["name"] = old_meta["name"]
    if "namespace" in old_meta:
        meta["namespace"] = old_meta["namespace"]
    for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
        if key in old_meta:
            meta[key] = old_meta[key]
        else:
            meta.pop(key, None)
    meta["resourceVersion"] = old_meta["resourceVersion"]
    meta.pop("selfLink", None)
    if "generation" in old_meta:
        meta["generation"] = old_meta["generation"]


def unchanged(obj: Object, current: Object) -> bool:
    """A no-op update: upstream skips the write and keeps the resourceVersion."""
    return obj == current


def should_delete_after_update(info: ResourceInfo, obj: Object) -> bool:
    """An object being deleted whose last finalizer was just removed goes now.

    The kind's strategy may still hold it back (a namespace waits for its
    ``spec.finalizers`` to empty as well).
    """
    meta = obj["metadata"]
    return (
        bool(meta.get("deletionTimestamp"))
        and not meta.get("finalizers")
        and (meta.get("deletionGracePeriodSeconds", 0) == 0)
        and not info.strategy.deletion_pending(obj)
    )


def invalid_missing_resource_version(info: ResourceInfo, name: str) -> errors.StatusError:
    return errors.invalid(
        info.group_kind,
        name,
        [field.invalid("metadata.resourceVersion", 0, "must be specified for an update")],
    )


# ----- delete ---------------------------------------------------------------


@dataclass(slots=True)
class DeletePlan:
    """None: delete the key now; an object: store it (marked for deletion) instead, and
    with ``then_delete`` delete it right after, as upstream's store does when a graceful
    deletion's period is 0: watchers see the pod marked, then gone."""

    updated: Object | None
    then_delete: bool = False


def check_delete_preconditions(info: ResourceInfo, obj: Object, opts: DeleteOptions) -> None:
    meta = obj["metadata"]
    name = meta["name"]
    if opts.preconditions_uid and opts.preconditions_uid != meta.get("uid"):
        raise errors.conflict(
            info.group_resource,
            name,
            f"Precondition failed: UID in precondition: {opts.preconditions_uid}, "
            f"UID in object meta: {meta.get('uid')}",
        )
    rv = opts.preconditions_resource_version
    if rv and rv != meta.get("resourceVersion"):
        raise errors.conflict(
            info.group_resource,
            name,
            f"Precondition failed: ResourceVersion in precondition: {rv}, "
            f"ResourceVersion in object meta: {meta.get('resourceVersion')}",
        )


def plan_delete(info: ResourceInfo, current: Object, opts: DeleteOptions) -> DeletePlan:
    """Decide between deleting now and marking for deletion (upstream's Store.Delete)."""
    import copy

    obj = copy.deepcopy(current)
    meta = obj["metadata"]
    finalizers = _finalizers_for_policy(meta, opts)
    strategy = info.strategy
    grace = strategy.graceful_deletion_seconds(obj, opts.grace_period_seconds)
    held = strategy.deletion_pending(obj)
    if meta.get("deletionTimestamp"):
        return _plan_pending(
            meta, obj, finalizers, grace, opts, held=held, graceful=strategy.graceful
        )
    if not finalizers and grace == 0 and not held and not strategy.graceful:
        return DeletePlan(None)
    if finalizers:
        meta["finalizers"] = finalizers
    meta["deletionTimestamp"] = _deletion_time(grace)
    meta["deletionGracePeriodSeconds"] = grace
    strategy.prepare_for_delete(obj)
    if info.tracks_generation:
        meta["generation"] = meta.get("generation", 1) + 1
    return DeletePlan(obj, then_delete=not finalizers and grace == 0 and not held)


def _plan_pending(
    meta: Object,
    obj: Object,
    finalizers: list[str],
    grace: int,
    opts: DeleteOptions,
    *,
    held: bool,
    graceful: bool,
) -> DeletePlan:
    """A second delete of an object already being deleted may shorten its grace.

    Shortened to 0 on a graceful kind, the shorter grace is stored before the object
    goes (upstream's BeforeDelete, then its immediate delete); already at 0, it goes
    at once, as upstream recovers from a delete that failed after that update.
    """
    current_grace = meta.get("deletionGracePeriodSeconds", 0)
    if finalizers != meta.get("finalizers", []):
        meta["finalizers"] = finalizers
    shortened = opts.grace_period_seconds is not None and grace < current_grace
    if shortened:
        meta["deletionGracePeriodSeconds"] = grace
        meta["deletionTimestamp"] = _deletion_time(grace)
    if not meta.get("finalizers") and meta.get("deletionGracePeriodSeconds", 0) == 0 and not held:
        return DeletePlan(obj, then_delete=True) if graceful and shortened else DeletePlan(None)
    return DeletePlan(obj)


def _finalizers_for_policy(meta: Object, opts: DeleteOptions) -> list[str]:
    """Existing finalizers plus the one the propagation policy asks the GC for."""
    finalizers = list(meta.get("finalizers") or [])
    policy = opts.propagation_policy
    if not policy and opts.orphan_dependents is not None:
        policy = "Orphan" if opts.orphan_dependents else "Background"
    if policy == "Orphan" and ORPHAN_FINALIZER not in finalizers:
        finalizers = [f for f in finalizers if f != FOREGROUND_FINALIZER] + [ORPHAN_FINALIZER]
    elif policy == "Foreground" and FOREGROUND_FINALIZER not in finalizers:
        finalizers = [f for f in finalizers if f != ORPHAN_FINALIZER] + [FOREGROUND_FINALIZER]
    elif policy == "Background":
        finalizers = [f for f in finalizers if f not in (ORPHAN_FINALIZER, FOREGROUND_FINALIZER)]
    return finalizers


def _deletion_time(grace: int) -> str:
    when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=grace)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
