"""Response transformations a client can ask for with ``Accept: ...;as=<Kind>``.

* ``Table`` (meta.k8s.io v1 or v1beta1): the resource's own columns (see
  ``registry.generic.table``), one row per object, each row carrying the
  object's metadata (``includeObject=Metadata``, the default), the whole
  object (``Object``) or nothing (``None``).
* ``PartialObjectMetadata`` / ``PartialObjectMetadataList``: metadata only,
  what metadata informers (garbage collector, kubectl's delete) read.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.machinery import errors
from kajitori.registry.resource import ResourceInfo
from kajitori.server import negotiation

Object = dict[str, Any]


def _meta_api_version(media: negotiation.MediaType) -> str:
    return f"meta.k8s.io/{media.param('v') or 'v1'}"


def partial_object_metadata(obj: Object, media: negotiation.MediaType) -> Object:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": _meta_api_version(media),
        "metadata": obj.get("metadata", {}),
    }


def partial_object_metadata_list(
    items: Sequence[Object], list_meta: Object, media: negotiation.MediaType
) -> Object:
    return {
        "kind": "PartialObjectMetadataList",
        "apiVersion": _meta_api_version(media),
        "metadata": list_meta,
        "items": [partial_object_metadata(o, media) for o in items],
    }


def table(
    info: ResourceInfo,
    items: Sequence[Object],
    media: negotiation.MediaType,
    query: dict[str, str],
    *,
    now: datetime.datetime,
    list_meta: Object | None = None,
    include_columns: bool = True,
) -> Object:
    include = query.get("includeObject", "") or "Metadata"
    if include not in ("None", "Metadata", "Object"):
        raise errors.bad_request(
            f"includeObject must be one of None, Metadata, Object, got: {include}"
        )
    if info.table.order is not None:
        items = sorted(items, key=info.table.order)
    rows = [_row(info, obj, include, media, now) for obj in items]
    result: Object = {
        "kind": "Table",
        "apiVersion": _meta_api_version(media),
        "metadata": list_meta or {"resourceVersion": _rv(items)},
        "columnDefinitions": list(info.table.column_definitions) if include_columns else None,
        "rows": rows,
    }
    return result


def _rv(items: Sequence[Object]) -> str:
    if len(items) == 1:
        rv: str = items[0].get("metadata", {}).get("resourceVersion", "")
        return rv
    return ""


def _row(
    info: ResourceInfo,
    obj: Object,
    include: str,
    media: negotiation.MediaType,
    now: datetime.datetime,
) -> Object:
    row: Object = {"cells": list(info.table.row(obj, now))}
    if include == "Metadata":
        row["object"] = partial_object_metadata(obj, media)
    elif include == "Object":
        row["object"] = obj
    return row
