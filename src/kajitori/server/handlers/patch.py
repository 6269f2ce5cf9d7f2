"""PATCH: JSON patch, JSON merge patch and strategic merge patch.

The patch is applied to the stored object inside the store's guaranteed
update, so a race with another writer re-applies it to the newer object
instead of failing, and the patched result goes through the same defaulting,
admission and validation as a PUT. A ``metadata.resourceVersion`` in the
patched result acts as a precondition (409 if it is not the stored one), as
upstream. Strategic merge patch is driven by the kind's 1.37 schema.
Server-side apply (``application/apply-patch+yaml``, ``fieldManager``
required, ``force`` optional) merges the configuration into the live object
by the schema's structural markers and keeps ``metadata.managedFields``
(``machinery.fieldmanager``); a conflict with another manager is a 409
naming each field; an absent object is created.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from kajitori.api import definitions, normalize, pruning, typecheck
from kajitori.machinery import errors, field, patching, shapes
from kajitori.machinery.fieldmanager import fieldpath, managers, typed
from kajitori.machinery.patching import common
from kajitori.registry.generic import hooks
from kajitori.server import negotiation, request_info
from kajitori.server.handlers import resources, scale
from kajitori.server.handlers.scope import RequestScope

Object = dict[str, Any]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

_SUPPORTED: tuple[str, ...] = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)


def _patcher(
    scope: RequestScope, content_type: str, patch: Any, body: bytes
) -> Callable[[Object], Object]:
    """The patch as a function of the (private, given up) object it applies to.

    ``body`` is ``patch`` as received: the strategic merge uses up ``patch``
    on its first attempt and a fresh decode of ``body`` on each later one
    (cheaper than copying the decoded patch).
    """
    info = scope.store.info
    if content_type == JSON_PATCH:
        return lambda doc: patching.apply_json_patch(doc, patch)
    if content_type == MERGE_PATCH:
        return lambda doc: patching.apply_merge_patch(doc, patch)
    schema = definitions.schema_for(*info.storage_gvk)
    unused = [patch]

    def apply(doc: Object) -> Object:
        fresh = unused.pop() if unused else _decode_patch(content_type, body)
        # Every caller hands over a copy of its own (a decode, a Scale it built):
        # merged in place, the members the patch does not name stay those objects.
        return patching.apply_strategic_merge_patch(
            doc, fresh, schema, copy_doc=False, copy_patch=False
        )

    return apply


def _content_type(scope: RequestScope) -> str:
    media = scope.request.header("content-type").split(";")[0].strip().lower()
    accepted = _SUPPORTED
    if hasattr(scope.store.info.strategy, "prune_unknown"):
        # Custom resources have no patch strategies: upstream refuses strategic merge.
        accepted = tuple(m for m in _SUPPORTED if m != STRATEGIC_MERGE_PATCH)
    if media not in accepted:
        supported = ", ".join(accepted)
        raise errors.StatusError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: {supported}",
        )
    return media


def _decode_patch(content_type: str, body: bytes) -> Any:
    patch = negotiation.decode_body(body, "application/json")
    if content_type == JSON_PATCH and not isinstance(patch, list):
        raise errors.bad_request(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        )
    if content_type != JSON_PATCH and not isinstance(patch, dict):
        raise errors.bad_request(
            "json: cannot unmarshal array into Go value of type map[string]interface {}"
        )
    return patch


def _apply(apply: Callable[[Object], Object], doc: Object) -> Object:
    try:
        result = apply(doc)
    except patching.PatchError as exc:
        raise exc.to_status_error() from None
    if not isinstance(result, dict):
        raise errors.bad_request("the patch produced something that is not an object")
    return result


def _whole(result: Object, kept: Object | None) -> Object:
    """``result`` with the parts left unwalked put back in their places (for messages)."""
    if not kept:
        return result
    whole = dict(result)
    whole.update(kept)
    return whole


def _go_shape(result: Object, kept: Object | None = None) -> None:
    """Shape the patched object as upstream's Go types do; undecodable values are 422s.

    Upstream decodes the patched JSON into its Go struct and answers a failure
    with Invalid on ``patch`` (value: the patched object; for strategic merge
    upstream prints a Go map there instead of JSON). ``kept``: parts of the
    result not walked (``_parts_left_as_stored``), shown in the message.
    """
    try:
        normalize.go_shape(result)
    except ValueError as exc:
        patched = orjson.dumps(_whole(result, kept)).decode()
        problem = field.invalid("patch", patched, str(exc))
        raise errors.invalid(errors.GroupKind("", ""), "", [problem]) from None


# (schema, shape) pairs whose objects have no type error: the check reads only shape.
_TYPES_OK = shapes.ShapeMemo()


def _check_types(
    scope: RequestScope, result: Object, shape: Any = None, kept: Object | None = None
) -> None:
    """A patch producing a value of the wrong type fails decoding (upstream: 422 on "patch").

    ``shape``: ``result``'s ``shapes.body_signature``, if known; a shape that
    passed before passes again (the check's answer depends on shape alone).
    ``kept``: as for ``_go_shape``.
    """
    info = scope.store.info
    schema = definitions.schema_for(*info.storage_gvk)
    if _TYPES_OK.get(schema, shape):
        return
    problem = typecheck.first_type_error(result, schema, info.kind)
    if not problem:
        _TYPES_OK.put(schema, shape, True)
    if problem:
        # Upstream shows the patched document, which its JSON libraries write with sorted keys.
        patched = orjson.dumps(_whole(result, kept), option=orjson.OPT_SORT_KEYS).decode()
        raise errors.invalid(
            errors.GroupKind("", ""), "", [field.invalid("patch", patched, problem)]
        )


# The parts of a stored object a patch may leave unwalked when it leaves them as they are.
_STORED_PARTS = ("metadata", "spec")


def _parts_left_as_stored(
    scope: RequestScope, content_type: str, patch: Any, current: Object
) -> tuple[str, ...]:
    """``current``'s ``metadata`` and ``spec`` that applying ``patch`` leaves as they are.

    The result's null dropping, Go type check, Go shaping and pruning need not
    walk them: they are the stored ones, and the store only writes a spec or
    metadata that came out of these checks, or out of server code writing
    Go-shaped, declared values (decisions 0059 and 0061, whose PUT path
    skips them on the same ground). Each check works field by field, so the
    other parts are checked as before, with the same first problem. A
    kubelet's status patch names ``metadata`` only to state its uid and
    resourceVersion, as stored. A merge or strategic merge patch leaves a
    top-level member it does not name untouched (``$``-directives at the top
    may drop or reorder anything: then nothing is skipped); JSON patches,
    older served versions (converted copies) and custom resources (whose
    schema may have changed since the object was stored) are always walked.
    """
    if content_type not in (STRATEGIC_MERGE_PATCH, MERGE_PATCH) or type(patch) is not dict:
        return ()
    info = scope.store.info
    if info.conversion is not None or hasattr(info.strategy, "prune_unknown"):
        return ()
    if any(key.startswith("$") for key in patch):
        return ()
    return tuple(
        key
        for key in _STORED_PARTS
        if type(current.get(key)) is dict
        and current[key]
        and (key not in patch or _sets_equal_scalars(patch[key], current[key]))
    )


def _stored_parts_probe(patch: Any) -> Any:
    """What ``_parts_left_as_stored`` reads of ``patch``, in a copy of its own.

    Its top-level keys, and shallow copies of the ``metadata`` and ``spec``
    maps it names (only their scalar members matter there): the strategic
    merge consumes the patch it is given, and a retry must decide as the
    first attempt did.
    """
    if type(patch) is not dict:
        return patch
    return {
        key: dict(value) if key in _STORED_PARTS and type(value) is dict else None
        for key, value in patch.items()
    }


def _sets_equal_scalars(patch: Any, current: Object) -> bool:
    """Whether ``patch`` only sets members of ``current`` to the scalars they hold.

    Merging such a map (either patch type) changes nothing: each member is
    replaced by an equal value of the same type (Go's ``==``: ``1`` is not
    ``1.0``). Anything else (a null, a list, a nested map, a directive, a
    member ``current`` lacks) counts as a change.
    """
    if type(patch) is not dict:
        return False
    for key, value in patch.items():
        if key not in current or value is None or isinstance(value, dict | list):
            return False
        if not common.same_value(value, current[key]):
            return False
    return True


def _check_patch_options(scope: RequestScope, content_type: str) -> None:
    """Upstream's ValidatePatchOptions: apply needs a manager; only apply may force."""
    problems: list[field.FieldError] = []
    if content_type == APPLY_PATCH:
        if not scope.query.get("fieldManager"):
            problems.append(field.required("fieldManager", "is required for apply patch"))
    elif "force" in scope.query:
        problems.append(field.forbidden("force", "may not be specified for non-apply patch"))
    if problems:
        raise resources.invalid_options("PatchOptions", problems)
    resources.set_field_manager(scope, "PatchOptions")


async def patch(scope: RequestScope) -> None:
    content_type = _content_type(scope)
    _check_patch_options(scope, content_type)
    body = await scope.request.body()
    if content_type == APPLY_PATCH:
        await server_side_apply(scope, body)
        return
    patch_doc = _decode_patch(content_type, body)
    # Taken before the first attempt's strategic merge uses ``patch_doc`` up.
    probe = _stored_parts_probe(patch_doc)
    apply = _patcher(scope, content_type, patch_doc, body)
    if scope.info.subresource == "scale":
        await _patch_scale(scope, apply)
        return

    async def mutate(current: Object) -> Object:
        rv = current["metadata"]["resourceVersion"]
        stored = _parts_left_as_stored(scope, content_type, probe, current)
        # An older served version patches the object as it reads it, then converts back.
        result = _apply(apply, scope.external(current))
        kept = {key: result[key] for key in stored if result.get(key) is current[key]}
        for key in kept:
            result[key] = {}  # in its place: the key keeps its position
        pruning.drop_nulls(result)
        resources.check_kind(scope, result)
        result = scope.internal(result)
        # One shape serves both checks, as in resources.decode_object: Go shaping
        # only adds, drops and rewrites declared fields.
        shape = shapes.body_signature(result)
        _check_types(scope, result, shape, kept)
        _go_shape(result, kept)
        resources.handle_unknown_fields(scope, result, shape)
        result.update(kept)
        meta = result.setdefault("metadata", {})
        if meta.get("resourceVersion", rv) != rv:
            raise errors.conflict(scope.store.gr, scope.info.name)
        meta["resourceVersion"] = rv
        return result

    obj, _ = await scope.store.guaranteed_update(
        scope.namespace, scope.info.name, mutate, scope.ctx, subresource=scope.info.subresource
    )
    await scope.respond_object(200, obj)


async def _patch_scale(scope: RequestScope, apply: Callable[[Object], Object]) -> None:
    spec = scope.store.info.scale
    if spec is None:
        raise errors.not_found(scope.store.gr, scope.info.name)
    current = await scope.store.get(scope.namespace, scope.info.name)
    base = spec.scale_of(current)
    patched = _apply(apply, base)
    meta = patched.get("metadata") or {}
    if meta.get("resourceVersion") == base["metadata"].get("resourceVersion"):
        # The patch itself asked for no particular version: a controller's
        # status write in between must not turn it into a conflict.
        meta.pop("resourceVersion", None)
    await scale.apply_scale(scope, patched)


# ----- server-side apply ---------------------------------------------------------


def _apply_config(scope: RequestScope, body: bytes) -> Object:
    """The applied configuration, decoded, checked and in the stored version."""
    config = negotiation.decode_body(body, "application/yaml")
    if not isinstance(config, dict):
        raise errors.bad_request("the apply configuration must be an object")
    meta = config.get("metadata")
    if isinstance(meta, dict) and meta.get("managedFields") is not None:
        raise errors.bad_request(
            f"metadata.managedFields must be nil but was {orjson.dumps(meta['managedFields']).decode()}"
        )
    name = meta.get("name") if isinstance(meta, dict) else None
    if name and name != scope.info.name:
        raise errors.bad_request(
            f"the name of the object ({name}) does not match the name on the URL ({scope.info.name})"
        )
    pruning.drop_nulls(config)
    resources.check_kind(scope, config)
    conversion = scope.store.info.conversion
    if conversion is not None and conversion.to_storage_undefaulted is not None:
        # The old version's defaults go on the merged result (_default_as_served).
        config = conversion.to_storage_undefaulted(config)
    else:
        config = scope.internal(config)
    _check_types(scope, config)
    # Not shaped as Go would render it: the applier owns only what it wrote.
    resources.handle_unknown_fields(scope, config)
    return _within_scope(config, scope.info.subresource, scope.store.info.status is not None)


def _within_scope(config: Object, subresource: str, has_status: bool) -> Object:
    """Fields this endpoint resets are not applied (upstream's reset fields)."""
    if subresource == "status":
        keep = ("apiVersion", "kind", "metadata", "status")
        return {k: v for k, v in config.items() if k in keep}
    if not subresource and has_status:
        config.pop("status", None)
    return config


def _default_as_served(scope: RequestScope, merged: Object) -> Object:
    """An older served version's defaults on an applied result, as upstream's field
    manager defaults it in the request's version after the merge (not owned by anyone)."""
    conversion = scope.store.info.conversion
    if conversion is None or conversion.to_storage_undefaulted is None:
        return merged
    return conversion.to_storage(conversion.from_storage(merged))


def _conflict_error(exc: managers.ApplyConflict) -> errors.StatusError:
    """409 with one FieldManagerConflict cause per field, as upstream's NewConflictError."""
    causes = [
        errors.StatusCause(
            "FieldManagerConflict", f"conflict with {entry.describe()}", fieldpath.render(path)
        )
        for entry, path in exc.conflicts
    ]
    return errors.StatusError(409, "Conflict", str(exc), causes=causes)


async def server_side_apply(scope: RequestScope, body: bytes) -> None:
    info = scope.store.info
    if scope.info.subresource == "scale":
        raise errors.bad_request("server-side apply is not supported on the scale subresource")
    config = _apply_config(scope, body)
    force = bool(request_info.query_flag(scope.query, "force"))
    schema = definitions.schema_for(*info.storage_gvk)
    ownership = hooks.ownership_scope(info, scope.info.subresource)

    def run(live: Object | None) -> Object:
        entries: list[managers.Entry] = []
        if live is not None:
            try:
                entries = managers.decode(live["metadata"].get("managedFields"))
            except managers.ManagedFieldsError:
                entries = []
        try:
            merged, owners = managers.apply(
                live,
                config,
                entries,
                manager=scope.ctx.field_manager,
                force=force,
                api_version=info.group_version,
                schema=schema,
                now=hooks.now_rfc3339(),
                subresource=scope.info.subresource,
                scope=ownership,
            )
        except managers.ApplyConflict as exc:
            raise _conflict_error(exc) from None
        except typed.TypedError as exc:
            raise errors.bad_request(str(exc)) from None
        merged = _default_as_served(scope, merged)
        _go_shape(merged)
        merged.setdefault("metadata", {})["managedFields"] = managers.encode(owners)
        return merged

    async def mutate(current: Object) -> Object:
        rv = current["metadata"]["resourceVersion"]
        wanted = config.get("metadata", {}).get("resourceVersion", rv)
        if wanted != rv:
            raise errors.conflict(scope.store.gr, scope.info.name)
        result = run(current)
        result["metadata"]["resourceVersion"] = rv
        return result

    try:
        obj, _ = await scope.store.guaranteed_update(
            scope.namespace,
            scope.info.name,
            mutate,
            scope.ctx,
            subresource=scope.info.subresource,
            applied=True,
        )
    except errors.StatusError as exc:
        if exc.code != 404 or exc.kind != info.plural or scope.info.subresource:
            raise
        created = run(None)
        created["metadata"]["name"] = scope.info.name
        obj = await scope.store.create(scope.namespace, created, scope.ctx, applied=True)
        await scope.respond_object(201, obj)
        return
    await scope.respond_object(200, obj)
