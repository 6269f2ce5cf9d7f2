"""How many replicas resource usage asks for, and how fast an HPA may get there.

Pure functions, no I/O: the horizontal pod autoscaler controller
(``horizontal_pod_autoscaler.py``) reads metrics and pods, then asks here.
Mirrors upstream's pkg/controller/podautoscaler:

* ``replica_calculator.go``: ``resource_replicas`` (a utilization target:
  usage over requests, in percent) and ``raw_resource_replicas`` (an average
  value target). Pods are grouped first (``group_pods``): deleted and failed
  pods are ignored; pending ones, and for CPU pods not yet ready (or whose
  metric window began before they became ready, within 5 minutes of start),
  are unready; pods without a metric are missing. A change within the
  tolerance (0.1) keeps the current count; with missing or unready pods the
  ratio is recomputed as upstream does (missing pods at 100% of request on a
  scale-down, 0 on a scale-up; unready pods at 0 on a scale-up), and a
  recomputed ratio that changes the direction keeps the current count.
* ``horizontal.go``'s normalization: without ``behavior``, the highest
  recommendation of the last 5 minutes and a scale-up limit of
  max(2 × current, 4); with ``behavior``, stabilization windows over the
  recent recommendations per direction, then the scaling policies' rate limits
  over the recorded scale events. Each returns the conditions upstream sets
  (``AbleToScale`` and ``ScalingLimited``) with its reasons and messages.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Iterable, Mapping
from typing import Any

from kajitori.machinery import quantity, times

Object = dict[str, Any]

TOLERANCE = 0.1
# Upstream's --horizontal-pod-autoscaler-cpu-initialization-period and
# --horizontal-pod-autoscaler-initial-readiness-delay defaults.
CPU_INITIALIZATION_PERIOD = 300.0
DELAY_OF_INITIAL_READINESS_STATUS = 30.0
# Upstream's --horizontal-pod-autoscaler-downscale-stabilization (without behavior).
DOWNSCALE_STABILIZATION_WINDOW = 300.0
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0


class CalculationError(Exception):
    """A replica count cannot be computed; the text is upstream's."""


@dataclasses.dataclass(frozen=True, slots=True)
class PodMetric:
    """A pod's usage (milli-units) over ``window`` seconds ending at ``timestamp``."""

    value: int
    timestamp: datetime.datetime | None = None
    window: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class Proposal:
    replicas: int
    utilization: int | None  # percent of request, for utilization targets
    raw: int  # average milli-value per pod


# ----- metrics from the metrics API --------------------------------------------------


def parse_go_duration(text: str) -> float:
    """Seconds of a Go duration (``15.001s``, ``1m0.5s``, ``250ms``)."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    total, number, i = 0.0, "", 0
    while i < len(text):
        char = text[i]
        if char.isdigit() or char in ".-":
            number += char
            i += 1
            continue
        unit = next(u for u in ("ms", "us", "µs", "ns", "h", "m", "s") if text.startswith(u, i))
        total += float(number) * units[unit]
        number, i = "", i + len(unit)
    return total


def pod_metrics(
    items: Iterable[Object], resource: str, container: str = ""
) -> dict[str, PodMetric]:
    """Per pod name, the summed usage of ``resource`` (client-go's getPodMetrics/
    getContainerMetrics): a pod missing it in any container is left out."""
    found: dict[str, PodMetric] = {}
    for item in items:
        containers = item.get("containers") or []
        total, missing, seen = 0, not containers, False
        for entry in containers:
            if container and entry.get("name") != container:
                continue
            value = (entry.get("usage") or {}).get(resource)
            if value is None:
                missing = True
                break
            total += quantity.parse_quantity(str(value)).milli_value()
            seen = True
        if container and not seen:
            continue
        if not missing:
            name = str((item.get("metadata") or {}).get("name") or "")
            window = parse_go_duration(str(item.get("window") or "0s"))
            found[name] = PodMetric(total, times.parse_time(item.get("timestamp")), window)
    return found


# ----- grouping pods -------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Groups:
    ready: int = 0
    unready: set[str] = dataclasses.field(default_factory=set)
    missing: set[str] = dataclasses.field(default_factory=set)
    ignored: set[str] = dataclasses.field(default_factory=set)


def _ready_condition(pod: Object) -> Object | None:
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            return condition
    return None


def _cpu_unready(pod: Object, metric: PodMetric, now: datetime.datetime) -> bool:
    condition = _ready_condition(pod)
    started = times.parse_time((pod.get("status") or {}).get("startTime"))
    if condition is None or started is None:
        return True
    transition = times.parse_time(condition.get("lastTransitionTime")) or started
    not_ready = condition.get("status") == "False"
    if started + datetime.timedelta(seconds=CPU_INITIALIZATION_PERIOD) > now:
        # Young pod: its sample counts once one whole window followed readiness.
        window_start = transition + datetime.timedelta(seconds=metric.window)
        return not_ready or (metric.timestamp is not None and metric.timestamp < window_start)
    delay = datetime.timedelta(seconds=DELAY_OF_INITIAL_READINESS_STATUS)
    return not_ready and started + delay > transition


def group_pods(
    pods: Iterable[Object], metrics: Mapping[str, PodMetric], resource: str, now: datetime.datetime
) -> Groups:
    groups = Groups()
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        name = str(meta.get("name") or "")
        if meta.get("deletionTimestamp") or status.get("phase") == "Failed":
            groups.ignored.add(name)
        elif status.get("phase") == "Pending":
            groups.unready.add(name)
        elif name not in metrics:
            groups.missing.add(name)
        elif resource == "cpu" and _cpu_unready(pod, metrics[name], now):
            groups.unready.add(name)
        else:
            groups.ready += 1
    return groups


def pod_requests(pods: Iterable[Object], resource: str, container: str = "") -> dict[str, int]:
    """Per pod, the milli-requests of its regular and sidecar containers (upstream's message
    when one lacks a request)."""
    requests: dict[str, int] = {}
    for pod in pods:
        spec = pod.get("spec") or {}
        name = str((pod.get("metadata") or {}).get("name") or "")
        candidates = list(spec.get("containers") or ())
        candidates += [
            c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"
        ]
        total = 0
        for entry in candidates:
            if container and entry.get("name") != container:
                continue
            value = ((entry.get("resources") or {}).get("requests") or {}).get(resource)
            if value is None:
                raise CalculationError(
                    f"missing request for {resource} in container {entry.get('name')} of Pod {name}"
                )
            total += quantity.parse_quantity(str(value)).milli_value()
        requests[name] = total
    return requests


# ----- ratios and replica counts ----------------------------------------------------------------


def utilization_ratio(
    metrics: Mapping[str, PodMetric], requests: Mapping[str, int], target: int
) -> tuple[float, int, int]:
    """(usage ratio, utilization percent, average raw value), as GetResourceUtilizationRatio."""
    used = requested = entries = 0
    for name, metric in metrics.items():
        if name not in requests:
            continue
        used += metric.value
        requested += requests[name]
        entries += 1
    if requested == 0:
        raise CalculationError("no metrics returned matched known pods")
    utilization = _go_div(used * 100, requested)
    return utilization / target, utilization, _go_div(used, entries)


def _go_div(a: int, b: int) -> int:
    """Go's integer division (truncates toward zero)."""
    quotient = abs(a) // abs(b)
    return quotient if (a >= 0) == (b >= 0) else -quotient


def usage_ratio(metrics: Mapping[str, PodMetric], target: int) -> tuple[float, int]:
    current = _go_div(sum(m.value for m in metrics.values()), len(metrics))
    return current / target, current


def _usable(
    pods: list[Object], metrics: dict[str, PodMetric], resource: str, now: datetime.datetime
) -> Groups:
    if not pods:
        raise CalculationError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, metrics, resource, now)
    for name in groups.ignored | groups.unready:
        metrics.pop(name, None)
    if not metrics:
        raise CalculationError("did not receive metrics for targeted pods (pods might be unready)")
    return groups


def _settle(current: int, ratio: float, new_ratio: float, count: int, tolerance: float) -> int:
    """The recomputed proposal, unless it is too small a change or turns the direction."""
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current
    proposed = math.ceil(new_ratio * count)
    if (new_ratio < 1.0 and proposed > current) or (new_ratio > 1.0 and proposed < current):
        return current
    return proposed


def resource_replicas(
    current: int,
    target_utilization: int,
    resource: str,
    pods: list[Object],
    metrics: dict[str, PodMetric],
    *,
    now: datetime.datetime,
    container: str = "",
    tolerance: float = TOLERANCE,
) -> Proposal:
    """GetResourceReplicas: replicas for a utilization target (``metrics`` is consumed)."""
    groups = _usable(pods, metrics, resource, now)
    requests = pod_requests(pods, resource, container)
    ratio, utilization, raw = utilization_ratio(metrics, requests, target_utilization)
    up_with_unready = bool(groups.unready) and ratio > 1.0
    if not up_with_unready and not groups.missing:
        if abs(1.0 - ratio) <= tolerance:
            return Proposal(current, utilization, raw)
        return Proposal(math.ceil(ratio * groups.ready), utilization, raw)
    if groups.missing:
        fallback = max(100, target_utilization)
        for name in groups.missing:
            if ratio < 1.0:
                metrics[name] = PodMetric(_go_div(requests.get(name, 0) * fallback, 100))
            elif ratio > 1.0:
                metrics[name] = PodMetric(0)
    if up_with_unready:
        for name in groups.unready:
            metrics[name] = PodMetric(0)
    new_ratio, _, _ = utilization_ratio(metrics, requests, target_utilization)
    replicas = _settle(current, ratio, new_ratio, len(metrics), tolerance)
    return Proposal(replicas, utilization, raw)


def raw_resource_replicas(
    current: int,
    target_value: int,
    resource: str,
    pods: list[Object],
    metrics: dict[str, PodMetric],
    *,
    now: datetime.datetime,
    tolerance: float = TOLERANCE,
) -> Proposal:
    """GetRawResourceReplicas/calcPlainMetricReplicas: replicas for an average value target."""
    groups = _usable(pods, metrics, resource, now)
    ratio, usage = usage_ratio(metrics, target_value)
    up_with_unready = bool(groups.unready) and ratio > 1.0
    if not up_with_unready and not groups.missing:
        if abs(1.0 - ratio) <= tolerance:
            return Proposal(current, None, usage)
        return Proposal(math.ceil(ratio * groups.ready), None, usage)
    for name in groups.missing:
        metrics[name] = PodMetric(target_value if ratio < 1.0 else 0)
    if up_with_unready:
        for name in groups.unready:
            metrics[name] = PodMetric(0)
    new_ratio, _ = usage_ratio(metrics, target_value)
    return Proposal(_settle(current, ratio, new_ratio, len(metrics), tolerance), None, usage)


# ----- normalization: stabilization and rate limits ------------------------------------------


@dataclasses.dataclass(slots=True)
class Recommendation:
    replicas: int
    at: float


@dataclasses.dataclass(slots=True)
class ScaleEvent:
    change: int
    at: float
    outdated: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Condition:
    kind: str
    status: str
    reason: str
    message: str


@dataclasses.dataclass(slots=True)
class History:
    """One HPA's recent recommendations and scale events (upstream keeps them in memory)."""

    recommendations: list[Recommendation] = dataclasses.field(default_factory=list)
    scale_up: list[ScaleEvent] = dataclasses.field(default_factory=list)
    scale_down: list[ScaleEvent] = dataclasses.field(default_factory=list)

    def record_initial(self, current: int, now: float) -> None:
        if not self.recommendations:
            self.recommendations.append(Recommendation(current, now))

    def _remember(self, desired: int, now: float, old: int | None) -> None:
        if old is None:
            self.recommendations.append(Recommendation(desired, now))
        else:
            self.recommendations[old] = Recommendation(desired, now)

    def store_scale_event(
        self, behavior: Object | None, previous: int, new: int, now: float
    ) -> None:
        """storeScaleEvent: only with behavior; reuses an outdated slot."""
        if behavior is None:
            return
        up = new > previous
        rules = (behavior.get("scaleUp") if up else behavior.get("scaleDown")) or {}
        events = self.scale_up if up else self.scale_down
        longest = max(
            (int(p.get("periodSeconds") or 0) for p in rules.get("policies") or ()), default=0
        )
        for event in events:
            if event.at + longest < now:
                event.outdated = True
        change = new - previous if up else previous - new
        for i, event in enumerate(events):
            if event.outdated:
                events[i] = ScaleEvent(change, now)
                return
        events.append(ScaleEvent(change, now))


def normalize_without_behavior(
    history: History, current: int, desired: int, minimum: int, maximum: int, now: float
) -> tuple[int, list[Condition]]:
    """normalizeDesiredReplicas: the highest recent recommendation, then the legacy limits."""
    highest, old = desired, None
    for i, rec in enumerate(history.recommendations):
        if rec.at < now - DOWNSCALE_STABILIZATION_WINDOW:
            old = i
        elif rec.replicas > highest:
            highest = rec.replicas
    history._remember(desired, now, old)
    conditions = [
        Condition(
            "AbleToScale",
            "True",
            "ScaleDownStabilized",
            "recent recommendations were higher than current one, "
            "applying the highest recent recommendation",
        )
        if highest != desired
        else Condition(
            "AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"
        )
    ]
    limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
    if maximum > limit:
        top, reason, message = (
            limit,
            "ScaleUpLimit",
            "the desired replica count is increasing faster than the maximum scale rate",
        )
    else:
        top, reason, message = (
            maximum,
            "TooManyReplicas",
            "the desired replica count is more than the maximum replica count",
        )
    result = highest
    if highest < minimum:
        result, reason, message = (
            minimum,
            "TooFewReplicas",
            "the desired replica count is less than the minimum replica count",
        )
    elif highest > top:
        result = top
    else:
        reason, message = "DesiredWithinRange", "the desired count is within the acceptable range"
    limited = "False" if result == highest else "True"
    conditions.append(Condition("ScalingLimited", limited, reason, message))
    return result, conditions


def _window(rules: Object, default: int) -> int:
    value = rules.get("stabilizationWindowSeconds")
    return default if value is None else int(value)


def _stabilize(
    history: History, behavior: Object, current: int, desired: int, now: float
) -> tuple[int, Condition]:
    up_cutoff = now - _window(behavior.get("scaleUp") or {}, 0)
    down_cutoff = now - _window(behavior.get("scaleDown") or {}, 300)
    up, down, old = desired, desired, None
    for i, rec in enumerate(history.recommendations):
        if rec.at > up_cutoff:
            up = min(rec.replicas, up)
        if rec.at > down_cutoff:
            down = max(rec.replicas, down)
        if rec.at < up_cutoff and rec.at < down_cutoff:
            old = i
    recommendation = min(max(current, up), down)
    history._remember(desired, now, old)
    if recommendation == desired:
        return recommendation, Condition(
            "AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"
        )
    if desired >= current:
        return recommendation, Condition(
            "AbleToScale",
            "True",
            "ScaleUpStabilized",
            "recent recommendations were lower than current one, "
            "applying the lowest recent recommendation",
        )
    return recommendation, Condition(
        "AbleToScale",
        "True",
        "ScaleDownStabilized",
        "recent recommendations were higher than current one, "
        "applying the highest recent recommendation",
    )


def _changed_in(period: int, events: list[ScaleEvent], now: float) -> int:
    return sum(e.change for e in events if e.at > now - period and not e.outdated)


def scale_up_limit(current: int, history: History, rules: Object, now: float) -> int:
    """calculateScaleUpLimitWithScalingRules."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    results = []
    for policy in rules.get("policies") or ():
        period = int(policy.get("periodSeconds") or 0)
        start = (
            current
            - _changed_in(period, history.scale_up, now)
            + _changed_in(period, history.scale_down, now)
        )
        value = int(policy.get("value") or 0)
        if policy.get("type") == "Pods":
            results.append(start + value)
        else:
            results.append(math.ceil(start * (1 + value / 100)))
    if not results:
        return -(2**31) if select != "Min" else 2**31 - 1
    return min(results) if select == "Min" else max(results)


def scale_down_limit(current: int, history: History, rules: Object, now: float) -> int:
    """calculateScaleDownLimitWithBehaviors."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    results = []
    for policy in rules.get("policies") or ():
        period = int(policy.get("periodSeconds") or 0)
        start = (
            current
            - _changed_in(period, history.scale_up, now)
            + _changed_in(period, history.scale_down, now)
        )
        value = int(policy.get("value") or 0)
        if policy.get("type") == "Pods":
            results.append(start - value)
        else:
            results.append(int(start * (1 - value / 100)))
    if not results:
        return 2**31 - 1 if select != "Min" else -(2**31)
    return max(results) if select == "Min" else min(results)


def normalize_with_behavior(
    history: History,
    behavior: Object,
    current: int,
    desired: int,
    minimum: int,
    maximum: int,
    now: float,
) -> tuple[int, list[Condition]]:
    """normalizeDesiredReplicasWithBehaviors: stabilize, then apply the rate limits."""
    stabilized, able = _stabilize(history, behavior, current, desired, now)
    result, reason, message = (
        stabilized,
        "DesiredWithinRange",
        "the desired count is within the acceptable range",
    )
    if stabilized > current:
        limit = max(scale_up_limit(current, history, behavior.get("scaleUp") or {}, now), current)
        if maximum > limit:
            top, why, text = (
                limit,
                "ScaleUpLimit",
                "the desired replica count is increasing faster than the maximum scale rate",
            )
        else:
            top, why, text = (
                maximum,
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            )
        if stabilized > top:
            result, reason, message = top, why, text
    elif stabilized < current:
        limit = min(
            scale_down_limit(current, history, behavior.get("scaleDown") or {}, now), current
        )
        if minimum < limit:
            bottom, why, text = (
                limit,
                "ScaleDownLimit",
                "the desired replica count is decreasing faster than the maximum scale rate",
            )
        else:
            bottom, why, text = (
                minimum,
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            )
        if stabilized < bottom:
            result, reason, message = bottom, why, text
    limited = "False" if result == stabilized else "True"
    return result, [able, Condition("ScalingLimited", limited, reason, message)]
