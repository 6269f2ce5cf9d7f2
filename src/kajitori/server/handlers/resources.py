"""Verb handlers for resource requests: get, list, create, update, delete, deletecollection.

Each handler reads what it needs from a ``RequestScope``, calls the generic
store, and answers with upstream's status codes: 200 for reads, updates and
deletes, 201 for creates (also in dry-run), a ``Status`` of ``Success`` for
deletes of kinds that do not return the deleted object. Patch and watch
have modules of their own; decoding a request body into an object of the
right kind lives here (``decode_object``) because create, update and the
scale subresource share it.
"""

from __future__ import annotations

import datetime
from typing import Any, cast

import orjson

from kajitori.api import definitions, normalize, pruning, typecheck
from kajitori.machinery import errors, field, fields, labels, objectmeta, shapes
from kajitori.registry.generic.store import DeleteOptions, ListOptions
from kajitori.server import asgi, negotiation, request_info
from kajitori.server.handlers import scale, transform
from kajitori.server.handlers.scope import RequestScope
from kajitori.storage import interface as storage

Object = dict[str, Any]
# A value the store holds at a name, and its decoded object (both read only).
Cached = tuple[storage.KeyValue, Object]

# Shapes of bodies (per schema) that passed the Go type check, and that held no
# unknown fields: a body of a shape seen before skips that walk. Both checks
# read list items through one item schema, so lists are part of the shape
# (``shapes.body_signature``): pods and workloads of one shape skip them too.
_TYPES_OK = shapes.ShapeMemo()
_NOTHING_UNKNOWN = shapes.ShapeMemo()
_UNSET: Any = object()


# ----- reads ------------------------------------------------------------------


async def get(scope: RequestScope) -> None:
    info, store = scope.info, scope.store
    subresource = info.subresource
    if subresource:
        if subresource in store.info.subresource_create:
            raise errors.method_not_allowed()
        if subresource == "scale":
            await scale.get(scope)
            return
    reads = store.info.virtual_reads
    if reads is not None:
        # Computed per request, never stored (componentstatuses).
        await scope.respond_object(200, await reads.get(scope.namespace, info.name))
        return
    media = scope.media
    if media.type == negotiation.JSON and not media.params and store.info.conversion is None:
        # The object as stored, in JSON: its encoded bytes are reused while it is unchanged.
        namespace = info.namespace if store.info.namespaced else ""
        data = await store.get_json(namespace, info.name)
        headers = scope.headers() if scope.ctx.warnings else None
        await asgi.send_response(scope.send, 200, data, negotiation.JSON, headers=headers)
        return
    obj = await store.get(scope.namespace, info.name)
    await scope.respond_object(200, obj)


async def list_(scope: RequestScope) -> None:
    opts = list_options(scope)
    store, media = scope.store, scope.media
    reads = store.info.virtual_reads
    if reads is not None:
        # Computed per request, never stored: no resourceVersion (componentstatuses).
        items = [obj for obj in await reads.list(scope.namespace) if store.matches(obj, opts)]
        await scope.respond(200, render_list(scope, items, {}))
        return
    # Plain JSON of every stored object as it is: the items' JSON bytes (shared
    # with gets while unchanged) joined, none of them decoded or encoded again.
    as_json = (
        media.type == negotiation.JSON
        and not media.params
        and store.info.conversion is None
        and opts.label_selector is None
        and opts.field_selector is None
    )
    result = await store.list(scope.namespace, opts, as_json=as_json)
    list_meta: Object = {"resourceVersion": result.resource_version}
    if result.continue_token:
        list_meta["continue"] = result.continue_token
    if result.remaining_item_count is not None:
        list_meta["remainingItemCount"] = result.remaining_item_count
    if as_json:
        data = json_list(scope, cast("list[bytes]", result.items), list_meta)
        headers = scope.headers() if scope.ctx.warnings else None
        await asgi.send_response(scope.send, 200, data, negotiation.JSON, headers=headers)
        return
    await scope.respond(200, render_list(scope, result.items, list_meta))


def json_list(scope: RequestScope, items: list[bytes], list_meta: Object) -> bytes:
    """``orjson.dumps(render_list(...))``'s bytes, from items already in JSON.

    orjson writes a dict compactly in key order, so the list's head without
    its closing brace, then ``"items":[`` and the items joined by commas, is
    the same text byte for byte.
    """
    info = scope.store.info
    head = orjson.dumps(
        {"kind": info.list_kind, "apiVersion": info.group_version, "metadata": list_meta}
    )
    return b"".join((head[:-1], b',"items":[', b",".join(items), b"]}"))


def render_list(scope: RequestScope, items: list[Object], list_meta: Object) -> Object:
    info = scope.store.info
    kind = scope.media.transform
    if kind == "Table":
        return transform.table(
            info,
            items,
            scope.media,
            scope.query,
            now=datetime.datetime.now(datetime.UTC),
            list_meta=list_meta,
        )
    if kind in ("PartialObjectMetadataList", "PartialObjectMetadata"):
        return transform.partial_object_metadata_list(items, list_meta, scope.media)
    items = [scope.external(item) for item in items]
    for item in items:
        # Items of a list carry kind/apiVersion in storage; upstream omits
        # nothing here, so leave them as stored.
        item.setdefault("kind", info.kind)
        item.setdefault("apiVersion", info.group_version)
    return {
        "kind": info.list_kind,
        "apiVersion": info.group_version,
        "metadata": list_meta,
        "items": items,
    }


def list_options(scope: RequestScope) -> ListOptions:
    q = scope.query
    opts = ListOptions(
        continue_token=q.get("continue", ""),
        resource_version=q.get("resourceVersion", ""),
        resource_version_match=q.get("resourceVersionMatch", ""),
    )
    opts.limit = _non_negative_int(q.get("limit", ""), "limit")
    opts.send_initial_events = request_info.query_flag(q, "sendInitialEvents")
    watch = scope.info.verb == "watch"
    if watch:
        _watch_list_defaults(opts)
    _validate_list_options(opts, watch)
    if q.get("labelSelector"):
        try:
            opts.label_selector = labels.parse_selector(q["labelSelector"])
        except labels.SelectorError as exc:
            raise errors.bad_request(str(exc)) from None
    if q.get("fieldSelector"):
        opts.field_selector, opts.field_names = _field_selector(scope, q["fieldSelector"])
    return opts


def _field_selector(scope: RequestScope, text: str) -> tuple[Any, tuple[str, ...]]:
    info = scope.store.info
    try:
        selector = fields.parse_field_selector(text)
        fields.check_supported(
            selector, info.all_selectable_fields, registered=bool(info.selectable_fields)
        )
    except fields.SelectorError as exc:
        raise errors.bad_request(exc.message) from None
    return selector, tuple(r.field for r in selector.requirements)


def _non_negative_int(text: str, name: str) -> int:
    if not text:
        return 0
    try:
        value = int(text)
    except ValueError:
        raise errors.bad_request(f"{name}: Invalid value: {text!r}: must be an integer") from None
    return max(value, 0)


def _watch_list_defaults(opts: ListOptions) -> None:
    """Upstream's SetListOptionsDefaults with WatchList on (its default since 1.34): a watch
    from "now" or "any" (resourceVersion unset or 0) that names neither option streams the
    initial state as a watch-list does, ending with the initial-events-end bookmark if asked."""
    if opts.send_initial_events is None and not opts.resource_version_match:
        if opts.resource_version in ("", "0"):
            opts.send_initial_events = True
            opts.resource_version_match = "NotOlderThan"


def _validate_list_options(opts: ListOptions, watch: bool) -> None:
    """Upstream's ValidateListOptions: every broken rule in one 422 for meta.k8s.io ListOptions."""
    initial_events = opts.send_initial_events
    problems = (
        _watch_option_errors(opts, initial_events)
        if watch
        else _list_option_errors(opts, initial_events)
    )
    if problems:
        raise errors.invalid(errors.GroupKind("meta.k8s.io", "ListOptions"), "", problems)


def _list_option_errors(opts: ListOptions, initial_events: bool | None) -> list[Any]:
    problems = []
    match = opts.resource_version_match
    if match:
        if not opts.resource_version:
            problems.append(
                field.forbidden(
                    _MATCH, "resourceVersionMatch is forbidden unless resourceVersion is provided"
                )
            )
        if opts.continue_token:
            problems.append(_match_with_continue())
        if match not in ("Exact", "NotOlderThan"):
            problems.append(field.not_supported(_MATCH, match, ("Exact", "NotOlderThan", "")))
        if match == "Exact" and opts.resource_version == "0":
            problems.append(
                field.forbidden(
                    _MATCH, 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'
                )
            )
    if initial_events is not None:
        problems.append(
            field.forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list")
        )
    return problems


def _watch_option_errors(opts: ListOptions, initial_events: bool | None) -> list[Any]:
    problems = []
    match = opts.resource_version_match
    if initial_events is not None and match != "NotOlderThan":
        problems.append(
            field.forbidden(
                _MATCH, "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
            )
        )
    if match:
        if initial_events is None:
            problems.append(
                field.forbidden(
                    _MATCH,
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                )
            )
        if match != "NotOlderThan":
            problems.append(field.not_supported(_MATCH, match, ("NotOlderThan",)))
        if opts.continue_token:
            problems.append(_match_with_continue())
    return problems


_MATCH = "resourceVersionMatch"


def _match_with_continue() -> Any:
    return field.forbidden(_MATCH, "resourceVersionMatch is forbidden when continue is provided")


# ----- writes -----------------------------------------------------------------


async def decode_object(scope: RequestScope, stored: Cached | None = None) -> Object:
    """The request body as an object of this endpoint's kind, unknown fields handled.

    ``stored``: a value the store holds (or held) at this name and its decoded
    object, read only. The body's ``metadata`` and ``spec``, when they have
    the JSON text of ``stored``'s, are not walked (see ``_stored_parts``).
    """
    body = await scope.request.body()
    try:
        obj = negotiation.decode_body(body, scope.request.header("content-type"))
        _require_object(obj)
        obj = obj or {}  # JSON null decodes to an empty object, as in Go
    except errors.StatusError as exc:
        if exc.code != 400:
            raise
        # Upstream's transformDecodeError: a body whose kind could not be read.
        raise errors.bad_request(
            f"the object provided is unrecognized (must be of type {scope.store.info.kind}): "
            f"{exc.message} ({summarize_data(body)})"
        ) from None
    check_kind(scope, obj)
    # An older served version (apps/v1beta1, ...) is defaulted in its own
    # version and converted; the stored version's schema checks the rest.
    obj = scope.internal(obj)
    kept = _stored_parts(obj, stored)
    for key in kept:
        obj[key] = {}  # in its place: the key keeps its position
    # One shape serves both checks: the Go shaping in check_decodable only adds,
    # drops (when null or empty) and rewrites declared fields, so a body has the
    # unknown fields after it that its shape had before.
    shape = shapes.body_signature(obj)
    check_decodable(scope, obj, shape)
    handle_unknown_fields(scope, obj, shape)
    obj.update(kept)
    return obj


def _stored_parts(obj: Object, stored: Cached | None) -> dict[str, Object]:
    """``obj``'s ``metadata`` and ``spec``, those whose JSON text is that of ``stored``'s.

    Such a part needs neither the Go type check, nor Go shaping, nor pruning
    (nor the kind's ``decode_problem``, which reads other fields): the store
    only ever writes a spec or metadata that came out of them, or out of
    server code that writes Go-shaped, declared values (a binding's
    ``nodeName``, admission's token volume, the uid, creationTimestamp,
    generation, finalizers and managedFields the server sets, the
    ``resourceVersion`` a decode adds), as upstream's storage only holds what
    its Go types encode. So the checks find nothing in it and the shaping
    leaves it as it is. Each of them works field by field (a field's step or
    schema reads that field alone), so the body's other parts are checked as
    before, with the same first problem. A kubelet's ``pods/status`` body
    carries the pod's metadata and spec back as it read them. ``status`` and
    other parts are always walked: server code writes some of them directly
    (a CRD's status, bootstrap RBAC subjects), not always in Go's shape.

    Text, not ``==``: 1 == 1.0 == True in Python, never in Go's decoder, and
    ``==`` ignores key order. The texts are compared with the stored bytes
    (``_leading_parts``), which are contiguous: encoding the cached object's
    parts again would walk objects long out of the CPU's caches. A spec the
    bytes could not place is compared with the cached object's.
    """
    if stored is None:
        return {}
    kv, cached = stored
    kept, placed = _leading_parts(obj, cached, kv)
    if "spec" not in placed:
        spec, theirs = obj.get("spec"), cached.get("spec")
        if type(spec) is dict and spec and type(theirs) is dict and len(spec) == len(theirs):
            try:
                if orjson.dumps(spec) == orjson.dumps(theirs):
                    kept["spec"] = spec
            except TypeError:  # not plain JSON (e.g. an integer beyond 64 bits)
                pass
    return kept


# The top-level fields whose text is read from the stored bytes, and those of
# them decoding may leave unwalked (non-empty objects only).
_TEXT_PARTS = frozenset(("apiVersion", "kind", "metadata", "spec"))
_STORED_PARTS = ("metadata", "spec")


def _leading_parts(
    obj: Object, cached: Object, kv: storage.KeyValue
) -> tuple[dict[str, Object], frozenset[str]]:
    """``obj``'s parts whose text is that of the stored value's, and the fields compared.

    ``cached`` is ``decode(kv)``: the stored bytes' fields, in their order,
    with ``metadata.resourceVersion`` added last. The body's fields are taken
    in that order (``apiVersion``, ``kind``, ``metadata``, ``spec``, as far
    as they lead it), each encoded as the store encodes it (``metadata``
    without ``resourceVersion``, which must be its last key and the value's
    revision) and found at its place in the stored bytes, up to the field's
    end; the first one that differs ends the comparison, since the next
    one's place is then unknown. A field found there has the text of
    ``cached``'s, as ``orjson`` encodes a decoded text back to itself. The
    bytes of a value stored through an encrypting transformer never match.
    """
    meta = obj.get("metadata")
    if type(meta) is not dict or not meta:
        return {}, frozenset()
    last = next(reversed(meta))
    if last != "resourceVersion" or meta[last] != str(kv.mod_revision):
        return {}, frozenset()
    value = kv.value
    if value[:1] != b"{":
        return {}, frozenset()
    kept: dict[str, Object] = {}
    compared: list[str] = []
    position = 1
    for key in cached:
        if key not in _TEXT_PARTS or key not in obj:
            break
        part = obj[key]
        if key == "metadata":
            part = {k: v for k, v in meta.items() if k != "resourceVersion"}
        try:
            piece = orjson.dumps(key) + b":" + orjson.dumps(part)
        except TypeError:  # not plain JSON (e.g. an integer beyond 64 bits)
            break
        if compared:
            piece = b"," + piece
        compared.append(key)
        end = position + len(piece)
        if not value.startswith(piece, position) or value[end : end + 1] not in (b",", b"}"):
            break
        position = end
        if key in _STORED_PARTS and type(obj[key]) is dict and obj[key]:
            kept[key] = obj[key]
    return kept, frozenset(compared)


def check_decodable(scope: RequestScope, obj: Object, shape: Any = _UNSET) -> None:
    """Problems upstream's decoder finds before validation (e.g. bad base64) are 400s.

    A decodable object is then shaped, in place, as upstream's Go types
    render it (``normalize.go_shape``); unknown fields are left for pruning.
    """
    info = scope.store.info
    schema = definitions.schema_for(*info.storage_gvk)
    # A shape that passed the type check before passes it again (machinery.shapes).
    if shape is _UNSET:
        shape = shapes.body_signature(obj)
    problem = None
    if not _TYPES_OK.get(schema, shape):
        problem = typecheck.first_type_error(obj, schema, info.kind)
        if problem is None:
            _TYPES_OK.put(schema, shape, True)
    problem = problem or info.strategy.decode_problem(obj)
    if not problem:
        try:
            normalize.go_shape(obj)
        except ValueError as exc:  # e.g. an invalid quantity
            problem = str(exc)
    if problem:
        raise errors.bad_request(
            f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: {problem}'
        )


_GO_JSON_KINDS = {list: "array", str: "string", bool: "bool", int: "number", float: "number"}
_FIND_KIND_STRUCT = (
    'struct { APIVersion string "json:\\"apiVersion,omitempty\\""; '
    'Kind string "json:\\"kind,omitempty\\"" }'
)


def _require_object(obj: Any) -> None:
    """Upstream reads kind and apiVersion into a struct first; only an object (or null) fits."""
    if obj is not None and not isinstance(obj, dict):
        kind = _GO_JSON_KINDS.get(type(obj), "number")
        raise errors.bad_request(
            "couldn't get version/kind; json parse error: "
            f"json: cannot unmarshal {kind} into Go value of type {_FIND_KIND_STRUCT}"
        )


def summarize_data(data: bytes, max_length: int = 30) -> str:
    """Upstream's summarizeData: the body's start, as text if it looks like JSON, else hex."""
    if not data:
        return "<empty>"
    head = data[:max_length]
    text = head.decode("utf-8", "replace") if data[:1] == b"{" else head.hex()
    return text + " ..." if len(data) > max_length else text


def check_kind(scope: RequestScope, obj: Any) -> None:
    info = scope.store.info
    # Upstream's decoder fills a missing kind and apiVersion from the endpoint
    # (gvkWithDefaults), so a body without them is this endpoint's kind.
    kind = obj.get("kind") or info.kind
    api_version = obj.get("apiVersion")
    if api_version and api_version != info.group_version:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version ({info.group_version})"
        )
    if kind != info.kind:
        raise errors.bad_request(
            f'{kind} in version "{info.version}" cannot be handled as a {info.kind}'
        )
    obj["kind"] = info.kind
    obj["apiVersion"] = info.group_version


def handle_unknown_fields(scope: RequestScope, obj: Object, shape: Any = _UNSET) -> None:
    """Drop undeclared fields; Strict refuses them, Warn reports them (upstream's messages).

    ``shape``: ``obj``'s ``shapes.body_signature``, or that of the body it was
    shaped from by ``check_decodable`` (which has the same unknown fields).
    """
    info = scope.store.info
    # Custom resources prune against their CRD's schema (registry.apiextensions).
    prune_unknown = getattr(info.strategy, "prune_unknown", None)
    if prune_unknown is not None:
        unknown = prune_unknown(obj)
    else:
        schema = definitions.schema_for(*info.storage_gvk)
        if shape is _UNSET:
            shape = shapes.body_signature(obj)
        if _NOTHING_UNKNOWN.get(schema, shape):
            return
        unknown = pruning.prune_unknown(obj, schema)
        if not unknown:
            _NOTHING_UNKNOWN.put(schema, shape, True)
    if not unknown:
        return
    mode = scope.ctx.field_validation
    if mode == "Strict":
        detail = ", ".join(f'unknown field "{p}"' for p in unknown)
        raise errors.bad_request(f"strict decoding error: {detail}")
    if mode == "Warn":
        for path in unknown:
            scope.ctx.warn(f'unknown field "{path}"')


def invalid_options(kind: str, problems: list[field.FieldError]) -> errors.StatusError:
    """422 on a meta.k8s.io options kind, named with its group as upstream's NewInvalid does."""
    return errors.invalid(errors.GroupKind("meta.k8s.io", kind), "", problems)


def set_field_manager(scope: RequestScope, options_kind: str) -> None:
    """The request's manager: ``fieldManager``, else the User-Agent's product (upstream).

    An invalid ``fieldManager`` is a 422 on the request's options kind
    (``CreateOptions``, ``UpdateOptions``, ``PatchOptions``), as upstream.
    """
    manager = scope.query.get("fieldManager", "")
    if manager:
        problems = objectmeta.validate_field_manager(manager, field.Path("fieldManager"))
        if problems:
            raise invalid_options(options_kind, problems)
    else:
        manager = manager_from_user_agent(scope.request.header("user-agent"))
    scope.ctx.field_manager = manager


def manager_from_user_agent(user_agent: str) -> str:
    """The User-Agent's product (before the first '/'), made a valid manager name.

    As upstream's prefixFromUserAgent: characters that are not printable are
    dropped, and the name stops before it would pass 128 bytes of UTF-8.
    """
    product = user_agent.split("/", 1)[0]
    if product.isprintable() and len(product.encode()) <= objectmeta.FIELD_MANAGER_MAX_LENGTH:
        return product
    kept: list[str] = []
    size = 0
    for char in product:
        if not char.isprintable():
            continue
        size += len(char.encode())
        if size > objectmeta.FIELD_MANAGER_MAX_LENGTH:
            break
        kept.append(char)
    return "".join(kept)


async def create(scope: RequestScope) -> None:
    if scope.info.name and not scope.info.subresource:
        raise errors.method_not_allowed()
    set_field_manager(scope, "CreateOptions")
    subresource_create = scope.store.info.subresource_create.get(scope.info.subresource)
    if subresource_create is not None:
        body = await _decode_subresource_body(scope)
        answer = await subresource_create(
            scope.store, scope.namespace, scope.info.name, body, scope.ctx
        )
        await scope.respond(201, answer)
        return
    obj = await decode_object(scope)
    virtual_create = scope.store.info.virtual_create
    if virtual_create is not None:
        # Answered, never stored (access reviews, SelfSubjectReview).
        await scope.respond(201, await virtual_create(scope.namespace, obj, scope.ctx))
        return
    created = await scope.store.create(scope.namespace, obj, scope.ctx)
    await scope.respond_object(201, created)


async def _decode_subresource_body(scope: RequestScope) -> Object:
    """The body of a create on a subresource (e.g. a Binding): any object, not this kind."""
    body = await scope.request.body()
    obj = negotiation.decode_body(body, scope.request.header("content-type"))
    _require_object(obj)
    return obj or {}


async def update(scope: RequestScope) -> None:
    if scope.info.subresource in scope.store.info.subresource_create:
        raise errors.method_not_allowed()
    if scope.info.subresource == "scale":
        await scale.update(scope)
        return
    set_field_manager(scope, "UpdateOptions")
    obj = await decode_object(scope, _cached_object(scope))
    stored, created = await scope.store.update(
        scope.namespace, scope.info.name, obj, scope.ctx, subresource=scope.info.subresource
    )
    await scope.respond_object(201 if created else 200, stored)


def _cached_object(scope: RequestScope) -> Cached | None:
    """For a ``status`` PUT: the watch cache's value and object at this name, if decoded already.

    Read only (the cache's watchers share them). Only the status endpoint asks:
    its writers (kubelets, controllers) send back the spec they read. Not for
    custom resources: their schema (the CRD's) may have changed since the
    object was stored, so a stored spec may hold what pruning now removes.
    """
    store = scope.store
    if scope.info.subresource != "status" or not scope.info.name:
        return None
    if getattr(store.info.strategy, "prune_unknown", None) is not None:
        return None
    cached = store.cached_for_update(store.key(scope.namespace, scope.info.name))
    if cached is None or cached[1] is None:
        return None
    return cached[0], cached[1]


# ----- deletes ----------------------------------------------------------------


async def delete(scope: RequestScope) -> None:
    opts = await delete_options(scope)
    result = await scope.store.delete(scope.namespace, scope.info.name, opts, scope.ctx)
    info = scope.store.info
    if result.deleted and not info.return_deleted_object:
        meta = result.obj["metadata"]
        details = {"name": meta["name"], "kind": info.plural, "uid": meta.get("uid", "")}
        if info.group:
            details["group"] = info.group
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }
        await scope.respond(200, status)
        return
    await scope.respond_object(200, result.obj)


async def delete_collection(scope: RequestScope) -> None:
    opts = await delete_options(scope)
    deleted = await scope.store.delete_collection(
        scope.namespace, list_options(scope), opts, scope.ctx
    )
    await scope.respond(200, render_list(scope, deleted, {}))


async def delete_options(scope: RequestScope) -> DeleteOptions:
    """DeleteOptions from the body (kubectl sends one) or the query string."""
    body = await scope.request.body()
    raw: Object = {}
    if body.strip():
        decoded = negotiation.decode_body(body, scope.request.header("content-type"))
        if isinstance(decoded, dict):
            raw = decoded
    q = scope.query
    opts = DeleteOptions()
    grace = raw.get("gracePeriodSeconds", q.get("gracePeriodSeconds"))
    if grace not in (None, ""):
        opts.grace_period_seconds = _grace(grace)
    opts.propagation_policy = raw.get("propagationPolicy") or q.get("propagationPolicy", "")
    if opts.propagation_policy not in ("", "Orphan", "Background", "Foreground"):
        raise errors.invalid(
            errors.GroupKind("meta.k8s.io", "DeleteOptions"),
            "",
            [_unsupported_policy(opts.propagation_policy)],
        )
    if raw.get("orphanDependents") is not None:
        opts.orphan_dependents = raw["orphanDependents"] is True
    elif "orphanDependents" in q:
        opts.orphan_dependents = request_info.parse_bool(q["orphanDependents"])
    if not opts.propagation_policy and opts.orphan_dependents is None:
        # Upstream's DefaultGarbageCollectionPolicy of the addressed version.
        opts.propagation_policy = scope.store.info.default_propagation_policy
    preconditions = raw.get("preconditions") or {}
    opts.preconditions_uid = preconditions.get("uid") or ""
    opts.preconditions_resource_version = preconditions.get("resourceVersion") or ""
    if raw.get("dryRun") == ["All"]:
        scope.ctx.dry_run = True
    return opts


def _grace(value: Any) -> int:
    try:
        grace = int(value)
    except (TypeError, ValueError):
        raise errors.bad_request(f"gracePeriodSeconds: invalid value {value!r}") from None
    return max(grace, 0)


def _unsupported_policy(policy: str) -> Any:
    return field.not_supported(
        "propagationPolicy", policy, ["Foreground", "Background", "Orphan", "nil"]
    )
