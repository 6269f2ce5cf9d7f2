"""``KubeSchedulerConfiguration``: the file ``kajitori scheduler --config`` reads.

Upstream's kube-scheduler takes its settings from a
``kubescheduler.config.k8s.io/v1`` ``KubeSchedulerConfiguration`` (YAML or
JSON); a second scheduler in a cluster is the same binary with a profile
whose ``schedulerName`` differs, so it takes only the pods that name it and
the default scheduler leaves them alone. kajitori reads the part of that
object it acts on:

* ``profiles`` — one profile; its ``schedulerName`` (default
  ``default-scheduler``). The plugin set is always upstream's default, so a
  profile carrying ``plugins`` or ``pluginConfig`` is refused rather than
  silently run with other plugins;
* ``leaderElection`` — ``leaderElect``, ``resourceName``,
  ``resourceNamespace``, ``leaseDuration``, ``renewDeadline`` and
  ``retryPeriod`` (Go durations such as ``15s``), with upstream's defaults
  (the Lease ``kube-system/kube-scheduler``: two schedulers that both elect
  need different ``resourceName``s, as upstream).

Unknown fields are errors, as upstream's strict decoding makes them.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from kajitori.client import leaderelection
from kajitori.scheduler import framework

API_VERSION = "kubescheduler.config.k8s.io/v1"
KIND = "KubeSchedulerConfiguration"
DEFAULT_LEASE_NAME = "kube-scheduler"

_TOP_FIELDS = {"apiVersion", "kind", "profiles", "leaderElection"}
_PROFILE_FIELDS = {"schedulerName"}
_ELECTION_FIELDS = {
    "leaderElect",
    "resourceName",
    "resourceNamespace",
    "resourceLock",
    "leaseDuration",
    "renewDeadline",
    "retryPeriod",
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class ConfigError(ValueError):
    """The configuration file cannot be used; the message says why."""


@dataclasses.dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """What the scheduler process runs with: one profile's name and its leader election."""

    scheduler_name: str = framework.DEFAULT_SCHEDULER_NAME
    leader_elect: bool = True
    election: leaderelection.Config = dataclasses.field(
        default_factory=lambda: leaderelection.Config(name=DEFAULT_LEASE_NAME)
    )


def load(path: Path | str) -> SchedulerConfig:
    """Read and check the ``KubeSchedulerConfiguration`` at ``path``."""
    try:
        document = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"reading {path}: {exc}") from exc
    return parse(document)


def parse(document: Any) -> SchedulerConfig:
    """A ``SchedulerConfig`` from the decoded object (see the module docstring)."""
    if not isinstance(document, dict):
        raise ConfigError(f"expected a {KIND} object")
    if document.get("apiVersion") != API_VERSION or document.get("kind") != KIND:
        raise ConfigError(f"expected apiVersion {API_VERSION} and kind {KIND}")
    _no_unknown(document, _TOP_FIELDS, "")
    name = _profile_name(document.get("profiles") or [])
    elect, election = _election(document.get("leaderElection") or {})
    return SchedulerConfig(scheduler_name=name, leader_elect=elect, election=election)


def _profile_name(profiles: Any) -> str:
    if not isinstance(profiles, list) or len(profiles) > 1:
        raise ConfigError("profiles: kajitori's scheduler runs exactly one profile")
    if not profiles:
        return framework.DEFAULT_SCHEDULER_NAME
    profile = profiles[0]
    if not isinstance(profile, dict):
        raise ConfigError("profiles[0]: expected an object")
    unsupported = {"plugins", "pluginConfig"} & set(profile)
    if unsupported:
        raise ConfigError(
            f"profiles[0].{sorted(unsupported)[0]}: only upstream's default plugins are run"
        )
    _no_unknown(profile, _PROFILE_FIELDS, "profiles[0].")
    name = profile.get("schedulerName") or framework.DEFAULT_SCHEDULER_NAME
    if not isinstance(name, str):
        raise ConfigError("profiles[0].schedulerName: expected a string")
    return name


def _election(section: Any) -> tuple[bool, leaderelection.Config]:
    if not isinstance(section, dict):
        raise ConfigError("leaderElection: expected an object")
    _no_unknown(section, _ELECTION_FIELDS, "leaderElection.")
    lock = section.get("resourceLock", "leases")
    if lock != "leases":
        raise ConfigError(f"leaderElection.resourceLock: only leases is supported, not {lock!r}")
    defaults = leaderelection.Config(name=DEFAULT_LEASE_NAME)
    try:
        election = leaderelection.Config(
            name=section.get("resourceName") or DEFAULT_LEASE_NAME,
            namespace=section.get("resourceNamespace") or defaults.namespace,
            lease_duration=_seconds(section, "leaseDuration", defaults.lease_duration),
            renew_deadline=_seconds(section, "renewDeadline", defaults.renew_deadline),
            retry_period=_seconds(section, "retryPeriod", defaults.retry_period),
        )
    except ValueError as exc:
        raise ConfigError(f"leaderElection: {exc}") from exc
    return bool(section.get("leaderElect", True)), election


def _seconds(section: dict[str, Any], field: str, default: float) -> float:
    """A Go duration (``15s``, ``1m30s``, ``500ms``) in seconds."""
    text = section.get(field)
    if text is None:
        return default
    parts = _DURATION.findall(str(text))
    if not parts or "".join(n + u for n, u in parts) != str(text):
        raise ConfigError(f"leaderElection.{field}: invalid duration {text!r}")
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def _no_unknown(obj: dict[str, Any], known: set[str], prefix: str) -> None:
    for field in obj:
        if field not in known:
            raise ConfigError(f'unknown field "{prefix}{field}"')
