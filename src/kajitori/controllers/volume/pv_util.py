"""Pure helpers shared by the PV binder, the local-path provisioner and the scheduler.

Mirrors upstream's pkg/controller/volume/persistentvolume/util and
component-helpers/storage/volume: the annotation names, which class a claim
or volume belongs to, whether a volume is bound to a claim, and
``find_matching_volume`` — the one matching rule used both by the binder
(no node: immediate binding) and by the scheduler's VolumeBinding plugin
(a node: WaitForFirstConsumer claims). No I/O here.
"""

# No `from __future__ import annotations` here: it would clash with this module's
# annotations() helper for the type checker (the future feature shares the name).

from collections.abc import Iterable, Mapping
from typing import Any

from kajitori.machinery import labels, quantity
from kajitori.scheduler.plugins import node_affinity

Object = dict[str, Any]

ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_DYNAMICALLY_PROVISIONED = "pv.kubernetes.io/provisioned-by"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
ANN_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
ANN_BETA_DEFAULT_CLASS = "storageclass.beta.kubernetes.io/is-default-class"

PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"

WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
HOSTNAME_LABEL = "kubernetes.io/hostname"


def meta(obj: Object) -> Object:
    found: Object = obj.get("metadata") or {}
    return found


def annotations(obj: Object) -> Mapping[str, str]:
    found: Mapping[str, str] = meta(obj).get("annotations") or {}
    return found


def spec(obj: Object) -> Object:
    found: Object = obj.get("spec") or {}
    return found


def phase(obj: Object) -> str:
    return str((obj.get("status") or {}).get("phase") or "")


def claim_key(claim: Object) -> str:
    return f"{meta(claim).get('namespace', '')}/{meta(claim).get('name', '')}"


def claim_ref_key(volume: Object) -> str:
    """``namespace/name`` of the volume's claimRef, or "" when it has none."""
    ref = spec(volume).get("claimRef")
    if not ref:
        return ""
    return f"{ref.get('namespace', '')}/{ref.get('name', '')}"


def claim_class(claim: Object) -> str:
    """Upstream's GetPersistentVolumeClaimClass: the beta annotation wins over the field."""
    ann = annotations(claim)
    if ANN_BETA_STORAGE_CLASS in ann:
        return ann[ANN_BETA_STORAGE_CLASS]
    return str(spec(claim).get("storageClassName") or "")


def volume_class(volume: Object) -> str:
    ann = annotations(volume)
    if ANN_BETA_STORAGE_CLASS in ann:
        return ann[ANN_BETA_STORAGE_CLASS]
    return str(spec(volume).get("storageClassName") or "")


def is_default_class(storage_class: Object) -> bool:
    ann = annotations(storage_class)
    return "true" in (ann.get(ANN_DEFAULT_CLASS), ann.get(ANN_BETA_DEFAULT_CLASS))


def is_delay_binding_class(storage_class: Object | None) -> bool:
    return bool(storage_class) and (
        (storage_class or {}).get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER
    )


def is_volume_bound_to_claim(volume: Object, claim: Object) -> bool:
    """The volume's claimRef names the claim (and its uid, once the ref has one)."""
    ref = spec(volume).get("claimRef")
    if not ref:
        return False
    if (ref.get("name"), ref.get("namespace")) != (
        meta(claim).get("name"),
        meta(claim).get("namespace"),
    ):
        return False
    return not ref.get("uid") or ref.get("uid") == meta(claim).get("uid")


def is_claim_bound(claim: Object) -> bool:
    return bool(spec(claim).get("volumeName")) and phase(claim) == "Bound"


def storage_amount(value: Any) -> int:
    try:
        return quantity.parse_quantity(value).value()
    except (quantity.QuantityError, TypeError, ValueError):
        return 0


def requested_storage(claim: Object) -> int:
    requests = (spec(claim).get("resources") or {}).get("requests") or {}
    return storage_amount(requests.get("storage", 0))


def volume_capacity(volume: Object) -> int:
    return storage_amount((spec(volume).get("capacity") or {}).get("storage", 0))


def access_modes_contained(volume_modes: Iterable[str], claim_modes: Iterable[str]) -> bool:
    """Every mode the claim asks for is one the volume offers."""
    offered = set(volume_modes)
    return all(mode in offered for mode in claim_modes)


def volume_mode(obj: Object) -> str:
    return str(spec(obj).get("volumeMode") or "Filesystem")


def node_affinity_matches(volume: Object, node: Object) -> bool:
    """Whether ``node`` satisfies the volume's required node affinity (none: any node)."""
    required = (spec(volume).get("nodeAffinity") or {}).get("required")
    if not required:
        return True
    node_labels = meta(node).get("labels") or {}
    fields = {"metadata.name": meta(node).get("name", "")}
    for term in required.get("nodeSelectorTerms") or ():
        expressions = term.get("matchExpressions") or []
        field_reqs = term.get("matchFields") or []
        if not expressions and not field_reqs:
            continue
        if all(node_affinity.requirement_matches(r, node_labels) for r in expressions) and all(
            node_affinity.requirement_matches(r, fields) for r in field_reqs
        ):
            return True
    return False


def _selector_matches(claim: Object, volume: Object) -> bool:
    selector = spec(claim).get("selector")
    if selector is None:
        return True
    try:
        return labels.selector_from_label_selector(selector).matches(meta(volume).get("labels"))
    except labels.SelectorError:
        return False


def ephemeral_claim_name(pod: Object, volume: Object) -> str:
    """The claim the ephemeral volume controller makes for a pod's ephemeral volume."""
    return f"{meta(pod).get('name', '')}-{volume.get('name', '')}"


def pod_claim_names(pod: Object) -> list[str]:
    """The claims ``pod`` uses: its ``persistentVolumeClaim`` and generic ephemeral volumes."""
    volumes = spec(pod).get("volumes")
    if not volumes:
        return []
    names = []
    for volume in volumes:
        source = volume.get("persistentVolumeClaim")
        if source is not None:
            names.append(str(source.get("claimName") or ""))
        elif volume.get("ephemeral") is not None:
            names.append(ephemeral_claim_name(pod, volume))
    return names


def find_matching_volume(
    claim: Object,
    volumes: Iterable[Object],
    *,
    node: Object | None = None,
    excluded: frozenset[str] | set[str] = frozenset(),
    delay_binding: bool = False,
) -> Object | None:
    """Upstream's FindMatchingVolume: the volume pre-bound to ``claim``, else the smallest fit.

    A volume whose claimRef names this claim wins at once (unless ``node``
    is given and its node affinity rules the node out: then nothing
    matches). Otherwise candidates are free (no claimRef), not being
    deleted, not ``Released``/``Failed``, of the claim's class, volume mode
    and access modes, large enough, matching the claim's selector and, with
    ``node``, the node. With ``delay_binding`` and no node the binder leaves
    free volumes to the scheduler, as upstream does. ``excluded`` holds
    volume names already chosen for other claims of the same pod.
    """
    wanted = requested_storage(claim)
    wanted_class = claim_class(claim)
    wanted_modes = spec(claim).get("accessModes") or []
    best: Object | None = None
    for volume in volumes:
        name = meta(volume).get("name", "")
        if name in excluded or volume_mode(volume) != volume_mode(claim):
            continue
        affinity_ok = node is None or node_affinity_matches(volume, node)
        if is_volume_bound_to_claim(volume, claim):
            return volume if affinity_ok else None
        if spec(volume).get("claimRef") or (node is None and delay_binding):
            continue
        if meta(volume).get("deletionTimestamp") or phase(volume) in ("Released", "Failed"):
            continue
        if volume_class(volume) != wanted_class or not affinity_ok:
            continue
        if not access_modes_contained(spec(volume).get("accessModes") or [], wanted_modes):
            continue
        capacity = volume_capacity(volume)
        if capacity < wanted or not _selector_matches(claim, volume):
            continue
        if best is None or capacity < volume_capacity(best):
            best = volume
    return best
