"""The horizontal pod autoscaler controller (upstream's pkg/controller/podautoscaler).

Every HPA is looked at when it changes and every sync period (15 s, upstream's
``--horizontal-pod-autoscaler-sync-period``). Its target's ``/scale`` is read
(``AbleToScale`` False/``FailedGetScale`` and a Warning Event when that
fails); a target scaled to zero disables autoscaling (``ScalingActive``
False/``ScalingDisabled``); a replica count outside [minReplicas, maxReplicas]
is brought inside through ``/scale`` (``SuccessfulRescale``) without asking
any metric.

Otherwise each spec metric proposes a replica count. ``Resource`` and
``ContainerResource`` metrics read ``metrics.k8s.io/v1beta1`` PodMetrics of the
target's selector (served by kajitori's built-in metrics-server) and the pods
from the shared pod informer, and ``replica_calculator.py`` turns usage against
requests (or an average value) into a count, with upstream's tolerance and
missing/unready pod rules. The highest proposal wins (``ScalingActive``
True/``ValidMetricFound``), is stabilized and rate-limited (without
``behavior``, or with its windows and policies: ``AbleToScale`` and
``ScalingLimited`` as upstream) and applied through ``/scale`` with a
``SuccessfulRescale`` Event ("New size: N; reason: cpu resource utilization
(percentage of request) above target"); ``currentMetrics`` reports each
metric's current value.

``Pods``, ``Object`` and ``External`` metrics need custom or external metrics
adapters, which kajitori does not serve; they fail as upstream's do without
them, as does a resource metric when ``metrics.k8s.io`` is not served: a
Warning Event per failing metric, and when every metric fails (or some fail
and the rest would scale down) ``ScalingActive`` False with the first
failure, a ``FailedComputeMetricsReplicas`` Warning, an empty current metric
per failing spec metric (``- type: ""``) and the replica count left alone.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kajitori.client import events, informer, rest
from kajitori.controllers import base
from kajitori.controllers import replica_calculator as calc
from kajitori.controllers.common import pod_util
from kajitori.machinery import labels, quantity, times

log = logging.getLogger(__name__)

Object = dict[str, Any]
Clock = Callable[[], datetime.datetime]

HPAS = rest.Resource(
    "autoscaling", "v2", "horizontalpodautoscalers", True, "HorizontalPodAutoscaler"
)
# Upstream's --horizontal-pod-autoscaler-sync-period.
SYNC_PERIOD = 15.0
POD_METRICS = rest.Resource("metrics.k8s.io", "v1beta1", "pods", True, "PodMetrics")
# The kinds with a /scale subresource kajitori serves itself; others (custom
# resources with a scale subresource) are found through discovery.
SCALABLE: dict[tuple[str, str], rest.Resource] = {
    ("apps", "Deployment"): rest.DEPLOYMENTS,
    ("apps", "ReplicaSet"): rest.REPLICASETS,
    ("apps", "StatefulSet"): rest.STATEFULSETS,
    ("", "ReplicationController"): rest.Resource(
        "", "v1", "replicationcontrollers", True, "ReplicationController"
    ),
}

# What client-go reports when the resource metrics API is not served.
_NO_RESOURCE_METRICS = (
    "unable to fetch metrics from resource metrics API: "
    "the server could not find the requested resource (get pods.metrics.k8s.io)"
)
_NO_CUSTOM_METRICS = (
    "unable to fetch metrics from custom metrics API: "
    "no custom metrics API (custom.metrics.k8s.io) registered"
)
_NO_EXTERNAL_METRICS = (
    "unable to fetch metrics from external metrics API: "
    "the server could not find the requested resource (get {name}.external.metrics.k8s.io)"
)


class TargetError(Exception):
    """The target's scale cannot be read (bad apiVersion, unknown kind, missing object)."""


class MetricError(Exception):
    """One spec metric gave no proposal."""

    def __init__(self, failure: MetricFailure) -> None:
        super().__init__(failure.error)
        self.failure = failure


@dataclass(slots=True)
class Computed:
    """computeReplicasForMetrics' result: -1 replicas when no scaling may follow."""

    replicas: int
    metric: str
    statuses: list[Object]
    error: str = ""


@dataclass(frozen=True, slots=True)
class MetricFailure:
    """One spec metric that could not be read: its Event/condition reason, its error, and
    the error as ``computeReplicasForMetrics`` wraps it."""

    reason: str
    error: str
    wrapped: str


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _resource_failure(metric: Object, key: str, reason: str, wrap: str) -> MetricFailure:
    source = _dict(metric.get(key))
    name = str(source.get("name") or "")
    target = _dict(source.get("target"))
    # A utilization target asks for utilization, a value target for raw usage.
    what = "usage" if target.get("averageValue") is not None else "utilization"
    error = (
        f"failed to get {name} {what}: unable to get metrics for resource {name}: "
        f"{_NO_RESOURCE_METRICS}"
    )
    return MetricFailure(reason, error, f"failed to get {name} {wrap} value: {error}")


def metric_failure(metric: Object) -> MetricFailure:
    """How reading ``metric`` fails with no metrics API served (upstream's messages)."""
    kind = metric.get("type")
    if kind == "Resource":
        return _resource_failure(metric, "resource", "FailedGetResourceMetric", "resource metric")
    if kind == "ContainerResource":
        return _resource_failure(
            metric, "containerResource", "FailedGetContainerResourceMetric", "container metric"
        )
    if kind == "Pods":
        name = _dict(_dict(metric.get("pods")).get("metric")).get("name", "")
        error = f"unable to get metric {name}: {_NO_CUSTOM_METRICS}"
        return MetricFailure(
            "FailedGetPodsMetric", error, f"failed to get pods metric value: {error}"
        )
    if kind == "Object":
        source = _dict(metric.get("object"))
        name = _dict(source.get("metric")).get("name", "")
        error = f"unable to get metric {name}: {_NO_CUSTOM_METRICS}"
        return MetricFailure(
            "FailedGetObjectMetric", error, f"failed to get object metric value: {error}"
        )
    if kind == "External":
        name = _dict(_dict(metric.get("external")).get("metric")).get("name", "")
        error = f"unable to get external metric {name}: " + _NO_EXTERNAL_METRICS.format(name=name)
        return MetricFailure(
            "FailedGetExternalMetric", error, f"failed to get external metric value: {error}"
        )
    error = f'unknown metric source type "{kind}"'
    return MetricFailure("InvalidMetricSourceType", error, error)


def set_condition(
    status: Object, kind: str, state: str, reason: str, message: str, *, now: str
) -> None:
    """Upstream's setCondition: the transition time moves only when the status changes."""
    conditions = status.get("conditions")
    if not isinstance(conditions, list):
        conditions = status["conditions"] = []
    for condition in conditions:
        if isinstance(condition, dict) and condition.get("type") == kind:
            if condition.get("status") != state:
                condition["lastTransitionTime"] = now
            condition.update(status=state, reason=reason, message=message)
            return
    conditions.append(
        {
            "type": kind,
            "status": state,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        }
    )


class HorizontalPodAutoscalerController(base.QueueController[str]):
    """Keeps each HPA's status (and its target's replicas within bounds); ``clock`` for tests."""

    name = "horizontalpodautoscaling"

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
        clock: Clock = pod_util.now,
        sync_period: float = SYNC_PERIOD,
    ) -> None:
        super().__init__()
        self.client = client
        self.recorder = recorder
        self.clock = clock
        self.sync_period = sync_period
        self.hpa_informer = self.watch(
            informers.informer(HPAS), on_add=self.enqueue, on_update=self._update
        )
        # The replica calculator's pod lister (no handlers: pods change no HPA by themselves).
        self.pod_informer = self.watch(informers.informer(rest.PODS))
        # Per HPA key: recent recommendations and scale events (upstream keeps them in memory).
        self.histories: dict[str, calc.History] = {}

    def _update(self, old: Object, new: Object) -> None:
        # Our own status writes come back as updates: only spec changes need a look now,
        # the periodic resync covers the rest.
        if old.get("spec") != new.get("spec"):
            self.enqueue(new)

    async def sync(self, key: str) -> None:
        cached = self.hpa_informer.indexer.get(key)
        if cached is None:
            self.histories.pop(key, None)
            return
        hpa: Object = {**cached, "status": _copy(cached.get("status"))}
        try:
            await self._reconcile(hpa)
        except rest.ApiError as exc:
            # Gone meanwhile (the next look finds no HPA) or changed meanwhile (the
            # next look starts from the new object): either way, look again later.
            if not exc.not_found and not exc.conflict:
                raise
        raise base.RequeueAfter(self.sync_period, f"resync of {key}")

    async def _reconcile(self, hpa: Object) -> None:
        original = _copy(hpa["status"])
        status: Object = hpa["status"]
        now = times.format_time(self.clock())
        spec = _dict(hpa.get("spec"))
        try:
            resource, scale = await self._scale_of(hpa)
        except TargetError as exc:
            self.recorder.event(hpa, "Warning", "FailedGetScale", str(exc))
            set_condition(
                status,
                "AbleToScale",
                "False",
                "FailedGetScale",
                f"the HPA controller was unable to get the target's current scale: {exc}",
                now=now,
            )
            await self._update_status(hpa, original)
            return
        set_condition(
            status,
            "AbleToScale",
            "True",
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
            now=now,
        )
        current = int(_dict(scale.get("spec")).get("replicas") or 0)
        min_replicas = spec.get("minReplicas")
        min_replicas = 1 if min_replicas is None else int(min_replicas)
        max_replicas = int(spec.get("maxReplicas") or 0)
        desired = current
        if current == 0 and min_replicas != 0:
            set_condition(
                status,
                "ScalingActive",
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
                now=now,
            )
            desired = 0
        elif current > max_replicas:
            desired = max_replicas
            reason = "Current number of replicas above Spec.MaxReplicas"
            if not await self._rescale(hpa, resource, scale, desired, reason, now=now):
                await self._report_current(hpa, original, current, None)
                return
        elif current < min_replicas:
            desired = min_replicas
            reason = "Current number of replicas below Spec.MinReplicas"
            if not await self._rescale(hpa, resource, scale, desired, reason, now=now):
                await self._report_current(hpa, original, current, None)
                return
        else:
            await self._autoscale(hpa, original, resource, scale, current, now=now)
            return
        status["currentReplicas"] = current
        status["desiredReplicas"] = desired
        status["currentMetrics"] = None
        if desired != current:
            status["lastScaleTime"] = now
        await self._update_status(hpa, original)

    async def _report_current(
        self, hpa: Object, original: Object, current: int, metrics: list[Object] | None
    ) -> None:
        """No new replica count: report what is (desiredReplicas stays as it was)."""
        hpa["status"]["currentReplicas"] = current
        hpa["status"]["currentMetrics"] = metrics
        await self._update_status(hpa, original)

    async def _autoscale(
        self,
        hpa: Object,
        original: Object,
        resource: rest.Resource,
        scale: Object,
        current: int,
        *,
        now: str,
    ) -> None:
        """Within bounds: the metrics' proposal, normalized, applied (reconcileAutoscaler)."""
        spec = _dict(hpa.get("spec"))
        key = informer.meta_namespace_key(hpa)
        history = self.histories.setdefault(key, calc.History())
        moment = self.clock().timestamp()
        history.record_initial(current, moment)
        computed = await self._compute_metrics(hpa, scale, now=now)
        if computed is None or computed.replicas == -1:
            statuses = None if computed is None else computed.statuses
            await self._report_current(hpa, original, current, statuses)
            if computed is not None and computed.error:
                self.recorder.event(hpa, "Warning", "FailedComputeMetricsReplicas", computed.error)
            return
        proposed, reason = computed.replicas, ""
        if proposed > current:
            reason = f"{computed.metric} above target"
        elif proposed < current:
            reason = "All metrics below target"
        minimum = spec.get("minReplicas")
        minimum = 1 if minimum is None else int(minimum)
        maximum = int(spec.get("maxReplicas") or 0)
        behavior = spec.get("behavior")
        if isinstance(behavior, dict):
            desired, conditions = calc.normalize_with_behavior(
                history, behavior, current, proposed, minimum, maximum, moment
            )
        else:
            desired, conditions = calc.normalize_without_behavior(
                history, current, proposed, minimum, maximum, moment
            )
        for condition in conditions:
            set_condition(
                hpa["status"],
                condition.kind,
                condition.status,
                condition.reason,
                condition.message,
                now=now,
            )
        if desired != current and not await self._rescale(
            hpa, resource, scale, desired, reason, now=now
        ):
            await self._report_current(hpa, original, current, computed.statuses)
            return
        status = hpa["status"]
        status["currentReplicas"] = current
        status["desiredReplicas"] = desired
        status["currentMetrics"] = computed.statuses
        if desired != current:
            status["lastScaleTime"] = now
        await self._update_status(hpa, original)

    async def _compute_metrics(self, hpa: Object, scale: Object, *, now: str) -> Computed | None:
        """computeReplicasForMetrics: every metric's proposal, the highest wins (None: the
        target has no usable selector)."""
        status = hpa["status"]
        selector_text = str(_dict(scale.get("status")).get("selector") or "")
        if not selector_text:
            self.recorder.event(hpa, "Warning", "SelectorRequired", "selector is required")
            set_condition(
                status,
                "ScalingActive",
                "False",
                "InvalidSelector",
                "the HPA target's scale is missing a selector",
                now=now,
            )
            return None
        try:
            selector = labels.parse_selector(selector_text)
        except labels.SelectorError as exc:
            self.recorder.event(hpa, "Warning", "InvalidSelector", str(exc))
            set_condition(
                status,
                "ScalingActive",
                "False",
                "InvalidSelector",
                f"the HPA target's scale has an invalid selector: {exc}",
                now=now,
            )
            return None
        metrics = [_dict(m) for m in _dict(hpa.get("spec")).get("metrics") or ()]
        spec_replicas = int(_dict(scale.get("spec")).get("replicas") or 0)
        result = Computed(replicas=0, metric="", statuses=[{"type": ""} for _ in metrics])
        failures: list[MetricFailure] = []
        for i, metric in enumerate(metrics):
            try:
                replicas, name, metric_status = await self._compute_metric(
                    hpa, metric, spec_replicas, selector_text, selector
                )
            except MetricError as exc:
                self.recorder.event(hpa, "Warning", exc.failure.reason, exc.failure.error)
                failures.append(exc.failure)
                continue
            result.statuses[i] = metric_status
            if result.replicas == 0 or replicas > result.replicas:
                result.replicas, result.metric = replicas, name
        if failures:
            result.error = (
                f"invalid metrics ({len(failures)} invalid out of {len(metrics)}), "
                f"first error is: {failures[0].wrapped}"
            )
        if failures and (len(failures) >= len(metrics) or result.replicas < spec_replicas):
            first = failures[0]
            set_condition(
                status,
                "ScalingActive",
                "False",
                first.reason,
                f"the HPA was unable to compute the replica count: {first.error}",
                now=now,
            )
            result.replicas = -1
            return result
        set_condition(
            status,
            "ScalingActive",
            "True",
            "ValidMetricFound",
            f"the HPA was able to successfully calculate a replica count from {result.metric}",
            now=now,
        )
        return result

    async def _compute_metric(
        self,
        hpa: Object,
        metric: Object,
        spec_replicas: int,
        selector_text: str,
        selector: labels.Selector,
    ) -> tuple[int, str, Object]:
        """One metric's (replicas, name, status); MetricError with upstream's texts."""
        kind = metric.get("type")
        if kind not in ("Resource", "ContainerResource"):
            raise MetricError(metric_failure(metric))
        key = "resource" if kind == "Resource" else "containerResource"
        reason = (
            "FailedGetResourceMetric" if kind == "Resource" else "FailedGetContainerResourceMetric"
        )
        wrap = "resource metric" if kind == "Resource" else "container metric"
        source = _dict(metric.get(key))
        name = str(source.get("name") or "")
        container = str(source.get("container") or "") if kind == "ContainerResource" else ""
        target = _dict(source.get("target"))
        by_value = target.get("averageValue") is not None
        what = "usage" if by_value else "utilization"

        def failed(error: str) -> MetricError:
            return MetricError(
                MetricFailure(reason, error, f"failed to get {name} {wrap} value: {error}")
            )

        if not by_value and target.get("averageUtilization") is None:
            raise failed(
                "invalid resource metric source: neither an average utilization target "
                "nor an average value (usage) target was set"
            )
        namespace = str(hpa["metadata"].get("namespace") or "")
        try:
            usage = await self._pod_usage(namespace, selector_text, name, container)
        except calc.CalculationError as exc:
            raise failed(f"failed to get {name} {what}: {exc}") from exc
        pods = [
            p
            for p in self.pod_informer.indexer.by_index(informer.NAMESPACE_INDEX, namespace)
            if selector.matches(_dict(p.get("metadata")).get("labels") or {})
        ]
        moment = self.clock()
        try:
            if by_value:
                value = quantity.parse_quantity(str(target["averageValue"])).milli_value()
                proposal = calc.raw_resource_replicas(
                    spec_replicas, value, name, pods, usage, now=moment
                )
            else:
                proposal = calc.resource_replicas(
                    spec_replicas,
                    int(target["averageUtilization"]),
                    name,
                    pods,
                    usage,
                    now=moment,
                    container=container,
                )
        except calc.CalculationError as exc:
            raise failed(f"failed to get {name} {what}: {exc}") from exc
        current: Object = {"averageValue": quantity.Quantity.from_milli(proposal.raw).canonical()}
        if proposal.utilization is not None:
            current["averageUtilization"] = proposal.utilization
        status_source: Object = {"name": name, "current": current}
        if container:
            status_source = {"name": name, "container": container, "current": current}
        if by_value:
            label = f"{name} resource"
        elif container:
            label = f"{name} container resource utilization (percentage of request)"
        else:
            label = f"{name} resource utilization (percentage of request)"
        return proposal.replicas, label, {"type": kind, key: status_source}

    async def _pod_usage(
        self, namespace: str, selector: str, resource: str, container: str
    ) -> dict[str, calc.PodMetric]:
        """The resource metrics client's GetResourceMetric (its error texts)."""
        prefix = f"unable to get metrics for resource {resource}: "
        try:
            listed = await self.client.list(
                POD_METRICS, namespace=namespace, label_selector=selector
            )
        except rest.ApiError as exc:
            if exc.not_found:
                raise calc.CalculationError(prefix + _NO_RESOURCE_METRICS) from exc
            raise calc.CalculationError(
                f"{prefix}unable to fetch metrics from resource metrics API: {exc.message}"
            ) from exc
        items = listed.get("items") or []
        if not items:
            raise calc.CalculationError(prefix + "no metrics returned from resource metrics API")
        return calc.pod_metrics(items, resource, container)

    async def _rescale(
        self,
        hpa: Object,
        resource: rest.Resource,
        scale: Object,
        desired: int,
        reason: str,
        *,
        now: str,
    ) -> bool:
        """Set the target's replicas through ``/scale``; False (reported) when refused."""
        body = {**scale, "spec": {**_dict(scale.get("spec")), "replicas": desired}}
        try:
            await self.client.update(
                resource, body, namespace=hpa["metadata"].get("namespace", ""), subresource="scale"
            )
        except rest.ApiError as exc:
            self.recorder.event(
                hpa,
                "Warning",
                "FailedRescale",
                f"New size: {desired}; reason: {reason}; error: {exc.message}",
            )
            set_condition(
                hpa["status"],
                "AbleToScale",
                "False",
                "FailedUpdateScale",
                f"the HPA controller was unable to update the target scale: {exc.message}",
                now=now,
            )
            return False
        set_condition(
            hpa["status"],
            "AbleToScale",
            "True",
            "SucceededRescale",
            f"the HPA controller was able to update the target scale to {desired}",
            now=now,
        )
        self.recorder.event(
            hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}"
        )
        current = int(_dict(scale.get("spec")).get("replicas") or 0)
        history = self.histories.setdefault(informer.meta_namespace_key(hpa), calc.History())
        behavior = _dict(hpa.get("spec")).get("behavior")
        history.store_scale_event(
            behavior if isinstance(behavior, dict) else None,
            current,
            desired,
            self.clock().timestamp(),
        )
        return True

    async def _scale_of(self, hpa: Object) -> tuple[rest.Resource, Object]:
        ref = _dict(_dict(hpa.get("spec")).get("scaleTargetRef"))
        api_version = str(ref.get("apiVersion") or "")
        if api_version.count("/") > 1:
            raise TargetError(f"unexpected GroupVersion string: {api_version}")
        group = api_version.rpartition("/")[0]
        kind = str(ref.get("kind") or "")
        resource = SCALABLE.get((group, kind)) or await self._discover(group, kind)
        if resource is None:
            raise TargetError(f'no matches for kind "{kind}" in group "{group}"')
        namespace = hpa["metadata"].get("namespace", "")
        try:
            scale = await self.client.get(
                resource, str(ref.get("name") or ""), namespace=namespace, subresource="scale"
            )
        except rest.ApiError as exc:
            # Go's error text is the Status message alone.
            if exc.not_found or exc.code in (403, 405):
                raise TargetError(exc.message) from exc
            raise
        return resource, scale

    async def _discover(self, group: str, kind: str) -> rest.Resource | None:
        for found in await self.client.discover():
            if found.group == group and found.kind == kind:
                return found
        return None

    async def _update_status(self, hpa: Object, original: Object) -> None:
        """Write the status if it changed (upstream's updateStatusIfNeeded)."""
        generation = hpa["metadata"].get("generation")
        if generation is not None:
            hpa["status"]["observedGeneration"] = generation
        if hpa["status"] == original:
            return
        await self.client.update_status(HPAS, hpa)


def _copy(value: Any) -> Object:
    """A deep copy of a JSON status (the cached object is shared)."""
    if not isinstance(value, dict):
        return {}
    return _deep(value)


def _deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep(v) for v in value]
    return value
