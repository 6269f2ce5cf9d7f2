"""Which ResourceClaim a pod's ``spec.resourceClaims[]`` entry stands for, and whose it is.

Upstream keeps this in k8s.io/dynamic-resource-allocation/resourceclaim, the
library its resourceclaim controller, scheduler plugin and kubelet share; so
do ours (pure functions over wire dicts, no I/O). An entry names its claim
directly (``resourceClaimName``) or asks for one made from a template
(``resourceClaimTemplateName``): the controller records the generated name in
``pod.status.resourceClaimStatuses``, and until it has, the claim does not
exist yet. A generated claim is the pod's only when the pod controls it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Object = dict[str, Any]

# Upstream's ErrClaimNotFound and ErrAPIUnsupported texts.
NOT_CREATED = "ResourceClaim not created yet"
UNSUPPORTED = "none of the supported fields are set"
# The scheduler adds it when it allocates; the controller removes it once deallocated.
FINALIZER = "resource.kubernetes.io/delete-protection"
# Generated claims carry the pod's claim name here (upstream's podResourceClaimAnnotation).
POD_CLAIM_NAME_ANNOTATION = "resource.kubernetes.io/pod-claim-name"


class ClaimNameError(Exception):
    """The entry's claim cannot be named (not created yet, or an unsupported entry)."""


def _meta(obj: Object) -> Object:
    meta: Object = obj.get("metadata") or {}
    return meta


def pod_claims(pod: Object) -> list[Object]:
    claims: list[Object] = (pod.get("spec") or {}).get("resourceClaims") or []
    return claims


def claim_name(pod: Object, pod_claim: Object) -> tuple[str | None, bool]:
    """(claim name or None when intentionally not created, whether ownership must be checked).

    Raises ``ClaimNameError`` with upstream's message when the claim cannot be named.
    """
    meta = _meta(pod)
    if pod_claim.get("resourceClaimName"):
        return str(pod_claim["resourceClaimName"]), False
    if pod_claim.get("resourceClaimTemplateName"):
        for entry in (pod.get("status") or {}).get("resourceClaimStatuses") or ():
            if entry.get("name") == pod_claim.get("name"):
                name = entry.get("resourceClaimName")
                return (str(name) if name else None), True
        raise ClaimNameError(
            f'pod "{meta.get("namespace", "")}/{meta.get("name", "")}": {NOT_CREATED}'
        )
    raise ClaimNameError(
        f'pod "{meta.get("namespace", "")}/{meta.get("name", "")}", '
        f'spec.resourceClaim "{pod_claim.get("name", "")}": {UNSUPPORTED}'
    )


def named_claims(pod: Object) -> Iterator[tuple[Object, str, bool]]:
    """(entry, claim name, must check owner) for every entry whose claim has a name."""
    for entry in pod_claims(pod):
        name, check_owner = claim_name(pod, entry)
        if name is not None:
            yield entry, name, check_owner


def is_for_pod(pod: Object, claim: Object) -> str | None:
    """None when ``pod`` controls ``claim``; else upstream's IsForPod message."""
    pod_meta, claim_meta = _meta(pod), _meta(claim)
    controller = next(
        (ref for ref in claim_meta.get("ownerReferences") or () if ref.get("controller")), None
    )
    same_namespace = claim_meta.get("namespace") == pod_meta.get("namespace")
    if same_namespace and controller is not None and controller.get("uid") == pod_meta.get("uid"):
        return None
    return (
        f"ResourceClaim {claim_meta.get('namespace', '')}/{claim_meta.get('name', '')} was not "
        f"created for pod {pod_meta.get('namespace', '')}/{pod_meta.get('name', '')} "
        "(pod is not owner)"
    )


def is_reserved_for(pod: Object, claim: Object) -> bool:
    uid = _meta(pod).get("uid")
    reserved = (claim.get("status") or {}).get("reservedFor") or ()
    return any(ref.get("uid") == uid for ref in reserved)


def allocation(claim: Object) -> Object | None:
    found: Object | None = (claim.get("status") or {}).get("allocation")
    return found


def is_pod_done(pod: Object, *, deleted: bool = False) -> bool:
    """Upstream's ``!podNeedsClaims``: gone, terminal, or deleted before it was scheduled."""
    if deleted:
        return True
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return True
    return bool(_meta(pod).get("deletionTimestamp")) and not (pod.get("spec") or {}).get("nodeName")


def drivers(claim: Object) -> list[str]:
    """The drivers of the claim's allocated devices, each once, in result order."""
    results = ((allocation(claim) or {}).get("devices") or {}).get("results") or ()
    return list(dict.fromkeys(str(r.get("driver") or "") for r in results))
