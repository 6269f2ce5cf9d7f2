"""Pod Security levels, policy versions and the namespace labels that choose them.

Owns the vocabulary of k8s.io/pod-security-admission/api: the three levels,
policy versions (``latest`` or ``v1.<minor>``), a level at a version, a
namespace's policy per mode (enforce, audit, warn) and how it is read from
the ``pod-security.kubernetes.io/<mode>[-version]`` labels over the
configured defaults, with upstream's field errors for bad values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from kajitori.machinery import field

Level = Literal["privileged", "baseline", "restricted"]
PRIVILEGED: Level = "privileged"
BASELINE: Level = "baseline"
RESTRICTED: Level = "restricted"
LEVELS: tuple[Level, ...] = (PRIVILEGED, BASELINE, RESTRICTED)

LABEL_PREFIX = "pod-security.kubernetes.io/"
ENFORCE_LEVEL_LABEL = LABEL_PREFIX + "enforce"
ENFORCE_VERSION_LABEL = LABEL_PREFIX + "enforce-version"
AUDIT_LEVEL_LABEL = LABEL_PREFIX + "audit"
AUDIT_VERSION_LABEL = LABEL_PREFIX + "audit-version"
WARN_LEVEL_LABEL = LABEL_PREFIX + "warn"
WARN_VERSION_LABEL = LABEL_PREFIX + "warn-version"

# Audit annotation keys, each recorded under LABEL_PREFIX.
AUDIT_ANNOTATION_PREFIX = LABEL_PREFIX
EXEMPTION_REASON_ANNOTATION = "exempt"
AUDIT_VIOLATIONS_ANNOTATION = "audit-violations"
ENFORCED_POLICY_ANNOTATION = "enforce-policy"

_VERSION = re.compile(r"^v1\.([0-9]|[1-9][0-9]*)$")
_LABELS_PATH = field.Path("metadata", "labels")


@dataclass(frozen=True, slots=True, order=False)
class Version:
    """A policy version: ``v1.<minor>``, or ``latest`` (newer than any minor)."""

    minor: int = 0
    latest: bool = False

    def __str__(self) -> str:
        return "latest" if self.latest else f"v1.{self.minor}"

    def older(self, other: Version) -> bool:
        """Whether this version comes before ``other`` (latest comes after all)."""
        if self.latest:
            return False
        return other.latest or self.minor < other.minor


LATEST = Version(latest=True)


@dataclass(frozen=True, slots=True)
class LevelVersion:
    level: Level
    version: Version

    def __str__(self) -> str:
        return f"{self.level}:{self.version}"

    def equivalent(self, other: LevelVersion) -> bool:
        """Same checks: both privileged (any version), or the same level and version."""
        both_privileged = self.level == PRIVILEGED and other.level == PRIVILEGED
        return both_privileged or self == other


@dataclass(frozen=True, slots=True)
class Policy:
    """A namespace's level and version for each mode."""

    enforce: LevelVersion
    audit: LevelVersion
    warn: LevelVersion

    def fully_privileged(self) -> bool:
        return PRIVILEGED == self.enforce.level == self.audit.level == self.warn.level

    def equivalent(self, other: Policy) -> bool:
        return (
            self.enforce.equivalent(other.enforce)
            and self.audit.equivalent(other.audit)
            and self.warn.equivalent(other.warn)
        )


# Upstream's defaults without an AdmissionConfiguration: privileged:latest for every mode.
DEFAULT_POLICY = Policy(
    LevelVersion(PRIVILEGED, LATEST),
    LevelVersion(PRIVILEGED, LATEST),
    LevelVersion(PRIVILEGED, LATEST),
)


class ParseError(ValueError):
    """A label value that is not a level or a version (the message is upstream's detail)."""


def parse_level(value: str) -> Level:
    for level in LEVELS:
        if value == level:
            return level
    raise ParseError("must be one of " + ", ".join(LEVELS))


def parse_version(value: str) -> Version:
    if value == "latest":
        return LATEST
    match = _VERSION.match(value)
    if match is None:
        raise ParseError('must be "latest" or "v1.x"')
    return Version(minor=int(match.group(1)))


def compare_levels(a: Level, b: Level) -> int:
    """-1, 0 or 1 as ``a`` is less, as or more restrictive than ``b``."""
    return (LEVELS.index(a) > LEVELS.index(b)) - (LEVELS.index(a) < LEVELS.index(b))


def _invalid(label: str, value: str, exc: ParseError) -> field.FieldError:
    return field.invalid(_LABELS_PATH.key(label), value, str(exc))


def policy_to_evaluate(
    labels: Mapping[str, str] | None, defaults: Policy = DEFAULT_POLICY
) -> tuple[Policy, list[field.FieldError]]:
    """The namespace's policy from its labels over ``defaults``, and the labels' errors.

    A bad enforce level enforces ``restricted`` (fails closed); a bad audit or
    warn level turns that mode off (``privileged``); a bad version means
    ``latest``. An enforce level set without a warn level raises warn to it.
    """
    if not labels:
        return defaults, []
    errs: list[field.FieldError] = []
    enforce, audit, warn = defaults.enforce, defaults.audit, defaults.warn

    def level_of(label: str, current: LevelVersion, on_error: Level) -> tuple[LevelVersion, bool]:
        value = labels.get(label)
        if value is None:
            return current, False
        try:
            return replace(current, level=parse_level(value)), True
        except ParseError as exc:
            errs.append(_invalid(label, value, exc))
            return replace(current, level=on_error), False

    def version_of(label: str, current: LevelVersion) -> LevelVersion:
        value = labels.get(label)
        if value is None:
            return current
        try:
            return replace(current, version=parse_version(value))
        except ParseError as exc:
            errs.append(_invalid(label, value, exc))
            return replace(current, version=LATEST)

    enforce, has_enforce_level = level_of(ENFORCE_LEVEL_LABEL, enforce, RESTRICTED)
    enforce = version_of(ENFORCE_VERSION_LABEL, enforce)
    audit, _ = level_of(AUDIT_LEVEL_LABEL, audit, PRIVILEGED)
    audit = version_of(AUDIT_VERSION_LABEL, audit)
    warn, _ = level_of(WARN_LEVEL_LABEL, warn, PRIVILEGED)
    warn = version_of(WARN_VERSION_LABEL, warn)

    has_warn_level = WARN_LEVEL_LABEL in labels
    if not has_warn_level and has_enforce_level and compare_levels(enforce.level, warn.level) > 0:
        version = warn.version if WARN_VERSION_LABEL in labels else enforce.version
        warn = LevelVersion(enforce.level, version)
    return Policy(enforce, audit, warn), errs


def aggregate_errors(errs: list[field.FieldError]) -> str:
    """The errors as upstream's ``ErrorList.ToAggregate().Error()`` prints them."""
    texts = list(dict.fromkeys(str(e) for e in errs))
    return texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
