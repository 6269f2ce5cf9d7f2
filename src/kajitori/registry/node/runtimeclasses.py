"""RuntimeClasses in the API server (upstream: pkg/registry/node/runtimeclass).

Owns: cluster scope; validation from ``api.node_v1`` (an update is checked
as a create and then for what may not change, as upstream's strategy does);
the ``kubectl get runtimeclasses`` columns (NAME HANDLER AGE). What a
RuntimeClass does to the pods naming it is the RuntimeClass admission
plugin's (``admission.plugins.runtime_class``).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from kajitori.api.node_v1 import validation
from kajitori.machinery import field
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables

Object = dict[str, Any]


class RuntimeClassStrategy(strategies.Strategy):
    """Create/update rules for ``node.k8s.io/v1 runtimeclasses``."""

    def validate(self, obj: Object) -> field.ErrorList:
        return validation.validate_runtime_class(obj)

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        errs = validation.validate_runtime_class(obj)
        errs.extend(validation.validate_runtime_class_update(obj, old))
        return errs


COLUMNS = (
    tables.NAME_COLUMN,
    # Upstream reads this description from ObjectMeta's docs, which have no "handler": "".
    tables.Column("Handler"),
    tables.AGE_COLUMN,
)


def runtime_class_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    return [tables.name(obj), str(obj.get("handler") or ""), tables.age(obj, now)]


RESOURCE = resource.ResourceInfo(
    group="node.k8s.io",
    version="v1",
    kind="RuntimeClass",
    plural="runtimeclasses",
    namespaced=False,
    strategy=RuntimeClassStrategy(),
    table=tables.Table(columns=COLUMNS, row=runtime_class_row),
)
