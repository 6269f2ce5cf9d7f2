"""Field paths, sets of them, and the FieldsV1 encoding (upstream: smd ``fieldpath``).

A path is a tuple of elements, each already in FieldsV1 spelling:
``f:<field>`` (a struct field or map key), ``k:{...}`` (an associative list
item by its keys, JSON with sorted keys), ``v:<json>`` (a set item by value)
and ``i:<n>`` (an item by position). A field set is a frozenset of paths;
it is the unit of ownership.

FieldsV1 nests the elements; ``{}`` marks a path that is in the set and has
nothing below it, and ``".": {}`` marks one that is in the set and also has
members below it. Elements are written in upstream's order: fields, then
keys, then values, then indexes, each sorted.

Entries read back with their object are mostly left as they are: ``check``
tells a valid, canonical tree (one ``to_fields_v1`` would write) by a digest
when seen before, and ``edited`` adds and removes paths in such a tree
without decoding it into a set.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from typing import Any

import orjson

Path = tuple[str, ...]
FieldSet = frozenset[Path]

EMPTY: FieldSet = frozenset()
_KIND_ORDER = {"f": 0, "k": 1, "v": 2, "i": 3}


class FieldsV1Error(ValueError):
    """A managedFields entry's ``fieldsV1`` that is not a valid field set."""


def field(name: str) -> str:
    return "f:" + name


def key(values: dict[str, Any]) -> str:
    if len(values) == 1:
        ((name, item),) = values.items()
        if type(item) is str:  # (not 1, 1.0 or true: equal as keys, other elements)
            return _one_key(name, item)
    return "k:" + orjson.dumps(dict(sorted(values.items()))).decode()


@functools.lru_cache(maxsize=4096)
def _one_key(name: str, item: str) -> str:
    """Most list items are keyed by one string (name, type, ip): their elements recur."""
    return "k:" + orjson.dumps({name: item}).decode()


def value(item: Any) -> str:
    return "v:" + orjson.dumps(item, option=orjson.OPT_SORT_KEYS).decode()


def index(position: int) -> str:
    return f"i:{position}"


@functools.lru_cache(maxsize=65536)
def sort_key(element: str) -> tuple[int, Any]:
    """Upstream's element order; memoised, as the same few elements recur in every object."""
    kind = _KIND_ORDER.get(element[:1], 4)
    if kind == 3:
        return kind, int(element[2:])
    return kind, element[2:]


_sort_key = sort_key


# Recent encodings and decodings, both ways (bounded; started over when full).
# An object's entries are decoded and encoded again on each of its writes, and
# most entries (other managers', a status write's view of the creator's) come
# back unchanged: a pod's create entry is decoded at its binding's and status
# writes and encoded again unchanged at each status write.
_MEMO_LIMIT = 4096
_ENCODED: dict[FieldSet, bytes] = {}
_DECODED: dict[bytes, FieldSet] = {}


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """``_to_fields_v1``, remembered for recent field sets (a fresh object each call)."""
    if not isinstance(paths, frozenset):
        return _to_fields_v1(paths)
    encoded = _ENCODED.get(paths)
    if encoded is not None:
        tree: dict[str, Any] = orjson.loads(encoded)
        return tree
    tree = _to_fields_v1(paths)
    if len(_ENCODED) >= _MEMO_LIMIT:
        _ENCODED.clear()
    encoded = _ENCODED[paths] = orjson.dumps(tree)
    if () not in paths:  # the root is the one path FieldsV1 cannot carry
        # What this entry decodes to when it is read back with its object.
        if len(_DECODED) >= _MEMO_LIMIT:
            _DECODED.clear()
        _DECODED[encoded] = paths
        note_canonical(encoded)
    return tree


def _to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """Encode a field set as the nested FieldsV1 object.

    The paths go into a trie first, and each node's elements are then sorted
    in upstream's order on the way out, a member node with something below it
    getting its ``"."`` marker first. Sorting the few elements of each node
    costs less than sorting whole paths, whose keys are tuples of tuples.
    The root is never a member: FieldsV1 cannot carry the root path.
    """
    trie: dict[str, Any] = {}
    members: set[int] = set()  # ids of the trie nodes that are paths of the set
    for path in paths:
        node = trie
        for element in path:
            child = node.get(element)
            if child is None:
                child = node[element] = {}
            node = child
        if path:
            members.add(id(node))
    return _sorted_nodes(trie, members)


def _sorted_nodes(node: dict[str, Any], members: set[int]) -> dict[str, Any]:
    """The FieldsV1 below a trie ``node`` of ``_to_fields_v1``, in upstream's order."""
    out: dict[str, Any] = {}
    for element in sorted(node, key=_sort_key) if len(node) > 1 else node:
        child = node[element]
        if not child:
            out[element] = {}
        elif id(child) in members:
            out[element] = {".": {}, **_sorted_nodes(child, members)}
        else:
            out[element] = _sorted_nodes(child, members)
    return out


def from_fields_v1(tree: Any) -> FieldSet:
    """Decode FieldsV1; a malformed tree raises ``FieldsV1Error``."""
    if not isinstance(tree, dict):
        raise FieldsV1Error("FieldsV1 must be an object")
    try:
        key = orjson.dumps(tree)
    except TypeError:  # not plain JSON (an in-process caller's object): no memo
        return _from_fields_v1(tree)
    fields = _DECODED.get(key)
    if fields is None:
        fields = _from_fields_v1(tree)
        if len(_DECODED) >= _MEMO_LIMIT:
            _DECODED.clear()
        _DECODED[key] = fields
        if _canonical(tree):  # what encoding the set gives: remember it that way too
            if len(_ENCODED) >= _MEMO_LIMIT:
                _ENCODED.clear()
            _ENCODED[fields] = key
    return fields


# Digests of FieldsV1 encodings known to be valid, each with whether it is canonical
# (what ``to_fields_v1`` writes for its set). An entry is written by one request
# and read back by the next few writes of its object, which need only know that
# it decodes and whether it can be written back as it is: a digest answers that
# without holding the set (~15 KB for a pod's create entry) or the text.
_CHECK_LIMIT = 32768
_CHECKED: dict[bytes, bool] = {}


def _digest(encoded: bytes) -> bytes:
    return hashlib.blake2b(encoded, digest_size=16).digest()


def note_canonical(encoded: bytes) -> None:
    """Remember ``encoded`` (``orjson.dumps`` of a tree this module's encoders wrote) as canonical."""
    if len(_CHECKED) >= _CHECK_LIMIT:
        _CHECKED.clear()
    _CHECKED[_digest(encoded)] = True


def check(tree: Any) -> bool:
    """Whether a FieldsV1 tree is canonical; a malformed one raises ``FieldsV1Error``.

    Canonical: exactly what ``to_fields_v1`` writes for the set it decodes to
    (key order included), so it may be written back as it is. Answers for
    trees seen before come from their digest.
    """
    if not isinstance(tree, dict):
        raise FieldsV1Error("FieldsV1 must be an object")
    try:
        encoded = orjson.dumps(tree)
    except TypeError:  # not plain JSON (an in-process caller's object): decode, never reuse
        _from_fields_v1(tree)
        return False
    digest = _digest(encoded)
    known = _CHECKED.get(digest)
    if known is not None:
        return known
    from_fields_v1(tree)  # raises if malformed
    canonical = _canonical(tree)
    if len(_CHECKED) >= _CHECK_LIMIT:
        _CHECKED.clear()
    _CHECKED[digest] = canonical
    return canonical


def contains(tree: dict[str, Any], path: Path) -> bool:
    """Whether the set a valid FieldsV1 ``tree`` encodes holds ``path``."""
    return bool(_members(tree, (path,)))


def _members(tree: dict[str, Any], paths: Iterable[Path]) -> list[Path]:
    """Those of ``paths`` the set a valid FieldsV1 ``tree`` encodes holds (not decoded)."""
    found: list[Path] = []
    for path in paths:
        node: Any = tree
        for element in path:
            node = node.get(element)
            if node is None:
                break
        else:
            # Present: a member if it has nothing below it or is marked "."; the root is never one.
            if path and (not node or "." in node):
                found.append(path)
    return found


def edited(tree: dict[str, Any], add: Iterable[Path], remove: Iterable[Path]) -> dict[str, Any]:
    """``to_fields_v1((from_fields_v1(tree) | add) - remove)`` for a canonical ``tree``.

    Without decoding or encoding it: the paths to add and remove are looked
    up, and only when some change the set is a copy of ``tree`` changed in
    place (``tree`` itself comes back otherwise). ``add`` and ``remove`` must
    be disjoint and hold no root path. The answer is noted as canonical, as
    ``to_fields_v1``'s are.
    """
    removing = _members(tree, remove)
    adding = list(add)
    if adding:
        held = set(_members(tree, adding))
        adding = [p for p in adding if p not in held]
    if not adding and not removing:
        return tree
    out: dict[str, Any] = orjson.loads(orjson.dumps(tree))  # a private copy
    for path in removing:
        discard(out, path)
    unsorted: dict[int, dict[str, Any]] = {}
    for path in adding:
        _insert(out, path, unsorted)
    for node in unsorted.values():
        items = sorted(node.items(), key=_item_order)
        node.clear()
        node.update(items)
    note_canonical(orjson.dumps(out))
    return out


def _item_order(item: tuple[str, Any]) -> tuple[int, tuple[int, Any]]:
    element = item[0]
    return (0, (0, "")) if element == "." else (1, _sort_key(element))


def _insert(tree: dict[str, Any], path: Path, unsorted: dict[int, dict[str, Any]]) -> None:
    """Make ``path`` a member of the FieldsV1 ``tree``; nodes whose keys it adds are noted."""
    node = tree
    last = len(path) - 1
    for depth, element in enumerate(path):
        child = node.get(element)
        if child is None:
            # New: a member if it is the path's end, else a node holding the rest only.
            child = node[element] = {}
            unsorted[id(node)] = node
        elif depth == last:
            if child and "." not in child:
                child["."] = {}  # had members below it only; now one itself
                unsorted[id(child)] = child
        elif not child:
            child["."] = {}  # a member with nothing below it gets something below it
        node = child


def discard(tree: dict[str, Any], path: Path) -> None:
    """Make ``path`` no member of the FieldsV1 ``tree``, keeping what is below it.

    A node left with nothing is dropped, and a parent left with only its
    ``"."`` marker becomes a member with nothing below it, as the encoding
    of the set without ``path`` has it.
    """
    chain: list[tuple[dict[str, Any], str]] = []
    node = tree
    for element in path:
        child = node.get(element)
        if child is None:
            return
        chain.append((node, element))
        node = child
    if node:
        node.pop(".", None)
        return
    for parent, element in reversed(chain):
        if parent[element]:
            if len(parent[element]) == 1 and "." in parent[element]:
                parent[element] = {}
            return
        del parent[element]


def _canonical(node: dict[str, Any]) -> bool:
    """Whether ``to_fields_v1`` writes exactly this tree (key order included) for its set."""
    previous: tuple[int, Any] | None = None
    for element, child in node.items():
        if element == ".":
            if previous is not None or len(node) == 1:
                return False  # "." comes first, and only beside children
            continue
        current = _sort_key(element)
        if previous is not None and not previous < current:
            return False
        previous = current
        if child and not _canonical(child):
            return False
    return True


def _from_fields_v1(tree: dict[str, Any]) -> FieldSet:
    out: set[Path] = set()
    _collect(tree, (), out)
    return frozenset(out)


def _collect(node: dict[str, Any], prefix: Path, out: set[Path]) -> None:
    for element, child in node.items():
        if element == ".":
            if not prefix or child != {}:
                raise FieldsV1Error('invalid "." marker')
            out.add(prefix)
            continue
        _check_element(element)
        if not isinstance(child, dict):
            raise FieldsV1Error(f"expected an object under {element}")
        path = (*prefix, element)
        if child:
            _collect(child, path, out)
        else:
            out.add(path)


def _check_element(element: str) -> None:
    kind, _, body = element.partition(":")
    if kind not in _KIND_ORDER or not _:
        raise FieldsV1Error(f"unknown path element {element!r}")
    if kind == "i" and not body.isdigit():
        raise FieldsV1Error(f"invalid index {element!r}")
    if kind in ("k", "v"):
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise FieldsV1Error(f"invalid JSON in {element!r}") from None
        if kind == "k" and not isinstance(decoded, dict):
            raise FieldsV1Error(f"key {element!r} is not an object")


def render(path: Path) -> str:
    """The path as upstream prints it in conflicts: ``.spec.containers[name="web"].image``."""
    parts: list[str] = []
    for element in path:
        kind, body = element[0], element[2:]
        if kind == "f":
            parts.append("." + body)
        elif kind == "k":
            items = orjson.loads(body)
            rendered = ",".join(f"{k}={orjson.dumps(v).decode()}" for k, v in items.items())
            parts.append(f"[{rendered}]")
        elif kind == "v":
            parts.append(f"[={body}]")
        else:
            parts.append(f"[{body}]")
    return "".join(parts)


def sorted_paths(paths: Iterable[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: [_sort_key(e) for e in p])


def under(paths: Iterable[Path], prefix: Path) -> FieldSet:
    """The paths at or below ``prefix``."""
    n = len(prefix)
    return frozenset(p for p in paths if p[:n] == prefix)
