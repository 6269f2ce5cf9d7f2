"""Secrets in the API server: strategy, ``type`` field selector, table.

Owns the order of the Secret-specific write steps (upstream spreads them over
the v1 conversion and pkg/registry/core/secret/strategy.go):

1. ``set_defaults`` (right after decoding, on create, update and patch
   results): type defaults to Opaque, then ``stringData`` is folded into
   ``data`` and dropped, as upstream's v1→internal conversion does, so
   admission and validation only ever see ``data``.
2. ``prepare_for_update``: an update without ``type`` keeps the stored one.
3. ``validate``/``validate_update``: api.core_v1.validation.secrets.
4. ``canonicalize``: ``data`` values re-encoded as Go encodes ``[]byte``.

Base64 errors in ``data`` are a decoding failure upstream (400, before any of
this); the server's decoder calls ``validation.decode_secret_data``.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api import definitions
from kajitori.api.core_v1 import defaults
from kajitori.api.core_v1.validation import secrets as validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class SecretStrategy(strategies.Strategy):
    """Create/update rules for ``v1 secrets``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_secret(obj)
        validation.merge_string_data(obj)

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        if not obj.get("type"):
            obj["type"] = old.get("type", "")

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_secret(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_secret_update(obj, old)

    def decode_problem(self, obj: Object) -> str | None:
        return validation.decode_secret_data(obj)

    def canonicalize(self, obj: Object) -> None:
        validation.canonicalize_bytes_map(obj.get("data"))


def _doc(definition: str, prop: str) -> str:
    node = definitions.definitions().get(f"io.k8s.api.core.v1.{definition}", {})
    description: str = node.get("properties", {}).get(prop, {}).get("description", "")
    return description


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("Type", description=_doc("Secret", "type")),
    tables.Column("Data", description=_doc("Secret", "data")),
    tables.AGE_COLUMN,
)


def secret_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    """NAME, TYPE, DATA (number of keys), AGE, as upstream's printSecret."""
    data = obj.get("data")
    count = len(data) if isinstance(data, dict) else 0
    return [tables.name(obj), str(obj.get("type") or ""), count, tables.age(obj, now)]


STRATEGY = SecretStrategy()

RESOURCE = resource.ResourceInfo(
    group="",
    version="v1",
    kind="Secret",
    plural="secrets",
    namespaced=True,
    strategy=STRATEGY,
    selectable_fields={"type": resource.nested_str("type")},
    table=tables.Table(columns=COLUMNS, row=secret_row),
)
