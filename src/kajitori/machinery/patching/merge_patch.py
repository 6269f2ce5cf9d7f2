"""JSON merge patch (RFC 7386), as kube-apiserver applies it.

Upstream applies ``application/merge-patch+json`` with evanphx/json-patch
v4's ``MergePatch``. It follows the RFC (objects merge member by member,
``null`` deletes, anything else replaces) except at the top level:

* a ``null`` patch or a scalar patch is a 400 ``Invalid JSON Patch`` (the RFC
  would replace the document);
* an array patch replaces the document with that array, after dropping
  ``null`` members of objects inside it.

Values a patch adds where nothing (or a non-object) was have their ``null``
object members dropped, recursively and through arrays; a value replacing an
object with a non-object is taken as is. This is v4's exact pruning.
"""

from __future__ import annotations

from typing import Any

from kajitori.machinery.patching import common

BAD_PATCH_MESSAGE = "Invalid JSON Patch"


def apply_merge_patch(doc: Any, patch: Any) -> Any:
    """Merge ``patch`` into ``doc``; returns a new document."""
    if patch is None or not isinstance(patch, dict | list):
        raise common.PatchError(BAD_PATCH_MESSAGE, code=400)
    patch = common.deep_copy(patch)
    if isinstance(patch, list):
        return _prune(patch)
    if not isinstance(doc, dict):
        return _prune(patch)
    result = common.deep_copy(doc)
    _merge_into(result, patch)
    return result


def _merge_into(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            doc.pop(key, None)
            continue
        current = doc.get(key)
        doc[key] = _prune(value) if current is None else _merge(current, value)


def _merge(current: Any, patch: Any) -> Any:
    if not isinstance(current, dict):
        return _prune(patch)
    if not isinstance(patch, dict):
        return patch
    _merge_into(current, patch)
    return current


def _prune(value: Any) -> Any:
    """Drop null object members, recursively (arrays keep their null elements)."""
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for member in value.values():
            _prune(member)
    elif isinstance(value, list):
        for element in value:
            if element is not None:
                _prune(element)
    return value
