"""Quota arithmetic and evaluators: what an object costs against a ResourceQuota.

Upstream: pkg/quota/v1 (resource-list helpers), pkg/quota/v1/generic
(object-count evaluators, ``Matches``) and pkg/quota/v1/evaluator/core
(pods, services, persistentvolumeclaims). Pure functions over decoded
objects, no I/O, so the API server's ResourceQuota admission plugin and the
resourcequota controller share one definition of usage:

* every resource is counted as ``count/<plural>`` (core) or
  ``count/<plural>.<group>``; configmaps, secrets, replicationcontrollers and
  resourcequotas also under their classic names;
* pods: ``pods`` and the compute names (``cpu``/``requests.cpu``,
  ``limits.cpu``, memory and ephemeral-storage alike, hugepages, extended
  ``requests.*``), not charged once terminal; scopes Terminating,
  NotTerminating, BestEffort, NotBestEffort, PriorityClass and
  CrossNamespacePodAffinity;
* services: ``services``, ``services.nodeports``, ``services.loadbalancers``;
* persistentvolumeclaims: ``persistentvolumeclaims``, ``requests.storage``
  and both per storage class (``<class>.storageclass.storage.k8s.io/...``).

A ResourceList here is ``dict[str, Quantity]``; ``parse_list`` and
``encode_list`` convert at the edges.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from kajitori.machinery import quantity, times
from kajitori.machinery.quantity import Quantity

Object = dict[str, Any]
ResourceList = dict[str, Quantity]

ONE = quantity.parse_quantity("1")
ZERO = quantity.parse_quantity("0")

# ----- resource lists ---------------------------------------------------------


def parse_list(raw: Any) -> ResourceList:
    """A wire ResourceList; values that do not parse are skipped (validation's job)."""
    out: ResourceList = {}
    if not isinstance(raw, dict):
        return out
    for name, value in raw.items():
        try:
            out[str(name)] = quantity.from_json(value)
        except quantity.QuantityError:
            continue
    return out


def encode_list(values: Mapping[str, Quantity]) -> dict[str, str]:
    return {name: value.canonical() for name, value in sorted(values.items())}


def add(a: Mapping[str, Quantity], b: Mapping[str, Quantity]) -> ResourceList:
    out = dict(a)
    for name, value in b.items():
        out[name] = out[name].add(value) if name in out else value
    return out


def maximum(a: Mapping[str, Quantity], b: Mapping[str, Quantity]) -> ResourceList:
    out = dict(a)
    for name, value in b.items():
        if name not in out or value > out[name]:
            out[name] = value
    return out


def subtract_non_negative(a: Mapping[str, Quantity], b: Mapping[str, Quantity]) -> ResourceList:
    out: ResourceList = {}
    for name, value in a.items():
        diff = value.sub(b[name]) if name in b else value
        out[name] = diff if diff.sign() > 0 else ZERO
    return out


def mask(values: Mapping[str, Quantity], names: Iterable[str]) -> ResourceList:
    wanted = set(names)
    return {name: value for name, value in values.items() if name in wanted}


def equals(a: Mapping[str, Quantity], b: Mapping[str, Quantity]) -> bool:
    return a.keys() == b.keys() and all(a[k] == b[k] for k in a)


def is_zero(values: Mapping[str, Quantity]) -> bool:
    return all(v.is_zero for v in values.values())


def negative_names(values: Mapping[str, Quantity]) -> list[str]:
    return sorted(name for name, value in values.items() if value.sign() < 0)


def exceeded(usage: Mapping[str, Quantity], hard: Mapping[str, Quantity]) -> list[str]:
    """Names in both lists whose usage is above the hard limit (upstream LessThanOrEqual)."""
    return sorted(n for n, v in usage.items() if n in hard and v > hard[n])


def pretty_print(values: Mapping[str, Quantity]) -> str:
    """``name=value`` pairs sorted by name and joined by commas, as upstream's errors."""
    return ",".join(f"{name}={values[name].canonical()}" for name in sorted(values))


# ----- scopes -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ScopeSelector:
    """One ``ScopedResourceSelectorRequirement`` (a plain scope is ``Exists``)."""

    scope: str
    operator: str = "Exists"
    values: tuple[str, ...] = ()

    def matches_value(self, value: str) -> bool:
        """The label-selector reading upstream gives a scope over ``{scope: value}``."""
        if self.operator == "In":
            return value in self.values
        if self.operator == "NotIn":
            return value not in self.values
        return self.operator == "Exists"


def scope_selectors(resource_quota: Object) -> list[ScopeSelector]:
    spec = resource_quota.get("spec") or {}
    out = [ScopeSelector(str(s)) for s in spec.get("scopes") or ()]
    for expr in (spec.get("scopeSelector") or {}).get("matchExpressions") or ():
        out.append(
            ScopeSelector(
                str(expr.get("scopeName", "")),
                str(expr.get("operator", "")),
                tuple(str(v) for v in expr.get("values") or ()),
            )
        )
    return out


# ----- evaluators ---------------------------------------------------------------


class Evaluator(Protocol):
    """How one resource is charged (upstream's quota.Evaluator)."""

    # Read-only: evaluators are frozen dataclasses or declare these as class constants.
    @property
    def group(self) -> str: ...

    @property
    def plural(self) -> str: ...

    def handles(self, operation: str) -> bool:
        """Whether a write with this operation can change usage (CREATE / UPDATE)."""

    def matching_resources(self, names: Iterable[str]) -> list[str]:
        """The names among ``names`` this evaluator accounts for."""

    def matches_scope(self, selector: ScopeSelector, obj: Object) -> bool:
        """Whether ``obj`` falls into ``selector``'s scope."""

    def constraints(self, required: Iterable[str], obj: Object) -> str:
        """What ``obj`` lacks for a quota tracking ``required`` ("" when nothing)."""

    def usage(self, obj: Object, now: datetime.datetime) -> ResourceList:
        """What ``obj`` costs."""


def object_count_name(group: str, plural: str) -> str:
    return f"count/{plural}.{group}" if group else f"count/{plural}"


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectCountEvaluator:
    """``count/<plural>[.<group>]`` (and a classic alias): one per stored object."""

    group: str
    plural: str
    alias: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        name = object_count_name(self.group, self.plural)
        return (name, self.alias) if self.alias else (name,)

    def handles(self, operation: str) -> bool:
        return operation == "CREATE"

    def matching_resources(self, names: Iterable[str]) -> list[str]:
        return [n for n in names if n in self.names]

    def matches_scope(self, selector: ScopeSelector, obj: Object) -> bool:
        return False  # scoped quotas never count plain objects

    def constraints(self, required: Iterable[str], obj: Object) -> str:
        return ""

    def usage(self, obj: Object, now: datetime.datetime) -> ResourceList:
        return dict.fromkeys(self.names, ONE)


_COMPUTE = ("cpu", "memory", "ephemeral-storage")
POD_RESOURCES = frozenset(
    (
        "pods",
        "count/pods",
        *_COMPUTE,
        *(f"requests.{n}" for n in _COMPUTE),
        *(f"limits.{n}" for n in _COMPUTE),
    )
)
# Upstream's "mistake" it keeps for compatibility: a quota on cpu or memory
# makes every container state that resource.
_VALIDATED = frozenset(
    ("cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory")
)
_HUGEPAGES = "hugepages-"
_QOS_RESOURCES = ("cpu", "memory")


def _is_native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def _is_extended(name: str) -> bool:
    """An extended resource (``example.com/gpu``): not native, not requests.*."""
    return not _is_native(name) and not name.startswith("requests.")


def _containers(spec: Object, key: str) -> list[Object]:
    return [c for c in spec.get(key) or () if isinstance(c, dict)]


def _requirements(container: Object, key: str) -> ResourceList:
    return parse_list((container.get("resources") or {}).get(key))


def pod_aggregate(pod: Object, key: str, *, pod_level: bool = True) -> ResourceList:
    """Requests or limits of a pod as the kubelet reserves them.

    Upstream's resourcehelper.PodRequests/PodLimits: app containers and
    sidecars (restartable init containers) add up; each ordinary init
    container runs alone beside the sidecars started before it, so the pod
    needs the larger of the two. With ``pod_level`` (quota), pod-level
    resources replace the containers' sum for what they name and the pod
    overhead is added; without (LimitRanger's simpler copy), neither.
    """
    spec = pod.get("spec") or {}
    total: ResourceList = {}
    for container in _containers(spec, "containers"):
        total = add(total, _requirements(container, key))
    sidecars: ResourceList = {}
    init_peak: ResourceList = {}
    for container in _containers(spec, "initContainers"):
        own = _requirements(container, key)
        if container.get("restartPolicy") == "Always":
            total = add(total, own)
            sidecars = add(sidecars, own)
            init_peak = maximum(init_peak, sidecars)
        else:
            init_peak = maximum(init_peak, add(own, sidecars))
    total = maximum(total, init_peak)
    if not pod_level:
        return total
    own = parse_list((spec.get("resources") or {}).get(key))
    total.update(mask(own, _QOS_RESOURCES))
    return add(total, parse_list(spec.get("overhead")))


def compute_usage(requests: Mapping[str, Quantity], limits: Mapping[str, Quantity]) -> ResourceList:
    """Upstream's podComputeUsageHelper (``pods`` is added by the caller)."""
    out: ResourceList = {}
    for name in _COMPUTE:
        if name in requests:
            out[name] = out[f"requests.{name}"] = requests[name]
        if name in limits:
            out[f"limits.{name}"] = limits[name]
    for name, value in requests.items():
        if name.startswith(_HUGEPAGES):
            out[name] = out[f"requests.{name}"] = value
        elif _is_extended(name):
            out[f"requests.{name}"] = value
    return out


def pod_charged(pod: Object, now: datetime.datetime) -> bool:
    """False for terminal pods and pods past their deletion grace (upstream QuotaV1Pod)."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    meta = pod.get("metadata") or {}
    deleted = meta.get("deletionTimestamp")
    grace = meta.get("deletionGracePeriodSeconds")
    if deleted and grace is not None:
        at = times.parse_time(str(deleted))
        if at is not None and now > at + datetime.timedelta(seconds=int(grace)):
            return False
    return True


def is_best_effort(pod: Object) -> bool:
    """QoS BestEffort: no positive cpu or memory request or limit anywhere."""
    spec = pod.get("spec") or {}
    parts = [*_containers(spec, "containers"), *_containers(spec, "initContainers")]
    for source in [*(c.get("resources") for c in parts), spec.get("resources")]:
        for key in ("requests", "limits"):
            values = parse_list((source or {}).get(key))
            if any(values[n].sign() > 0 for n in _QOS_RESOURCES if n in values):
                return False
    return True


def is_terminating(pod: Object) -> bool:
    deadline = (pod.get("spec") or {}).get("activeDeadlineSeconds")
    return isinstance(deadline, int) and deadline >= 0


def uses_cross_namespace_affinity(pod: Object) -> bool:
    affinity = (pod.get("spec") or {}).get("affinity") or {}
    for kind in ("podAffinity", "podAntiAffinity"):
        rules = affinity.get(kind) or {}
        terms = list(rules.get("requiredDuringSchedulingIgnoredDuringExecution") or ())
        for weighted in rules.get("preferredDuringSchedulingIgnoredDuringExecution") or ():
            terms.append((weighted or {}).get("podAffinityTerm") or {})
        for term in terms:
            if term.get("namespaces") or term.get("namespaceSelector") is not None:
                return True
    return False


class PodEvaluator:
    group = ""
    plural = "pods"

    def handles(self, operation: str) -> bool:
        # Containers' resources change only through pods/resize, which the
        # ResourceQuota plugin charges by its subresource.
        return operation == "CREATE"

    def matching_resources(self, names: Iterable[str]) -> list[str]:
        return [
            n
            for n in names
            if n in POD_RESOURCES
            or n.startswith((_HUGEPAGES, "requests." + _HUGEPAGES))
            or (n.startswith("requests.") and not _is_native(n))
        ]

    def matches_scope(self, selector: ScopeSelector, obj: Object) -> bool:
        scope = selector.scope
        if scope == "Terminating":
            return is_terminating(obj)
        if scope == "NotTerminating":
            return not is_terminating(obj)
        if scope == "BestEffort":
            return is_best_effort(obj)
        if scope == "NotBestEffort":
            return not is_best_effort(obj)
        if scope == "PriorityClass":
            return selector.matches_value((obj.get("spec") or {}).get("priorityClassName") or "")
        if scope == "CrossNamespacePodAffinity":
            return uses_cross_namespace_affinity(obj)
        return False

    def constraints(self, required: Iterable[str], obj: Object) -> str:
        """``must specify limits.cpu for: a,b; requests.cpu for: a`` for what containers lack."""
        wanted = set(required) & _VALIDATED
        missing: dict[str, set[str]] = {}
        spec = obj.get("spec") or {}
        for container in [*_containers(spec, "containers"), *_containers(spec, "initContainers")]:
            have = compute_usage(
                _requirements(container, "requests"), _requirements(container, "limits")
            )
            for name in wanted - have.keys():
                missing.setdefault(name, set()).add(str(container.get("name", "")))
        if not missing:
            return ""
        parts = [f"{name} for: {','.join(sorted(missing[name]))}" for name in sorted(missing)]
        return "must specify " + "; ".join(parts)

    def usage(self, obj: Object, now: datetime.datetime) -> ResourceList:
        # count/pods tracks every stored pod; "pods" and compute only live ones.
        out: ResourceList = {"count/pods": ONE}
        if not pod_charged(obj, now):
            return out
        out["pods"] = ONE
        return add(out, compute_usage(pod_aggregate(obj, "requests"), pod_aggregate(obj, "limits")))


SERVICE_RESOURCES = ("count/services", "services", "services.nodeports", "services.loadbalancers")


class ServiceEvaluator:
    group = ""
    plural = "services"

    def handles(self, operation: str) -> bool:
        return operation in ("CREATE", "UPDATE")  # a type change costs node ports

    def matching_resources(self, names: Iterable[str]) -> list[str]:
        return [n for n in names if n in SERVICE_RESOURCES]

    def matches_scope(self, selector: ScopeSelector, obj: Object) -> bool:
        return False

    def constraints(self, required: Iterable[str], obj: Object) -> str:
        return ""

    def usage(self, obj: Object, now: datetime.datetime) -> ResourceList:
        spec = obj.get("spec") or {}
        ports = [p for p in spec.get("ports") or () if isinstance(p, dict)]
        node_ports = balancers = 0
        if spec.get("type") == "NodePort":
            node_ports = len(ports)
        elif spec.get("type") == "LoadBalancer":
            balancers = 1
            if spec.get("allocateLoadBalancerNodePorts") is False:
                node_ports = sum(1 for p in ports if p.get("nodePort"))
            else:
                node_ports = len(ports)
        return {
            "count/services": ONE,
            "services": ONE,
            "services.nodeports": Quantity(node_ports),
            "services.loadbalancers": Quantity(balancers),
        }


STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
PVC_RESOURCES = ("count/persistentvolumeclaims", "persistentvolumeclaims", "requests.storage")
BETA_STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"


def by_storage_class(storage_class: str, name: str) -> str:
    return f"{storage_class}{STORAGE_CLASS_SUFFIX}{name}"


def claim_class(pvc: Object) -> str:
    """The beta annotation wins over ``spec.storageClassName``, as upstream."""
    annotations = (pvc.get("metadata") or {}).get("annotations") or {}
    if BETA_STORAGE_CLASS_ANNOTATION in annotations:
        return str(annotations[BETA_STORAGE_CLASS_ANNOTATION])
    return str((pvc.get("spec") or {}).get("storageClassName") or "")


class PersistentVolumeClaimEvaluator:
    group = ""
    plural = "persistentvolumeclaims"

    def handles(self, operation: str) -> bool:
        return operation in ("CREATE", "UPDATE")  # an expansion costs storage

    def matching_resources(self, names: Iterable[str]) -> list[str]:
        return [
            n
            for n in names
            if n in PVC_RESOURCES
            or (
                STORAGE_CLASS_SUFFIX in n
                and n.endswith(("/requests.storage", "/persistentvolumeclaims"))
            )
        ]

    def matches_scope(self, selector: ScopeSelector, obj: Object) -> bool:
        return False

    def constraints(self, required: Iterable[str], obj: Object) -> str:
        return ""

    def usage(self, obj: Object, now: datetime.datetime) -> ResourceList:
        out: ResourceList = {"count/persistentvolumeclaims": ONE, "persistentvolumeclaims": ONE}
        storage_class = claim_class(obj)
        if storage_class:
            out[by_storage_class(storage_class, "persistentvolumeclaims")] = ONE
        requested = parse_list(
            ((obj.get("spec") or {}).get("resources") or {}).get("requests")
        ).get("storage")
        allocated = parse_list((obj.get("status") or {}).get("allocatedResources")).get("storage")
        storage = max((q for q in (requested, allocated) if q is not None), default=None)
        if storage is not None:
            out["requests.storage"] = storage
            if storage_class:
                out[by_storage_class(storage_class, "requests.storage")] = storage
        return out


_LEGACY_ALIASES = {
    "configmaps": "configmaps",
    "secrets": "secrets",
    "replicationcontrollers": "replicationcontrollers",
    "resourcequotas": "resourcequotas",
}
_SPECIAL: dict[tuple[str, str], Evaluator] = {
    ("", "pods"): PodEvaluator(),
    ("", "services"): ServiceEvaluator(),
    ("", "persistentvolumeclaims"): PersistentVolumeClaimEvaluator(),
}
# Upstream's DefaultIgnoredResources: events are never quota'd.
IGNORED = frozenset((("", "events"), ("events.k8s.io", "events")))


@functools.lru_cache(maxsize=1024)
def evaluator_for(group: str, plural: str) -> Evaluator:
    """The evaluator of a resource: a special one, else an object count.

    Remembered: evaluators are immutable, and quota admission asks for one on
    every create and update.
    """
    special = _SPECIAL.get((group, plural))
    if special is not None:
        return special
    alias = _LEGACY_ALIASES.get(plural, "") if not group else ""
    return ObjectCountEvaluator(group, plural, alias)


def resource_for_name(name: str) -> tuple[str, str] | None:
    """The (group, plural) a quota resource name is about, if it names one resource.

    Compute and storage names belong to pods and claims; ``count/x.y`` to
    ``x`` in group ``y``; the classic names to their core resources.
    """
    for (group, plural), evaluator in _SPECIAL.items():
        if evaluator.matching_resources([name]):
            return group, plural
    if name in _LEGACY_ALIASES:
        return "", name
    if name.startswith("count/"):
        plural, _, group = name[len("count/") :].partition(".")
        return group, plural
    return None


def matches(resource_quota: Object, evaluator: Evaluator, obj: Object) -> bool:
    """Upstream generic.Matches: the quota tracks one of our names and all its scopes fit."""
    hard = parse_list((resource_quota.get("status") or {}).get("hard"))
    if not evaluator.matching_resources(hard):
        return False
    return all(evaluator.matches_scope(s, obj) for s in scope_selectors(resource_quota))


def usage_of(
    hard_names: Iterable[str],
    selectors: list[ScopeSelector],
    evaluator: Evaluator,
    objects: Iterable[Object],
    now: datetime.datetime,
) -> ResourceList:
    """What ``objects`` use of ``hard_names`` (zero when nothing), for the controller."""
    names = evaluator.matching_resources(hard_names)
    total: ResourceList = dict.fromkeys(names, ZERO)
    for obj in objects:
        if all(evaluator.matches_scope(s, obj) for s in selectors):
            total = add(total, mask(evaluator.usage(obj, now), names))
    return total
