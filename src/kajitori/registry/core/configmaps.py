"""ConfigMaps in the API server: strategy and table (pkg/registry/core/configmap upstream).

No status, no extra field selectors. ``binaryData`` values that are not
base64 are a decoding failure upstream (400); the server's decoder calls
``validation.decode_config_map_binary_data``. ``canonicalize`` re-encodes
``binaryData`` as Go encodes ``[]byte``.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api import definitions
from kajitori.api.core_v1 import defaults
from kajitori.api.core_v1.validation import configmaps as validation
from kajitori.api.core_v1.validation import secrets
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class ConfigMapStrategy(strategies.Strategy):
    """Create/update rules for ``v1 configmaps``."""

    def set_defaults(self, obj: Object) -> None:
        defaults.set_defaults_config_map(obj)

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_config_map(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        return validation.validate_config_map_update(obj, old)

    def decode_problem(self, obj: Object) -> str | None:
        return validation.decode_config_map_binary_data(obj)

    def canonicalize(self, obj: Object) -> None:
        secrets.canonicalize_bytes_map(obj.get("binaryData"))


def _data_doc() -> str:
    node = definitions.definitions().get("io.k8s.api.core.v1.ConfigMap", {})
    description: str = node.get("properties", {}).get("data", {}).get("description", "")
    return description


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("Data", description=_data_doc()),
    tables.AGE_COLUMN,
)


def _count(value: Any) -> int:
    return len(value) if isinstance(value, dict) else 0


def config_map_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    """NAME, DATA (keys in data plus binaryData), AGE, as upstream's printConfigMap."""
    data = _count(obj.get("data")) + _count(obj.get("binaryData"))
    return [tables.name(obj), data, tables.age(obj, now)]


STRATEGY = ConfigMapStrategy()

RESOURCE = resource.ResourceInfo(
    group="",
    version="v1",
    kind="ConfigMap",
    plural="configmaps",
    namespaced=True,
    short_names=("cm",),
    strategy=STRATEGY,
    table=tables.Table(columns=COLUMNS, row=config_map_row),
)
