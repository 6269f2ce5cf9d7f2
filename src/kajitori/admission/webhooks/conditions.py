"""A webhook's ``matchConditions``: CEL expressions that must all hold for it to be called.

Owns evaluating them as upstream's matchconditions matcher does: any
condition false skips the webhook (even when others failed to evaluate);
otherwise evaluation errors follow the webhook's failurePolicy (Fail: the
request is refused with a Forbidden naming the errors; Ignore: the webhook
is skipped). Expressions see ``object``, ``oldObject`` (null when absent) and
``request`` (the AdmissionRequest); ``authorizer`` is not offered. The CEL
engine and Kubernetes' function libraries are the CRD validation rules' own
(api.apiextensions_v1.cel).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kajitori.api.apiextensions_v1 import cel, cel_library

Object = dict[str, Any]


@dataclass(frozen=True, slots=True)
class MatchResult:
    matches: bool
    error: str = ""  # set when evaluation failed and the failure policy is Fail


def evaluate(
    conditions: Sequence[tuple[str, str]], variables: Object, *, ignore_failures: bool
) -> MatchResult:
    errors: list[str] = []
    context = cel._cel().Context(variables=variables, functions=cel_library.FUNCTIONS)
    for _name, expression in conditions:
        try:
            compiled = cel.compile_rule(expression)
        except (ValueError, RuntimeError) as exc:
            errors.append(f"compilation error: {exc}")
            continue
        try:
            result = compiled.program.execute(context)
        except (ValueError, RuntimeError, KeyError, TypeError, ArithmeticError) as exc:
            errors.append(f"expression '{expression}' resulted in error: {_error_text(exc)}")
            continue
        if result is False:
            return MatchResult(False)
        if result is not True:
            errors.append(
                f"expression '{expression}' resulted in error: "
                "no such overload: expected a bool result"
            )
    if not errors:
        return MatchResult(True)
    if ignore_failures:
        return MatchResult(False)
    return MatchResult(False, _aggregate(errors))


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no such key: {exc.args[0] if exc.args else ''}"
    if isinstance(exc, TypeError):
        return "no such overload"
    return str(exc)


def _aggregate(errors: list[str]) -> str:
    """Upstream's error aggregate text: one error alone, several bracketed."""
    if len(errors) == 1:
        return errors[0]
    return "[" + ", ".join(errors) + "]"
