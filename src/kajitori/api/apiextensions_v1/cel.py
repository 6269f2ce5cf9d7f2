"""CEL validation rules (``x-kubernetes-validations``) of CRD schemas.

Owns compiling rules once per source and evaluating them against a custom
resource (and, for transition rules, the stored object): each schema node's
rules see that node's value as ``self`` and, on update, the old value as
``oldSelf``; a rule that mentions ``oldSelf`` is skipped on create, as
upstream. Failures are rendered as upstream's apiextensions-apiserver does:
``spec: Invalid value: "object": <message>``, where the message is
``message``, the result of ``messageExpression``, or ``failed rule: <rule>``;
``fieldPath`` and ``reason`` move and retype the error. Expressions run on
the ``common-expression-language`` package (Rust bindings; see
docs/decisions/0010-crd-and-cel.md).
"""

from __future__ import annotations

import functools
import importlib
import re
from typing import Any

from kajitori.machinery import field

Schema = dict[str, Any]

_OLD_SELF = re.compile(r"\boldSelf\b")
_REASONS = {
    "FieldValueInvalid": field.ErrorType.INVALID,
    "FieldValueForbidden": field.ErrorType.FORBIDDEN,
    "FieldValueRequired": field.ErrorType.REQUIRED,
    "FieldValueDuplicate": field.ErrorType.DUPLICATE,
}
_ABSENT = object()


@functools.cache
def _cel() -> Any:
    """The CEL library, imported on first use: its package imports an interactive
    CLI (prompt_toolkit) that would add ~0.3 s to every server start."""
    return importlib.import_module("cel")


@functools.lru_cache(maxsize=1024)
def compile_rule(source: str) -> Any:
    """A compiled program; raises ValueError with the compiler's message."""
    return _cel().compile(source)


def compile_problem(source: str) -> str | None:
    """Why ``source`` does not compile, or None."""
    try:
        compile_rule(source)
    except (ValueError, RuntimeError) as exc:
        return str(exc)
    return None


def validate(
    obj: dict[str, Any], schema: Schema, old: dict[str, Any] | None = None
) -> field.ErrorList:
    """Run every rule in ``schema`` against ``obj`` (``old`` for transition rules)."""
    errs = field.ErrorList()
    _walk(obj, schema, _ABSENT if old is None else old, "", errs)
    return errs


def _walk(value: Any, schema: Schema, old: Any, path: str, errs: field.ErrorList) -> None:
    if value is None:
        return
    for rule in schema.get("x-kubernetes-validations") or ():
        problem = _run(rule, value, old, schema.get("type", ""), path)
        if problem is not None:
            errs.append(problem)
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        old_map = old if isinstance(old, dict) else {}
        for key, item in value.items():
            child = props.get(key) if key in props else additional
            if isinstance(child, dict) and (path or key not in ("apiVersion", "kind", "metadata")):
                child_path = f"{path}.{key}" if path else key
                _walk(item, child, old_map.get(key, _ABSENT), child_path, errs)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        # Transition rules see list items only where upstream correlates them (maps/sets);
        # without correlation an item has no old value.
        for i, item in enumerate(value):
            _walk(item, schema["items"], _ABSENT, f"{path}[{i}]", errs)


def _run(rule: dict[str, Any], value: Any, old: Any, type_: str, path: str) -> Any:
    source = rule.get("rule", "")
    is_transition = bool(_OLD_SELF.search(source))
    if is_transition and old is _ABSENT and not rule.get("optionalOldSelf"):
        return None
    variables: dict[str, Any] = {"self": value}
    if is_transition:
        variables["oldSelf"] = None if old is _ABSENT else old
    where = _field_path(path, rule.get("fieldPath", ""))
    try:
        result = compile_rule(source).execute(variables)
    except (ValueError, RuntimeError, KeyError, TypeError) as exc:
        return field.invalid(
            where, type_ or "object", f"{_exc_text(exc)} evaluating rule: {source}"
        )
    if result is True:
        return None
    message = _message(rule, variables) or f"failed rule: {source}"
    kind = _REASONS.get(rule.get("reason", ""), field.ErrorType.INVALID)
    if kind is field.ErrorType.INVALID:
        return field.invalid(where, type_ or "object", message)
    if kind is field.ErrorType.DUPLICATE:
        return field.FieldError(kind, where, type_ or "object", message)
    return field.FieldError(kind, where, detail=message)


def _message(rule: dict[str, Any], variables: dict[str, Any]) -> str:
    expression = rule.get("messageExpression")
    if expression:
        try:
            text = compile_rule(expression).execute(variables)
        except (ValueError, RuntimeError, KeyError, TypeError):
            text = None
        if isinstance(text, str) and text.strip():
            return text
    message: str = rule.get("message", "")
    return message


def _field_path(path: str, extra: str) -> str:
    """A rule's ``fieldPath`` (``.spec.foo`` or ``['x']``) below the rule's node."""
    if not extra:
        return path
    extra = re.sub(r"\['([^']*)'\]", r".\1", extra)
    return (path + extra) if path else extra.lstrip(".")


def _exc_text(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no such key: {exc.args[0] if exc.args else ''}"
    return str(exc)


def rules_paths(schema: Schema, path: str) -> list[tuple[str, dict[str, Any]]]:
    """(path of the rule, rule) for every rule in a CRD schema, for CRD validation."""
    found: list[tuple[str, dict[str, Any]]] = []
    for i, rule in enumerate(schema.get("x-kubernetes-validations") or ()):
        found.append((f"{path}.x-kubernetes-validations[{i}]", rule))
    for key, child in (schema.get("properties") or {}).items():
        if isinstance(child, dict):
            found.extend(rules_paths(child, f"{path}.properties[{key}]"))
    for key in ("items", "additionalProperties"):
        child = schema.get(key)
        if isinstance(child, dict):
            found.extend(rules_paths(child, f"{path}.{key}"))
    return found
