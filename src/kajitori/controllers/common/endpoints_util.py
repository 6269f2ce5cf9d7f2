"""What the Endpoints and EndpointSlice controllers share (upstream's endpointutil).

* which pods a Service selects (``service_selector``; no selector: none, and
  the controllers leave the Service alone);
* which of them belong in its endpoints (``should_pod_be_in_endpoints``:
  not terminal, with an IP, terminating ones only when asked);
* the pod port a Service port reaches (``find_port``: a number, or a named
  container port of the same protocol);
* the DNS hostname of a pod under the headless Service that names it in
  ``spec.subdomain`` (``should_set_hostname``);
* ``TriggerTimeTracker``: the ``endpoints.kubernetes.io/last-change-trigger-time``
  annotation, the earliest change (a pod's Ready transition or the Service's
  creation) since the Service's previous sync;
* ``ServiceEndpointsController``: the queue of Service keys both controllers
  work from, fed by the Service informer and by pods (a pod changes the
  endpoints of every Service selecting it, before and after a label change),
  and ``selected_pods``.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from kajitori.client import events, informer, rest
from kajitori.controllers import base
from kajitori.controllers.common import pod_util
from kajitori.machinery import labels, times

Object = dict[str, Any]

TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
HEADLESS_LABEL = "service.kubernetes.io/headless"


class PortNotFound(LookupError):
    """The pod has no container port the Service port's targetPort names."""


def service_selector(service: Object) -> labels.Selector | None:
    """The Service's pod selector, or None when it has none (endpoints are someone else's)."""
    selector = (service.get("spec") or {}).get("selector")
    if not selector:
        return None
    return labels.selector_from_set(selector)


def manages_endpoints(service: Object) -> bool:
    """Selector Services that are not ExternalName get controller-made endpoints."""
    spec = service.get("spec") or {}
    return spec.get("type") != "ExternalName" and service_selector(service) is not None


def is_headless(service: Object) -> bool:
    return (service.get("spec") or {}).get("clusterIP") == "None"


def pod_ips(pod: Object) -> list[str]:
    status = pod.get("status") or {}
    ips = [str(entry.get("ip")) for entry in status.get("podIPs") or () if entry.get("ip")]
    if not ips and status.get("podIP"):
        ips = [str(status["podIP"])]
    return ips


def pod_ip_for_family(pod: Object, family: str) -> str:
    """The pod's first IP of ``family`` ("IPv4" or "IPv6"), or ""."""
    for ip in pod_ips(pod):
        if (":" in ip) == (family == "IPv6"):
            return ip
    return ""


def should_pod_be_in_endpoints(pod: Object, *, include_terminating: bool) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed") or not pod_ips(pod):
        return False
    return include_terminating or not (pod.get("metadata") or {}).get("deletionTimestamp")


def should_set_hostname(pod: Object, service: Object) -> bool:
    spec, meta = pod.get("spec") or {}, pod.get("metadata") or {}
    return (
        bool(spec.get("hostname"))
        and spec.get("subdomain") == service["metadata"]["name"]
        and meta.get("namespace") == service["metadata"].get("namespace")
    )


def find_port(pod: Object, service_port: Object) -> int:
    """Upstream's podutil.FindPort: the port number ``service_port`` reaches on ``pod``."""
    target = service_port.get("targetPort")
    if target is None or target == "":
        return int(service_port.get("port") or 0)
    if isinstance(target, int):
        return target
    if str(target).isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    for container in (pod.get("spec") or {}).get("containers") or ():
        for port in container.get("ports") or ():
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    raise PortNotFound(f"no suitable port for manifest: {(pod.get('metadata') or {}).get('uid')}")


def target_ref(pod: Object) -> Object:
    meta = pod["metadata"]
    return {
        "kind": "Pod",
        "namespace": meta.get("namespace", ""),
        "name": meta["name"],
        "uid": meta.get("uid", ""),
    }


def services_selecting(services: informer.Indexer, pod: Object) -> list[Object]:
    """The Services in the pod's namespace whose selector matches the pod."""
    meta = pod.get("metadata") or {}
    pod_labels = meta.get("labels") or {}
    found = []
    for service in services.by_index(informer.NAMESPACE_INDEX, meta.get("namespace", "")):
        selector = service_selector(service)
        if selector is not None and selector.matches(pod_labels):
            found.append(service)
    return found


@dataclasses.dataclass(slots=True)
class _ServiceState:
    pod_times: dict[str, datetime.datetime]
    service_time: datetime.datetime | None


class TriggerTimeTracker:
    """Upstream's TriggerTimeTracker: when did the change a sync publishes begin?

    Each sync of a Service compares the pods' Ready-condition transition
    times (and the Service's creation time) with those seen at its previous
    sync and answers the earliest that moved; a Service seen for the first
    time answers its creation time. None means nothing moved (the annotation
    is then removed, as upstream).
    """

    def __init__(self) -> None:
        self._states: dict[str, _ServiceState] = {}

    def compute(self, service: Object, pods: list[Object]) -> datetime.datetime | None:
        key = informer.meta_namespace_key(service)
        previous = self._states.get(key)
        earliest: datetime.datetime | None = None
        pod_times: dict[str, datetime.datetime] = {}
        for pod in pods:
            when = times.parse_time((pod_util.ready_condition(pod) or {}).get("lastTransitionTime"))
            if when is None:
                continue
            name = pod["metadata"]["name"]
            pod_times[name] = when
            seen = previous.pod_times.get(name) if previous else None
            if seen is None or when > seen:
                earliest = when if earliest is None else min(earliest, when)
        created = times.parse_time((service.get("metadata") or {}).get("creationTimestamp"))
        if created is not None and (
            previous is None or previous.service_time is None or created > previous.service_time
        ):
            earliest = created if earliest is None else min(earliest, created)
        self._states[key] = _ServiceState(pod_times, created)
        if previous is None:
            return created
        return earliest

    def forget(self, service_key: str) -> None:
        self._states.pop(service_key, None)


class ServiceEndpointsController(base.QueueController[str]):
    """A queue of Service keys kept by Service and pod changes (upstream's shared handlers)."""

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
    ) -> None:
        super().__init__()
        self.client = client
        self.recorder = recorder
        self.triggers = TriggerTimeTracker()
        self.service_informer = self.watch(
            informers.informer(rest.SERVICES), on_change=self.enqueue
        )
        self.pod_informer = self.watch(
            informers.informer(rest.PODS),
            on_add=self.pod_changed,
            on_update=self._update_pod,
            on_delete=self.pod_changed,
        )

    def pod_changed(self, pod: Object) -> None:
        for service in services_selecting(self.service_informer.indexer, pod):
            self.enqueue(service)

    def _update_pod(self, old: Object, new: Object) -> None:
        if not base.resource_version_changed(old, new):
            return
        self.pod_changed(new)
        if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
            self.pod_changed(old)

    def selected_pods(self, service: Object) -> list[Object]:
        """The cached pods of the Service's namespace that its selector matches."""
        selector = service_selector(service)
        assert selector is not None
        namespace = (service.get("metadata") or {}).get("namespace", "")
        return [
            pod
            for pod in self.pod_informer.indexer.by_index(informer.NAMESPACE_INDEX, namespace)
            if selector.matches((pod.get("metadata") or {}).get("labels") or {})
        ]
