"""Server-side Table printing (``Accept: application/json;as=Table;g=meta.k8s.io;v=v1``).

kubectl asks the server for a ``meta.k8s.io/v1 Table`` and prints its
columns, so what ``kubectl get`` shows is decided here. Each resource module
declares its own ``Table`` (columns + a row function) beside its strategy,
with the columns upstream's printers use (pkg/printers/internalversion);
columns with ``priority`` 1 appear only with ``-o wide``.

Resources without their own table get ``DEFAULT_TABLE`` (NAME, CREATED AT), as
upstream's default table convertor.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Object = dict[str, Any]
Cell = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Column:
    """One ``TableColumnDefinition``."""

    name: str
    type: str = "string"
    format: str = ""
    description: str = ""
    priority: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


RowFunction = Callable[[Object, datetime.datetime], Sequence[Cell]]


@dataclass(frozen=True, slots=True)
class Table:
    """Columns and a function computing one row's cells from an object.

    The row function gets ``now`` so ages are computed once per response.
    """

    columns: tuple[Column, ...]
    row: RowFunction
    # Rows of a list in this order (upstream's printFlowSchemaList sorts), else as listed.
    order: Callable[[Object], Any] | None = None
    column_definitions: tuple[dict[str, Any], ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_definitions", tuple(c.to_dict() for c in self.columns))


NAME_COLUMN = Column(
    "Name",
    format="name",
    description="Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
)
AGE_COLUMN = Column(
    "Age",
    description="CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
)


def parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def human_duration(delta: datetime.timedelta) -> str:
    """Upstream's ``duration.HumanDuration``: "5s", "3m2s", "4h5m", "3d4h", "2y"."""
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m{s}s" if s else f"{minutes}m"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        m = minutes % 60
        return f"{hours}h{m}m" if m else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d{h}h" if h else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y{dy}d" if dy else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def age(obj: Object, now: datetime.datetime) -> str:
    """The AGE cell: time since ``metadata.creationTimestamp`` ("<unknown>" if unset)."""
    created = parse_time(obj.get("metadata", {}).get("creationTimestamp"))
    if created is None:
        return "<unknown>"
    return human_duration(now - created)


def name(obj: Object) -> str:
    name_value: str = obj.get("metadata", {}).get("name", "")
    return name_value


def _default_row(obj: Object, now: datetime.datetime) -> Sequence[Cell]:
    return [name(obj), obj.get("metadata", {}).get("creationTimestamp")]


DEFAULT_TABLE = Table(
    columns=(
        NAME_COLUMN,
        Column(
            "Created At",
            type="date",
            description="CreationTimestamp is a timestamp representing the server time when this object was created.",
        ),
    ),
    row=_default_row,
)
