"""The local-path provisioner: node-local hostPath volumes for the ``standard`` class.

What kind ships as ``rancher/local-path-provisioner`` (provisioner name
``rancher.io/local-path``), built on sig-storage-lib-external-provisioner,
as one more controller of our controller manager. It is not an upstream
kube-controller-manager controller; it acts as kind's identity, the
ServiceAccount ``local-path-storage/local-path-provisioner`` (kind's name
with the ``-service-account`` suffix dropped so that the client
certificate's common name fits 64 characters; decision 0021).

Claims: a claim the PV binder handed to us (annotation
``volume.kubernetes.io/storage-provisioner: rancher.io/local-path``), not
bound, not being deleted, whose class names us. A ``WaitForFirstConsumer``
claim waits for the scheduler's ``volume.kubernetes.io/selected-node``;
without a node there is nowhere to put the directory, so an ``Immediate``
claim fails as the rancher provisioner does. The volume is
``pvc-<claim uid>``: hostPath ``<base>/pvc-<uid>_<namespace>_<name>``
(``DirectoryOrCreate``; the simulated runtime creates nothing on disk),
node affinity ``kubernetes.io/hostname In [<node's hostname>]``, the
claim's request, access modes and volume mode, the class's reclaim policy,
a claimRef naming the claim (uid included) and
``pv.kubernetes.io/provisioned-by``; the binder then binds the two.

Volumes: one we provisioned that is ``Released`` with reclaim policy
``Delete`` is deleted (rancher first runs a helper pod to remove the
directory; the simulated runtime has none to remove).
"""

from __future__ import annotations

import logging
import socket
import uuid
from typing import Any, Literal

from kajitori.client import events, informer, rest
from kajitori.controllers import base
from kajitori.controllers.volume import pv_binder, pv_util

log = logging.getLogger(__name__)

Object = dict[str, Any]
Key = tuple[Literal["claim", "volume"], str]

PROVISIONER_NAME = "rancher.io/local-path"
DEFAULT_BASE_PATH = "/var/local-path-provisioner"
SUPPORTED_ACCESS_MODES = ("ReadWriteOnce", "ReadWriteOncePod")
# The identity server.local_path_storage installs (it must say the same).
NAMESPACE = "local-path-storage"
SERVICE_ACCOUNT = "local-path-provisioner"
ANN_PROVISIONER_SELECTED_NODE = "local.path.provisioner/selected-node"


def event_source() -> str:
    """The component its Events name, as the external provisioner library's.

    ``<provisioner>_<host>_<uuid>``: a new uuid per start, as each of its pods has.
    """
    return f"{PROVISIONER_NAME}_{socket.gethostname()}_{uuid.uuid4()}"


def volume_name(claim: Object) -> str:
    """The external provisioner library's naming: ``pvc-<claim uid>``."""
    return f"pvc-{pv_util.meta(claim).get('uid', '')}"


def volume_path(claim: Object, *, base_path: str = DEFAULT_BASE_PATH) -> str:
    meta = pv_util.meta(claim)
    return f"{base_path}/{volume_name(claim)}_{meta.get('namespace', '')}_{meta.get('name', '')}"


def plan_volume(
    claim: Object, storage_class: Object, *, hostname: str, base_path: str = DEFAULT_BASE_PATH
) -> Object:
    """The PersistentVolume for ``claim`` on the node whose hostname label is ``hostname``."""
    claim_spec = pv_util.spec(claim)
    requests = (claim_spec.get("resources") or {}).get("requests") or {}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": volume_name(claim),
            "annotations": {
                pv_util.ANN_DYNAMICALLY_PROVISIONED: PROVISIONER_NAME,
                ANN_PROVISIONER_SELECTED_NODE: hostname,
            },
        },
        "spec": {
            "capacity": {"storage": requests.get("storage", "0")},
            "accessModes": list(claim_spec.get("accessModes") or []),
            "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
            "storageClassName": pv_util.meta(storage_class).get("name", ""),
            "volumeMode": pv_util.volume_mode(claim),
            "claimRef": pv_binder.claim_ref(claim),
            "hostPath": {
                "path": volume_path(claim, base_path=base_path),
                "type": "DirectoryOrCreate",
            },
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": pv_util.HOSTNAME_LABEL,
                                    "operator": "In",
                                    "values": [hostname],
                                }
                            ]
                        }
                    ]
                }
            },
        },
    }


def provision_problem(claim: Object) -> str:
    """Why the rancher provisioner would refuse ``claim``, or ""."""
    if pv_util.spec(claim).get("selector"):
        return "claim.Spec.Selector is not supported"
    modes = pv_util.spec(claim).get("accessModes") or []
    if any(mode not in SUPPORTED_ACCESS_MODES for mode in modes):
        return "NodePath only supports ReadWriteOnce and ReadWriteOncePod (1.22+) access modes"
    if not pv_util.annotations(claim).get(pv_util.ANN_SELECTED_NODE):
        return "configuration error, no node was specified"
    return ""


class LocalPathProvisioner(base.QueueController[Key]):
    name = "local-path-provisioner"

    def __init__(
        self,
        *,
        client: rest.Client,
        informers: informer.InformerFactory,
        recorder: events.EventRecorder,
        base_path: str = DEFAULT_BASE_PATH,
    ) -> None:
        super().__init__()
        self.client = client
        self.recorder = recorder
        self.base_path = base_path
        self.claims = self.watch(
            informers.informer(rest.PERSISTENTVOLUMECLAIMS),
            on_add=self._enqueue_claim,
            on_update=lambda _, new: self._enqueue_claim(new),
        )
        self.volumes = self.watch(
            informers.informer(rest.PERSISTENTVOLUMES),
            on_add=self._enqueue_volume,
            on_update=lambda _, new: self._enqueue_volume(new),
        )
        self.classes = self.watch(informers.informer(rest.STORAGECLASSES))
        self.nodes = self.watch(informers.informer(rest.NODES))

    # ----- event handlers (enqueue keys only) ----------------------------------

    def _enqueue_claim(self, claim: Object) -> None:
        provisioner = pv_util.annotations(claim).get(pv_util.ANN_STORAGE_PROVISIONER)
        if provisioner == PROVISIONER_NAME and not pv_util.spec(claim).get("volumeName"):
            self.queue.add(("claim", informer.meta_namespace_key(claim)))

    def _enqueue_volume(self, volume: Object) -> None:
        provisioned_by = pv_util.annotations(volume).get(pv_util.ANN_DYNAMICALLY_PROVISIONED)
        if provisioned_by == PROVISIONER_NAME and pv_util.phase(volume) == "Released":
            self.queue.add(("volume", informer.meta_namespace_key(volume)))

    # ----- sync ----------------------------------------------------------------

    async def sync(self, key: Key) -> None:
        kind, name = key
        if kind == "claim":
            claim = self.claims.indexer.get(name)
            if claim is not None:
                await self.provision(claim)
            return
        volume = self.volumes.indexer.get(name)
        if volume is not None:
            await self.delete(volume)

    def _class_for(self, claim: Object) -> Object | None:
        """The claim's class, when it is ours."""
        storage_class = self.classes.indexer.get(pv_util.claim_class(claim))
        if storage_class is None or storage_class.get("provisioner") != PROVISIONER_NAME:
            return None
        return storage_class

    def _should_provision(self, claim: Object, storage_class: Object | None) -> bool:
        if storage_class is None or pv_util.meta(claim).get("deletionTimestamp"):
            return False
        if pv_util.spec(claim).get("volumeName"):
            return False
        if pv_util.is_delay_binding_class(storage_class) and not pv_util.annotations(claim).get(
            pv_util.ANN_SELECTED_NODE
        ):
            return False  # the scheduler has not picked a node yet
        return self.volumes.indexer.get(volume_name(claim)) is None

    async def provision(self, claim: Object) -> None:
        storage_class = self._class_for(claim)
        if not self._should_provision(claim, storage_class):
            return
        assert storage_class is not None
        claim_obj = pv_binder.as_claim(claim)
        problem = provision_problem(claim)
        if problem:
            self.recorder.event(
                claim_obj,
                "Warning",
                "ProvisioningFailed",
                f'failed to provision volume with StorageClass "{pv_util.meta(storage_class)["name"]}": '
                f"{problem}",
            )
            return
        self.recorder.event(
            claim_obj,
            "Normal",
            "Provisioning",
            f'External provisioner is provisioning volume for claim "{pv_util.claim_key(claim)}"',
        )
        node_name = pv_util.annotations(claim)[pv_util.ANN_SELECTED_NODE]
        volume = plan_volume(
            claim, storage_class, hostname=self._hostname(node_name), base_path=self.base_path
        )
        try:
            await self.client.create(rest.PERSISTENTVOLUMES, volume)
        except rest.ApiError as exc:
            if exc.code != 409:
                raise
        self.recorder.event(
            claim_obj,
            "Normal",
            "ProvisioningSucceeded",
            f"Successfully provisioned volume {volume['metadata']['name']}",
        )

    def _hostname(self, node_name: str) -> str:
        """The node's hostname label (what the node affinity names), else its name."""
        node = self.nodes.indexer.get(node_name)
        labels = (pv_util.meta(node).get("labels") or {}) if node else {}
        return str(labels.get(pv_util.HOSTNAME_LABEL) or node_name)

    async def delete(self, volume: Object) -> None:
        """Delete a Released volume we provisioned whose policy is Delete."""
        if pv_util.phase(volume) != "Released" or pv_util.meta(volume).get("deletionTimestamp"):
            return
        if pv_util.spec(volume).get("persistentVolumeReclaimPolicy") != "Delete":
            return
        name = pv_util.meta(volume)["name"]
        try:
            await self.client.delete(
                rest.PERSISTENTVOLUMES, name, uid=pv_util.meta(volume).get("uid", "")
            )
        except rest.ApiError as exc:
            if not exc.not_found and not exc.conflict:
                raise
