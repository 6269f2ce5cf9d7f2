"""CEL validation rules (``x-kubernetes-validations``) of CRD schemas.

Owns compiling rules once per source and evaluating them against a custom
resource (and, for transition rules, the stored object): each schema node's
rules see that node's value as ``self`` and, on update, the old value as
``oldSelf``; a rule that mentions ``oldSelf`` is skipped on create unless it
sets ``optionalOldSelf``, in which case ``oldSelf`` is an optional (none on
create), as upstream; list items have an old value only in map lists (by key)
and sets (by value). Failures are rendered as upstream's
apiextensions-apiserver does: ``spec: Invalid value: "object": <message>``
(a scalar shows its value), where the message is ``message``, the result of
``messageExpression``, or ``failed rule: <rule>``; ``fieldPath`` and
``reason`` move and retype the error; evaluation errors read ``<error>
evaluating rule: <message or rule>``.

Expressions run on the ``common-expression-language`` package (Rust
bindings; see docs/decisions/0010-crd-and-cel.md) with Kubernetes'
extension libraries from ``cel_library``. Its parser has no optional
syntax, so ``x.?f`` and ``x[?k]`` are rewritten to a library call before
compiling. One evaluation context is built per schema node and shared by its
rules, so ``self`` is converted to CEL once per node rather than per rule.
Static cost limits are checked by ``check_costs`` (with ``cel_cost``) when
the CRD is validated.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from kajitori.api.apiextensions_v1 import cel_cost, cel_library
from kajitori.machinery import field

Schema = dict[str, Any]

_REASONS = {
    "FieldValueInvalid": field.ErrorType.INVALID,
    "FieldValueForbidden": field.ErrorType.FORBIDDEN,
    "FieldValueRequired": field.ErrorType.REQUIRED,
    "FieldValueDuplicate": field.ErrorType.DUPLICATE,
}
_ABSENT = object()
# The package wraps an exception raised in a registered function; keep only its message.
_WRAPPED = re.compile(
    r"^Function '[^']*' error: (?:Python function call failed: \w+: )?(.*?)"
    r"(?:\. Check function arguments and their types\.)?$",
    re.S,
)


@functools.cache
def _cel() -> Any:
    """The CEL library, imported on first use: its package imports an interactive
    CLI (prompt_toolkit) that would add ~0.3 s to every server start."""
    module = importlib.import_module("cel")
    # The package logs a WARNING each time a registered function raises; here that is a
    # rule refusing its input (quantity('bad')), already reported to the client.
    logging.getLogger("cel").setLevel(logging.ERROR)
    return module


@dataclass(frozen=True)
class Compiled:
    """One compiled expression and what the evaluator needs to know about it."""

    program: Any
    uses_old_self: bool
    # The fields of self (and oldSelf) the expression reads, when it only ever selects
    # fields of them; None when it uses the whole value (self == oldSelf, self.all(...)).
    self_fields: frozenset[str] | None = None
    old_self_fields: frozenset[str] | None = None


@functools.lru_cache(maxsize=1024)
def compile_rule(source: str) -> Compiled:
    """A compiled program; raises ValueError with the compiler's message."""
    program = _cel().compile(rewrite_optionals(source))
    variables = program.references().get("variables", [])
    tree = cel_cost.parse(source)
    return Compiled(
        program,
        "oldSelf" in variables,
        None if tree is None else _fields_read(tree, "self"),
        None if tree is None else _fields_read(tree, "oldSelf"),
    )


def _fields_read(node: cel_cost.Node, name: str) -> frozenset[str] | None:
    """Which fields of variable ``name`` the tree selects, or None if it uses the variable whole.

    Converting a 200-field object to CEL costs far more than most rules; a
    rule that reads two fields of it only needs those two converted.
    """
    found: set[str] = set()
    whole = False

    def visit(n: cel_cost.Node) -> None:
        nonlocal whole
        if n.kind == "select" and n.target is not None and n.target.kind == "id":
            if n.target.name == name:
                found.add(n.name)
                return
        if n.kind == "id" and n.name == name:
            whole = True
        for child in (*n.args, *((n.target,) if n.target is not None else ())):
            visit(child)

    visit(node)
    return None if whole else frozenset(found)


def compile_problem(source: str) -> str | None:
    """Why ``source`` does not compile, or None."""
    try:
        compile_rule(source)
    except (ValueError, RuntimeError) as exc:
        return str(exc)
    return None


# ----- optional syntax ---------------------------------------------------------------------


def rewrite_optionals(source: str) -> str:
    """``a.?b`` → ``a.kjOptSelect('b')``, ``a[?k]`` → ``a.kjOptSelect(k)``.

    After an optional selection, later plain selections and indexes in the
    same chain propagate the optional too (``a.?b.c`` is none when b is
    absent), as cel-go's optional chaining does. Text inside string literals
    is never touched.
    """
    if ".?" not in source and "[?" not in source:
        return source
    tokens = [
        (m.lastgroup or "", m.group(m.lastgroup or 0), m.start(m.lastgroup or 0), m.end())
        for m in cel_cost.TOKEN.finditer(source)
    ]
    out: list[str] = []
    closers: list[tuple[str, bool]] = []  # (what closes a bracket, chain state outside it)
    chain, pos, i = False, 0, 0
    while i < len(tokens):
        kind, text, start, end = tokens[i]
        out.append(source[pos:start])
        pos, i = end, i + 1
        name = tokens[i] if i < len(tokens) and tokens[i][0] == "id" else None
        called = i + 1 < len(tokens) and tokens[i + 1][1] == "("
        if kind == "op" and name and (text == ".?" or (chain and text == "." and not called)):
            out.append(f".kjOptSelect('{name[1]}')")
            pos, i, chain = name[3], i + 1, True
            continue
        if kind == "op" and (text == "[?" or (chain and text == "[")) and _ends_primary(out):
            out.append(".kjOptSelect(")
            closers.append((")", True))
            chain = False
            continue
        if kind == "op" and text in ("(", "[", "{", "[?"):
            closers.append(({"(": ")", "{": "}"}.get(text, "]"), chain))
            chain = False
        elif kind == "op" and text in (")", "]", "}") and closers:
            closer, chain = closers.pop()
            out.append(closer)
            continue
        else:
            chain = False
        out.append(text)
    out.append(source[pos:])
    return "".join(out)


def _ends_primary(out: list[str]) -> bool:
    """Whether the text so far ends an operand (so ``[`` indexes rather than opens a list)."""
    tail = "".join(out[-3:]).rstrip()
    return bool(tail) and (tail[-1].isalnum() or tail[-1] in "_)]}'\"")


# ----- evaluation --------------------------------------------------------------------------


def validate(
    obj: dict[str, Any], schema: Schema, old: dict[str, Any] | None = None
) -> field.ErrorList:
    """Run every rule in ``schema`` against ``obj`` (``old`` for transition rules)."""
    errs = field.ErrorList()
    _walk(obj, schema, _ABSENT if old is None else old, "", errs)
    return errs


@dataclass(frozen=True)
class _Plan:
    """Where a schema's rules are: its own, and the children that have rules at or below them."""

    rules: list[dict[str, Any]]
    properties: dict[str, Schema]
    additional: Schema | None
    items: Schema | None

    @property
    def empty(self) -> bool:
        return not (self.rules or self.properties or self.additional or self.items)


_PLANS: dict[int, tuple[Schema, _Plan]] = {}


def _plan(schema: Schema) -> _Plan:
    """The schema's plan, memoised by identity (schemas live as long as their CRD version)."""
    cached = _PLANS.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]

    def with_rules(child: Any) -> Schema | None:
        return child if isinstance(child, dict) and not _plan(child).empty else None

    props = {k: c for k, c in (schema.get("properties") or {}).items() if with_rules(c)}
    plan = _Plan(
        list(schema.get("x-kubernetes-validations") or ()),
        props,
        with_rules(schema.get("additionalProperties")),
        with_rules(schema.get("items")),
    )
    if len(_PLANS) > 50_000:
        _PLANS.clear()
    _PLANS[id(schema)] = (schema, plan)  # holding the schema keeps its id from being reused
    return plan


def _walk(value: Any, schema: Schema, old: Any, path: str, errs: field.ErrorList) -> None:
    if value is None:
        return
    plan = _plan(schema)
    if plan.rules:
        errs.extend(_run_node(plan.rules, value, old, schema.get("type", ""), path))
    if isinstance(value, dict) and (plan.properties or plan.additional):
        old_map = old if isinstance(old, dict) else {}
        for key, item in value.items():
            declared = key in (schema.get("properties") or {})
            child = plan.properties.get(key) if declared else plan.additional
            if child is not None and (path or key not in ("apiVersion", "kind", "metadata")):
                child_path = f"{path}.{key}" if path else key
                _walk(item, child, old_map.get(key, _ABSENT), child_path, errs)
    elif isinstance(value, list) and plan.items is not None:
        # Transition rules see an item's old value only where upstream correlates items:
        # by key in x-kubernetes-list-type=map lists, by value in sets; otherwise none.
        olds = _correlated(schema, old)
        for i, item in enumerate(value):
            old_item = _ABSENT if olds is None else olds.get(_item_key(schema, item), _ABSENT)
            _walk(item, plan.items, old_item, f"{path}[{i}]", errs)


def _item_key(schema: Schema, item: Any) -> str:
    keys = schema.get("x-kubernetes-list-map-keys") or ()
    if schema.get("x-kubernetes-list-type") == "map" and isinstance(item, dict):
        item = {k: item.get(k) for k in keys}
    return json.dumps(item, sort_keys=True)


def _correlated(schema: Schema, old: Any) -> dict[str, Any] | None:
    """Old items by their key (map lists) or value (sets); None where items do not correlate."""
    if not isinstance(old, list) or schema.get("x-kubernetes-list-type") not in ("map", "set"):
        return None
    return {_item_key(schema, item): item for item in old}


def _run_node(
    rules: list[dict[str, Any]], value: Any, old: Any, type_: str, path: str
) -> list[field.FieldError]:
    """Every rule of one schema node, against one context holding self (and oldSelf)."""
    found: list[field.FieldError] = []
    runnable: list[tuple[dict[str, Any], Compiled]] = []
    for rule in rules:
        try:
            compiled = compile_rule(rule.get("rule", ""))
        except (ValueError, RuntimeError) as exc:
            found.append(field.invalid(path, type_ or "object", f"rule compile error: {exc}"))
            continue
        if compiled.uses_old_self and old is _ABSENT and not rule.get("optionalOldSelf"):
            continue
        runnable.append((rule, compiled))
    if not runnable:
        return found
    context = _context(runnable, value, old)
    for rule, compiled in runnable:
        if compiled.uses_old_self:
            optional_old = bool(rule.get("optionalOldSelf"))
            context.add_variable("oldSelf", _old_self(context.old, optional=optional_old))
        problem = _run(rule, compiled, context.cel, value, type_, path)
        if problem is not None:
            found.append(problem)
    return found


@dataclass
class _Context:
    """One node's evaluation context and the (possibly narrowed) old value."""

    cel: Any
    old: Any

    def add_variable(self, name: str, value: Any) -> None:
        self.cel.add_variable(name, value)


def _context(runnable: list[tuple[dict[str, Any], Compiled]], value: Any, old: Any) -> _Context:
    """self (and oldSelf) narrowed to the fields the node's expressions read."""
    compiled = [c for _, c in runnable]
    for rule, _ in runnable:
        expression = rule.get("messageExpression")
        if expression:
            try:
                compiled.append(compile_rule(expression))
            except (ValueError, RuntimeError):
                pass
    narrowed_self = _narrow(value, [c.self_fields for c in compiled])
    narrowed_old = old if old is _ABSENT else _narrow(old, [c.old_self_fields for c in compiled])
    context = _cel().Context(variables={"self": narrowed_self}, functions=cel_library.FUNCTIONS)
    return _Context(context, narrowed_old)


def _narrow(value: Any, reads: list[frozenset[str] | None]) -> Any:
    if not isinstance(value, dict) or any(r is None for r in reads):
        return value
    wanted = set().union(*(r for r in reads if r is not None))
    return {k: v for k, v in value.items() if k in wanted}


def _old_self(old: Any, *, optional: bool) -> Any:
    if not optional:
        return old
    optional_type = _cel().OptionalValue
    return optional_type.none() if old is _ABSENT else optional_type.of(old)


def _run(
    rule: dict[str, Any], compiled: Compiled, context: Any, value: Any, type_: str, path: str
) -> field.FieldError | None:
    shown = _shown_value(value, type_)
    try:
        result = compiled.program.execute(context)
    except (ValueError, RuntimeError, KeyError, TypeError, ArithmeticError) as exc:
        return field.invalid(path, shown, _evaluation_error(exc, rule))
    if result is True:
        return None
    where = _field_path(path, rule.get("fieldPath", ""))
    message = _message(rule, context)
    kind = _REASONS.get(rule.get("reason", ""), field.ErrorType.INVALID)
    if kind is field.ErrorType.INVALID:
        return field.invalid(where, shown, message)
    if kind is field.ErrorType.DUPLICATE:
        return field.duplicate(where, shown)
    return field.FieldError(kind, where, detail=message)


def _shown_value(value: Any, type_: str) -> Any:
    """Upstream shows a scalar itself and an object or array by its type name."""
    if isinstance(value, dict | list):
        return type_ or ("array" if isinstance(value, list) else "object")
    return value


def _evaluation_error(exc: BaseException, rule: dict[str, Any]) -> str:
    # The package words type mismatches its own way; upstream's cel-go says "no such overload".
    text = "no such overload" if isinstance(exc, TypeError) else _exc_text(exc)
    if text.startswith("no such overload"):
        return (
            f"'{text}': call arguments did not match a supported operator, function or macro "
            f"signature for rule: {_rule_error_string(rule)}"
        )
    return f"{text} evaluating rule: {_rule_error_string(rule)}"


def _rule_error_string(rule: dict[str, Any]) -> str:
    message: str = rule.get("message", "")
    return message.strip() if message else str(rule.get("rule", "")).strip()


def _message(rule: dict[str, Any], context: Any) -> str:
    """messageExpression's non-empty single-line string, else message, else the default."""
    expression = rule.get("messageExpression")
    if expression:
        try:
            text = compile_rule(expression).program.execute(context)
        except (ValueError, RuntimeError, KeyError, TypeError, ArithmeticError):
            text = None
        if isinstance(text, str) and text.strip() and "\n" not in text.strip():
            return text.strip()
    message: str = rule.get("message", "")
    return message.strip() if message else f"failed rule: {_rule_error_string(rule)}"


def _field_path(path: str, extra: str) -> str:
    """A rule's ``fieldPath`` (``.spec.foo`` or ``['x']``) below the rule's node."""
    if not extra:
        return path
    extra = re.sub(r"\['([^']*)'\]", r".\1", extra)
    return (path + extra) if path else extra.lstrip(".")


def _exc_text(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no such key: {exc.args[0] if exc.args else ''}"
    text = str(exc)
    wrapped = _WRAPPED.match(text)
    return wrapped.group(1) if wrapped else text


# ----- CRD-time checks ---------------------------------------------------------------------


def rules_paths(schema: Schema, path: str) -> list[tuple[str, dict[str, Any]]]:
    """(path of the rule, rule) for every rule in a CRD schema, for CRD validation."""
    return [(p, rule) for p, rule, _, _ in _rules_with_context(schema, path, [])]


def rules_with_schema(schema: Schema, path: str) -> list[tuple[str, dict[str, Any], Schema]]:
    """(path of the rule, rule, schema of the rule's node) for every rule in a CRD schema."""
    return [(p, rule, node) for p, rule, node, _ in _rules_with_context(schema, path, [])]


_FIELD_PATH_STEP = re.compile(r"\.([^.\[\]']+)|\['((?:[^'\\]|\\.)*)'\]")


def field_path_valid(schema: Schema, field_path: str) -> bool:
    """Whether ``.a.b['c']`` names a field the schema declares (upstream's ValidFieldPath)."""
    node: Schema | None = schema
    pos = 0
    while pos < len(field_path):
        step = _FIELD_PATH_STEP.match(field_path, pos)
        if step is None or node is None:
            return False
        name = step.group(1) if step.group(1) is not None else step.group(2)
        props = node.get("properties")
        additional = node.get("additionalProperties")
        if props is not None:
            node = props.get(name)
        elif isinstance(additional, dict):
            node = additional
        else:
            return False
        pos = step.end()
    return node is not None


def _rules_with_context(
    schema: Schema, path: str, above: list[Schema]
) -> list[tuple[str, dict[str, Any], Schema, list[Schema]]]:
    """Each rule with its path, its node's schema and the schemas of the nodes above it."""
    found: list[tuple[str, dict[str, Any], Schema, list[Schema]]] = []
    for i, rule in enumerate(schema.get("x-kubernetes-validations") or ()):
        found.append((f"{path}.x-kubernetes-validations[{i}]", rule, schema, above))
    for key, child in (schema.get("properties") or {}).items():
        if isinstance(child, dict):
            found.extend(_rules_with_context(child, f"{path}.properties[{key}]", [*above, schema]))
    for key in ("items", "additionalProperties"):
        child = schema.get(key)
        if isinstance(child, dict):
            found.extend(_rules_with_context(child, f"{path}.{key}", [*above, schema]))
    return found


def check_costs(schema: Schema, path: str) -> field.ErrorList:
    """Upstream's static cost limits: per rule, then the schema's total."""
    errs = field.ErrorList()
    total = 0.0
    costs: list[tuple[float, str]] = []
    for rule_path, rule, node, above in _rules_with_context(schema, path, []):
        for key in ("rule", "messageExpression"):
            source = rule.get(key)
            cost = cel_cost.estimate(source, node) if source else None
            if cost is None:
                continue
            cost *= cel_cost.cardinality([*above, node][1:])
            what = "estimated rule cost" if key == "rule" else "estimated messageExpression cost"
            if cost > cel_cost.STATIC_ESTIMATED_COST_LIMIT:
                errs.append(
                    field.forbidden(
                        f"{rule_path}.{key}",
                        cel_cost.exceeds_message(what, cost, cel_cost.STATIC_ESTIMATED_COST_LIMIT),
                    )
                )
            total += cost
            costs.append((cost, f"{rule_path}.{key}"))
    if total > cel_cost.STATIC_CRD_COST_LIMIT:
        for _, where in sorted(costs, reverse=True)[:4]:
            errs.append(
                field.forbidden(
                    where,
                    "contributed to estimated rule cost total exceeding cost limit for entire "
                    "OpenAPIv3 schema",
                )
            )
        errs.append(
            field.forbidden(
                path,
                cel_cost.exceeds_message(
                    "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 "
                    "schema",
                    total,
                    cel_cost.STATIC_CRD_COST_LIMIT,
                ),
            )
        )
    return errs
