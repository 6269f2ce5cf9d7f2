"""Objects read through their schema's structural markers (upstream: smd ``typed``).

How a value is owned and merged depends on what the 1.37 definitions say
about it, derived as upstream's schema conversion does:

* a list is ``x-kubernetes-list-type`` ``map`` (items by their
  ``x-kubernetes-list-map-keys``), ``set`` (items by value) or ``atomic``;
  without a list type, a ``merge`` patch strategy makes it a map keyed by
  ``x-kubernetes-patch-merge-key`` (a set when it has no merge key), and
  anything else is atomic;
* an object is granular (each field owned on its own) unless it is
  ``x-kubernetes-map-type: atomic``; free-form data without a schema is a
  granular map with atomic lists.

``flatten`` is the one walk: every path of a value with what sits there.
Field sets, comparisons and removal are all computed from it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import orjson

from kajitori.machinery import shapes
from kajitori.machinery.fieldmanager import fieldpath
from kajitori.machinery.schema import SchemaNode

ListKind = Literal["atomic", "set", "map"]
# leaf: a scalar, atomic or empty value (owned whole); item: a list item;
# map: a granular map or list (owned as a whole only when it appears or goes);
# struct: a struct, never owned itself.
NodeKind = Literal["leaf", "item", "map", "struct"]


class TypedError(ValueError):
    """A value that does not fit its schema's structure (e.g. duplicate list keys)."""


class Node(NamedTuple):
    # A NamedTuple, not a frozen dataclass: one is built per path of every object
    # written, and a tuple is several times cheaper to construct.
    kind: NodeKind
    value: Any = None


Flat = dict[fieldpath.Path, Node]


_LIST_KINDS: dict[int, tuple[SchemaNode, tuple[ListKind, tuple[str, ...]]]] = {}


def list_kind(schema: SchemaNode | None) -> tuple[ListKind, tuple[str, ...]]:
    """How a list is owned; memoised per schema node (nodes live as long as their schema)."""
    if schema is None:
        return "atomic", ()
    hit = _LIST_KINDS.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    found = _list_kind(schema)
    if len(_LIST_KINDS) > 50_000:
        _LIST_KINDS.clear()
    _LIST_KINDS[id(schema)] = (schema, found)  # holding the node keeps its id from reuse
    return found


def _list_kind(schema: SchemaNode) -> tuple[ListKind, tuple[str, ...]]:
    declared = schema.list_type
    if declared == "map" and schema.list_map_keys:
        return "map", schema.list_map_keys
    if declared == "set":
        return "set", ()
    if declared == "atomic":
        return "atomic", ()
    if "merge" in schema.patch_strategy.split(","):
        if schema.patch_merge_key:
            return "map", (schema.patch_merge_key,)
        return "set", ()
    return "atomic", ()


def _atomic_object(schema: SchemaNode | None) -> bool:
    return schema is not None and schema.map_type == "atomic"


def atomic_object(schema: SchemaNode | None) -> bool:
    """Whether an object under ``schema`` is owned whole (``x-kubernetes-map-type: atomic``)."""
    return _atomic_object(schema)


def _is_struct(schema: SchemaNode | None) -> bool:
    return schema is not None and bool(schema.properties) and not schema.has_open_properties


def _child(schema: SchemaNode | None, name: str) -> SchemaNode | None:
    return schema.field(name) if schema is not None else None


def item_element(
    item: Any, kind: ListKind, keys: tuple[str, ...], item_schema: SchemaNode | None
) -> str:
    """The path element naming one item of a set or associative list."""
    if kind == "set":
        return fieldpath.value(item)
    if not isinstance(item, dict):
        raise TypedError("associative list item is not an object")
    values: dict[str, Any] = {}
    for name in keys:
        if name in item:
            values[name] = item[name]
            continue
        default = _key_default(item_schema, name)
        if default is not None:
            values[name] = default
    if not values:
        raise TypedError(f"associative list item has none of its keys {', '.join(keys)}")
    return fieldpath.key(values)


# Key fields upstream's OpenAPI gives a default that our copy of the definitions lacks.
_KEY_DEFAULTS = {"protocol": "TCP"}


def _key_default(item_schema: SchemaNode | None, name: str) -> Any:
    node = _child(item_schema, name)
    default = None if node is None else node.raw.get("default")
    return _KEY_DEFAULTS.get(name) if default is None and node is not None else default


def flatten(value: Any, schema: SchemaNode | None, *, strict: bool = False) -> Flat:
    """Every path of ``value`` and what is there. ``strict`` refuses duplicate list keys."""
    out: Flat = {}
    _walk(value, schema, (), out, strict)
    return out


# ----- what a create owns, as a FieldsV1 tree -------------------------------------


def owned_fields_v1(value: dict[str, Any], schema: SchemaNode | None) -> dict[str, Any]:
    """``flatten``'s ownable paths (leaves, list items, granular maps) as FieldsV1.

    The same walk as ``flatten`` (same list kinds, keys and fallbacks, never
    strict), writing the nested FieldsV1 directly, in ``fieldpath.to_fields_v1``'s
    form: a create owns every ownable path of its object, and going through
    the flat map, a comparison with nothing and the encoding cost more than
    the walk. ``value`` must be a non-empty object under a granular schema
    (a kind's root).

    Elements are written in order as they are made: a map's are all ``f:``
    and a list's all ``k:`` or all ``v:``, so sorting the names is upstream's
    order. A member with something below it gets ``"."`` first; a struct
    (never a member) with nothing below it is left out.
    """
    return _fields_below(value, schema)


def _fields_below(value: dict[str, Any], schema: SchemaNode | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in sorted(value):
        child = value[name]
        if isinstance(child, dict | list):
            _encode_into(out, "f:" + name, child, _child(schema, name))
        else:
            out["f:" + name] = {}
    return out


def _encode_into(
    out: dict[str, Any], element: str, value: dict[str, Any] | list[Any], schema: SchemaNode | None
) -> None:
    if isinstance(value, dict):
        if not value or _atomic_object(schema):
            out[element] = {}
            return
        below = _fields_below(value, schema)
        if not _is_struct(schema):
            out[element] = {".": {}, **below} if below else {}
        elif below:
            out[element] = below
        return
    kind, keys = list_kind(schema)
    if kind == "atomic" or not value:
        out[element] = {}
        return
    items = schema.items() if schema is not None else None
    try:
        elements = [item_element(item, kind, keys, items) for item in value]
    except TypedError:
        out[element] = {}
        return
    if _first_duplicate(elements) is not None:
        out[element] = {}
        return
    node: dict[str, Any] = {".": {}}
    for item_element_, item in sorted(zip(elements, value, strict=True), key=_first):
        if kind == "set" or not isinstance(item, dict):
            node[item_element_] = {}
            continue
        below = _fields_below(item, items)
        node[item_element_] = {".": {}, **below} if below else {}
    out[element] = node


def _first(pair: tuple[str, Any]) -> str:
    return pair[0]


def _walk(
    value: Any, schema: SchemaNode | None, path: fieldpath.Path, out: Flat, strict: bool
) -> None:
    if isinstance(value, dict):
        if not value or _atomic_object(schema):
            out[path] = Node("leaf", value)
            return
        if path:
            out[path] = Node("struct" if _is_struct(schema) else "map")
        _walk_fields(value, schema, path, out, strict)
        return
    if isinstance(value, list):
        _walk_list(value, schema, path, out, strict)
        return
    out[path] = Node("leaf", value)


def _walk_fields(
    value: dict[str, Any], schema: SchemaNode | None, path: fieldpath.Path, out: Flat, strict: bool
) -> None:
    # Scalars (most of any object) are recorded here, without looking up their schema.
    for name, child in value.items():
        child_path = (*path, "f:" + name)
        if isinstance(child, dict | list):
            _walk(child, _child(schema, name), child_path, out, strict)
        else:
            out[child_path] = Node("leaf", child)


def _walk_list(
    value: list[Any], schema: SchemaNode | None, path: fieldpath.Path, out: Flat, strict: bool
) -> None:
    kind, keys = list_kind(schema)
    if kind == "atomic" or not value:
        out[path] = Node("leaf", value)
        return
    items = schema.items() if schema is not None else None
    try:
        elements = [item_element(item, kind, keys, items) for item in value]
    except TypedError:
        if strict:
            raise
        out[path] = Node("leaf", value)
        return
    duplicate = _first_duplicate(elements)
    if duplicate is not None:
        if strict:
            raise TypedError(
                f"{fieldpath.render(path)}: duplicate entries for key "
                f"{fieldpath.render((duplicate,))}"
            )
        # Upstream tolerates duplicates in stored objects by owning the list whole.
        out[path] = Node("leaf", value)
        return
    # Like a map: owned as a whole (".") only by the update that makes it appear.
    out[path] = Node("map")
    for element, item in zip(elements, value, strict=True):
        item_path = (*path, element)
        if kind == "set" or not isinstance(item, dict):
            out[item_path] = Node("leaf", item)
            continue
        out[item_path] = Node("item")
        _walk_fields(item, items, item_path, out, strict)


def _first_duplicate(elements: list[str]) -> str | None:
    seen: set[str] = set()
    for element in elements:
        if element in seen:
            return element
        seen.add(element)
    return None


def field_set(flat: Flat) -> fieldpath.FieldSet:
    """Upstream's ToFieldSet: leaves and list items (maps and structs are not members)."""
    return frozenset(p for p, n in flat.items() if n.kind in ("leaf", "item"))


@dataclass(frozen=True, slots=True)
class Comparison:
    added: fieldpath.FieldSet
    modified: fieldpath.FieldSet
    removed: fieldpath.FieldSet

    @property
    def changed(self) -> fieldpath.FieldSet:
        return self.added | self.modified


_OWNABLE = ("leaf", "item", "map")


def compare(old: Flat, new: Flat) -> Comparison:
    """What changed from ``old`` to ``new``, by path (upstream's TypedValue.Compare)."""
    added: set[fieldpath.Path] = set()
    modified: set[fieldpath.Path] = set()
    for path, node in new.items():
        if node.kind not in _OWNABLE:
            continue
        before = old.get(path)
        if before is None or before.kind not in _OWNABLE:
            added.add(path)
        elif before.kind != node.kind or (node.kind == "leaf" and before.value != node.value):
            modified.add(path)
    removed = {
        p
        for p, n in old.items()
        if n.kind in _OWNABLE and (p not in new or new[p].kind not in _OWNABLE)
    }
    return Comparison(frozenset(added), frozenset(modified), frozenset(removed))


def diff(old: Any, new: Any, schema: SchemaNode | None) -> Comparison:
    """``compare(flatten(old, schema), flatten(new, schema))``, skipping what both share.

    A status write changes a few fields of a status that is otherwise what
    was stored; flattening both whole to compare them cost most of its
    managedFields work. Here granular maps and associative lists present on
    both sides are walked together, and a part equal on both sides (the same
    JSON, so the same paths and values) is not walked at all. Anything else
    is flattened and compared as before, so the answer is the same.
    """
    added: set[fieldpath.Path] = set()
    modified: set[fieldpath.Path] = set()
    removed: set[fieldpath.Path] = set()
    out = (added, modified, removed)
    if _same(old, new):
        pass
    elif type(old) is dict and type(new) is dict and old and new and not _atomic_object(schema):
        # The root gets no node of its own (``_walk``); below it, both sides have the same one.
        _diff_fields(old, new, schema, (), out)
    else:
        _compare_into(_flat_at(old, schema, ()), _flat_at(new, schema, ()), out)
    return Comparison(frozenset(added), frozenset(modified), frozenset(removed))


_Sets = tuple[set[fieldpath.Path], set[fieldpath.Path], set[fieldpath.Path]]


def _same(a: Any, b: Any) -> bool:
    """The same JSON: ``==`` alone would equate 1, 1.0 and true, which name items differently."""
    if a is b:
        return True
    if a != b:
        return False
    try:
        return bool(orjson.dumps(a) == orjson.dumps(b))
    except TypeError:  # not plain JSON: let the walk decide
        return False


def _diff_fields(
    old: dict[str, Any],
    new: dict[str, Any],
    schema: SchemaNode | None,
    path: fieldpath.Path,
    out: _Sets,
) -> None:
    """The fields of two granular maps (or associative list items), as ``_walk_fields``."""
    for name, child in new.items():
        before = old.get(name, _ABSENT)
        if before is _ABSENT:
            _ownable_at(child, _child(schema, name), (*path, "f:" + name), out[0])
        elif not isinstance(child, dict | list) and not isinstance(before, dict | list):
            # Two leaves (most fields): ``_diff_value``'s first case, without its call.
            if before != child:
                out[1].add((*path, "f:" + name))
        else:
            _diff_value(before, child, _child(schema, name), (*path, "f:" + name), out)
    for name, child in old.items():
        if name not in new:
            child_path = (*path, "f:" + name)
            _ownable_at(child, _child(schema, name), child_path, out[2])


def _diff_value(
    old: Any, new: Any, schema: SchemaNode | None, path: fieldpath.Path, out: _Sets
) -> None:
    """One non-root value on both sides (``_walk``'s cases)."""
    if not isinstance(old, dict | list) and not isinstance(new, dict | list):
        if old != new:  # two leaves: modified as ``compare`` sees it (1 == 1.0 is no change)
            out[1].add(path)
        return
    if _same(old, new):
        return
    if type(old) is dict and type(new) is dict and old and new and not _atomic_object(schema):
        # Both are a struct or a map node of the same kind here: no change at ``path``.
        _diff_fields(old, new, schema, path, out)
        return
    if (
        type(old) is list
        and type(new) is list
        and _diff_list_remembered(old, new, schema, path, out)
    ):
        return
    _compare_into(_flat_at(old, schema, path), _flat_at(new, schema, path), out)


def _diff_list_remembered(
    old: list[Any], new: list[Any], schema: SchemaNode | None, path: fieldpath.Path, out: _Sets
) -> bool:
    """``_diff_list``, remembered by the schema node, ``path`` and both lists' JSON texts.

    Its answer is a pure function of those: keys, values and types all come
    from the texts (``_same`` and the item keys read texts, and leaves equal
    in text are equal values). Status writes repeat their lists: the
    kubelet's conditions of pods started in the same second have the same
    texts from pod to pod, and walking them is most of a status diff. Short
    lists (a pod's one IP) and atomic ones (one leaf) cost less to walk than
    to encode.
    """
    if len(old) + len(new) <= _REMEMBERED_ITEMS or list_kind(schema)[0] == "atomic":
        return _diff_list(old, new, schema, path, out)
    try:
        parts = (orjson.dumps(path), orjson.dumps(old), orjson.dumps(new))
    except TypeError:  # not plain JSON: walked every time
        return _diff_list(old, new, schema, path, out)
    # JSON texts hold no raw NUL, so the joined key names one triple.
    key = id(schema).to_bytes(8, "little") + b"\0".join(parts)
    hit = _LIST_DIFFS.get(key)
    # The entry holds its schema node, so no other node can take that id meanwhile.
    if hit is None or hit[0] is not schema:
        found: _Sets = (set(), set(), set())
        walked = _diff_list(old, new, schema, path, found)
        hit = (schema, walked, tuple(map(frozenset, found)))
        _LIST_DIFFS.put(key, hit)
    for target, paths in zip(out, hit[2], strict=True):
        target.update(paths)
    return bool(hit[1])


# ``_diff_list``'s answers (walked?, added, modified, removed), by digest of the
# schema node's id and the texts of the path and both lists. An answer holds
# ~10-40 paths (~5 KB for a pod's conditions), so 2 x 512 of them cost ~5 MB
# at most; what repeats does so within seconds (pods started together).
_LIST_DIFFS = shapes.JsonMemo(512, digest=True)
_REMEMBERED_ITEMS = 2


def _diff_list(
    old: list[Any], new: list[Any], schema: SchemaNode | None, path: fieldpath.Path, out: _Sets
) -> bool:
    """Two lists: item by item as maps or sets, whole when atomic (False: compare them whole)."""
    kind, keys = list_kind(schema)
    if kind == "atomic":
        # One leaf at ``path`` on both sides (``_walk_list``): modified when the values differ.
        if old != new:
            out[1].add(path)
        return True
    if not old or not new:
        return False
    items = schema.items() if schema is not None else None
    try:
        old_elements = [item_element(item, kind, keys, items) for item in old]
        new_elements = [item_element(item, kind, keys, items) for item in new]
    except TypedError:
        return False
    if _first_duplicate(old_elements) is not None or _first_duplicate(new_elements) is not None:
        return False
    # Both are a "map" node at ``path``: no change there.
    old_items = dict(zip(old_elements, old, strict=True))
    for element, item in zip(new_elements, new, strict=True):
        item_path = (*path, element)
        before = old_items.pop(element, _ABSENT)
        if before is _ABSENT:
            _ownable_item(item, kind, items, item_path, out[0])
        elif _same(before, item):
            continue
        elif kind != "set" and type(before) is dict and type(item) is dict:
            _diff_fields(before, item, items, item_path, out)  # both "item" nodes
        else:
            _compare_into(
                _flat_item(before, kind, items, item_path),
                _flat_item(item, kind, items, item_path),
                out,
            )
    for element, item in old_items.items():
        _ownable_item(item, kind, items, (*path, element), out[2])
    return True


_ABSENT: Any = object()


def _flat_at(value: Any, schema: SchemaNode | None, path: fieldpath.Path) -> Flat:
    """What ``flatten`` records for ``value`` at ``path`` (a field's value or the root)."""
    out: Flat = {}
    if path and not isinstance(value, dict | list):
        out[path] = Node("leaf", value)  # as ``_walk_fields`` records a scalar field
    else:
        _walk(value, schema, path, out, False)
    return out


def _flat_item(item: Any, kind: ListKind, items: SchemaNode | None, path: fieldpath.Path) -> Flat:
    """What ``_walk_list`` records for one item of an associative list."""
    out: Flat = {}
    if kind == "set" or not isinstance(item, dict):
        out[path] = Node("leaf", item)
    else:
        out[path] = Node("item")
        _walk_fields(item, items, path, out, False)
    return out


# A part on one side only is added or removed whole: the paths of its flat form
# that are ownable (not structs), collected without building that form.


def _ownable_at(
    value: Any, schema: SchemaNode | None, path: fieldpath.Path, out: set[fieldpath.Path]
) -> None:
    """The ownable paths of ``_flat_at(value, schema, path)``, into ``out``."""
    if path and not isinstance(value, dict | list):
        out.add(path)
    else:
        _ownable(value, schema, path, out)


def _ownable_item(
    item: Any,
    kind: ListKind,
    items: SchemaNode | None,
    path: fieldpath.Path,
    out: set[fieldpath.Path],
) -> None:
    """The ownable paths of ``_flat_item(item, kind, items, path)``, into ``out``."""
    out.add(path)  # a leaf or an item
    if kind != "set" and isinstance(item, dict):
        _ownable_fields(item, items, path, out)


def _ownable(
    value: Any, schema: SchemaNode | None, path: fieldpath.Path, out: set[fieldpath.Path]
) -> None:
    """``_walk``'s paths but its structs."""
    if isinstance(value, dict):
        if not value or _atomic_object(schema):
            out.add(path)
            return
        if path and not _is_struct(schema):
            out.add(path)
        _ownable_fields(value, schema, path, out)
        return
    if isinstance(value, list):
        _ownable_list(value, schema, path, out)
        return
    out.add(path)


def _ownable_fields(
    value: dict[str, Any], schema: SchemaNode | None, path: fieldpath.Path, out: set[fieldpath.Path]
) -> None:
    for name, child in value.items():
        child_path = (*path, "f:" + name)
        if isinstance(child, dict | list):
            _ownable(child, _child(schema, name), child_path, out)
        else:
            out.add(child_path)


def _ownable_list(
    value: list[Any], schema: SchemaNode | None, path: fieldpath.Path, out: set[fieldpath.Path]
) -> None:
    """``_walk_list``'s paths (never strict): the list is a leaf or a map node, items below."""
    out.add(path)
    kind, keys = list_kind(schema)
    if kind == "atomic" or not value:
        return
    items = schema.items() if schema is not None else None
    try:
        elements = [item_element(item, kind, keys, items) for item in value]
    except TypedError:
        return
    if _first_duplicate(elements) is not None:
        return
    for element, item in zip(elements, value, strict=True):
        _ownable_item(item, kind, items, (*path, element), out)


def _compare_into(old: Flat, new: Flat, out: _Sets) -> None:
    found = compare(old, new)
    out[0].update(found.added)
    out[1].update(found.modified)
    out[2].update(found.removed)


def merge(live: Any, config: Any, schema: SchemaNode | None) -> Any:
    """``config`` applied onto ``live``: config wins, granular parts merge."""
    if isinstance(live, dict) and isinstance(config, dict) and not _atomic_object(schema):
        out = dict(live)
        for name, value in config.items():
            child = _child(schema, name)
            out[name] = merge(live[name], value, child) if name in live else copy.deepcopy(value)
        return out
    if isinstance(live, list) and isinstance(config, list):
        kind, keys = list_kind(schema)
        if kind != "atomic":
            return _merge_list(live, config, schema, kind, keys)
    return copy.deepcopy(config)


def _merge_list(
    live: list[Any],
    config: list[Any],
    schema: SchemaNode | None,
    kind: ListKind,
    keys: tuple[str, ...],
) -> list[Any]:
    items = schema.items() if schema is not None else None
    try:
        live_elements = [item_element(i, kind, keys, items) for i in live]
        config_by_element = {item_element(i, kind, keys, items): i for i in config}
    except TypedError:
        return copy.deepcopy(config)
    out: list[Any] = []
    for element, item in zip(live_elements, live, strict=True):
        if element in config_by_element:
            out.append(merge(item, config_by_element.pop(element), items))
        else:
            out.append(item)
    out.extend(copy.deepcopy(i) for i in config_by_element.values())
    return out


def remove(obj: Any, paths: Iterable[fieldpath.Path], schema: SchemaNode | None) -> None:
    """Delete each path from ``obj`` in place (missing ones are skipped)."""
    for path in sorted(paths, key=len):
        _remove_one(obj, path, schema)


def _remove_one(obj: Any, path: fieldpath.Path, schema: SchemaNode | None) -> None:
    parent: Any = obj
    node_schema = schema
    for depth, element in enumerate(path):
        last = depth == len(path) - 1
        if element.startswith("f:"):
            name = element[2:]
            if not isinstance(parent, dict) or name not in parent:
                return
            if last:
                del parent[name]
                return
            parent, node_schema = parent[name], _child(node_schema, name)
            continue
        if not isinstance(parent, list):
            return
        position = _find(parent, element, node_schema)
        if position is None:
            return
        if last:
            del parent[position]
            return
        parent = parent[position]
        node_schema = node_schema.items() if node_schema is not None else None


def _find(items: list[Any], element: str, schema: SchemaNode | None) -> int | None:
    if element.startswith("i:"):
        position = int(element[2:])
        return position if position < len(items) else None
    kind, keys = list_kind(schema)
    item_schema = schema.items() if schema is not None else None
    for position, item in enumerate(items):
        try:
            if item_element(item, kind, keys, item_schema) == element:
                return position
        except TypedError:
            return None
    return None
