"""Strategic merge patch, as kube-apiserver applies it to built-in kinds.

Mirrors apimachinery ``pkg/util/strategicpatch`` (``StrategicMergeMapPatch``,
the server-side entry: parallel lists are merged and unmatched nulls
ignored). The per-field metadata upstream reads from Go struct tags comes
here from the same tags as published in the OpenAPI definitions
(``x-kubernetes-patch-strategy``, ``x-kubernetes-patch-merge-key``), through
``SchemaNode``. Where no schema is known (``None``, or a field the schema
does not list) a map merges key by key and a list is replaced, so the patch
behaves as a JSON merge patch that still honours the directives below.

Semantics (all upstream's, including the surprising ones):

* ``null`` deletes a key; ``null`` members of values added where nothing was
  are dropped. Lists replaced wholesale (no ``merge`` strategy) and maps
  replaced by ``$patch: replace`` are taken verbatim, nulls included.
* A map with ``$patch: replace`` replaces the original map; ``$patch: delete``
  empties it; any other ``$patch`` value is an error (``merge`` too).
* A list with strategy ``merge``: scalars merge as a set; maps merge by the
  merge key. List elements may carry ``$patch: delete`` (drop the element with
  that key), ``$patch: replace`` (the list becomes the patch's other
  elements); ``$patch: merge`` is an error.
* Result order for merged lists: items named in the patch keep the patch's
  order and server-only items keep theirs; the two are interleaved using the
  server's order, so an item the server did not have goes *before* the
  remaining server-only items (a new container without ``$setElementOrder``
  lands first). ``$setElementOrder/<field>`` overrides the patch's order.
* ``$deleteFromPrimitiveList/<field>`` removes scalars from a list.
* ``$retainKeys`` (in any map) drops original keys not listed; a non-null key
  in the patch that is not listed is an error.

Errors carry upstream's text and the status the PATCH handler answers with
(see ``interpretStrategicMergePatchError`` upstream): malformed directives are
400s, lists of lists 422, anything else (a missing merge key, an unknown
``$patch``) a 500 with the raw message.
"""

from __future__ import annotations

from typing import Any

from kajitori.machinery.patching import common, order
from kajitori.machinery.schema import SchemaNode

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"
SET_ELEMENT_ORDER = "$setElementOrder"

ERR_PRIMITIVE_LIST = "invalid patch format of primitive list"
ERR_RETAIN_KEYS = "invalid patch format of retainKeys"
ERR_SET_ELEMENT_ORDER = "invalid patch format of setElementOrder list"
ERR_LIST_OF_LISTS = "lists of lists are not supported"

_MAP = "map[string]interface {}"
_SLICE = "[]interface {}"


def apply_strategic_merge_patch(
    doc: dict[str, Any],
    patch: dict[str, Any],
    schema: SchemaNode | None,
    *,
    copy_doc: bool = True,
    copy_patch: bool = True,
) -> dict[str, Any]:
    """Apply a strategic merge patch to ``doc`` using ``schema`` for field metadata.

    Returns a new object; neither argument is changed. ``patch`` may be
    ``None`` (a JSON ``null`` body), which changes nothing. ``copy_doc=False``
    merges into ``doc`` itself (a private copy the caller gives up): a member
    the patch does not name is then the very object ``doc`` held.
    ``copy_patch=False`` likewise uses up ``patch`` (e.g. a fresh decode).
    """
    if patch is None:
        return common.deep_copy(doc) if copy_doc else doc
    if not isinstance(patch, dict):
        kind = "array" if isinstance(patch, list) else _json_kind(patch)
        raise common.PatchError(
            f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}",
            code=400,
        )
    original = common.deep_copy(doc) if copy_doc else doc
    return _merge_map(original, common.deep_copy(patch) if copy_patch else patch, schema)


def _json_kind(value: Any) -> str:
    return {str: "string", bool: "bool"}.get(type(value), "number")


# --- field metadata -------------------------------------------------------------------


class FieldMeta:
    """Patch metadata of one field: its schema, strategy and merge key."""

    __slots__ = ("merge_key", "schema", "strategy")

    def __init__(self, schema: SchemaNode | None, strategy: str, merge_key: str) -> None:
        self.schema = schema
        self.strategy = strategy
        self.merge_key = merge_key


def field_meta(schema: SchemaNode | None, key: str, *, is_list: bool) -> FieldMeta:
    """The patch metadata of ``schema``'s field ``key`` (the client side, ``two_way``, too).

    Remembered per (schema node, key, list or not): schema nodes are shared
    and read-only, and every patch of a kind asks about the same few fields.
    Shared too: never change a ``FieldMeta``.
    """
    memo_key = (schema, key, is_list)
    known = _FIELD_METAS.get(memo_key)
    if known is None:
        known = _field_meta(schema, key, is_list=is_list)
        if len(_FIELD_METAS) >= _FIELD_METAS_MAX:
            _FIELD_METAS.clear()  # a bound, not a policy: the built-in kinds fit many times
        _FIELD_METAS[memo_key] = known
    return known


# ``field_meta``'s answers. Keys hold their schema nodes: custom resources'
# replaced schemas are let go at the next clear.
_FIELD_METAS: dict[tuple[SchemaNode | None, str, bool], FieldMeta] = {}
_FIELD_METAS_MAX = 4096


def _field_meta(schema: SchemaNode | None, key: str, *, is_list: bool) -> FieldMeta:
    field = schema.field(key) if schema is not None else None
    if field is None:
        return FieldMeta(None, "", "")
    strategy = _non_retain_strategy(field.patch_strategy)
    # A list under a field declared as a single object (seen in upstream's own
    # tests) takes the field's schema for its elements.
    sub = (field.items() or field) if is_list else field
    return FieldMeta(sub, strategy, field.patch_merge_key)


def _non_retain_strategy(declared: str) -> str:
    """The strategy other than ``retainKeys`` (which only the patch's directive drives)."""
    strategies = declared.split(",") if declared else []
    if len(strategies) == 1:
        return "" if strategies[0] == "retainKeys" else strategies[0]
    if len(strategies) == 2 and "retainKeys" in strategies:
        return strategies[1] if strategies[0] == "retainKeys" else strategies[0]
    if not strategies:
        return ""
    raise common.PatchError(f"unexpected patch strategy: [{' '.join(strategies)}]")


# --- maps -----------------------------------------------------------------------------


def _merge_map(
    original: dict[str, Any], patch: dict[str, Any], schema: SchemaNode | None
) -> dict[str, Any]:
    if DIRECTIVE in patch:
        return _map_directive(patch)
    _apply_retain_keys(original, patch)
    _merge_ordered_lists(original, patch, schema)
    for key, value in list(patch.items()):
        _merge_key(original, key, value, schema)
    return original


def _map_directive(patch: dict[str, Any]) -> dict[str, Any]:
    directive = patch[DIRECTIVE]
    if directive == "replace":
        del patch[DIRECTIVE]
        return patch
    if directive == "delete":
        return {}
    raise _bad_patch_type(directive, patch)


def _bad_patch_type(directive: Any, element: dict[str, Any]) -> common.PatchError:
    return common.PatchError(
        f"unknown patch type: {common.go_value(directive)} in map: {common.go_value(element)}"
    )


def _merge_key(original: dict[str, Any], key: str, value: Any, schema: SchemaNode | None) -> None:
    is_delete_list = key.startswith(DELETE_FROM_PRIMITIVE_LIST)
    if is_delete_list:
        key = _strip_prefix(key, DELETE_FROM_PRIMITIVE_LIST, ERR_PRIMITIVE_LIST)
    if value is None:
        original.pop(key, None)
        return
    if key not in original or (
        type(original[key]) is not type(value)
        and common.go_type(original[key]) != common.go_type(value)
    ):
        if not is_delete_list:
            _set_from_patch(original, key, value)
        return
    current = original[key]
    if isinstance(current, dict):
        meta = field_meta(schema, key, is_list=False)
        original[key] = (
            value if meta.strategy == "replace" else _merge_map(current, value, meta.schema)
        )
    elif isinstance(current, list):
        meta = field_meta(schema, key, is_list=True)
        original[key], _ = _merge_list_field(current, value, meta, is_delete_list=is_delete_list)
    else:
        original[key] = value


def _set_from_patch(original: dict[str, Any], key: str, value: Any) -> None:
    """Take a patch value where the original had none (or one of another type)."""
    _discard_nulls(value)
    kept, keep = _remove_directives(value)
    if keep:
        original[key] = kept
    else:
        original.pop(key, None)


def _strip_prefix(key: str, prefix: str, error: str) -> str:
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        raise common.PatchError(error, code=400)
    return rest


def _discard_nulls(value: Any) -> None:
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for member in value.values():
            _discard_nulls(member)
    elif isinstance(value, list):
        for element in value:
            _discard_nulls(element)


def _remove_directives(value: Any) -> tuple[Any, bool]:
    """``value`` without directive-bearing maps, and whether anything is left to keep."""
    if isinstance(value, dict):
        if DIRECTIVE in value:
            return None, False
        for key in list(value):
            kept, keep = _remove_directives(value[key])
            if keep:
                value[key] = kept
            else:
                del value[key]
        return value, True
    if isinstance(value, list):
        out = []
        for element in value:
            kept, keep = _remove_directives(element)
            if keep:
                out.append(kept)
        return out, True
    return value, True


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    if RETAIN_KEYS not in patch:
        return
    retained = patch.pop(RETAIN_KEYS)
    if not isinstance(retained, list):
        raise common.PatchError(ERR_RETAIN_KEYS, code=400)
    allowed = {common.hash_key(k) for k in retained}
    for key, value in patch.items():
        if value is None or key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)):
            continue
        if common.hash_key(key) not in allowed:
            raise common.PatchError(ERR_RETAIN_KEYS, code=400)
    for key in [k for k in original if common.hash_key(k) not in allowed]:
        del original[key]


# --- $setElementOrder ----------------------------------------------------------------


def _merge_ordered_lists(
    original: dict[str, Any], patch: dict[str, Any], schema: SchemaNode | None
) -> None:
    """Merge every list that has a ``$setElementOrder`` and put it in that order.

    The merged lists (and the directives) are removed from ``patch`` so the
    main loop does not see them again.
    """
    for directive_key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        wanted = patch.pop(directive_key)
        if not isinstance(wanted, list):
            raise common.PatchError(f"expected a {_SLICE}, but received a {common.go_type(wanted)}")
        key = _strip_prefix(directive_key, SET_ELEMENT_ORDER, ERR_SET_ELEMENT_ORDER)
        server = _list_or_error(original, key)
        patched = _list_or_error(patch, key)
        meta = field_meta(schema, key, is_list=True)
        _check_order(patched or [], wanted, meta.merge_key)
        if server is None and patched is None:
            continue
        view = server or []
        if server is not None and patched is not None:
            fully_named = _merge_fully_named(server, patched, wanted, meta)
            if fully_named is not None:
                original[key] = fully_named
                patch.pop(key, None)
                continue
        if patched is None:
            merged = view
        elif server is None:
            merged = _remove_directives(patched)[0]
        else:
            merged, view = _merge_list_field(server, patched, meta, is_delete_list=False)
        in_order, server_only = _partition(merged, wanted, meta.merge_key)
        kind = element_type(server or [], patched or [])
        original[key] = order.normalize(
            in_order,
            server_only,
            patch_order=wanted,
            server_order=view,
            merge_key=meta.merge_key,
            kind=kind,
        )
        patch.pop(key, None)


def _merge_fully_named(
    server: list[Any], patched: list[Any], wanted: list[Any], meta: FieldMeta
) -> list[Any] | None:
    """The merged list in ``wanted``'s order, when ``wanted`` names each merged item once.

    A kubelet's status patch names every condition in ``$setElementOrder``.
    Then no item is server-only, so the general path's orderings (by the
    patch, then interleaving by the server's order) are all overridden by the
    final sort on ``wanted``, whose positions are distinct: the answer is
    merged items sorted by position. Decided before anything is merged, on the
    merge keys alone; None (nothing changed) for any other case, including
    every one that is an error, which the general path then reports.
    """
    if meta.strategy != "merge" or not meta.merge_key or not server or not patched:
        return None
    if element_type(server, patched) != _MAP:
        return None
    key = meta.merge_key
    survivors, plain, replaced = _apply_list_directives(server, patched, key)
    positions: dict[Any, int] = {}
    for index, item in enumerate(wanted):
        if type(item) is not dict or key not in item:
            return None
        positions.setdefault(common.hash_key(item[key]), index)
    if replaced or any(key not in item or DIRECTIVE in item for item in plain):
        return None
    seen: set[int] = set()
    for item in survivors:
        if key not in item or DIRECTIVE in item:
            return None
        position = positions.get(common.hash_key(item[key]), -1)
        if position < 0 or position in seen:
            return None
        seen.add(position)
    if any(common.hash_key(item[key]) not in positions for item in plain):
        return None
    merged = _merge_by_key(list(survivors), plain, meta)
    return sorted(merged, key=lambda item: positions[common.hash_key(item[key])])


def _list_or_error(obj: dict[str, Any], key: str) -> list[Any] | None:
    if key not in obj:
        return None
    value = obj[key]
    if not isinstance(value, list):
        raise common.PatchError(f"expected a {_SLICE}, but received a {common.go_type(value)}")
    return value


def _check_order(patched: list[Any], wanted: list[Any], merge_key: str) -> None:
    """Items the patch lists (deletions aside) must appear in ``wanted``, in its order."""
    if not patched or not wanted:
        return
    items = patched
    if merge_key:
        for item in patched:
            if not isinstance(item, dict):
                raise common.PatchError(f"expected a {_MAP}, but received a {common.go_type(item)}")
        items = [m for m in patched if m.get(DIRECTIVE) != "delete"]
    p = w = 0
    while p < len(items) and w < len(wanted):
        if isinstance(items[p], dict) and DIRECTIVE in items[p]:
            p += 1
            continue
        if _same_item(items[p], wanted[w], merge_key):
            p += 1
        w += 1
    if p < len(items) and w >= len(wanted):
        raise common.PatchError(
            f"The order in patch list:\n{common.go_value(patched)}\n doesn't match "
            f"{SET_ELEMENT_ORDER} list:\n{common.go_value(wanted)}\n"
        )


def _same_item(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return common.same_value(left, right)
    for item in (left, right):
        if not isinstance(item, dict):
            raise common.PatchError(f"expected a {_MAP}, but received a {common.go_type(item)}")
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
    return common.same_value(left[merge_key], right[merge_key])


# --- lists ----------------------------------------------------------------------------


def _merge_list_field(
    original: list[Any], patch: list[Any], meta: FieldMeta, *, is_delete_list: bool
) -> tuple[list[Any], list[Any]]:
    """The merged list, and how the original list reads afterwards.

    Upstream merges Go slices in place: deleting an element shifts the
    original's backing array left, and new elements are appended into the
    freed slots. Whoever still holds the original slice (``$setElementOrder``
    handling, which orders server-only items by it) sees those new elements
    where deleted ones were; upstream's expected orders depend on that.
    """
    # Delete lists apply whatever the field's strategy; other lists need "merge".
    if meta.strategy == "merge" or is_delete_list:
        return _merge_list(original, patch, meta, is_delete_list=is_delete_list)
    return patch, original


def _merge_list(
    original: list[Any], patch: list[Any], meta: FieldMeta, *, is_delete_list: bool
) -> tuple[list[Any], list[Any]]:
    if not original and not patch:
        return original, original
    kind = element_type(original, patch)
    view = original
    if kind != _MAP:
        if is_delete_list:
            return _without(original, patch), original
        merged = _dedupe(original + patch)
    else:
        if not meta.merge_key:
            raise common.PatchError("cannot merge lists without merge key for ")
        survivors, patch, replaced = _apply_list_directives(original, patch, meta.merge_key)
        if replaced:
            view, original, patch = survivors, patch, []
        else:
            freed = len(original) - len(survivors)
            original = survivors
        merged = _merge_by_key(list(original), patch, meta)
        if not replaced:
            view = survivors + merged[len(survivors) :][:freed]
    in_patch, server_only = _partition(merged, patch, meta.merge_key)
    result = order.normalize(
        in_patch,
        server_only,
        patch_order=patch,
        server_order=original,
        merge_key=meta.merge_key,
        kind=kind,
    )
    return result, view


def element_type(*lists: list[Any]) -> str:
    """The one Go type of every element of ``lists``; errors as upstream on a mix."""
    found = ""
    for items in lists:
        for item in items:
            kind = common.go_type(item)
            if not found:
                found = kind
                if kind == _SLICE:
                    raise common.PatchError(ERR_LIST_OF_LISTS, code=422)
            elif kind != found:
                shown = "[" + " ".join(common.go_value(x) for x in lists) + "]"
                raise common.PatchError(f"list element types are not identical: {shown}")
    if not found:
        raise common.PatchError("no elements in any of the given slices")
    return found


def _without(items: list[Any], to_delete: list[Any]) -> list[Any]:
    doomed = {common.hash_key(v) for v in to_delete}
    return [v for v in items if common.hash_key(v) not in doomed]


def _dedupe(items: list[Any]) -> list[Any]:
    # Order is irrelevant here: the caller re-sorts by patch and server order.
    seen: dict[Any, Any] = {}
    for item in items:
        seen.setdefault(common.hash_key(item), item)
    return list(seen.values())


def _apply_list_directives(
    original: list[Any], patch: list[Any], merge_key: str
) -> tuple[list[Any], list[Any], bool]:
    """Handle ``$patch`` elements.

    Returns the original without deleted elements, the patch's plain elements,
    and whether a ``$patch: replace`` element asked for the plain elements to
    replace the list.
    """
    plain: list[Any] = []
    replace = False
    for element in patch:
        if DIRECTIVE not in element:
            plain.append(element)
            continue
        directive = element[DIRECTIVE]
        if directive == "delete":
            if merge_key not in element:
                raise _no_merge_key(element, merge_key)
            original = _delete_matching(original, merge_key, element[merge_key])
        elif directive == "replace":
            replace = True  # keep scanning: later $patch elements are still checked
        elif directive == "merge":
            raise common.PatchError("merging lists cannot yet be specified in the patch")
        else:
            raise _bad_patch_type(directive, element)
    return original, plain, replace


def _no_merge_key(element: dict[str, Any], merge_key: str) -> common.PatchError:
    return common.PatchError(
        f"map: {common.go_value(element)} does not contain declared merge key: {merge_key}"
    )


def _delete_matching(items: list[Any], merge_key: str, value: Any) -> list[Any]:
    _find_by_key(items, merge_key, value)  # upstream validates the elements first
    return [m for m in items if not (merge_key in m and common.same_value(m[merge_key], value))]


def _find_by_key(items: list[Any], merge_key: str, value: Any) -> int:
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise common.PatchError(f"value for key {index} is not a map")
        if merge_key in item and common.same_value(item[merge_key], value):
            return index
    return -1


def _merge_by_key(original: list[Any], patch: list[Any], meta: FieldMeta) -> list[Any]:
    key = meta.merge_key
    # First position of each merge-key value (element_type made them all maps).
    positions: dict[Any, int] = {}
    for index, item in enumerate(original):
        if key in item:
            positions.setdefault(common.hash_key(item[key]), index)
    for element in patch:
        if key not in element:
            raise _no_merge_key(element, key)
        index = positions.get(common.hash_key(element[key]), -1)
        if index >= 0:
            original[index] = _merge_map(original[index], element, meta.schema)
        else:
            # Upstream appends the patch element as is: nulls and nested
            # directives included.
            positions[common.hash_key(element[key])] = len(original)
            original.append(element)
    return original


def _partition(merged: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """Split ``merged`` into items present in ``by`` and the rest."""
    in_by: list[Any] = []
    rest: list[Any] = []
    if not merge_key:
        present = {common.hash_key(v) for v in by}
        for item in merged:
            (in_by if common.hash_key(item) in present else rest).append(item)
        return in_by, rest
    keys = _merge_key_values(by, merge_key) if merged else set()
    for item in merged:
        if not isinstance(item, dict):
            raise common.PatchError(f"expected a {_MAP}, but received a {common.go_type(item)}")
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
        (in_by if common.hash_key(item[merge_key]) in keys else rest).append(item)
    return in_by, rest


def _merge_key_values(items: list[Any], merge_key: str) -> set[Any]:
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise common.PatchError(f"value for key {index} is not a map")
    return {common.hash_key(m[merge_key]) for m in items if merge_key in m}
