"""The Endpoints controller: one core/v1 Endpoints per selector Service, listing its pods.

Mirrors upstream's pkg/controller/endpoint (endpoints_controller.go). A sync
of one Service key:

1. Service gone → delete its Endpoints. No selector (or ExternalName) →
   leave its Endpoints alone: someone else maintains them (the API server
   itself for ``default/kubernetes``).
2. For each selected pod that belongs in endpoints (an IP, not terminal,
   not terminating unless ``publishNotReadyAddresses``): an address with
   ``targetRef``, ``nodeName`` and, for a pod naming the Service in
   ``spec.subdomain``, its ``hostname``; ready pods (or all, with
   ``publishNotReadyAddresses``) in ``addresses``, the others in
   ``notReadyAddresses``; one port per Service port the pod has
   (``find_port`` resolves a named ``targetPort`` through the pod's
   container ports; a pod without it is left out of that port).
3. Repack: pods with the same ports share a subset; addresses sorted by IP.
4. Over 1000 addresses: truncate (not-ready ones first, then proportionally
   per subset) and annotate ``endpoints.kubernetes.io/over-capacity:
   truncated``.
5. Write the Endpoints (create or update) when subsets, labels (the
   Service's, plus ``endpoints.kubernetes.io/managed-by`` and, for headless
   Services, ``service.kubernetes.io/headless``) or the capacity annotation
   differ; each write carries ``endpoints.kubernetes.io/last-change-trigger-time``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from kajitori.client import events, informer, rest
from kajitori.controllers.common import endpoints_util, pod_util
from kajitori.machinery import times

log = logging.getLogger(__name__)

Object = dict[str, Any]

MAX_CAPACITY = 1000
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"
TRUNCATED = "truncated"
MANAGED_BY_LABEL = "endpoints.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpoint-controller"


# ----- pure computation -------------------------------------------------------


def endpoint_address(pod: Object, service: Object) -> Object | None:
    """The address ``pod`` gives ``service``, in the Service's first IP family."""
    families = (service.get("spec") or {}).get("ipFamilies") or ["IPv4"]
    ip = endpoints_util.pod_ip_for_family(pod, families[0])
    if not ip:
        return None
    address: Object = {"ip": ip, "targetRef": endpoints_util.target_ref(pod)}
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        address["nodeName"] = node
    if endpoints_util.should_set_hostname(pod, service):
        address["hostname"] = pod["spec"]["hostname"]
    return address


def _endpoint_port(service_port: Object, number: int) -> Object:
    port: Object = {"port": number, "protocol": service_port.get("protocol") or "TCP"}
    if service_port.get("name"):
        port["name"] = service_port["name"]
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def pod_ports(pod: Object, service: Object) -> list[Object] | None:
    """The ports ``pod`` serves for ``service``; None when it serves none of them."""
    service_ports = (service.get("spec") or {}).get("ports") or []
    if not service_ports:
        # Only headless Services may do without ports.
        return [] if endpoints_util.is_headless(service) else None
    ports = []
    for service_port in service_ports:
        try:
            ports.append(_endpoint_port(service_port, endpoints_util.find_port(pod, service_port)))
        except endpoints_util.PortNotFound as exc:
            log.debug("endpoints: %s", exc)
    return ports or None


def compute_subsets(service: Object, pods: list[Object]) -> list[Object]:
    """Steps 2 and 3: the repacked, sorted subsets the pods give ``service``."""
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    groups: dict[tuple[Any, ...], Object] = {}
    for pod in pods:
        if not endpoints_util.should_pod_be_in_endpoints(pod, include_terminating=publish):
            continue
        address = endpoint_address(pod, service)
        ports = pod_ports(pod, service)
        if address is None or ports is None:
            continue
        ports = sorted(ports, key=_port_key)
        key = tuple(_port_key(p) for p in ports)
        subset = groups.setdefault(key, {"ports": ports})
        ready = publish or pod_util.is_ready(pod)
        subset.setdefault("addresses" if ready else "notReadyAddresses", []).append(address)
    subsets = []
    for subset in groups.values():
        for field in ("addresses", "notReadyAddresses"):
            if field in subset:
                subset[field].sort(key=_address_key)
        if not subset["ports"]:
            del subset["ports"]
        subsets.append(subset)
    subsets.sort(key=_subset_key)
    return subsets


def _port_key(port: Object) -> tuple[str, int, str]:
    return (port.get("name") or "", int(port["port"]), port.get("protocol") or "TCP")


def _address_key(address: Object) -> tuple[str, str]:
    return address["ip"], (address.get("targetRef") or {}).get("uid", "")


def _subset_key(subset: Object) -> tuple[Any, ...]:
    return tuple(_port_key(p) for p in subset.get("ports") or ())


def _count(subsets: list[Object], field: str) -> int:
    return sum(len(s.get(field) or ()) for s in subsets)


def truncate(subsets: list[Object]) -> bool:
    """Step 4, in place: at most ``MAX_CAPACITY`` addresses; whether any were dropped.

    Not-ready addresses go first; only when the ready ones alone exceed the
    capacity are those cut too (and every not-ready one dropped). Each subset
    keeps its share of the kept addresses, rounded up, as upstream does.
    """
    ready, not_ready = _count(subsets, "addresses"), _count(subsets, "notReadyAddresses")
    if ready + not_ready <= MAX_CAPACITY:
        return False
    cut_ready = ready > MAX_CAPACITY
    field = "addresses" if cut_ready else "notReadyAddresses"
    budget = MAX_CAPACITY if cut_ready else MAX_CAPACITY - ready
    total = ready if cut_ready else not_ready
    remaining = budget
    for subset in subsets:
        if cut_ready:
            subset.pop("notReadyAddresses", None)
        addresses = subset.get(field) or []
        share = min(math.ceil(budget * len(addresses) / total), remaining)
        if addresses:
            subset[field] = addresses[:share]
            if not subset[field]:
                del subset[field]
        remaining -= min(share, len(addresses))
    return True


def desired_labels(service: Object) -> dict[str, str]:
    wanted = dict((service.get("metadata") or {}).get("labels") or {})
    wanted[MANAGED_BY_LABEL] = CONTROLLER_NAME
    if endpoints_util.is_headless(service):
        wanted[endpoints_util.HEADLESS_LABEL] = ""
    else:
        wanted.pop(endpoints_util.HEADLESS_LABEL, None)
    return wanted


def needs_write(current: Object | None, subsets: list[Object], service: Object) -> bool:
    if current is None:
        return True
    meta = current.get("metadata") or {}
    over = (meta.get("annotations") or {}).get(OVER_CAPACITY_ANNOTATION) == TRUNCATED
    # What we would store: the truncated subsets.
    stored = [dict(s) for s in subsets]
    full = truncate(stored)
    return (
        _without_resource_versions(current.get("subsets") or []) != stored
        or (meta.get("labels") or {}) != desired_labels(service)
        or over != full
    )


def _without_resource_versions(subsets: list[Object]) -> list[Object]:
    # Upstream compares ignoring targetRef.resourceVersion (we never set it).
    out = []
    for subset in subsets:
        copy = dict(subset)
        for field in ("addresses", "notReadyAddresses"):
            if field in copy:
                copy[field] = [_drop_ref_version(a) for a in copy[field]]
        out.append(copy)
    return out


def _drop_ref_version(address: Object) -> Object:
    ref = address.get("targetRef")
    if not ref or "resourceVersion" not in ref:
        return address
    return {**address, "targetRef": {k: v for k, v in ref.items() if k != "resourceVersion"}}


def new_endpoints(
    current: Object | None, service: Object, subsets: list[Object], trigger: str | None
) -> Object:
    """Step 5's object: ``current`` (or a new one) with the computed subsets and labels."""
    meta = service["metadata"]
    endpoints: Object = (
        {**current, "metadata": dict(current["metadata"])}
        if current is not None
        else {"metadata": {"name": meta["name"], "namespace": meta.get("namespace", "")}}
    )
    endpoints["apiVersion"], endpoints["kind"] = "v1", "Endpoints"
    out_meta = endpoints["metadata"]
    annotations = dict(out_meta.get("annotations") or {})
    if trigger:
        annotations[endpoints_util.TRIGGER_TIME_ANNOTATION] = trigger
    else:
        annotations.pop(endpoints_util.TRIGGER_TIME_ANNOTATION, None)
    subsets = [dict(s) for s in subsets]
    if truncate(subsets):
        annotations[OVER_CAPACITY_ANNOTATION] = TRUNCATED
    else:
        annotations.pop(OVER_CAPACITY_ANNOTATION, None)
    out_meta["annotations"] = annotations
    out_meta["labels"] = desired_labels(service)
    endpoints["subsets"] = subsets
    return endpoints


# ----- the controller -----------------------------------------------------------


class EndpointsController(endpoints_util.ServiceEndpointsController):
    """Keeps each selector Service's Endpoints; ``run(workers)`` until ``shut_down``."""

    name = "endpoint"
    # Upstream's maxRetries.
    max_retries = 15

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
    ) -> None:
        super().__init__(client=client, informers=informers, recorder=recorder)
        # A changed or deleted Endpoints of a selector Service is put back.
        self.endpoints_informer = self.watch(
            informers.informer(rest.ENDPOINTS),
            on_update=lambda old, new: self.enqueue(new),
            on_delete=self.enqueue,
        )

    # ----- sync ------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        namespace, name = informer.split_key(key)
        service = self.service_informer.indexer.get(key)
        if service is None:
            # Step 1: the Service is gone, and so are its Endpoints.
            self.triggers.forget(key)
            try:
                await self.client.delete(rest.ENDPOINTS, name, namespace=namespace)
            except rest.ApiError as exc:
                if not exc.not_found:
                    raise
            return
        if not endpoints_util.manages_endpoints(service):
            return
        pods = self.selected_pods(service)
        trigger = self.triggers.compute(service, pods)
        subsets = compute_subsets(service, pods)
        current = self.endpoints_informer.indexer.get(key)
        if not needs_write(current, subsets, service):
            return
        text = times.format_time(trigger) if trigger else None
        await self._write(current, new_endpoints(current, service, subsets, text))

    async def _write(self, current: Object | None, endpoints: Object) -> None:
        namespace = endpoints["metadata"].get("namespace", "")
        if current is None:
            try:
                await self.client.create(rest.ENDPOINTS, endpoints, namespace=namespace)
                return
            except rest.ApiError as exc:
                if exc.code != 409:
                    raise
                # Someone made it first (an old cache, or a user): update it instead.
                fresh = await self.client.get(
                    rest.ENDPOINTS, endpoints["metadata"]["name"], namespace=namespace
                )
                endpoints["metadata"]["resourceVersion"] = fresh["metadata"]["resourceVersion"]
        await self.client.update(rest.ENDPOINTS, endpoints, namespace=namespace)
