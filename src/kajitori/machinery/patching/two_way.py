"""Two-way strategic merge patches: the patch that turns one object into another.

The client side of ``strategic``: ``create_two_way_merge_patch(original,
modified, schema)`` is apimachinery's ``CreateTwoWayMergePatch`` (its
``diffMaps`` with ``SetElementOrder``), driven by the same patch metadata
the server's strategic merge reads (``strategic.field_meta``: the
``x-kubernetes-patch-strategy`` and ``-merge-key`` of the kind's schema).
Applying the result to ``original`` with ``apply_strategic_merge_patch``
gives ``modified``, list order included. A kubelet uses it for its
``pods/status`` PATCH (``kubelet.status.status_patch``), as upstream's status
manager does (``pkg/util/pod.PatchPodStatus``).

What it emits, as upstream:

* a key added or of another type: the new value, whole; a key gone: ``null``;
* maps: the diff of their members (nothing when equal); a field with strategy
  ``replace``: the new map, whole; ``$retainKeys`` under fields declared
  ``retainKeys``;
* lists with strategy ``merge``: of maps, the changed or added elements (each
  changed one with its merge key), then ``{key: v, "$patch": "delete"}`` for
  removed ones, and ``$setElementOrder/<field>`` (merge keys in the new
  order) when anything changed or the order did; of scalars, the added
  values, ``$deleteFromPrimitiveList/<field>`` and ``$setElementOrder``;
* other lists and scalars: the new value when not deeply equal (Go's
  ``reflect.DeepEqual``: ``1`` and ``1.0`` differ).

The result shares values with ``modified``: encode it, do not change it.
"""

from __future__ import annotations

from typing import Any

from kajitori.machinery.patching import common, strategic
from kajitori.machinery.schema import SchemaNode

Object = dict[str, Any]


def create_two_way_merge_patch(
    original: Object, modified: Object, schema: SchemaNode | None
) -> Object:
    """The strategic merge patch from ``original`` to ``modified`` (``{}`` when equal)."""
    return _diff_maps(original, modified, schema, retain_keys=False)


def deep_equal(a: Any, b: Any) -> bool:
    """Go's ``reflect.DeepEqual`` on decoded JSON: types must match at every level."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return len(a) == len(b) and all(k in b and deep_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(deep_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _diff_maps(
    original: Object, modified: Object, schema: SchemaNode | None, *, retain_keys: bool
) -> Object:
    patch: Object = {}
    for key, new in modified.items():
        if key not in original:
            patch[key] = new
            continue
        old = original[key]
        if key == strategic.DIRECTIVE:
            if new != old:
                patch[key] = new
            continue
        if type(old) is not type(new):
            patch[key] = new
        elif isinstance(new, dict):
            _map_field(key, old, new, patch, schema)
        elif isinstance(new, list):
            _list_field(key, old, new, patch, schema)
        elif new != old:
            patch[key] = new
    for key in original:
        if key not in modified:
            patch[key] = None
    if retain_keys:
        kept = [k for k, v in modified.items() if v is not None]
        added = any(v is not None and k not in modified for k, v in original.items())
        if kept and (patch or added):
            patch[strategic.RETAIN_KEYS] = sorted(kept)
    return patch


def _retains(schema: SchemaNode | None, key: str) -> bool:
    """Whether the field is declared ``retainKeys`` (its maps then carry ``$retainKeys``)."""
    field = schema.field(key) if schema is not None else None
    return field is not None and "retainKeys" in field.patch_strategy.split(",")


def _map_field(
    key: str, old: Object, new: Object, patch: Object, schema: SchemaNode | None
) -> None:
    meta = strategic.field_meta(schema, key, is_list=False)
    if meta.strategy == "replace":
        patch[key] = new  # upstream sends it whether or not it changed
        return
    diff = _diff_maps(old, new, meta.schema, retain_keys=_retains(schema, key))
    if diff:
        patch[key] = diff


def _list_field(
    key: str, old: list[Any], new: list[Any], patch: Object, schema: SchemaNode | None
) -> None:
    meta = strategic.field_meta(schema, key, is_list=True)
    if meta.strategy != "merge":
        if not deep_equal(old, new):
            patch[key] = new
        return
    if not old and not new:
        return
    kind = strategic.element_type(old, new)
    if kind == common.go_type({}):
        retain = _retains(schema, key)
        changes, order = _diff_lists_of_maps(old, new, meta, retain_keys=retain)
        deletions: list[Any] = []
    else:
        changes, deletions, order = _diff_lists_of_scalars(old, new)
    if changes:
        patch[key] = changes
    if deletions:
        patch[f"{strategic.DELETE_FROM_PRIMITIVE_LIST}/{key}"] = deletions
    if order:
        patch[f"{strategic.SET_ELEMENT_ORDER}/{key}"] = order


def _diff_lists_of_maps(
    old: list[Any], new: list[Any], meta: strategic.FieldMeta, *, retain_keys: bool
) -> tuple[list[Any], list[Any]]:
    """(changed and added elements in ``new``'s order, then deletions; the order list)."""
    merge_key = meta.merge_key
    old_sorted = _sorted_by_key(old, merge_key)
    new_sorted = _sorted_by_key(new, merge_key)
    changed: list[Any] = []
    deleted: list[Any] = []
    i = j = 0
    # Upstream walks both lists sorted by the text (``%v``) of their merge keys.
    while i < len(old_sorted) or j < len(new_sorted):
        o_text = old_sorted[i][0] if i < len(old_sorted) else None
        n_text = new_sorted[j][0] if j < len(new_sorted) else None
        if o_text is not None and n_text is not None and o_text == n_text:
            o_item, n_item = old_sorted[i][1], new_sorted[j][1]
            diff = _diff_maps(o_item, n_item, meta.schema, retain_keys=retain_keys)
            if diff:
                diff[merge_key] = n_item[merge_key]
                changed.append(diff)
            i += 1
            j += 1
        elif o_text is None or (n_text is not None and o_text > n_text):
            changed.append(new_sorted[j][1])  # added
            j += 1
        else:
            value = old_sorted[i][1][merge_key]
            deleted.append({merge_key: value, strategic.DIRECTIVE: "delete"})
            i += 1
    changed = _in_order_of(changed, new, merge_key)
    same_order = len(old) == len(new) and all(
        common.same_value(a[merge_key], b[merge_key]) for a, b in zip(old, new, strict=True)
    )
    changes = changed + deleted
    order: list[Any] = []
    if not same_order or changes:
        order = [{merge_key: item[merge_key]} for item in new]
    return changes, order


def _sorted_by_key(items: list[Any], merge_key: str) -> list[tuple[str, Object]]:
    keyed = []
    for item in items:
        if merge_key not in item:
            raise common.PatchError(
                f"map: {common.go_value(item)} does not contain declared merge key: {merge_key}"
            )
        keyed.append((common.go_value(item[merge_key]), item))
    keyed.sort(key=lambda pair: pair[0])  # stable, as Go's sort.Stable
    return keyed


def _in_order_of(items: list[Any], order: list[Any], merge_key: str) -> list[Any]:
    """``items`` sorted by where their merge key (or value) stands in ``order``."""
    positions: dict[Any, int] = {}
    for index, item in enumerate(order):
        identity = item[merge_key] if merge_key else item
        positions.setdefault(common.hash_key(identity), index)

    def rank(item: Any) -> int:
        identity = item[merge_key] if merge_key else item
        return positions.get(common.hash_key(identity), len(order))

    return sorted(items, key=rank)


def _diff_lists_of_scalars(
    old: list[Any], new: list[Any]
) -> tuple[list[Any], list[Any], list[Any]]:
    """(added values in ``new``'s order, deleted values, the order list)."""
    old_sorted = sorted(old, key=common.go_value)
    new_sorted = sorted(new, key=common.go_value)
    added: list[Any] = []
    deleted: list[Any] = []
    i = j = 0
    while i < len(old_sorted) or j < len(new_sorted):
        o_text = common.go_value(old_sorted[i]) if i < len(old_sorted) else None
        n_text = common.go_value(new_sorted[j]) if j < len(new_sorted) else None
        if o_text is not None and n_text is not None and o_text == n_text:
            i += 1
            j += 1
        elif o_text is None or (n_text is not None and o_text > n_text):
            added.append(new_sorted[j])
            j += 1
        else:
            deleted.append(old_sorted[i])
            i += 1
    unique: dict[Any, Any] = {}
    for value in deleted:
        unique.setdefault(common.hash_key(value), value)
    deleted = list(unique.values())
    order = new if deleted or not deep_equal(old, new) else []
    return _in_order_of(added, new, ""), deleted, order
