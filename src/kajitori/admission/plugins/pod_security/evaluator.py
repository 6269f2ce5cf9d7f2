"""Which checks a level at a policy version runs, and how their results read as one message.

Owns upstream's policy/registry.go and the aggregation of policy/checks.go:
for each minor version from v1.0 to the newest one any check (or the
server's own version) names, the baseline checks in force, and the
restricted ones: the restricted checks in force plus every baseline check
none of them overrides. Checks run baseline first, then restricted, each
group in the order of its ids. ``latest`` and versions past the newest
evaluate as the newest; ``privileged`` runs nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kajitori.admission.plugins.pod_security.api import (
    BASELINE,
    PRIVILEGED,
    RESTRICTED,
    LevelVersion,
)
from kajitori.admission.plugins.pod_security.checks import (
    CHECKS,
    Check,
    CheckFn,
    CheckResult,
    VersionedCheck,
)

Object = dict[str, Any]

# The API server's own minor version (emulation version): upstream evaluates
# ``latest`` as the newest of it and the checks' versions.
SERVER_MINOR = 37
UNKNOWN_FORBIDDEN_REASON = "unknown forbidden reason"


@dataclass(frozen=True, slots=True)
class AggregateResult:
    """Every failed check of one evaluation, in evaluation order."""

    allowed: bool
    reasons: tuple[str, ...] = ()
    details: tuple[str, ...] = ()

    def forbidden_reason(self) -> str:
        """``reason, reason`` (what the namespace-label warnings list per pod)."""
        return ", ".join(self.reasons)

    def forbidden_detail(self) -> str:
        """``reason (detail), reason`` (what denials and warnings print)."""
        parts = []
        for reason, detail in zip(self.reasons, self.details, strict=True):
            parts.append(f"{reason} ({detail})" if detail else reason)
        return ", ".join(parts)


def aggregate(results: Iterable[CheckResult]) -> AggregateResult:
    reasons: list[str] = []
    details: list[str] = []
    for result in results:
        if not result.allowed:
            reasons.append(result.reason or UNKNOWN_FORBIDDEN_REASON)
            details.append(result.detail)
    return AggregateResult(not reasons, tuple(reasons), tuple(details))


class Evaluator:
    """The checks of every level and version, computed once (upstream's checkRegistry)."""

    def __init__(self, checks: Sequence[Check] = CHECKS, server_minor: int = SERVER_MINOR) -> None:
        self.max_minor = max(
            [server_minor, *(c.versions[-1].minimum for c in checks)],
        )
        self._baseline: list[tuple[CheckFn, ...]] = []
        self._restricted: list[tuple[CheckFn, ...]] = []
        self._populate(checks)

    def _populate(self, checks: Sequence[Check]) -> None:
        ordered = sorted(c.id for c in checks if c.level == BASELINE)
        ordered += sorted(c.id for c in checks if c.level == RESTRICTED)
        for minor in range(self.max_minor + 1):
            baseline = {c.id: v for c in checks if c.level == BASELINE if (v := _at(c, minor))}
            restricted = {c.id: v for c in checks if c.level == RESTRICTED if (v := _at(c, minor))}
            overridden = {o for v in restricted.values() for o in v.overrides}
            merged = dict(restricted)
            merged.update({i: v for i, v in baseline.items() if i not in overridden})
            self._baseline.append(tuple(baseline[i].check for i in ordered if i in baseline))
            self._restricted.append(tuple(merged[i].check for i in ordered if i in merged))

    def checks_for(self, lv: LevelVersion) -> tuple[CheckFn, ...]:
        if lv.level == PRIVILEGED:
            return ()
        minor = self.max_minor if lv.version.latest else min(lv.version.minor, self.max_minor)
        table = self._baseline if lv.level == BASELINE else self._restricted
        return table[minor]

    def evaluate(self, lv: LevelVersion, meta: Object, spec: Object) -> AggregateResult:
        """The aggregate result of ``lv``'s checks on a pod's (or template's) metadata and spec."""
        return aggregate(check(meta, spec) for check in self.checks_for(lv))


def _at(check: Check, minor: int) -> VersionedCheck | None:
    """The rule of ``check`` in force at ``v1.<minor>`` (None before its first version)."""
    found = None
    for versioned in check.versions:
        if versioned.minimum <= minor:
            found = versioned
    return found
