"""Where a DaemonSet's pods belong: the node predicates and the per-node pod template.

Pure functions mirroring upstream's pkg/controller/daemon (``NodeShouldRunDaemonPod``,
``NewPod``, ``predicates``) and pkg/controller/daemon/util
(``AddOrUpdateDaemonPodTolerations``, ``CreatePodTemplate``,
``ReplaceDaemonSetPodNodeNameNodeAffinity``, ``GetTargetNodeName``).

Since 1.12 the controller does not bind its pods: it creates each one
unbound, with its required node affinity replaced by the single term
``matchFields metadata.name In [<node>]``, and the default scheduler binds
it there. So the controller only decides *which nodes* want a pod, using the
scheduler's own NodeAffinity and TaintToleration predicates
(``scheduler.plugins``) on a pod that carries the tolerations every daemon
pod gets:

* ``node.kubernetes.io/not-ready`` and ``unreachable`` ``NoExecute`` with no
  ``tolerationSeconds`` (the node lifecycle controller never evicts them);
* ``disk-pressure``, ``memory-pressure``, ``pid-pressure`` and
  ``unschedulable`` ``NoSchedule`` (daemons run on cordoned and pressured
  nodes);
* ``network-unavailable`` ``NoSchedule`` for ``hostNetwork`` pods.

``should_run(node, ds)`` answers upstream's two questions: should a pod be
started there (``should_run``), and may one already there stay
(``should_continue_running``: only a NoExecute taint it does not tolerate
evicts it; a new NoSchedule taint merely stops new pods).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from kajitori.scheduler import framework
from kajitori.scheduler.plugins import node_affinity, taint_toleration

Object = dict[str, Any]

# Upstream's extensions.DefaultDaemonSetUniqueLabelKey / DaemonSetTemplateGenerationKey
# and apps.DeprecatedTemplateGeneration.
HASH_LABEL = "controller-revision-hash"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
NODE_NAME_FIELD = "metadata.name"

_NO_EXECUTE_KEYS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
_NO_SCHEDULE_KEYS = (
    "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/memory-pressure",
    "node.kubernetes.io/pid-pressure",
    "node.kubernetes.io/unschedulable",
)
NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"


@dataclasses.dataclass(frozen=True, slots=True)
class Fit:
    """Upstream's (shouldRun, shouldContinueRunning) for one node and DaemonSet."""

    should_run: bool
    should_continue_running: bool


def daemon_tolerations(pod_spec: Object) -> list[Object]:
    """The tolerations every daemon pod carries, in upstream's order."""
    wanted = [{"key": k, "operator": "Exists", "effect": "NoExecute"} for k in _NO_EXECUTE_KEYS]
    wanted += [{"key": k, "operator": "Exists", "effect": "NoSchedule"} for k in _NO_SCHEDULE_KEYS]
    if pod_spec.get("hostNetwork"):
        wanted.append({"key": NETWORK_UNAVAILABLE, "operator": "Exists", "effect": "NoSchedule"})
    return wanted


def _same_toleration(a: Object, b: Object) -> bool:
    """Upstream's Toleration.MatchToleration: key, operator, value and effect agree."""
    return (
        (a.get("key") or "") == (b.get("key") or "")
        and (a.get("operator") or "Equal") == (b.get("operator") or "Equal")
        and (a.get("value") or "") == (b.get("value") or "")
        and (a.get("effect") or "") == (b.get("effect") or "")
    )


def add_daemon_tolerations(pod_spec: Object) -> None:
    """Add (or replace, e.g. one with tolerationSeconds) each daemon toleration in place."""
    tolerations: list[Object] = list(pod_spec.get("tolerations") or [])
    for toleration in daemon_tolerations(pod_spec):
        for index, existing in enumerate(tolerations):
            if _same_toleration(existing, toleration):
                tolerations[index] = toleration
                break
        else:
            tolerations.append(toleration)
    pod_spec["tolerations"] = tolerations


def new_pod(ds: Object, node_name: str) -> Object:
    """The pod the predicates judge (upstream's NewPod): template, node name, tolerations."""
    template = ((ds.get("spec") or {}).get("template")) or {}
    spec = copy.deepcopy(template.get("spec") or {})
    spec["nodeName"] = node_name
    add_daemon_tolerations(spec)
    return {"metadata": copy.deepcopy(template.get("metadata") or {}), "spec": spec}


def _untolerated(taints: list[Object], tolerations: list[Object], effects: tuple[str, ...]) -> bool:
    return any(
        t.get("effect") in effects and not taint_toleration.tolerated(t, tolerations)
        for t in taints
    )


def should_run(node: Object, ds: Object) -> Fit:
    """Whether ``ds`` wants a pod on ``node``, and whether one there may stay."""
    name = node["metadata"]["name"]
    pinned = (((ds.get("spec") or {}).get("template") or {}).get("spec") or {}).get("nodeName")
    if pinned and pinned != name:
        return Fit(False, False)
    pod = new_pod(ds, name)
    if not node_affinity.required_matches(pod, framework.NodeInfo(node)):
        return Fit(False, False)
    taints: list[Object] = (node.get("spec") or {}).get("taints") or []
    tolerations: list[Object] = pod["spec"]["tolerations"]
    if _untolerated(taints, tolerations, ("NoSchedule", "NoExecute")):
        return Fit(False, not _untolerated(taints, tolerations, ("NoExecute",)))
    return Fit(True, True)


def template_generation(ds: Object) -> int | None:
    """The deprecated template generation annotation, or None (absent or unparsable)."""
    raw = ((ds.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def pod_template(ds: Object, hash_: str) -> Object:
    """The DaemonSet's template with daemon tolerations and the hash/generation labels."""
    template = copy.deepcopy(((ds.get("spec") or {}).get("template")) or {})
    metadata = template.setdefault("metadata", {})
    spec = template.setdefault("spec", {})
    add_daemon_tolerations(spec)
    pod_labels = metadata.setdefault("labels", {})
    generation = template_generation(ds)
    if generation is not None:
        pod_labels[TEMPLATE_GENERATION_LABEL] = str(generation)
    if hash_:
        pod_labels[HASH_LABEL] = hash_
    return template


def pin_to_node(template: Object, node_name: str) -> Object:
    """A copy of ``template`` whose required node affinity selects exactly ``node_name``.

    Upstream's ReplaceDaemonSetPodNodeNameNodeAffinity: any other required
    terms are replaced (the node already satisfied them); preferred terms and
    pod (anti-)affinity stay.
    """
    pinned = copy.deepcopy(template)
    spec = pinned.setdefault("spec", {})
    affinity = spec.get("affinity") or {}
    node_aff = affinity.get("nodeAffinity") or {}
    term = {"matchFields": [{"key": NODE_NAME_FIELD, "operator": "In", "values": [node_name]}]}
    required = dict(node_aff.get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    required["nodeSelectorTerms"] = [term]
    node_aff["requiredDuringSchedulingIgnoredDuringExecution"] = required
    affinity["nodeAffinity"] = node_aff
    spec["affinity"] = affinity
    return pinned


def target_node(pod: Object) -> str | None:
    """The node a daemon pod is for: ``spec.nodeName``, else its matchFields term (or None)."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms") or ():
        for requirement in term.get("matchFields") or ():
            if requirement.get("key") == NODE_NAME_FIELD and requirement.get("operator") == "In":
                values = requirement.get("values") or []
                return str(values[0]) if len(values) == 1 else None
    return None


def is_updated(pod: Object, hash_: str) -> bool:
    """The pod runs the current template: its hash label is the current revision's.

    Upstream also accepts a matching ``pod-template-generation`` label, but it
    compares the label with a formatted *pointer* (util.IsPodUpdated), so in
    practice only the hash decides; so it does here.
    """
    pod_labels = (pod.get("metadata") or {}).get("labels") or {}
    return bool(hash_) and pod_labels.get(HASH_LABEL) == hash_


def only_heartbeat_changed(old: Object, new: Object) -> bool:
    """Only heartbeats changed: same true conditions and otherwise equal (shouldIgnoreNodeUpdate)."""

    def true_conditions(node: Object) -> set[str]:
        conditions = (node.get("status") or {}).get("conditions") or ()
        return {c.get("type", "") for c in conditions if c.get("status") == "True"}

    if true_conditions(old) != true_conditions(new):
        return False

    def comparable(node: Object) -> Object:
        meta = {
            k: v
            for k, v in (node.get("metadata") or {}).items()
            if k not in ("resourceVersion", "managedFields")
        }
        status = {k: v for k, v in (node.get("status") or {}).items() if k != "conditions"}
        return {"metadata": meta, "spec": node.get("spec"), "status": status}

    return comparable(old) == comparable(new)
