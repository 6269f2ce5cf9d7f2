"""JSON patch (RFC 6902), as kube-apiserver applies it.

Upstream applies ``application/json-patch+json`` with evanphx/json-patch v4,
which departs from the RFC in ways clients can observe, and we follow it:

* ``replace`` of a missing object member adds it (v4 only checks arrays);
* ``copy`` from a missing object member copies ``null``;
* ``test`` of a missing member passes when the value is ``null`` or absent,
  and a ``null`` member counts as missing;
* ``add`` with path ``""`` fails; ``replace`` with ``""`` swaps the whole
  document (which must then be an object or array);
* negative array indices count from the end;
* a path without a leading ``/`` has its first token ignored.

Error texts are v4's. A patch that is not a list of operations is a 400; more
than 10,000 operations is a 413; every failure while applying is a 422 (whose
text upstream does not send; see ``PatchError.to_status_error``).
"""

from __future__ import annotations

import re
from typing import Any

from kajitori.machinery.patching import common

MAX_OPERATIONS = 10000

_INDEX = re.compile(r"[+-]?[0-9]+")
_ESCAPE = re.compile(r"~[01]")
_MISSING = "missing value"
_INVALID_INDEX = "invalid index referenced"
_ABSENT = object()  # an absent "value" member, as opposed to an explicit null


def apply_json_patch(doc: Any, patch: Any) -> Any:
    """Apply RFC 6902 operations to ``doc``; returns a new document.

    ``patch`` is the decoded request body. ``None`` (a JSON ``null`` body)
    applies no operations, as upstream's decoder yields an empty patch for it.
    """
    operations = _decode(patch)
    if len(operations) > MAX_OPERATIONS:
        raise common.PatchError(
            f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, "
            f"got {len(operations)}",
            code=413,
        )
    holder = [common.deep_copy(doc)]
    for operation in operations:
        _apply_one(holder, operation)
    return holder[0]


def _decode(patch: Any) -> list[dict[str, Any]]:
    if patch is None:
        return []
    if not isinstance(patch, list):
        raise common.PatchError(_unmarshal_error(patch, "jsonpatch.Patch"), code=400)
    for operation in patch:
        if operation is not None and not isinstance(operation, dict):
            raise common.PatchError(_unmarshal_error(operation, "jsonpatch.Operation"), code=400)
    return [op if op is not None else {} for op in patch]


def _unmarshal_error(value: Any, go_type: str) -> str:
    kind = {dict: "object", list: "array", str: "string", bool: "bool"}.get(type(value), "number")
    return f"json: cannot unmarshal {kind} into Go value of type {go_type}"


def _apply_one(holder: list[Any], op: dict[str, Any]) -> None:
    kind = op.get("op")
    handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
    if handler is None:
        shown = kind if isinstance(kind, str) else "unknown"
        raise common.PatchError(f"Unexpected kind: {shown}", code=422)
    handler(holder, op)


def _fail(message: str) -> common.PatchError:
    return common.PatchError(message, code=422)


def _member(op: dict[str, Any], name: str, what: str) -> str:
    """The string member ``name`` ("path"/"from"); ``what`` prefixes the error."""
    value = op.get(name)
    if isinstance(value, str):
        return value
    if value is None:
        detail = (
            f"operation missing path field: {_MISSING}"
            if name == "path"
            else f"operation, missing from field: {_MISSING}"
        )
    else:
        detail = _unmarshal_error(value, "string")
    raise _fail(f"{what}: {detail}")


def _value(op: dict[str, Any]) -> Any:
    return op.get("value", _ABSENT)


def _unescape(token: str) -> str:
    return _ESCAPE.sub(lambda m: "/" if m.group() == "~1" else "~", token)


def _find_parent(holder: list[Any], path: str) -> tuple[Any, str] | None:
    """The container holding the last token of ``path``, and that token."""
    tokens = path.split("/")
    if len(tokens) < 2:
        return None
    node = holder[0]
    for token in tokens[1:-1]:
        try:
            node = _get(node, _unescape(token))
        except common.PatchError:
            return None
        if not isinstance(node, dict | list):
            return None
    return node, _unescape(tokens[-1])


def _parse_index(key: str) -> int:
    if not _INDEX.fullmatch(key):
        raise common.PatchError(f'strconv.Atoi: parsing "{key}": invalid syntax')
    return int(key)


def _resolve_index(key: str, length: int) -> int:
    index = _parse_index(key)
    if index < -length or index >= length:
        raise common.PatchError(f"Unable to access invalid index: {index}: {_INVALID_INDEX}")
    return index + length if index < 0 else index


def _get(container: Any, key: str) -> Any:
    if isinstance(container, dict):
        return container.get(key)
    return container[_resolve_index(key, len(container))]


def _add_to(container: Any, key: str, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
        return
    if key == "-":
        container.append(value)
        return
    try:
        index = _parse_index(key)
    except common.PatchError as err:
        raise common.PatchError(f"value was not a proper array index: '{key}': {err}") from None
    size = len(container) + 1
    if index >= size or index < -size:
        raise common.PatchError(f"Unable to access invalid index: {index}: {_INVALID_INDEX}")
    container.insert(index + size if index < 0 else index, value)


def _remove_from(container: Any, key: str) -> None:
    if isinstance(container, dict):
        if key not in container:
            raise common.PatchError(f"Unable to remove nonexistent key: {key}: {_MISSING}")
        del container[key]
        return
    del container[_resolve_index(key, len(container))]


def _add(holder: list[Any], op: dict[str, Any]) -> None:
    path = _member_or(op, "path", f"add operation failed to decode path: {_MISSING}")
    found = _find_parent(holder, path)
    if found is None:
        raise _fail(f'add operation does not apply: doc is missing path: "{path}": {_MISSING}')
    value = _value(op)
    try:
        _add_to(*found, None if value is _ABSENT else common.deep_copy(value))
    except common.PatchError as err:
        raise _fail(f"error in add for path: '{path}': {err}") from None


def _member_or(op: dict[str, Any], name: str, message: str) -> str:
    """Like ``_member`` for the operations whose decode error text is fixed."""
    value = op.get(name)
    if not isinstance(value, str):
        raise _fail(message)
    return value


def _remove(holder: list[Any], op: dict[str, Any]) -> None:
    path = _member_or(op, "path", f"remove operation failed to decode path: {_MISSING}")
    found = _find_parent(holder, path)
    if found is None:
        raise _fail(f'remove operation does not apply: doc is missing path: "{path}": {_MISSING}')
    try:
        _remove_from(*found)
    except common.PatchError as err:
        raise _fail(f"error in remove for path: '{path}': {err}") from None


def _replace(holder: list[Any], op: dict[str, Any]) -> None:
    path = _member(op, "path", "replace operation failed to decode path")
    value = _value(op)
    if path == "":
        if not isinstance(value, dict | list):
            # v4 wraps a nil error here, which Go renders as below.
            raise _fail("replace operation value must be object or array: %!w(<nil>)")
        holder[0] = common.deep_copy(value)
        return
    found = _find_parent(holder, path)
    if found is None:
        raise _fail(f"replace operation does not apply: doc is missing path: {path}: {_MISSING}")
    container, key = found
    try:
        _get(container, key)  # arrays must have the index; objects need not (v4)
    except common.PatchError:
        raise _fail(
            f"replace operation does not apply: doc is missing key: {path}: {_MISSING}"
        ) from None
    new = None if value is _ABSENT else common.deep_copy(value)
    if isinstance(container, dict):
        container[key] = new
    else:
        container[_resolve_index(key, len(container))] = new


def _move(holder: list[Any], op: dict[str, Any]) -> None:
    source = _member(op, "from", "move operation failed to decode from")
    found = _find_parent(holder, source)
    if found is None:
        raise _fail(
            f"move operation does not apply: doc is missing from path: {source}: {_MISSING}"
        )
    container, key = found
    try:
        value = _get(container, key)
        _remove_from(container, key)
    except common.PatchError as err:
        raise _fail(f"error in move for path: '{key}': {err}") from None
    path = _member(op, "path", "move operation failed to decode path")
    target = _find_parent(holder, path)
    if target is None:
        raise _fail(
            f"move operation does not apply: doc is missing destination path: {path}: {_MISSING}"
        )
    try:
        _add_to(*target, value)
    except common.PatchError as err:
        raise _fail(f"error in move for path: '{path}': {err}") from None


def _copy(holder: list[Any], op: dict[str, Any]) -> None:
    source = _member(op, "from", "copy operation failed to decode from")
    found = _find_parent(holder, source)
    if found is None:
        raise _fail(
            f"copy operation does not apply: doc is missing from path: {source}: {_MISSING}"
        )
    try:
        value = _get(*found)
    except common.PatchError as err:
        raise _fail(f"error in copy for from: '{source}': {err}") from None
    path = _member_or(op, "path", f"copy operation failed to decode path: {_MISSING}")
    target = _find_parent(holder, path)
    if target is None:
        raise _fail(
            f"copy operation does not apply: doc is missing destination path: {path}: {_MISSING}"
        )
    try:
        _add_to(*target, common.deep_copy(value))
    except common.PatchError as err:
        raise _fail(f"error while adding value during copy: {err}") from None


def _test(holder: list[Any], op: dict[str, Any]) -> None:
    path = _member(op, "path", "test operation failed to decode path")
    expected = _value(op)
    failed = _fail(f"testing value {path} failed: test failed")
    if path == "":
        if expected is _ABSENT or not json_equal(holder[0], expected):
            raise failed
        return
    found = _find_parent(holder, path)
    if found is None:
        raise _fail(f"test operation does not apply: is missing path: {path}: {_MISSING}")
    try:
        actual = _get(*found)
    except common.PatchError as err:
        raise _fail(f"error in test for path: '{path}': {err}") from None
    if actual is None:
        # A missing member and a null one look the same to v4.
        if expected is _ABSENT or expected is None:
            return
        raise failed
    if expected is _ABSENT or not json_equal(actual, expected):
        raise failed


def json_equal(a: Any, b: Any) -> bool:
    """Structural JSON equality; numbers compare by type and value as their text would."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return common.same_value(a, b)


_HANDLERS = {
    "add": _add,
    "remove": _remove,
    "replace": _replace,
    "move": _move,
    "copy": _copy,
    "test": _test,
}
