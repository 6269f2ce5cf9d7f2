"""NodeRestriction: a kubelet may change only its own Node, Lease and pods.

Upstream's plugin/pkg/admission/noderestriction. The Node authorizer lets
any node write nodes, node status, pod status and (mirror) pods; this plugin
narrows each write to what belongs to the requesting node
(``system:node:<name>`` in ``system:nodes``):

* Nodes: only its own; no labels under node-restriction.kubernetes.io, nor
  kubernetes.io / k8s.io labels a kubelet does not set itself; taints are
  set at registration and never changed by the node afterwards;
* pods: create only mirror pods bound to itself, owned by its Node, using no
  secrets, config maps, claims or service account; update (status) and
  delete (also how evictions end) only pods bound to itself, without
  touching labels;
* Leases and CSINodes: only the one named like the node.

Refusals are 403 Forbidden with upstream's messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from kajitori.admission.chain import Plugin
from kajitori.auth import node as node_auth
from kajitori.machinery import errors
from kajitori.registry.generic.request import RequestContext

if TYPE_CHECKING:
    from kajitori.registry.generic.store import DeleteOptions, Store

Object = dict[str, Any]
NodeGetter = Callable[[str], Awaitable[Object]]

MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
NODE_RESTRICTION_LABEL_NAMESPACE = "node-restriction.kubernetes.io"
# Labels a kubelet sets on its own Node (upstream's kubeletapis.IsKubeletLabel).
KUBELET_LABELS = frozenset(
    (
        "kubernetes.io/hostname",
        "kubernetes.io/arch",
        "kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
    )
)
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")


class NodeRestriction(Plugin):
    # validate acts on nothing (chain.py skips it); admit on every resource.
    VALIDATES: ClassVar[frozenset[tuple[str, str]]] = frozenset()

    def __init__(self, get_node: NodeGetter) -> None:
        self.get_node = get_node

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        node = _requesting_node(store, obj, ctx)
        if node is None:
            return
        meta = obj.get("metadata") or {}
        match (store.info.group, store.info.plural):
            case ("", "pods"):
                if operation == "CREATE":
                    await self._pod_create(store, node, obj)
                elif old is not None:
                    _pod_status_update(store, node, obj, old)
            case ("", "nodes"):
                _node_write(store, node, obj, old)
            case ("coordination.k8s.io", "leases"):
                _own_lease(store, node, meta)
            case ("storage.k8s.io", "csinodes"):
                if meta.get("name") != node:
                    raise _forbidden(
                        store,
                        meta,
                        "can only access CSINode with the same name as the requesting node",
                    )

    async def validate_delete(
        self, store: Store, obj: Object, ctx: RequestContext, options: DeleteOptions | None = None
    ) -> None:
        node = _requesting_node(store, obj, ctx)
        if node is None:
            return
        meta = obj.get("metadata") or {}
        match (store.info.group, store.info.plural):
            case ("", "pods"):
                if (obj.get("spec") or {}).get("nodeName") != node:
                    raise _forbidden(
                        store,
                        meta,
                        f'node "{node}" can only delete pods with spec.nodeName set to itself',
                    )
            case ("", "nodes"):
                if meta.get("name") != node:
                    raise _forbidden(
                        store,
                        meta,
                        f'node "{node}" is not allowed to modify node "{meta.get("name")}"',
                    )
            case ("coordination.k8s.io", "leases"):
                _own_lease(store, node, meta)

    async def _pod_create(self, store: Store, node: str, pod: Object) -> None:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}

        def refuse(message: str) -> errors.StatusError:
            return _forbidden(store, meta, message)

        if MIRROR_POD_ANNOTATION not in (meta.get("annotations") or {}):
            raise refuse(
                f'pod does not have "{MIRROR_POD_ANNOTATION}" annotation, '
                f'node "{node}" can only create mirror pods'
            )
        if spec.get("nodeName") != node:
            raise refuse(f'node "{node}" can only create pods with spec.nodeName set to itself')
        await self._check_mirror_owner(node, meta.get("ownerReferences") or [], refuse)
        if spec.get("serviceAccountName"):
            raise refuse(f'node "{node}" can not create pods that reference a service account')
        refs = node_auth.pod_references(pod)
        for kind, noun in (("secret", "secrets"), ("configmap", "configmaps")):
            if any(ref[0] == kind for ref in refs):
                raise refuse(f'node "{node}" can not create pods that reference {noun}')
        if any("persistentVolumeClaim" in volume for volume in spec.get("volumes") or ()):
            raise refuse(f'node "{node}" can not create pods that reference persistentvolumeclaims')

    async def _check_mirror_owner(
        self, node: str, owners: list[Object], refuse: Callable[[str], errors.StatusError]
    ) -> None:
        if len(owners) > 1:
            raise refuse(
                f'node "{node}" can only create pods with a single owner reference set to itself'
            )
        if not owners:
            raise refuse(
                f'node "{node}" can only create pods with an owner reference set to itself'
            )
        owner = owners[0]
        if (owner.get("apiVersion"), owner.get("kind"), owner.get("name")) != ("v1", "Node", node):
            raise refuse(
                f'node "{node}" can only create pods with an owner reference set to itself'
            )
        if not owner.get("controller"):
            raise refuse(
                f'node "{node}" can only create pods with a controller owner reference set to itself'
            )
        if owner.get("blockOwnerDeletion"):
            raise refuse(f'node "{node}" must not set blockOwnerDeletion on an owner reference')
        registered = await self.get_node(node)
        uid = (registered.get("metadata") or {}).get("uid", "")
        if owner.get("uid") != uid:
            raise refuse(f"node {node} UID mismatch: expected {owner.get('uid')} got {uid}")


def _requesting_node(store: Store, obj: Object, ctx: RequestContext) -> str | None:
    """The node making the request; None when it is not a node."""
    node, is_node = node_auth.node_identity(ctx.user)
    if not is_node:
        return None
    if not node:
        raise _forbidden(
            store,
            obj.get("metadata") or {},
            f'could not determine node from user "{ctx.user.name}"',
        )
    return node


def _pod_status_update(store: Store, node: str, pod: Object, old: Object) -> None:
    meta = pod.get("metadata") or {}
    if (old.get("spec") or {}).get("nodeName") != node:
        raise _forbidden(
            store,
            meta,
            f'node "{node}" can only update pod status for pods with spec.nodeName set to itself',
        )
    if (meta.get("labels") or {}) != ((old.get("metadata") or {}).get("labels") or {}):
        raise _forbidden(store, meta, f'node "{node}" cannot update labels through pod status')


def _node_write(store: Store, node: str, obj: Object, old: Object | None) -> None:
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    if name != node:
        raise _forbidden(store, meta, f'node "{node}" is not allowed to modify node "{name}"')
    old_labels = ((old or {}).get("metadata") or {}).get("labels") or {}
    forbidden = forbidden_labels(_modified_labels(meta.get("labels") or {}, old_labels))
    if old is None:
        if forbidden:
            raise _forbidden(
                store,
                meta,
                f'node "{node}" is not allowed to set the following labels: {", ".join(forbidden)}',
            )
        return
    old_taints = (old.get("spec") or {}).get("taints") or []
    if ((obj.get("spec") or {}).get("taints") or []) != old_taints:
        raise _forbidden(store, meta, f'node "{node}" is not allowed to modify taints')
    if forbidden:
        raise _forbidden(store, meta, f"is not allowed to modify labels: {', '.join(forbidden)}")


def _own_lease(store: Store, node: str, meta: Object) -> None:
    if meta.get("namespace") != node_auth.NODE_LEASE_NAMESPACE:
        raise _forbidden(
            store,
            meta,
            f'can only access leases in the "{node_auth.NODE_LEASE_NAMESPACE}" system namespace',
        )
    if meta.get("name") != node:
        raise _forbidden(
            store, meta, "can only access node lease with the same name as the requesting node"
        )


def _modified_labels(new: dict[str, str], old: dict[str, str]) -> set[str]:
    return {k for k in new.keys() | old.keys() if new.get(k) != old.get(k)}


def _label_namespace(key: str) -> str:
    return key.split("/", 1)[0] if "/" in key else ""


def _within(namespace: str, domain: str) -> bool:
    return namespace == domain or namespace.endswith("." + domain)


def is_kubelet_label(key: str) -> bool:
    namespace = _label_namespace(key)
    return key in KUBELET_LABELS or any(_within(namespace, d) for d in KUBELET_LABEL_NAMESPACES)


def forbidden_labels(keys: Iterable[str]) -> list[str]:
    """The labels a node may not add, remove or change on itself, sorted."""
    refused = set()
    for key in keys:
        namespace = _label_namespace(key)
        if _within(namespace, NODE_RESTRICTION_LABEL_NAMESPACE):
            refused.add(key)
        kubernetes = _within(namespace, "kubernetes.io") or _within(namespace, "k8s.io")
        if kubernetes and not is_kubelet_label(key):
            refused.add(key)
    return sorted(refused)


def _forbidden(store: Store, meta: Object, message: str) -> errors.StatusError:
    return errors.forbidden(store.gr, meta.get("name") or meta.get("generateName", ""), message)
