"""The kubelet's side of Dynamic Resource Allocation: preparing a pod's claims, or refusing.

Upstream's kubelet (pkg/kubelet/cm/dra) prepares every allocated claim of a
pod before its sandbox is made: it reads each claim, groups the allocated
devices by driver and calls that driver's kubelet plugin over gRPC
(``NodePrepareResources`` with the claims' namespace, name and UID; the
plugin answers the CDI device IDs the runtime injects into the containers).
A claim not reserved for the pod, or a driver with no registered plugin,
fails the preparation: the pod stays
Pending (no sandbox, no containers) and each sync records a Warning
``FailedPrepareDynamicResources`` with ``Failed to prepare dynamic
resources: <error>``.

kajitori's runtimes register no DRA plugin:

* the simulated runtime (the node simulator) treats the scheduler's
  allocation as prepared, since the driver publishing its slices is the
  test itself;
* the oci (runc) runtime can prepare nothing, so a pod with claims is
  refused as upstream refuses it when the driver is not registered. Speaking
  NodePrepareResources would take the plugin registration socket
  (``/var/lib/kubelet/plugins_registry``), a gRPC client of the dra/v1
  service, a claim-info checkpoint, and CDI injection into the OCI spec.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.resource_v1 import podclaims
from kajitori.client import rest

Object = dict[str, Any]

REASON = "FailedPrepareDynamicResources"
EVENT_PREFIX = "Failed to prepare dynamic resources: "
# How long a refused pod waits before the kubelet tries again (upstream's sync period).
RETRY_SECONDS = 10.0


def prepares_claims(runtime_type: str) -> bool:
    """Whether a runtime of this type gets its pods' claims prepared (treated as such)."""
    return runtime_type == "simulated"


async def prepare_error(client: rest.Client, pod: Object) -> str | None:
    """Why the pod's claims cannot be prepared on a node without DRA plugins; None if it has none."""
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    try:
        named = list(podclaims.named_claims(pod))
    except podclaims.ClaimNameError as exc:
        return f"prepare dynamic resources: {exc}"
    for _, name, _ in named:
        try:
            claim = await client.get(rest.RESOURCECLAIMS, name, namespace=namespace)
        except rest.ApiError as exc:
            return f"prepare dynamic resources: fetch ResourceClaim {name}: {exc.message}"
        if not podclaims.is_reserved_for(pod, claim):
            meta = pod.get("metadata") or {}
            return (
                f"prepare dynamic resources: pod {meta.get('name', '')} ({meta.get('uid', '')}) "
                f"is not allowed to use resource claim {name} "
                f"({(claim.get('metadata') or {}).get('uid', '')})"
            )
        for driver in podclaims.drivers(claim):
            return f"prepare dynamic resources: DRA driver {driver} is not registered"
    return None
