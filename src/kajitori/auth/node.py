"""The Node authorizer: what a kubelet may read and write (upstream's plugin/pkg/auth/authorizer/node).

A kubelet authenticates as ``system:node:<name>`` in ``system:nodes``. RBAC
gives that identity nothing (the ``system:node`` ClusterRole has no binding
upstream); this authorizer decides instead, in front of RBAC, as
kube-apiserver's ``--authorization-mode=Node,RBAC``:

* secrets, configmaps, persistentvolumeclaims, persistentvolumes,
  ResourceClaims and serviceaccount tokens only when the object is *related*
  to the node: a pod bound to it uses the secret, config map, claim,
  ResourceClaim (by name, or generated from a template and named in its
  status) or service account, or a claim it uses is bound to the volume
  (whose secrets count too). The ``NodeGraph`` keeps those relations from
  the pod, claim and volume stores;
* ResourceSlices: create (NodeRestriction checks ``spec.nodeName``), list,
  watch and deletecollection only with the field selector
  ``spec.nodeName=<name>``, and get/update/patch/delete of the slices whose
  ``spec.nodeName`` is the node (the graph follows the slices store too);
* its own Node object and status (reads by name only: "cannot read all
  nodes"), its own Lease in kube-node-lease, its own CSINode;
* pods: ``get`` of pods bound to it, ``list``/``watch`` only with the field
  selector ``spec.nodeName=<name>`` (KEP-4601, on by default since 1.32),
  create/delete (mirror pods), status updates and evictions, which the
  NodeRestriction admission plugin then limits to pods bound to it;
* everything else by the static rules of upstream's ``system:node`` role.

Denials are NoOpinion with upstream's reason, which ends the 403 message.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kajitori.auth import rbac, reflector
from kajitori.machinery import fields
from kajitori.registry.authorization.authorizer import Attributes, Decision, Rule, RuleSet
from kajitori.registry.generic.request import UserInfo

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store

Object = dict[str, Any]
Vertex = tuple[str, str, str]  # (kind, namespace, name)
# A pod the graph holds: (node, uid, how many ephemeral containers, the ResourceClaims its
# status names, its references).
_PodEntry = tuple[str, str, int, tuple[str, ...], frozenset[Vertex]]

NODES_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"
NODE_LEASE_NAMESPACE = "kube-node-lease"
# The stores the graph follows, by plural (core/v1), and the DRA one it follows when served.
WATCHED = ("pods", "persistentvolumeclaims", "persistentvolumes")
RESOURCE_SLICES = "resourceslices"
_OWN_OBJECT_VERBS = frozenset(("get", "create", "update", "patch", "delete"))


def node_identity(user: UserInfo) -> tuple[str, bool]:
    """(node name, is a node) as upstream's NodeIdentity: both the group and the user prefix."""
    if NODES_GROUP not in user.groups or not user.name.startswith(NODE_USER_PREFIX):
        return "", False
    return user.name[len(NODE_USER_PREFIX) :], True


# ----- what a pod refers to ----------------------------------------------------------


def pod_references(pod: Object) -> set[Vertex]:
    """Every secret, config map, claim and service account ``pod`` uses (and the pod itself)."""
    meta = pod.get("metadata") or {}
    ns, name = meta.get("namespace", ""), meta.get("name", "")
    spec = pod.get("spec") or {}
    refs: set[Vertex] = {("pod", ns, name)}
    refs.add(("serviceaccount", ns, spec.get("serviceAccountName") or "default"))
    for secret in spec.get("imagePullSecrets") or ():
        if secret.get("name"):
            refs.add(("secret", ns, secret["name"]))
    for volume in spec.get("volumes") or ():
        refs.update(_volume_references(ns, name, volume))
    for container in _containers(spec):
        refs.update(_env_references(ns, container))
    for claim in spec.get("resourceClaims") or ():
        if isinstance(claim, Mapping) and claim.get("resourceClaimName"):
            refs.add(("resourceclaim", ns, claim["resourceClaimName"]))
    for claim in _claim_statuses(pod):
        refs.add(("resourceclaim", ns, claim))
    return refs


def _claim_statuses(pod: Object) -> tuple[str, ...]:
    """The ResourceClaims generated for ``pod`` from templates, as its status names them."""
    statuses = (pod.get("status") or {}).get("resourceClaimStatuses") or ()
    return tuple(
        str(s["resourceClaimName"])
        for s in statuses
        if isinstance(s, Mapping) and s.get("resourceClaimName")
    )


def _containers(spec: Object) -> Iterator[Object]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key) or ()


def _volume_references(ns: str, pod_name: str, volume: Object) -> Iterator[Vertex]:
    if name := (volume.get("secret") or {}).get("secretName"):
        yield ("secret", ns, name)
    if name := (volume.get("configMap") or {}).get("name"):
        yield ("configmap", ns, name)
    if name := (volume.get("persistentVolumeClaim") or {}).get("claimName"):
        yield ("pvc", ns, name)
    if "ephemeral" in volume:
        # Upstream names a generic ephemeral volume's claim <pod>-<volume>.
        yield ("pvc", ns, f"{pod_name}-{volume.get('name', '')}")
    for source in (volume.get("projected") or {}).get("sources") or ():
        if name := (source.get("secret") or {}).get("name"):
            yield ("secret", ns, name)
        if name := (source.get("configMap") or {}).get("name"):
            yield ("configmap", ns, name)
    for value in volume.values():
        # Plugins with credentials (csi, cephfs, rbd, iscsi, ...) name them secretRef.
        if isinstance(value, Mapping):
            for key in ("secretRef", "nodePublishSecretRef"):
                if name := (value.get(key) or {}).get("name"):
                    yield ("secret", ns, name)


def _env_references(ns: str, container: Object) -> Iterator[Vertex]:
    for env in container.get("env") or ():
        source = env.get("valueFrom") or {}
        if name := (source.get("secretKeyRef") or {}).get("name"):
            yield ("secret", ns, name)
        if name := (source.get("configMapKeyRef") or {}).get("name"):
            yield ("configmap", ns, name)
    for env_from in container.get("envFrom") or ():
        if name := (env_from.get("secretRef") or {}).get("name"):
            yield ("secret", ns, name)
        if name := (env_from.get("configMapRef") or {}).get("name"):
            yield ("configmap", ns, name)


def volume_secrets(pv: Object) -> set[Vertex]:
    """Secrets a PersistentVolume's plugin names (namespaced refs; upstream adds these too)."""
    found: set[Vertex] = set()
    for value in (pv.get("spec") or {}).values():
        if not isinstance(value, Mapping):
            continue
        for key, ref in value.items():
            if key.endswith("SecretRef") or key == "secretRef":
                if isinstance(ref, Mapping) and ref.get("name") and ref.get("namespace"):
                    found.add(("secret", ref["namespace"], ref["name"]))
    return found


# ----- the graph ----------------------------------------------------------------------


class NodeGraph:
    """Which objects are related to which node, from pods, claims and volumes."""

    def __init__(self) -> None:
        self._pods: dict[tuple[str, str], _PodEntry] = {}
        self._node_refs: dict[str, collections.Counter[Vertex]] = {}
        self._claim_volume: dict[tuple[str, str], str] = {}
        self._volume_secrets: dict[str, set[Vertex]] = {}
        self._slice_node: dict[str, str] = {}

    # pods
    def replace_pods(self, pods: Iterable[Object]) -> None:
        self._pods.clear()
        self._node_refs.clear()
        for pod in pods:
            self.apply_pod("ADDED", pod)

    def apply_pod(self, event_type: str, pod: Object) -> None:
        meta = pod.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        spec = pod.get("spec") or {}
        node = spec.get("nodeName") or ""
        uid = meta.get("uid", "")
        ephemeral = len(spec.get("ephemeralContainers") or ())
        claims = _claim_statuses(pod)
        if event_type == "MODIFIED" and node:
            entry = self._pods.get(key)
            # Upstream's updatePod: with the node and uid unchanged, no new
            # ephemeral container and the same generated ResourceClaims, the
            # references are those already recorded (a pod's other references
            # are immutable): most pod updates are status writes, and walking
            # the spec again for each was wasted.
            if (
                entry is not None
                and entry[:2] == (node, uid)
                and ephemeral <= entry[2]
                and claims == entry[3]
            ):
                return
        self._forget_pod(key)
        if event_type == "DELETED" or not node:
            return
        refs = frozenset(pod_references(pod))
        self._pods[key] = (node, uid, ephemeral, claims, refs)
        self._node_refs.setdefault(node, collections.Counter()).update(refs)

    def _forget_pod(self, key: tuple[str, str]) -> None:
        entry = self._pods.pop(key, None)
        if entry is None:
            return
        node, _, _, _, refs = entry
        counter = self._node_refs[node]
        counter.subtract(refs)
        for ref in refs:
            if counter[ref] <= 0:
                del counter[ref]
        if not counter:
            del self._node_refs[node]

    # claims and volumes
    def replace_claims(self, claims: Iterable[Object]) -> None:
        self._claim_volume.clear()
        for claim in claims:
            self.apply_claim("ADDED", claim)

    def apply_claim(self, event_type: str, claim: Object) -> None:
        meta = claim.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        volume = (claim.get("spec") or {}).get("volumeName") or ""
        if event_type == "DELETED" or not volume:
            self._claim_volume.pop(key, None)
        else:
            self._claim_volume[key] = volume

    def replace_volumes(self, volumes: Iterable[Object]) -> None:
        self._volume_secrets.clear()
        for volume in volumes:
            self.apply_volume("ADDED", volume)

    def apply_volume(self, event_type: str, volume: Object) -> None:
        name = (volume.get("metadata") or {}).get("name", "")
        secrets = volume_secrets(volume)
        if event_type == "DELETED" or not secrets:
            self._volume_secrets.pop(name, None)
        else:
            self._volume_secrets[name] = secrets

    # resource slices
    def replace_slices(self, slices: Iterable[Object]) -> None:
        self._slice_node.clear()
        for item in slices:
            self.apply_slice("ADDED", item)

    def apply_slice(self, event_type: str, item: Object) -> None:
        name = (item.get("metadata") or {}).get("name", "")
        node = (item.get("spec") or {}).get("nodeName") or ""
        if event_type == "DELETED" or not node:
            self._slice_node.pop(name, None)
        else:
            self._slice_node[name] = node

    # queries
    def related(self, node: str, kind: str, namespace: str, name: str) -> bool:
        """Whether a path leads from object (kind, namespace, name) to ``node``."""
        if kind == "resourceslice":
            return self._slice_node.get(name) == node
        refs = self._node_refs.get(node)
        if not refs:
            return False
        if kind == "pv":
            return name in self._node_volumes(refs)
        if (kind, namespace, name) in refs:
            return True
        if kind == "secret":
            vertex = ("secret", namespace, name)
            return any(vertex in self._volume_secrets.get(v, ()) for v in self._node_volumes(refs))
        return False

    def _node_volumes(self, refs: Mapping[Vertex, int]) -> set[str]:
        volumes = set()
        for kind, ns, name in refs:
            if kind == "pvc" and (volume := self._claim_volume.get((ns, name))):
                volumes.add(volume)
        return volumes


# ----- the authorizer -------------------------------------------------------------------


class NodeAuthorizer:
    """Upstream's NodeAuthorizer over a ``NodeGraph`` fed by the stores' watches."""

    def __init__(self, node_rules: Sequence[Rule], graph: NodeGraph | None = None) -> None:
        self.node_rules = tuple(node_rules)
        self.graph = graph or NodeGraph()
        self._synced = {plural: asyncio.Event() for plural in WATCHED}
        self._tasks: list[asyncio.Task[None]] = []

    def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        node, is_node = node_identity(attrs.user)
        if not is_node:
            return "NoOpinion", ""
        if not node:
            return "NoOpinion", f'unknown node for user "{attrs.user.name}"'
        if attrs.resource_request:
            decided = self._subdivided(node, attrs)
            if decided is not None:
                return decided
        if any(rbac.rule_allows(attrs, rule) for rule in self.node_rules):
            return "Allow", ""
        return "NoOpinion", ""

    def rules_for(self, user: UserInfo, namespace: str) -> RuleSet:
        if node_identity(user)[1]:
            return RuleSet(
                incomplete=True,
                evaluation_error="node authorizer does not support user rule resolution",
            )
        return RuleSet()

    # ----- per resource ----------------------------------------------------------

    def _related(self, node: str, kind: str, attrs: Attributes) -> tuple[Decision, str]:
        if not attrs.name:
            return "NoOpinion", "No Object name found"
        if self.graph.related(node, kind, attrs.namespace, attrs.name):
            return "Allow", ""
        return "NoOpinion", f"no relationship found between node '{node}' and this object"

    def _subdivided(self, node: str, attrs: Attributes) -> tuple[Decision, str] | None:
        """The decision for the resources upstream subdivides per node; None for the rest."""
        match (attrs.api_group, attrs.resource):
            case ("", "secrets"):
                return self._read_namespaced(node, "secret", attrs)
            case ("", "configmaps"):
                return self._read_namespaced(node, "configmap", attrs)
            case ("", "persistentvolumeclaims"):
                return self._claims(node, attrs)
            case ("", "persistentvolumes"):
                return self._get(node, "pv", attrs)
            case ("", "serviceaccounts"):
                return self._service_account_token(node, attrs)
            case ("coordination.k8s.io", "leases"):
                return self._lease(node, attrs)
            case ("storage.k8s.io", "csinodes"):
                return self._csi_node(node, attrs)
            case ("resource.k8s.io", "resourceclaims"):
                return self._get(node, "resourceclaim", attrs)
            case ("resource.k8s.io", "resourceslices"):
                return self._resource_slices(node, attrs)
            case ("", "nodes"):
                return self._nodes(node, attrs)
            case ("", "pods"):
                return self._pods(node, attrs)
        return None

    def _read_namespaced(self, node: str, kind: str, attrs: Attributes) -> tuple[Decision, str]:
        if attrs.verb not in ("get", "list", "watch"):
            return "NoOpinion", "can only read resources of this type"
        if attrs.subresource:
            return "NoOpinion", "cannot read subresource"
        if not attrs.namespace:
            return "NoOpinion", "can only read namespaced object of this type"
        return self._related(node, kind, attrs)

    def _get(self, node: str, kind: str, attrs: Attributes) -> tuple[Decision, str]:
        if attrs.verb != "get":
            return "NoOpinion", "can only get individual resources of this type"
        if attrs.subresource:
            return "NoOpinion", "cannot get subresource"
        return self._related(node, kind, attrs)

    def _claims(self, node: str, attrs: Attributes) -> tuple[Decision, str]:
        if attrs.subresource == "status":
            if attrs.verb not in ("update", "patch"):
                return "NoOpinion", "can only get/update/patch this type"
            return self._related(node, "pvc", attrs)
        return self._get(node, "pvc", attrs)

    def _resource_slices(self, node: str, attrs: Attributes) -> tuple[Decision, str]:
        if attrs.subresource:
            return "NoOpinion", "cannot authorize ResourceSlice subresources"
        if attrs.verb == "create":
            return "Allow", ""  # NodeRestriction checks spec.nodeName; the object is not here
        if attrs.verb in ("get", "update", "patch", "delete"):
            return self._related(node, "resourceslice", attrs)
        if attrs.verb in ("watch", "list", "deletecollection"):
            # AuthorizeNodeWithSelectors (on by default): only this node's slices.
            if _selects_node(attrs.field_selector, node):
                return "Allow", ""
            return (
                "NoOpinion",
                "can only list/watch/deletecollection resourceslices with nodeName field selector",
            )
        return (
            "NoOpinion",
            "only the following verbs are allowed for a ResourceSlice: get, watch, list, "
            "create, update, patch, delete, deletecollection",
        )

    def _service_account_token(self, node: str, attrs: Attributes) -> tuple[Decision, str]:
        if attrs.verb != "create" or not attrs.name:
            return "NoOpinion", "can only create tokens for individual service accounts"
        if attrs.subresource != "token":
            return "NoOpinion", "can only create token subresource of serviceaccount"
        return self._related(node, "serviceaccount", attrs)

    def _lease(self, node: str, attrs: Attributes) -> tuple[Decision, str]:
        if attrs.verb not in _OWN_OBJECT_VERBS:
            return "NoOpinion", "can only get, create, update, patch, or delete a node lease"
        if attrs.namespace != NODE_LEASE_NAMESPACE:
            return (
                "NoOpinion",
                f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace',
            )
        # A create names no object yet; NodeRestriction checks the body's name.
        if attrs.verb != "create" and attrs.name != node:
            return (
                "NoOpinion",
                "can only access node lease with the same name as the requesting node",
            )
        return "Allow", ""

    def _csi_node(self, node: str, attrs: Attributes) -> tuple[Decision, str]:
        if attrs.verb not in _OWN_OBJECT_VERBS:
            return "NoOpinion", "can only get, create, update, patch, or delete a CSINode"
        if attrs.subresource:
            return "NoOpinion", "cannot authorize CSINode subresources"
        if attrs.verb != "create" and attrs.name != node:
            return "NoOpinion", "can only access CSINode with the same name as the requesting node"
        return "Allow", ""

    def _nodes(self, node: str, attrs: Attributes) -> tuple[Decision, str]:
        if not attrs.subresource:
            if attrs.verb in ("create", "update", "patch"):
                return "Allow", ""  # NodeRestriction keeps a node to its own object
            if attrs.verb in ("get", "list", "watch"):
                # By name, not by the graph: a kubelet reads its Node before creating it.
                if attrs.name == node:
                    return "Allow", ""
                if not attrs.name:
                    return (
                        "NoOpinion",
                        f"node '{node}' cannot read all nodes, only its own Node object",
                    )
                return (
                    "NoOpinion",
                    f"node '{node}' cannot read '{attrs.name}', only its own Node object",
                )
        elif attrs.subresource == "status" and attrs.verb in ("update", "patch"):
            return "Allow", ""
        return "NoOpinion", ""

    def _pods(self, node: str, attrs: Attributes) -> tuple[Decision, str]:
        if not attrs.subresource:
            if attrs.verb == "get":
                return self._get(node, "pod", attrs)
            if attrs.verb in ("list", "watch"):
                if _selects_node(attrs.field_selector, node):
                    return "Allow", ""
                if attrs.name:
                    return self._related(node, "pod", attrs)
                return "NoOpinion", "can only list/watch pods with spec.nodeName field selector"
            if attrs.verb in ("create", "delete"):
                return "Allow", ""  # mirror pods; NodeRestriction keeps them to this node
        elif attrs.subresource == "status" and attrs.verb in ("update", "patch"):
            return "Allow", ""
        elif attrs.subresource == "eviction" and attrs.verb == "create":
            return "Allow", ""
        return "NoOpinion", ""

    # ----- feeding the graph -----------------------------------------------------

    def start(self, stores: Mapping[str, Store]) -> None:
        """Follow the pod, claim and volume stores (keyed by plural) into the graph.

        ``resourceslices``, when given (resource.k8s.io served), is followed too.
        """
        feeds = {
            "pods": (self.graph.replace_pods, self.graph.apply_pod),
            "persistentvolumeclaims": (self.graph.replace_claims, self.graph.apply_claim),
            "persistentvolumes": (self.graph.replace_volumes, self.graph.apply_volume),
        }
        if RESOURCE_SLICES in stores:
            feeds[RESOURCE_SLICES] = (self.graph.replace_slices, self.graph.apply_slice)
            self._synced.setdefault(RESOURCE_SLICES, asyncio.Event())
        for plural, (replace, apply) in feeds.items():
            task = reflector.reflect(
                f"node authorizer {plural}", stores[plural], replace, apply, self._synced[plural]
            )
            self._tasks.append(asyncio.create_task(task))

    async def wait_synced(self) -> None:
        for event in self._synced.values():
            await event.wait()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


def _selects_node(raw: str, node: str) -> bool:
    if "spec.nodeName" not in raw:
        return False
    try:
        selector = fields.parse_field_selector(raw)
    except fields.SelectorError:
        return False
    return selector.requires_exact_match("spec.nodeName") == node
