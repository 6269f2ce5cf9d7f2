"""What a ValidatingAdmissionPolicy's CEL expressions may use, and what they yield.

Owns the compile-time side of upstream's admission CEL environment
(k8s.io/apiserver/pkg/admission/plugin/cel): which variables each kind of
expression sees (``object``, ``oldObject``, ``request``, ``namespaceObject``,
``params`` when the policy has a ``paramKind``, ``authorizer`` except in
message expressions, ``variables`` where composition is allowed), the
references to ``variables.<name>`` an expression makes, and a small static
type inference standing in for cel-go's checker, so that an expression whose
result type is known to be wrong is refused as upstream refuses it
(``must evaluate to bool but got dyn``).

``object``, ``oldObject`` and ``params`` are ``dyn`` upstream, so a bare
field of them has type ``dyn`` and is not a valid condition; ``request`` and
``namespaceObject`` have declared fields. Where this module cannot tell a
type (an unknown function, a comprehension result) it accepts the
expression: refusing a valid policy would be worse than admitting an
invalid one. Syntax errors and undeclared names are reported by
``webhooks.expression_problem``, shared with webhook match conditions.
The admission plugin (``admission.policy``) evaluates what this module accepts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kajitori.api.admissionregistration_v1 import webhooks
from kajitori.api.apiextensions_v1 import cel_cost

DYN = "dyn"
UNKNOWN = ""  # a type this module cannot work out: never a reason to refuse

BASE_VARIABLES = frozenset({"object", "oldObject", "request", "namespaceObject"})

_REQUEST_FIELDS = {
    "kind": "kubernetes.GroupVersionKind",
    "resource": "kubernetes.GroupVersionResource",
    "subResource": "string",
    "requestKind": "kubernetes.GroupVersionKind",
    "requestResource": "kubernetes.GroupVersionResource",
    "requestSubResource": "string",
    "name": "string",
    "namespace": "string",
    "operation": "string",
    "userInfo": "kubernetes.UserInfo",
    "dryRun": "bool",
    "options": DYN,
}
_STRUCT_FIELDS: dict[str, dict[str, str]] = {
    "kubernetes.AdmissionRequest": _REQUEST_FIELDS,
    "kubernetes.GroupVersionKind": {"group": "string", "version": "string", "kind": "string"},
    "kubernetes.GroupVersionResource": {
        "group": "string",
        "version": "string",
        "resource": "string",
    },
    "kubernetes.UserInfo": {
        "username": "string",
        "uid": "string",
        "groups": "list(string)",
        "extra": "map(string, list(string))",
    },
}
_ROOT_TYPES = {
    "object": DYN,
    "oldObject": DYN,
    "params": DYN,
    "request": "kubernetes.AdmissionRequest",
    "namespaceObject": "kubernetes.Namespace",
    "authorizer": "kubernetes.authorization.Authorizer",
    "true": "bool",
    "false": "bool",
    "null": "null_type",
}
_COMPARISONS = frozenset(
    {"_==_", "_!=_", "_<_", "_<=_", "_>_", "_>=_", "_&&_", "_||_", "!_", "_in_", "has"}
)
_BOOL_FUNCTIONS = frozenset(
    {
        "startsWith", "endsWith", "contains", "matches", "isSorted", "bool", "isQuantity",
        "isURL", "isIP", "isCIDR", "isSemver", "isInteger", "isLessThan", "isGreaterThan",
        "containsIP", "containsCIDR", "sets.contains", "sets.equivalent", "sets.intersects",
        "isUnspecified", "isLoopback", "isLinkLocalMulticast", "isLinkLocalUnicast",
        "isGlobalUnicast", "ip.isCanonical", "allowed", "errored",
    }
)  # fmt: skip
_STRING_FUNCTIONS = frozenset(
    {
        "string", "lowerAscii", "upperAscii", "trim", "replace", "substring", "charAt",
        "join", "format", "reason", "error", "getScheme", "getHost", "getHostname",
        "getPort", "getEscapedPath", "strings.quote", "find",
    }
)  # fmt: skip
_INT_FUNCTIONS = frozenset(
    {
        "size", "int", "indexOf", "lastIndexOf", "sign", "compareTo", "asInteger", "family",
        "prefixLength", "major", "minor", "patch",
    }
)  # fmt: skip
_ARITHMETIC = frozenset({"_+_", "_-_", "_*_", "_/_", "_%_"})


@dataclass(frozen=True)
class Environment:
    """The variables one kind of expression sees, and the known types of ``variables.*``."""

    names: frozenset[str]
    # None: the expression may not use ``variables`` at all.
    variable_types: Mapping[str, str] | None = None


def environment(
    *, params: bool, authorizer: bool, variable_types: Mapping[str, str] | None
) -> Environment:
    names = set(BASE_VARIABLES)
    if params:
        names.add("params")
    if authorizer:
        names.add("authorizer")
    if variable_types is not None:
        names.add("variables")
    return Environment(frozenset(names), variable_types)


def compile_problem(
    expression: str, env: Environment, returns: tuple[str, ...] = ()
) -> tuple[str | None, str]:
    """(why ``expression`` is refused or None, its inferred type or ``UNKNOWN``).

    ``returns`` lists the acceptable result types (empty: any), as upstream's
    ExpressionAccessor.ReturnTypes.
    """
    problem = webhooks.expression_problem(expression, env.names)
    if problem is not None:
        return problem, UNKNOWN
    tree = cel_cost.parse(expression)
    if tree is None:
        return None, UNKNOWN
    if env.variable_types is not None:
        missing = _undefined_variable(expression, tree, env.variable_types)
        if missing is not None:
            return missing, UNKNOWN
    found = infer(tree, env.variable_types or {}, frozenset())
    if returns and found not in (UNKNOWN, *returns):
        if len(returns) == 1:
            return f"must evaluate to {returns[0]} but got {found}", found
        listed = " ".join(returns)
        return f"must evaluate to one of [{listed}] but got {found}", found
    return None, found


def _undefined_variable(
    expression: str, tree: cel_cost.Node, variable_types: Mapping[str, str]
) -> str | None:
    for name in variable_references(tree):
        if name not in variable_types:
            column = _select_column(expression, name)
            line = expression.splitlines()[0] if expression else ""
            return (
                f"compilation failed: ERROR: <input>:1:{column + 1}: undefined field '{name}'\n"
                f" | {line}\n | {'.' * column}^"
            )
    return None


def _select_column(expression: str, name: str) -> int:
    """Where cel-go places ``variables.<name>``: at the dot of the selection."""
    tokens = list(cel_cost.TOKEN.finditer(expression))
    for i in range(len(tokens) - 2):
        a, dot, b = tokens[i], tokens[i + 1], tokens[i + 2]
        if (
            a.group(a.lastgroup or 0) == "variables"
            and dot.group(dot.lastgroup or 0) == "."
            and b.group(b.lastgroup or 0) == name
        ):
            return dot.start(dot.lastgroup or 0)
    return 0


def variable_references(tree: cel_cost.Node | None) -> list[str]:
    """The names ``x`` of every ``variables.x`` in the tree, first use first."""
    found: list[str] = []
    if tree is None:
        return found

    def visit(node: cel_cost.Node) -> None:
        target = node.target
        if node.kind == "select" and target is not None and target.kind == "id":
            if target.name == "variables" and node.name not in found:
                found.append(node.name)
        if target is not None:
            visit(target)
        for arg in node.args:
            visit(arg)

    visit(tree)
    return found


def references_for(expression: str) -> list[str]:
    """``variable_references`` of an expression's source (empty if it cannot be parsed)."""
    return variable_references(cel_cost.parse(expression))


def infer(node: cel_cost.Node, variable_types: Mapping[str, str], bound: frozenset[str]) -> str:
    """The CEL type of ``node`` as cel-go's checker would name it, or ``UNKNOWN``."""
    if node.kind == "lit":
        return _literal_type(node.text)
    if node.kind == "id":
        if node.name in bound:
            return DYN
        return _ROOT_TYPES.get(node.name, UNKNOWN)
    if node.kind == "select":
        return _select_type(node, variable_types, bound)
    if node.kind == "macro":
        return "bool" if node.name in ("all", "exists", "exists_one") else UNKNOWN
    if node.kind == "list":
        return _list_type(node.args, variable_types, bound)
    if node.kind == "call":
        return _call_type(node, variable_types, bound)
    return UNKNOWN


def _literal_type(text: str) -> str:
    if text[:1] in "\"'" or text[:2].lower() in ('r"', "r'"):
        return "string"
    if text[:1] in "bB":
        return "bytes"
    if text[-1:] in "uU":
        return "uint"
    if "." in text or ("e" in text.lower() and not text.lower().startswith("0x")):
        return "double"
    return "int"


def _select_type(
    node: cel_cost.Node, variable_types: Mapping[str, str], bound: frozenset[str]
) -> str:
    assert node.target is not None
    target = node.target
    if target.kind == "id" and target.name == "variables" and "variables" not in bound:
        return variable_types.get(node.name, UNKNOWN)
    owner = infer(target, variable_types, bound)
    if owner == DYN:
        return DYN
    return _STRUCT_FIELDS.get(owner, {}).get(node.name, UNKNOWN)


def _list_type(
    items: Iterable[cel_cost.Node], variable_types: Mapping[str, str], bound: frozenset[str]
) -> str:
    kinds = {infer(item, variable_types, bound) for item in items}
    if len(kinds) == 1 and UNKNOWN not in kinds:
        return f"list({kinds.pop()})"
    return UNKNOWN


def _call_type(
    node: cel_cost.Node, variable_types: Mapping[str, str], bound: frozenset[str]
) -> str:
    name = node.name
    if name in _COMPARISONS or name in _BOOL_FUNCTIONS:
        return "bool"
    if name in _STRING_FUNCTIONS:
        return "string"
    if name in _INT_FUNCTIONS:
        return "int"
    if name in ("double", "uint", "dyn"):
        return name
    if name == "-_":
        return infer(node.args[0], variable_types, bound)
    if name in _ARITHMETIC:
        # One concrete operand type picks the overload (string + dyn is string), as in cel-go.
        kinds = {infer(arg, variable_types, bound) for arg in node.args}
        concrete = kinds - {DYN}
        if UNKNOWN in kinds or len(concrete) > 1:
            return UNKNOWN
        return concrete.pop() if concrete else DYN
    if name == "_?_:_":
        yes, no = (infer(arg, variable_types, bound) for arg in node.args[1:])
        if yes == no:
            return yes
        return DYN if DYN in (yes, no) and UNKNOWN not in (yes, no) else UNKNOWN
    if name == "_[_]":
        return DYN if infer(node.args[0], variable_types, bound) == DYN else UNKNOWN
    return UNKNOWN
