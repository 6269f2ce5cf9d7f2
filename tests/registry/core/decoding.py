"""A request body decoded both ways, with the stored object and without: for the tests that
pin ``resources.decode_object``'s shortcuts to its full path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from kajitori.machinery import errors

Object = dict[str, Any]


async def _attempt(call: Awaitable[Object]) -> tuple[Object | None, errors.StatusError | None]:
    try:
        return await call, None
    except errors.StatusError as exc:
        return None, exc


async def decoded_both_ways(
    decode: Callable[..., Awaitable[Object]], scope: Any, stored: Any, differences: list[Any]
) -> Object:
    """The full path's answer (or its error, raised); each way the shortcut differs is noted."""
    warnings = list(scope.ctx.warnings)
    slow, slow_error = await _attempt(decode(scope))
    slow_warnings, scope.ctx.warnings[:] = list(scope.ctx.warnings), warnings
    fast, fast_error = await _attempt(decode(scope, stored))
    if scope.ctx.warnings != slow_warnings:
        differences.append(("warnings", scope.ctx.warnings, slow_warnings))
    if slow_error is not None or fast_error is not None:
        if (getattr(fast_error, "message", None), getattr(fast_error, "code", None)) != (
            getattr(slow_error, "message", None),
            getattr(slow_error, "code", None),
        ):
            differences.append(("error", fast_error, slow_error))
        raise slow_error or fast_error  # type: ignore[misc]
    if orjson.dumps(fast) != orjson.dumps(slow):
        differences.append(("object", fast, slow))
    assert slow is not None
    return slow
