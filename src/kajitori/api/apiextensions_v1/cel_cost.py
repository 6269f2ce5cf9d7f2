"""A coarse static cost estimate of CEL rules, for upstream's CRD cost limits.

Upstream (apiextensions validation + cel-go's checker/cost.go) refuses a CRD
whose rule's worst-case cost, from the schema's maxLength/maxItems/
maxProperties and the 3 MiB request limit where those are missing, exceeds
``STATIC_ESTIMATED_COST_LIMIT`` per rule times how many times the rule can run
(the cardinality of the lists and maps above it), or ``STATIC_CRD_COST_LIMIT``
for the whole schema. The ``cel`` package exposes no checker, so this module
parses the expression itself (a small recursive-descent parser over CEL's
grammar) and walks it with a simplified version of cel-go's cost model: one
per variable, field selection and call; strings cost one tenth per character
they are scanned for (``matches`` multiplies by the regex's length); a
comprehension costs its range's size times its body. The figures are the
same order of magnitude as upstream's, not equal: a rule close to the limit
may be judged differently; an O(n²) rule on unbounded lists fails on both.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

STATIC_ESTIMATED_COST_LIMIT = 10_000_000
STATIC_CRD_COST_LIMIT = 100_000_000
PER_CALL_LIMIT = 1_000_000
MAX_REQUEST_SIZE = 3 * 1024 * 1024
_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_SCANNING = frozenset({"contains", "startsWith", "endsWith", "indexOf", "lastIndexOf",
                       "split", "replace", "lowerAscii", "upperAscii", "trim", "find", "findAll",
                       "join", "format", "_==_", "_!=_", "_+_", "size_scan"})  # fmt: skip
TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.\d*|\d+[uU]?|0x[0-9a-fA-F]+)"
    r"|(?P<str>[rRbB]?(?:'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"))"
    r"|(?P<id>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\|\||&&|==|!=|<=|>=|\.\?|\[\?|[-+*/%<>!?:.,()\[\]{}]))",
    re.S,
)


@dataclass
class Node:
    kind: str  # lit, id, select, call, list, map, macro
    name: str = ""
    args: list[Node] = field(default_factory=list)
    target: Node | None = None
    text: str = ""


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(source):
            if source[pos:].strip() == "":
                break
            match = TOKEN.match(source, pos)
            if match is None or match.end() == pos:
                raise ValueError(f"cannot tokenise at {pos}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            pos = match.end()
        self.i = 0

    def peek(self) -> str:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else ""

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expect(self, text: str) -> None:
        if self.peek() != text:
            raise ValueError(f"expected {text}")
        self.i += 1

    def expr(self) -> Node:
        cond = self.binary(0)
        if self.peek() == "?":
            self.take()
            yes = self.expr()
            self.expect(":")
            return Node("call", "_?_:_", [cond, yes, self.expr()])
        return cond

    _LEVELS = (("||",), ("&&",), ("==", "!=", "<", "<=", ">", ">=", "in"), ("+", "-"),
               ("*", "/", "%"))  # fmt: skip

    def binary(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek() in self._LEVELS[level]:
            op = self.take()[1]
            left = Node("call", f"_{op}_", [left, self.binary(level + 1)])
        return left

    def unary(self) -> Node:
        if self.peek() in ("!", "-"):
            op = self.take()[1]
            return Node("call", f"{op}_", [self.unary()])
        return self.member(self.primary())

    def member(self, node: Node) -> Node:
        while self.peek() in (".", ".?", "[", "[?"):
            op = self.take()[1]
            if op in ("[", "[?"):
                index = self.expr()
                self.expect("]")
                node = Node("call", "_[_]", [node, index])
                continue
            name = self.take()[1]
            if op == "." and self.peek() == "(":
                node = self.call(name, node)
            else:
                node = Node("select", name, target=node)
        return node

    def call(self, name: str, target: Node | None) -> Node:
        self.expect("(")
        args: list[Node] = []
        while self.peek() != ")":
            args.append(self.expr())
            if self.peek() == ",":
                self.take()
        self.expect(")")
        if target is not None and name in _MACROS and len(args) in (2, 3):
            return Node("macro", name, args, target)
        return Node("call", name, args, target)

    def primary(self) -> Node:
        kind, text = self.take()
        if kind in ("num", "str"):
            return Node("lit", text=text)
        if kind == "id":
            if self.peek() == "(":
                return self.call(text, None)
            return Node("id", text)
        if text == "(":
            inner = self.expr()
            self.expect(")")
            return inner
        if text in ("[", "{"):
            return self.literal("]" if text == "[" else "}")
        if text == ".":
            return Node("id", self.take()[1])
        raise ValueError(f"unexpected {text}")

    def literal(self, close: str) -> Node:
        items: list[Node] = []
        while self.peek() != close:
            if self.peek() == "?":
                self.take()
            items.append(self.expr())
            if self.peek() == ":":
                self.take()
                items.append(self.expr())
            if self.peek() == ",":
                self.take()
        self.expect(close)
        return Node("list" if close == "]" else "map", args=items)


def parse(source: str) -> Node | None:
    """The expression's tree, or None when this small parser cannot read it."""
    try:
        parser = _Parser(source)
        node = parser.expr()
    except (ValueError, IndexError):
        return None
    return node if parser.i == len(parser.tokens) else None


# ----- sizes from the schema ---------------------------------------------------------------


def _min_size(schema: dict[str, Any]) -> int:
    """Bytes of the smallest serialised value (upstream's estimateMinSizeJSON)."""
    kind = schema.get("type", "")
    if kind == "boolean":
        return 4
    if kind in ("integer", "number"):
        return 1
    return 2  # "", {} or []


def max_size(schema: dict[str, Any] | None) -> float:
    """Longest string, list or map a value of ``schema`` can be within one request."""
    if schema is None:
        return MAX_REQUEST_SIZE
    kind = schema.get("type", "")
    if kind == "string":
        return float(schema.get("maxLength", MAX_REQUEST_SIZE - 2))
    if kind == "array":
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        bound = (MAX_REQUEST_SIZE - 2) / (_min_size(items or {}) + 1)
        return float(schema.get("maxItems", math.floor(bound)))
    if kind == "object":
        values = schema.get("additionalProperties")
        if isinstance(values, dict):
            bound = (MAX_REQUEST_SIZE - 2) / (_min_size(values) + 4)
            return float(schema.get("maxProperties", math.floor(bound)))
        return float(len(schema.get("properties") or {}))
    return 1.0


def _element(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    if schema is None:
        return None
    if schema.get("type") == "array":
        items = schema.get("items")
        return items if isinstance(items, dict) else None
    return {"type": "string"}  # a comprehension over a map ranges over its keys


def _child(schema: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    if schema is None:
        return None
    props = schema.get("properties") or {}
    if name in props:
        child: dict[str, Any] = props[name]
        return child
    additional = schema.get("additionalProperties")
    return additional if isinstance(additional, dict) else None


# ----- the estimate ------------------------------------------------------------------------


@dataclass
class _Est:
    cost: float
    schema: dict[str, Any] | None = None  # what the expression's value looks like, when known
    size: float = 1.0  # its length (strings, lists, maps)


def estimate(source: str, schema: dict[str, Any]) -> float | None:
    """Worst-case cost of one evaluation of ``source`` with ``self`` typed by ``schema``."""
    node = parse(source)
    if node is None:
        return None
    scope: dict[str, dict[str, Any] | None] = {"self": schema, "oldSelf": schema}
    return _walk(node, scope).cost


def _walk(node: Node, scope: dict[str, dict[str, Any] | None]) -> _Est:
    if node.kind == "lit":
        text = node.text.lstrip("rRbB")
        return _Est(0.0, None, float(max(len(text) - 2, 1)))
    if node.kind == "id":
        schema = scope.get(node.name)
        return _Est(1.0, schema, max_size(schema))
    if node.kind == "select":
        assert node.target is not None
        base = _walk(node.target, scope)
        schema = _child(base.schema, node.name)
        return _Est(base.cost + 1.0, schema, max_size(schema))
    if node.kind in ("list", "map"):
        parts = [_walk(a, scope) for a in node.args]
        return _Est(sum(p.cost for p in parts) + 1.0, None, float(len(parts)))
    if node.kind == "macro":
        return _macro(node, scope)
    return _call(node, scope)


def _macro(node: Node, scope: dict[str, dict[str, Any] | None]) -> _Est:
    assert node.target is not None
    rng = _walk(node.target, scope)
    var = node.args[0].name
    inner = dict(scope)
    inner[var] = _element(rng.schema)
    body = sum(_walk(a, inner).cost for a in node.args[1:])
    size = rng.size if node.name in ("map", "filter") else 1.0
    return _Est(rng.cost + rng.size * (body + 1.0), None, size)


def _call(node: Node, scope: dict[str, dict[str, Any] | None]) -> _Est:
    parts = [_walk(a, scope) for a in node.args]
    target = _walk(node.target, scope) if node.target is not None else None
    receiver = target or (parts[0] if parts else _Est(0.0))
    cost = sum(p.cost for p in parts) + (target.cost if target else 0.0) + 1.0
    if node.name == "matches":
        pattern = parts[-1].size if parts else 1.0
        cost += math.ceil(receiver.size * 0.1) * math.ceil(pattern * 0.25)
    elif node.name in _SCANNING:
        cost += math.ceil(max(receiver.size, parts[-1].size if parts else 1.0) * 0.1)
    elif node.name in ("isSorted", "sum", "min", "max", "_in_", "sets.contains"):
        cost += receiver.size
    if node.name == "_[_]" and parts:
        schema = parts[0].schema
        element = _element(schema) if schema and schema.get("type") == "array" else None
        if schema and schema.get("type") == "object":
            element = _child(schema, "")
        return _Est(cost, element, max_size(element))
    return _Est(cost, None, receiver.size)


def cardinality(path_schemas: list[dict[str, Any]]) -> float:
    """How many times a rule can run: the product of the sizes of the lists and maps above it."""
    total = 1.0
    for schema in path_schemas:
        if schema.get("type") == "array" or isinstance(schema.get("additionalProperties"), dict):
            total *= max_size(schema)
    return total


def exceeds_message(what: str, cost: float, limit: int) -> str:
    """Upstream's getCostErrorMessage."""
    factor = cost / limit
    if factor > 100.0:
        shown = "more than 100x"
    elif factor < 1.5:
        shown = f"{factor:f}x"
    else:
        shown = f"{factor:.1f}x"
    return (
        f"{what} exceeds budget by factor of {shown} (try simplifying the rule, or adding "
        "maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
    )
