"""Custom resources: a ResourceInfo built from an established CRD, one per served version.

Owns (upstream: apiextensions-apiserver/pkg/registry/customresource and
apiserver/customresource_handler.go): the strategy that prunes, defaults and
validates bodies against the version's structural schema and CEL rules; the
status and scale subresources; generation counting (every change but
metadata, and status when it is a subresource); the Table from
``additionalPrinterColumns`` (NAME + AGE without them); ``selectableFields``
as field selectors; and conversion strategy None (objects are stored in the
storage version and read in any served one by rewriting ``apiVersion``).
Every version's store shares the key prefix ``/registry/<group>/<plural>/``.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from kajitori.api.apiextensions_v1 import cel, structural
from kajitori.machinery import errors, field, names, objectmeta
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables
from kajitori.registry.generic.store import IdentityTransformer, Transformer

Object = dict[str, Any]

_AGE = tables.Column("Age", type="date", description=tables.AGE_COLUMN.description)


@dataclass(frozen=True)
class CustomResourceInfo(resource.ResourceInfo):
    """A ResourceInfo whose objects live under ``/registry/<group>/<plural>/`` (as upstream)."""

    storage_version: str = ""
    crd_name: str = ""

    def storage_prefix(self) -> str:
        return f"/registry/{self.group}/{self.plural}/"


class CustomResourceStrategy(strategies.Strategy):
    """Prune, default and validate one version's custom resources."""

    def __init__(self, schema: Object, *, namespaced: bool, has_status: bool) -> None:
        self.schema = schema
        self.namespaced = namespaced
        self.has_status = has_status
        # Set by the CRD controller once the CRD is being deleted.
        self.group_resource: errors.GroupResource | None = None
        self.terminating = False

    def prune_unknown(self, obj: Object) -> list[str]:
        """Drop undeclared fields; their paths feed ``fieldValidation`` (Strict/Warn)."""
        return structural.prune(obj, self.schema)

    def set_defaults(self, obj: Object) -> None:
        structural.apply_defaults(obj, self.schema)

    def prepare_for_create(self, obj: Object) -> None:
        if self.terminating and self.group_resource is not None:
            refused = errors.method_not_supported(self.group_resource, "create")
            refused.message = "create not allowed while custom resource definition is terminating"
            raise refused
        if self.has_status:
            obj.pop("status", None)

    def prepare_for_update(self, obj: Object, old: Object) -> None:
        if not self.has_status:
            return
        if "status" in old:
            obj["status"] = old["status"]
        else:
            obj.pop("status", None)

    def validate(self, obj: Object) -> field.ErrorList:
        errs = objectmeta.validate_object_meta(
            obj.get("metadata"),
            namespaced=self.namespaced,
            name_validator=names.name_is_dns_subdomain,
            path=field.Path("metadata"),
            kube_finalizers=False,
        )
        errs.extend(structural.validate(obj, self.schema))
        errs.extend(cel.validate(obj, self.schema))
        return errs

    def validate_update(self, obj: Object, old: Object) -> field.ErrorList:
        errs = objectmeta.validate_object_meta_update(
            obj.get("metadata"),
            old.get("metadata"),
            path=field.Path("metadata"),
            kube_finalizers=False,
        )
        errs.extend(structural.validate(obj, self.schema))
        errs.extend(cel.validate(obj, self.schema, old))
        return errs

    def bumps_generation(self, obj: Object, old: Object) -> bool:
        skip = ("metadata", "status") if self.has_status else ("metadata",)
        return {k: v for k, v in obj.items() if k not in skip} != {
            k: v for k, v in old.items() if k not in skip
        }


class CustomResourceStatusStrategy(strategies.StatusStrategy):
    """``/status`` of a custom resource: only status changes, validated like the main endpoint."""

    def prune_unknown(self, obj: Object) -> list[str]:
        assert isinstance(self.main, CustomResourceStrategy)
        return self.main.prune_unknown(obj)


class ConversionTransformer:
    """Conversion strategy None: only ``apiVersion`` differs between versions.

    Wraps the storage transformer (encryption at rest) of a served version
    that is not the storage version.
    """

    def __init__(self, inner: Transformer, *, served: str, stored: str) -> None:
        self.inner = inner
        self.served = served
        self.stored = stored

    def to_storage(self, data: bytes, key: str) -> bytes:
        return self.inner.to_storage(_with_api_version(data, self.stored), key)

    def from_storage(self, data: bytes, key: str) -> bytes:
        return _with_api_version(self.inner.from_storage(data, key), self.served)


def _with_api_version(data: bytes, api_version: str) -> bytes:
    obj = orjson.loads(data)
    obj["apiVersion"] = api_version
    return orjson.dumps(obj)


def conversion_for(info: CustomResourceInfo) -> Any:
    """How to wrap a storage transformer for this version (None: the storage version)."""
    if info.version == info.storage_version:
        return None
    served = info.group_version
    stored = f"{info.group}/{info.storage_version}"

    def wrap(inner: Transformer | None) -> Transformer:
        return ConversionTransformer(inner or IdentityTransformer(), served=served, stored=stored)

    return wrap


# ----- building from a CRD ----------------------------------------------------------------


def served_versions(crd: Object) -> list[Object]:
    return [v for v in crd["spec"].get("versions") or [] if v.get("served")]


def resource_info(crd: Object, version: Object) -> CustomResourceInfo:
    """The ResourceInfo serving ``version`` of ``crd``."""
    spec = crd["spec"]
    crd_names = (crd.get("status") or {}).get("acceptedNames") or spec["names"]
    namespaced = spec.get("scope") == "Namespaced"
    schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or {}
    subresources = version.get("subresources") or {}
    has_status = "status" in subresources
    strategy = CustomResourceStrategy(schema, namespaced=namespaced, has_status=has_status)
    strategy.group_resource = errors.GroupResource(spec["group"], crd_names["plural"])
    storage = next(v["name"] for v in spec["versions"] if v.get("storage"))
    return CustomResourceInfo(
        group=spec["group"],
        version=version["name"],
        kind=crd_names["kind"],
        plural=crd_names["plural"],
        singular=crd_names.get("singular") or crd_names["kind"].lower(),
        namespaced=namespaced,
        short_names=tuple(crd_names.get("shortNames") or ()),
        categories=tuple(crd_names.get("categories") or ()),
        strategy=strategy,
        status=CustomResourceStatusStrategy(strategy) if has_status else None,
        scale=_scale(subresources.get("scale")),
        selectable_fields=_selectable_fields(version.get("selectableFields") or []),
        table=printer_table(version.get("additionalPrinterColumns") or []),
        tracks_generation=True,
        storage_version=storage,
        crd_name=crd["metadata"]["name"],
    )


def _path_keys(json_path: str) -> tuple[str, ...]:
    return tuple(k for k in json_path.strip(".").split(".") if k)


def _scale(spec: Object | None) -> resource.ScaleSubresource | None:
    if spec is None:
        return None
    selector = spec.get("labelSelectorPath")
    return resource.ScaleSubresource(
        spec_replicas=_path_keys(spec.get("specReplicasPath", ".spec.replicas")),
        status_replicas=_path_keys(spec.get("statusReplicasPath", ".status.replicas")),
        label_selector=_path_keys(selector) if selector else None,
        selector_is_string=True,
    )


def _selectable_fields(entries: list[Object]) -> dict[str, resource.FieldExtractor]:
    out: dict[str, resource.FieldExtractor] = {}
    for entry in entries:
        keys = _path_keys(entry.get("jsonPath", ""))
        if keys:
            out[".".join(keys)] = resource.nested_str(*keys)
    return out


# ----- printer columns --------------------------------------------------------------------

_SEGMENT = re.compile(r"\.([A-Za-z0-9_\-$]+)|\[(\*|\d+)\]|\['([^']*)'\]")


def evaluate_json_path(obj: Any, path: str) -> list[Any]:
    """Values at a simple JSONPath (``.a.b``, ``.a[0]``, ``.a[*].b``, ``.a['x.y']``)."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    nodes = [obj]
    for match in _SEGMENT.finditer(text):
        name, index, quoted = match.groups()
        nxt: list[Any] = []
        for node in nodes:
            if name is not None or quoted is not None:
                key = name if name is not None else quoted
                if isinstance(node, dict) and key in node:
                    nxt.append(node[key])
            elif isinstance(node, list):
                if index == "*":
                    nxt.extend(node)
                elif int(index) < len(node):
                    nxt.append(node[int(index)])
        nodes = nxt
    return nodes


def _cell(obj: Object, column: Object) -> tables.Cell:
    values = evaluate_json_path(obj, column.get("jsonPath", ""))
    if not values:
        return None
    if len(values) == 1:
        value = values[0]
        if isinstance(value, str | int | float | bool):
            return value
        return orjson.dumps(value).decode()
    return ",".join(v if isinstance(v, str) else orjson.dumps(v).decode() for v in values)


def printer_table(columns: Sequence[Object]) -> tables.Table:
    """NAME plus the version's additionalPrinterColumns (NAME AGE when there are none)."""
    specs = list(columns) or [
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    ]
    defs = [tables.NAME_COLUMN] + [
        _AGE
        if spec.get("name") == "Age" and not columns
        else tables.Column(
            spec.get("name", ""),
            type=spec.get("type", "string"),
            format=spec.get("format", ""),
            description=spec.get("description", ""),
            priority=int(spec.get("priority", 0)),
        )
        for spec in specs
    ]

    def row(obj: Object, now: datetime.datetime) -> list[tables.Cell]:
        return [tables.name(obj), *(_cell(obj, spec) for spec in specs)]

    return tables.Table(columns=tuple(defs), row=row)
