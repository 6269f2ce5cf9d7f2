"""Wrong JSON types in a request body, reported as Go's decoder reports them.

Upstream decodes built-in kinds into Go structs, so ``"replicas": "3"`` or
``"data": {"a": 1}`` never reaches validation: the decoder fails with
``json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas
of type int32`` and the API answers 400 (the handler adds "X in version ... cannot
be handled as a X: "). ``first_type_error`` walks a decoded object against the
kind's 1.37 schema and returns that text for the first mismatch in document
order, as Go's decoder keeps the first error. Go's error context names the
innermost struct and the dotted JSON path of struct fields only (map keys and
list indexes are not part of it), and the Go type of the target (``int32``,
``map[string]string``, ``[]v1.Container``, ``[]uint8`` for bytes).

Types with their own JSON decoding (Time, Quantity, IntOrString, raw JSON) are
not checked here: their errors are theirs.
"""

from __future__ import annotations

from typing import Any

from kajitori.machinery.schema import SchemaNode

# Definitions with custom UnmarshalJSON (their own error texts), by name suffix.
_CUSTOM_DECODERS = (
    "meta.v1.Time",
    "meta.v1.MicroTime",
    "meta.v1.Duration",
    "meta.v1.FieldsV1",
    "resource.Quantity",
    "intstr.IntOrString",
    "runtime.RawExtension",
    "apiextensions.v1.JSON",
)
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


class _Context:
    """Go's errorContext: the innermost struct and the struct-field path."""

    __slots__ = ("fields", "struct")

    def __init__(self, struct: str, fields: tuple[str, ...]) -> None:
        self.struct = struct
        self.fields = fields


def first_type_error(obj: Any, schema: SchemaNode | None, kind: str) -> str | None:
    """Go's UnmarshalTypeError text for the first wrongly typed value in ``obj``, or None."""
    if schema is None or not isinstance(obj, dict):
        return None
    return _check_struct(obj, schema, _Context(kind, ()))


def _check_struct(obj: dict[str, Any], schema: SchemaNode, ctx: _Context) -> str | None:
    for key, value in obj.items():
        raw = schema.properties.get(key)
        if raw is None:
            continue  # unknown fields are fieldValidation's business
        node = schema.field(key)
        if node is None:
            continue
        child = _Context(ctx.struct, (*ctx.fields, key))
        problem = _check(value, raw, node, child)
        if problem:
            return problem
    return None


def _check(value: Any, raw: dict[str, Any], node: SchemaNode, ctx: _Context) -> str | None:
    if value is None:
        return None  # null leaves a Go field at its zero value
    ref = _ref_name(raw)
    if ref is not None and ref.endswith(_CUSTOM_DECODERS):
        return None
    # The Go type is only named in an error: work it out then, not for every value.
    target = _Target(raw, node)
    if ref is not None and node.properties:
        if not isinstance(value, dict):
            return _error(value, target, ctx)
        return _check_struct(value, node, _Context(ref.rsplit(".", 1)[-1], ctx.fields))
    types = node.types
    if "array" in types:
        return _check_array(value, node, target, ctx)
    if "object" in types:
        return _check_map(value, node, target, ctx)
    return _check_scalar(value, types, node.format, target, ctx)


class _Target:
    """The schema a value decodes into; ``go_type`` is how Go prints it."""

    __slots__ = ("node", "raw")

    def __init__(self, raw: dict[str, Any], node: SchemaNode) -> None:
        self.raw = raw
        self.node = node

    @property
    def go_type(self) -> str:
        return _go_type(self.raw, self.node)


def _check_array(value: Any, node: SchemaNode, target: _Target, ctx: _Context) -> str | None:
    if not isinstance(value, list):
        return _error(value, target, ctx)
    items = node.raw.get("items")
    item_node = node.items()
    if not isinstance(items, dict) or item_node is None:
        return None
    for item in value:
        problem = _check(item, items, item_node, ctx)
        if problem:
            return problem
    return None


def _check_map(value: Any, node: SchemaNode, target: _Target, ctx: _Context) -> str | None:
    if not isinstance(value, dict):
        return _error(value, target, ctx)
    values = node.raw.get("additionalProperties")
    value_node = node.map_values()
    if not isinstance(values, dict) or value_node is None:
        return None
    for item in value.values():
        problem = _check(item, values, value_node, ctx)
        if problem:
            return problem
    return None


def _check_scalar(
    value: Any, types: tuple[str, ...], fmt: str, target: _Target, ctx: _Context
) -> str | None:
    if not types:
        return None
    if "string" in types:
        ok = isinstance(value, str)
    elif "boolean" in types:
        ok = isinstance(value, bool)
    elif "integer" in types:
        if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
            low, high = _INT_RANGES.get(fmt, _INT_RANGES["int64"])
            if isinstance(value, float) or not low <= value <= high:
                return _error(value, target, ctx, number_text=True)
            return None
        ok = False
    elif "number" in types:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        return None
    return None if ok else _error(value, target, ctx)


def _error(value: Any, target: _Target, ctx: _Context, *, number_text: bool = False) -> str:
    found = json_kind(value)
    if number_text:
        found = f"number {value!r}"
    where = ".".join(ctx.fields)
    return (
        f"json: cannot unmarshal {found} into Go struct field {ctx.struct}.{where}"
        f" of type {target.go_type}"
    )


def json_kind(value: Any) -> str:
    """How Go's ``UnmarshalTypeError`` names a JSON value's kind."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _go_type(raw: dict[str, Any], node: SchemaNode) -> str:
    """How Go's reflect prints the type a value decodes into."""
    ref = _ref_name(raw)
    if ref is not None:
        package, _, name = ref.rpartition(".")
        return f"{package.rsplit('.', 1)[-1]}.{name}"
    types = node.types
    if "array" in types:
        items, item_node = node.raw.get("items"), node.items()
        if isinstance(items, dict) and item_node is not None:
            return f"[]{_go_type(items, item_node)}"
        return "[]interface {}"
    if "object" in types:
        values, value_node = node.raw.get("additionalProperties"), node.map_values()
        if isinstance(values, dict) and value_node is not None:
            return f"map[string]{_go_type(values, value_node)}"
        return "map[string]interface {}"
    if "string" in types:
        return "[]uint8" if node.format == "byte" else "string"
    if "boolean" in types:
        return "bool"
    if "integer" in types:
        return node.format if node.format in _INT_RANGES else "int64"
    if "number" in types:
        return "float64"
    return "interface {}"


def _ref_name(raw: dict[str, Any]) -> str | None:
    ref = raw.get("$ref")
    if ref is None:
        all_of = raw.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1:
            ref = all_of[0].get("$ref")
    if not isinstance(ref, str):
        return None
    return ref.rsplit("/", 1)[-1]
