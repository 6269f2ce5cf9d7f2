"""Ordering of merged lists in a strategic merge patch.

After merging, upstream splits a list into the items the patch named and the
server-only items, sorts the first by the patch's order (or
``$setElementOrder``) and the second by the server's order, then interleaves
them by the server's order (``normalizeElementOrder`` / ``mergeSortedSlice``
in apimachinery). Both sorts use a comparator that calls an item "less" when
either item is missing from the order list; Go's stable sort is an insertion
sort for up to 20 items, which we replay exactly in that case. For longer
lists with such missing items the result may differ from upstream's block
merge (a case only reachable with an empty ``$setElementOrder``).
"""

from __future__ import annotations

from typing import Any

from kajitori.machinery.patching import common

MAP = "map[string]interface {}"


def normalize(
    patch_items: list[Any],
    server_only: list[Any],
    *,
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str,
    kind: str,
) -> list[Any]:
    """Sort both partitions by their order lists and interleave them by the server's."""
    patch_items = _sort_by(patch_items, patch_order, merge_key=merge_key, kind=kind)
    if not server_only:  # interleaving with nothing gives them as they are
        return patch_items
    server_only = _sort_by(server_only, server_order, merge_key=merge_key, kind=kind)
    return _interleave(server_only, patch_items, _Index(server_order, merge_key, kind))


class _Index:
    """First position of each item (by merge-key value for maps) in an order list."""

    __slots__ = ("_kind", "_merge_key", "_positions")

    def __init__(self, order: list[Any], merge_key: str, kind: str) -> None:
        self._merge_key = merge_key
        self._kind = kind
        self._positions: dict[Any, int] = {}
        for position, item in enumerate(order):
            self._positions.setdefault(self._identity(item), position)

    def _identity(self, item: Any) -> Any:
        if self._kind == MAP:
            value = item.get(self._merge_key) if isinstance(item, dict) else None
            return common.hash_key(value)
        return common.hash_key(item)

    def of(self, item: Any) -> int:
        return self._positions.get(self._identity(item), -1)


def _sort_by(items: list[Any], order: list[Any], *, merge_key: str, kind: str) -> list[Any]:
    to_delete: list[Any] = []
    if kind == MAP:
        _require_merge_key(merge_key, items, order)
        to_delete = [m for m in items if m.get("$patch") == "delete"]
        items = [m for m in items if m.get("$patch") != "delete"]
    index = _Index(order, merge_key, kind)
    positions = [index.of(item) for item in items]
    if all(p >= 0 for p in positions):
        ranked = sorted(zip(positions, range(len(items)), strict=True))
        ordered = [items[i] for _, i in ranked]
    else:
        ordered = _insertion_sort(items, positions)
    return ordered + to_delete


def _insertion_sort(items: list[Any], positions: list[int]) -> list[Any]:
    # Go's comparator: less(a, b) unless both are found and a is not before b.
    pairs = list(zip(positions, items, strict=True))
    for i in range(1, len(pairs)):
        j = i
        while j > 0 and _less(pairs[j][0], pairs[j - 1][0]):
            pairs[j], pairs[j - 1] = pairs[j - 1], pairs[j]
            j -= 1
    return [item for _, item in pairs]


def _less(a: int, b: int) -> bool:
    return a < b if a >= 0 and b >= 0 else True


def _require_merge_key(merge_key: str, *lists: list[Any]) -> None:
    for items in lists:
        for item in items:
            if not isinstance(item, dict):
                raise common.PatchError(f"expected a {MAP}, but received a {common.go_type(item)}")
            if merge_key not in item:
                raise common.PatchError(
                    f"map: {common.go_value(item)} does not contain declared merge key: {merge_key}"
                )


def _interleave(left: list[Any], right: list[Any], server: _Index) -> list[Any]:
    """Insert server-only ``left`` items among ``right`` where the server had them."""
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if j >= len(right):
            out.append(left[i])
            i += 1
        elif i >= len(left):
            out.append(right[j])
            j += 1
        else:
            li, ri = server.of(left[i]), server.of(right[j])
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out
