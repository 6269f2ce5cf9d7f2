"""``matchConditions``: CEL expressions that must all hold for a webhook or a policy to apply.

Owns evaluating them as upstream's matchconditions matcher does, for both
admission webhooks (``webhooks.dispatch``) and ValidatingAdmissionPolicies
(``policy.validating``): any condition that is not true skips the webhook or
policy (even when others failed to evaluate); otherwise evaluation errors follow
the failurePolicy (Fail: the error, one alone or several bracketed, refuses
the request; Ignore: skipped). Expressions are evaluated by
``policy.cel_env``, so they see what upstream declares for them: ``object``,
``oldObject`` (null when absent), ``request`` and ``authorizer``, and for a
policy also ``params``, ``namespaceObject`` and ``variables``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kajitori.admission.policy import cel_env


@dataclass(frozen=True, slots=True)
class MatchResult:
    matches: bool
    error: str = ""  # set when evaluation failed and the failure policy is Fail


def evaluate(
    expressions: Sequence[str], inputs: cel_env.Inputs, *, ignore_failures: bool
) -> MatchResult:
    errors: list[str] = []
    for expression in expressions:
        try:
            result = cel_env.evaluate(expression, inputs)
        except cel_env.ExpressionError as exc:
            errors.append(str(exc))
            continue
        if result is not True:
            # Any value but true skips, as upstream (an untyped field read may yield a string).
            return MatchResult(False)
    if not errors:
        return MatchResult(True)
    if ignore_failures:
        return MatchResult(False)
    return MatchResult(False, _aggregate(errors))


def _aggregate(errors: list[str]) -> str:
    """Upstream's error aggregate text: one error alone, several bracketed."""
    if len(errors) == 1:
        return errors[0]
    return "[" + ", ".join(errors) + "]"
