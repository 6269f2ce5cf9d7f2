"""PATCH: JSON patch, JSON merge patch and strategic merge patch.

The patch is applied to the stored object inside the store's guaranteed
update, so a race with another writer re-applies it to the newer object
instead of failing, and the patched result goes through the same defaulting,
admission and validation as a PUT. A ``metadata.resourceVersion`` in the
patched result acts as a precondition (409 if it is not the stored one), as
upstream. Strategic merge patch is driven by the kind's 1.37 schema.
Server-side apply (``application/apply-patch+yaml``) is answered with 415
until it exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from kajitori.api import definitions, normalize, pruning, typecheck
from kajitori.machinery import errors, field, patching
from kajitori.server import negotiation
from kajitori.server.handlers import resources, scale
from kajitori.server.handlers.scope import RequestScope

Object = dict[str, Any]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

_SUPPORTED = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)


def _patcher(scope: RequestScope, content_type: str, patch: Any) -> Callable[[Object], Object]:
    info = scope.store.info
    if content_type == JSON_PATCH:
        return lambda doc: patching.apply_json_patch(doc, patch)
    if content_type == MERGE_PATCH:
        return lambda doc: patching.apply_merge_patch(doc, patch)
    schema = definitions.schema_for(info.group, info.version, info.kind)
    return lambda doc: patching.apply_strategic_merge_patch(doc, patch, schema)


def _content_type(scope: RequestScope) -> str:
    media = scope.request.header("content-type").split(";")[0].strip().lower()
    if media not in _SUPPORTED:
        supported = ", ".join(_SUPPORTED)
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


def _go_shape(result: Object) -> None:
    """Shape the patched object as upstream's Go types do; undecodable values are 422s.

    Upstream decodes the patched JSON into its Go struct and answers a failure
    with Invalid on ``patch`` (value: the patched object; for strategic merge
    upstream prints a Go map there instead of JSON).
    """
    try:
        normalize.go_shape(result)
    except ValueError as exc:
        patched = orjson.dumps(result).decode()
        problem = field.invalid("patch", patched, str(exc))
        raise errors.invalid(errors.GroupKind("", ""), "", [problem]) from None


def _check_types(scope: RequestScope, result: Object) -> None:
    """A patch producing a value of the wrong type fails decoding (upstream: 422 on "patch")."""
    info = scope.store.info
    schema = definitions.schema_for(info.group, info.version, info.kind)
    problem = typecheck.first_type_error(result, schema, info.kind)
    if problem:
        # Upstream shows the patched document, which its JSON libraries write with sorted keys.
        patched = orjson.dumps(result, option=orjson.OPT_SORT_KEYS).decode()
        raise errors.invalid(
            errors.GroupKind("", ""), "", [field.invalid("patch", patched, problem)]
        )


async def patch(scope: RequestScope) -> None:
    content_type = _content_type(scope)
    body = await scope.request.body()
    patch_doc = _decode_patch(content_type, body)
    apply = _patcher(scope, content_type, patch_doc)
    if scope.info.subresource == "scale":
        await _patch_scale(scope, apply)
        return

    async def mutate(current: Object) -> Object:
        rv = current["metadata"]["resourceVersion"]
        result = _apply(apply, current)
        pruning.drop_nulls(result)
        resources.check_kind(scope, result)
        _check_types(scope, result)
        _go_shape(result)
        resources.handle_unknown_fields(scope, result)
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
    patched = _apply(apply, scale.to_scale(current, spec))
    await scale.apply_scale(scope, patched)
