"""The EndpointSlice controller: discovery.k8s.io/v1 EndpointSlices for each selector Service.

Mirrors upstream's pkg/controller/endpointslice (endpointslice_controller.go,
reconciler.go). A sync of one Service key:

1. Service gone, or without a selector → nothing (its slices are owned by
   the Service, so the garbage collector removes them with it; selector-less
   Services' slices are someone else's).
2. Desired endpoints (``desired_endpoints``): one per selected pod with an
   IPv4 address that is not terminal, terminating pods included, with
   conditions ``ready`` (serving and not terminating, or always with
   ``publishNotReadyAddresses``), ``serving`` (the pod is ready) and
   ``terminating``, ``targetRef``, ``nodeName``, the node's
   ``topology.kubernetes.io/zone`` and the subdomain ``hostname``; grouped
   by the ports the pod serves. A pod on a node the cache does not know is
   left out and the Service looked at again (unless the Service publishes
   not-ready addresses).
3. ``plan`` against the existing slices labelled with the Service's name and
   managed by this controller: endpoints that are gone or changed are
   removed or replaced in place; new ones fill the slices already being
   updated, then new slices of at most ``MAX_ENDPOINTS_PER_SLICE``; slices
   left empty, or for ports no pod serves any more, are deleted. A Service
   with no endpoints keeps one empty placeholder slice, as upstream.
4. Apply the plan: creates (``generateName: <service>-``, owner reference
   to the Service), updates (compare-and-swap) and deletes. Labels: the
   Service's, ``kubernetes.io/service-name``,
   ``endpointslice.kubernetes.io/managed-by`` and, for headless Services,
   ``service.kubernetes.io/headless``; the trigger-time annotation.

The informer may lag our own writes; ``SliceTracker`` remembers the
resourceVersion each write produced (and each delete), and a sync that
would read older slices waits for the cache instead (upstream's
EndpointSliceTracker), so one change never yields two new slices.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from kajitori.client import events, informer, rest
from kajitori.controllers import base
from kajitori.controllers.common import controller_ref, endpoints_util, pod_util
from kajitori.machinery import times

log = logging.getLogger(__name__)

Object = dict[str, Any]

MAX_ENDPOINTS_PER_SLICE = 100
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
ZONE_LABEL = "topology.kubernetes.io/zone"
ADDRESS_TYPE = "IPv4"
SERVICE_INDEX = "service-name"
# How soon to look again when a pod names a node not yet in the cache.
NODE_MISSING_RETRY = 1.0
STALE_CACHE_RETRY = 0.05


# ----- pure computation -------------------------------------------------------


def endpoint_for(pod: Object, service: Object, node: Object | None) -> Object | None:
    ip = endpoints_util.pod_ip_for_family(pod, ADDRESS_TYPE)
    if not ip:
        return None
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    serving = pod_util.is_ready(pod)
    terminating = bool(pod["metadata"].get("deletionTimestamp"))
    endpoint: Object = {
        "addresses": [ip],
        "conditions": {
            "ready": publish or (serving and not terminating),
            "serving": serving,
            "terminating": terminating,
        },
        "targetRef": endpoints_util.target_ref(pod),
    }
    node_name = (pod.get("spec") or {}).get("nodeName")
    if node_name:
        endpoint["nodeName"] = node_name
    zone = ((node or {}).get("metadata") or {}).get("labels", {}).get(ZONE_LABEL)
    if zone:
        endpoint["zone"] = zone
    if endpoints_util.should_set_hostname(pod, service):
        endpoint["hostname"] = pod["spec"]["hostname"]
    return endpoint


def slice_ports(pod: Object, service: Object) -> list[Object] | None:
    """The slice ports ``pod`` serves (unnamed ports have name ""); None: none of them."""
    service_ports = (service.get("spec") or {}).get("ports") or []
    if not service_ports:
        return []
    ports = []
    for service_port in service_ports:
        try:
            number = endpoints_util.find_port(pod, service_port)
        except endpoints_util.PortNotFound:
            continue
        port: Object = {
            "name": service_port.get("name") or "",
            "port": number,
            "protocol": service_port.get("protocol") or "TCP",
        }
        if service_port.get("appProtocol"):
            port["appProtocol"] = service_port["appProtocol"]
        ports.append(port)
    return ports or None


def ports_key(ports: list[Object]) -> tuple[Any, ...]:
    return tuple(
        sorted(
            (p.get("name") or "", int(p.get("port") or 0), p.get("protocol") or "TCP")
            for p in ports or ()
        )
    )


def endpoint_key(endpoint: Object) -> str:
    return str(endpoint["addresses"][0])


@dataclasses.dataclass(slots=True)
class Desired:
    """Endpoints by ports key (and each key's ports), plus pods skipped for a missing node."""

    groups: dict[tuple[Any, ...], dict[str, Object]]
    ports: dict[tuple[Any, ...], list[Object]]
    missing_nodes: int = 0


def desired_endpoints(service: Object, pods: list[Object], nodes: informer.Indexer) -> Desired:
    """Step 2."""
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    desired = Desired({}, {})
    for pod in pods:
        if not endpoints_util.should_pod_be_in_endpoints(pod, include_terminating=True):
            continue
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        node = nodes.get(node_name) if node_name else None
        if node is None and not publish:
            desired.missing_nodes += 1
            continue
        ports = slice_ports(pod, service)
        endpoint = endpoint_for(pod, service, node)
        if ports is None or endpoint is None:
            continue
        key = ports_key(ports)
        desired.ports.setdefault(key, sorted(ports, key=lambda p: (p["name"], p["port"])))
        desired.groups.setdefault(key, {})[endpoint_key(endpoint)] = endpoint
    return desired


@dataclasses.dataclass(slots=True)
class Plan:
    """What step 4 writes: whole slices to create and update, slice names to delete."""

    create: list[Object] = dataclasses.field(default_factory=list)
    update: list[Object] = dataclasses.field(default_factory=list)
    delete: list[Object] = dataclasses.field(default_factory=list)


def plan(service: Object, existing: list[Object], desired: Desired, *, trigger: str | None) -> Plan:
    """Step 3: the fewest slice writes that make ``existing`` hold ``desired``."""
    result = Plan()
    by_ports: dict[tuple[Any, ...], list[Object]] = {}
    for slice_ in existing:
        by_ports.setdefault(ports_key(slice_.get("ports") or []), []).append(slice_)
    for key, slices in by_ports.items():
        if key not in desired.groups:
            result.delete.extend(slices)
    for key, wanted in desired.groups.items():
        _plan_ports(service, by_ports.get(key, []), wanted, desired.ports[key], result)
    _keep_placeholder(service, existing, desired, result)
    _set_metadata(service, result, trigger)
    return result


def _plan_ports(
    service: Object,
    slices: list[Object],
    wanted: dict[str, Object],
    ports: list[Object],
    result: Plan,
) -> None:
    remaining = dict(wanted)
    touched: list[Object] = []
    kept: list[Object] = []
    for slice_ in slices:
        endpoints = []
        changed = False
        for endpoint in slice_.get("endpoints") or ():
            new = remaining.pop(endpoint_key(endpoint), None)
            if new is None:
                changed = True
                continue
            changed = changed or new != endpoint
            endpoints.append(new)
        copy = {**slice_, "endpoints": endpoints}
        if not endpoints:
            result.delete.append(slice_)
        elif changed:
            touched.append(copy)
        else:
            kept.append(copy)
    fresh = sorted(remaining.values(), key=endpoint_key)
    for slice_ in touched:
        room = MAX_ENDPOINTS_PER_SLICE - len(slice_["endpoints"])
        slice_["endpoints"].extend(fresh[:room])
        fresh = fresh[room:]
    # Upstream adds to an unchanged slice only when it takes every remaining endpoint.
    for slice_ in sorted(kept, key=lambda s: -len(s["endpoints"])):
        if fresh and len(slice_["endpoints"]) + len(fresh) <= MAX_ENDPOINTS_PER_SLICE:
            slice_["endpoints"].extend(fresh)
            fresh = []
            touched.append(slice_)
    result.update.extend(touched)
    for start in range(0, len(fresh), MAX_ENDPOINTS_PER_SLICE):
        result.create.append(
            _new_slice(service, ports, fresh[start : start + MAX_ENDPOINTS_PER_SLICE])
        )


def _keep_placeholder(
    service: Object, existing: list[Object], desired: Desired, result: Plan
) -> None:
    """A Service without endpoints keeps exactly one empty slice without ports."""
    if desired.groups:
        return
    placeholder = next((s for s in existing if not s.get("endpoints") and not s.get("ports")), None)
    if placeholder is None:
        result.create.append(_new_slice(service, [], []))
        return
    result.delete = [s for s in result.delete if s is not placeholder]
    names = {s["metadata"]["name"] for s in result.delete}
    for slice_ in existing:
        if slice_ is not placeholder and slice_["metadata"]["name"] not in names:
            result.delete.append(slice_)


def _new_slice(service: Object, ports: list[Object], endpoints: list[Object]) -> Object:
    meta = service["metadata"]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "generateName": f"{meta['name'][:62]}-",
            "namespace": meta.get("namespace", ""),
            "ownerReferences": [
                {
                    **controller_ref.owner_reference(service, api_version="v1", kind="Service"),
                }
            ],
        },
        "addressType": ADDRESS_TYPE,
        "endpoints": endpoints,
        "ports": ports,
    }


def slice_labels(service: Object) -> dict[str, str]:
    wanted = dict((service.get("metadata") or {}).get("labels") or {})
    wanted[SERVICE_NAME_LABEL] = service["metadata"]["name"]
    wanted[MANAGED_BY_LABEL] = CONTROLLER_NAME
    if endpoints_util.is_headless(service):
        wanted[endpoints_util.HEADLESS_LABEL] = ""
    else:
        wanted.pop(endpoints_util.HEADLESS_LABEL, None)
    return wanted


def _set_metadata(service: Object, result: Plan, trigger: str | None) -> None:
    wanted = slice_labels(service)
    for slice_ in (*result.create, *result.update):
        slice_["apiVersion"], slice_["kind"] = "discovery.k8s.io/v1", "EndpointSlice"
        meta = slice_["metadata"] = dict(slice_["metadata"])
        meta["labels"] = wanted
        annotations = dict(meta.get("annotations") or {})
        if trigger:
            annotations[endpoints_util.TRIGGER_TIME_ANNOTATION] = trigger
        else:
            annotations.pop(endpoints_util.TRIGGER_TIME_ANNOTATION, None)
        meta["annotations"] = annotations


def labels_outdated(service: Object, existing: list[Object]) -> list[Object]:
    """Unchanged slices whose labels no longer follow the Service's."""
    wanted = slice_labels(service)
    return [s for s in existing if (s["metadata"].get("labels") or {}) != wanted]


# ----- tracking our own writes ------------------------------------------------------


class SliceTracker:
    """The resourceVersion our last write gave each slice (-1: we deleted it), per Service."""

    def __init__(self) -> None:
        self._written: dict[str, dict[str, int]] = {}

    def record(self, service_key: str, slice_: Object, *, deleted: bool = False) -> None:
        version = -1 if deleted else int(slice_["metadata"].get("resourceVersion") or 0)
        self._written.setdefault(service_key, {})[slice_["metadata"]["name"]] = version

    def stale(self, service_key: str, cached: list[Object]) -> bool:
        """Whether the cache has not yet seen one of our writes for this Service."""
        written = self._written.get(service_key)
        if not written:
            return False
        seen = {
            s["metadata"]["name"]: int(s["metadata"].get("resourceVersion") or 0) for s in cached
        }
        for name, version in list(written.items()):
            if version < 0:
                if name in seen:
                    return True
                del written[name]
            elif seen.get(name, -1) < version:
                return True
            else:
                del written[name]
        return False

    def forget(self, service_key: str) -> None:
        self._written.pop(service_key, None)


# ----- the controller -----------------------------------------------------------


def _index_by_service(obj: Object) -> list[str]:
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != CONTROLLER_NAME or SERVICE_NAME_LABEL not in labels:
        return []
    return [f"{meta.get('namespace', '')}/{labels[SERVICE_NAME_LABEL]}"]


class EndpointSliceController(endpoints_util.ServiceEndpointsController):
    """Keeps each selector Service's EndpointSlices; ``run(workers)`` until ``shut_down``."""

    name = "endpointslice"
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
        self.tracker = SliceTracker()
        self.node_informer = self.watch(
            informers.informer(rest.NODES), on_add=self._node_changed, on_update=self._update_node
        )
        self.slice_informer = informers.informer(rest.ENDPOINTSLICES)
        self.slice_informer.indexer.add_indexers({SERVICE_INDEX: _index_by_service})
        self.watch(
            self.slice_informer,
            on_update=lambda old, new: self._slice_changed(new),
            on_delete=self._slice_changed,
        )

    # ----- event handlers --------------------------------------------------------

    def _node_changed(self, node: Object) -> None:
        # A node appearing (or changing zone) changes its pods' endpoints.
        name = node["metadata"]["name"]
        for pod in self.pod_informer.indexer.list():
            if (pod.get("spec") or {}).get("nodeName") == name:
                self.pod_changed(pod)

    def _update_node(self, old: Object, new: Object) -> None:
        old_zone = (old["metadata"].get("labels") or {}).get(ZONE_LABEL)
        if old_zone != (new["metadata"].get("labels") or {}).get(ZONE_LABEL):
            self._node_changed(new)

    def _slice_changed(self, slice_: Object) -> None:
        for key in _index_by_service(slice_):
            self.enqueue_key(key)

    # ----- sync ------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        service = self.service_informer.indexer.get(key)
        # Step 1.
        if service is None or not endpoints_util.manages_endpoints(service):
            if service is None:
                self.triggers.forget(key)
                self.tracker.forget(key)
            return
        existing = self.slice_informer.indexer.by_index(SERVICE_INDEX, key)
        if self.tracker.stale(key, existing):
            raise base.RequeueAfter(STALE_CACHE_RETRY, "waiting for our slice writes")
        pods = self.selected_pods(service)
        # Step 2.
        desired = desired_endpoints(service, pods, self.node_informer.indexer)
        trigger = self.triggers.compute(service, pods)
        text = times.format_time(trigger) if trigger else None
        # Step 3.
        result = plan(service, existing, desired, trigger=text)
        updated = {s["metadata"]["name"] for s in (*result.update, *result.delete)}
        for slice_ in labels_outdated(service, existing):
            if slice_["metadata"]["name"] not in updated:
                result.update.append(slice_)
        _set_metadata(service, Plan(update=result.update), text)
        # Step 4.
        await self._apply(key, result)
        if desired.missing_nodes:
            raise base.RequeueAfter(NODE_MISSING_RETRY, "pods on nodes not yet known")

    async def _apply(self, key: str, result: Plan) -> None:
        for slice_ in result.create:
            created = await self.client.create(rest.ENDPOINTSLICES, slice_)
            self.tracker.record(key, created)
        for slice_ in result.update:
            written = await self.client.update(rest.ENDPOINTSLICES, slice_)
            self.tracker.record(key, written)
        for slice_ in result.delete:
            meta = slice_["metadata"]
            try:
                await self.client.delete(
                    rest.ENDPOINTSLICES, meta["name"], namespace=meta.get("namespace", "")
                )
            except rest.ApiError as exc:
                if not exc.not_found:
                    raise
            self.tracker.record(key, slice_, deleted=True)
