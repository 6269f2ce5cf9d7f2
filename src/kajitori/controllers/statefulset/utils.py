"""Pure StatefulSet helpers: identities, storage, revisions, retention (upstream's stateful_set_utils.go).

Everything here is free of I/O and works on wire dicts:

* identity: a member pod is named ``<set>-<ordinal>``; ordinals run from
  ``spec.ordinals.start`` for ``spec.replicas`` pods; a pod carries the
  labels ``statefulset.kubernetes.io/pod-name`` and
  ``apps.kubernetes.io/pod-index`` and, when created, ``hostname`` = its name
  and ``subdomain`` = ``spec.serviceName``;
* storage: each ``volumeClaimTemplates`` entry ``t`` gives the pod of
  ordinal ``n`` the claim ``<t>-<set>-<n>`` (labelled with the template's
  labels plus the set's ``selector.matchLabels``), mounted as volume ``t``;
* revisions: a revision stores the pod template as a strategic-merge patch
  that replaces ``spec.template``; a pod records the revision it was made
  from in ``controller-revision-hash``;
* retention (``persistentVolumeClaimRetentionPolicy``): which plain (not
  controller) owner references a claim must carry so that the garbage
  collector deletes it with the set (``whenDeleted: Delete``) or with its
  scaled-down pod (``whenScaled: Delete``), as upstream 1.32+.
"""

from __future__ import annotations

import copy
import datetime
import re
from typing import Any

from kajitori.controllers.common import controller_ref, history, pod_control, pod_util

Object = dict[str, Any]

API_VERSION = "apps/v1"
KIND = "StatefulSet"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"
RETAIN = "Retain"
DELETE = "Delete"
_POD_NAME = re.compile(r"^(.*)-([0-9]+)$")
_MAX_INT32 = 2**31 - 1

# ----- identity ------------------------------------------------------------------------


def parent_and_ordinal(pod: Object) -> tuple[str, int]:
    """The set name and ordinal a pod's name encodes; ``("", -1)`` when it encodes none."""
    match = _POD_NAME.match((pod.get("metadata") or {}).get("name", ""))
    if match is None:
        return "", -1
    ordinal = int(match.group(2))
    return match.group(1), ordinal if ordinal <= _MAX_INT32 else -1


def ordinal_of(pod: Object) -> int:
    return parent_and_ordinal(pod)[1]


def replicas(sts: Object) -> int:
    value = (sts.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def start_ordinal(sts: Object) -> int:
    return int(((sts.get("spec") or {}).get("ordinals") or {}).get("start") or 0)


def end_ordinal(sts: Object) -> int:
    """The last ordinal in range (inclusive; ``start - 1`` when scaled to zero)."""
    return start_ordinal(sts) + replicas(sts) - 1


def in_ordinal_range(pod: Object, sts: Object) -> bool:
    return start_ordinal(sts) <= ordinal_of(pod) <= end_ordinal(sts)


def pod_name(sts: Object, ordinal: int) -> str:
    return f"{sts['metadata']['name']}-{ordinal}"


def claim_name(sts: Object, template_name: str, ordinal: int) -> str:
    return f"{template_name}-{sts['metadata']['name']}-{ordinal}"


def is_member_of(sts: Object, pod: Object) -> bool:
    return parent_and_ordinal(pod)[0] == sts["metadata"]["name"]


def identity_matches(sts: Object, pod: Object) -> bool:
    parent, ordinal = parent_and_ordinal(pod)
    meta = pod.get("metadata") or {}
    return (
        ordinal >= 0
        and parent == sts["metadata"]["name"]
        and meta.get("namespace", "") == sts["metadata"].get("namespace", "")
        and (meta.get("labels") or {}).get(POD_NAME_LABEL) == meta.get("name")
    )


def update_identity(sts: Object, pod: Object) -> None:
    """Name, namespace and the identity labels a member pod of ``ordinal`` must carry."""
    ordinal = ordinal_of(pod)
    meta = pod.setdefault("metadata", {})
    meta["name"] = pod_name(sts, ordinal)
    meta["namespace"] = sts["metadata"].get("namespace", "")
    pod_labels = meta.setdefault("labels", {})
    pod_labels[POD_NAME_LABEL] = meta["name"]
    pod_labels[POD_INDEX_LABEL] = str(ordinal)


# ----- storage -------------------------------------------------------------------------


def claim_templates(sts: Object) -> list[Object]:
    return [t for t in (sts.get("spec") or {}).get("volumeClaimTemplates") or () if t]


def claims_for(sts: Object, ordinal: int) -> list[tuple[str, Object]]:
    """(template name, claim) for each claim template, in template order."""
    spec = sts.get("spec") or {}
    match_labels = (spec.get("selector") or {}).get("matchLabels") or {}
    found = []
    for template in claim_templates(sts):
        template_meta = template.get("metadata") or {}
        name = template_meta.get("name", "")
        meta = copy.deepcopy(template_meta)
        meta["name"] = claim_name(sts, name, ordinal)
        meta["namespace"] = sts["metadata"].get("namespace", "")
        meta["labels"] = {**(meta.get("labels") or {}), **match_labels}
        claim = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": meta,
            "spec": copy.deepcopy(template.get("spec") or {}),
        }
        found.append((name, claim))
    return found


def storage_matches(sts: Object, pod: Object) -> bool:
    ordinal = ordinal_of(pod)
    if ordinal < 0:
        return False
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or ()}
    for name, claim in claims_for(sts, ordinal):
        source = (volumes.get(name) or {}).get("persistentVolumeClaim") or {}
        if source.get("claimName") != claim["metadata"]["name"]:
            return False
    return True


def update_storage(sts: Object, pod: Object) -> None:
    """Point the claim-template volumes at this pod's claims, keeping its other volumes."""
    claims = claims_for(sts, ordinal_of(pod))
    names = {name for name, _ in claims}
    spec = pod.setdefault("spec", {})
    volumes = [
        {"name": name, "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}}
        for name, claim in claims
    ]
    volumes.extend(v for v in spec.get("volumes") or () if v.get("name") not in names)
    spec["volumes"] = volumes


# ----- pods and revisions --------------------------------------------------------------


def pod_revision(pod: Object) -> str:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(REVISION_LABEL, "")


def new_pod(sts: Object, ordinal: int, revision_name: str) -> Object:
    """The pod of ``ordinal`` from ``sts``'s template, labelled with ``revision_name``."""
    ref = controller_ref.owner_reference(sts, api_version=API_VERSION, kind=KIND)
    template = (sts.get("spec") or {}).get("template") or {}
    pod = pod_control.pod_from_template(template, owner=sts, owner_ref=ref)
    meta = pod["metadata"]
    meta.pop("generateName", None)
    meta["name"] = pod_name(sts, ordinal)
    update_identity(sts, pod)
    # hostname and subdomain are immutable: set only when the pod is created.
    pod["spec"]["hostname"] = meta["name"]
    if (sts.get("spec") or {}).get("serviceName"):
        pod["spec"]["subdomain"] = sts["spec"]["serviceName"]
    update_storage(sts, pod)
    meta["labels"][REVISION_LABEL] = revision_name
    return pod


def new_versioned_pod(
    current_set: Object, update_set: Object, current: str, update: str, ordinal: int
) -> Object:
    """Ordinals below the partition keep the current revision, the rest get the update.

    Upstream's condition reads ``(RollingUpdate && no rollingUpdate && ord < start +
    currentReplicas) || (rollingUpdate && ord < start + partition)``: Go's
    precedence makes the partition apply whatever the strategy type.
    """
    spec = current_set.get("spec") or {}
    strategy = spec.get("updateStrategy") or {}
    rolling = strategy.get("rollingUpdate")
    start = start_ordinal(current_set)
    current_replicas = int((current_set.get("status") or {}).get("currentReplicas") or 0)
    keep_current = (
        strategy.get("type", "RollingUpdate") == "RollingUpdate"
        and rolling is None
        and ordinal < start + current_replicas
    ) or (rolling is not None and ordinal < start + int(rolling.get("partition") or 0))
    if keep_current:
        return new_pod(current_set, ordinal, current)
    return new_pod(update_set, ordinal, update)


def revision_data(sts: Object) -> Object:
    """What a revision stores: a patch replacing ``spec.template`` (upstream's getPatch)."""
    template = copy.deepcopy((sts.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def new_revision(sts: Object, number: int, collision_count: int) -> Object:
    template = (sts.get("spec") or {}).get("template") or {}
    revision = history.new_revision(
        sts,
        kind=KIND,
        template_labels=((template.get("metadata") or {}).get("labels")),
        data=revision_data(sts),
        revision=number,
        collision_count=collision_count,
    )
    annotations = (sts.get("metadata") or {}).get("annotations") or {}
    if annotations:
        revision["metadata"]["annotations"] = dict(annotations)
    return revision


def apply_revision(sts: Object, revision: Object) -> Object:
    """``sts`` with the template ``revision`` recorded (the patch replaces it whole)."""
    clone = copy.deepcopy(sts)
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template"))
    if isinstance(template, dict):
        template.pop("$patch", None)
        clone.setdefault("spec", {})["template"] = template
    return clone


# ----- pod states ------------------------------------------------------------------------


def phase(pod: Object) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_created(pod: Object) -> bool:
    """Stored by the API server (upstream tests ``phase != ""``; a new pod has no uid)."""
    return bool((pod.get("metadata") or {}).get("uid"))


def is_terminating(pod: Object) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def is_running_and_ready(pod: Object) -> bool:
    return phase(pod) == "Running" and pod_util.is_ready(pod)


def is_running_and_available(pod: Object, min_ready: int, now: datetime.datetime) -> bool:
    return phase(pod) == "Running" and pod_util.is_available(pod, min_ready, now)


def is_healthy(pod: Object) -> bool:
    return is_running_and_ready(pod) and not is_terminating(pod)


def is_unavailable(pod: Object, min_ready: int, now: datetime.datetime) -> bool:
    return not is_healthy(pod) or not is_running_and_available(pod, min_ready, now)


# ----- PVC retention ---------------------------------------------------------------------


def retention_policy(sts: Object) -> tuple[str, str]:
    """(whenDeleted, whenScaled); anything but ``Delete`` counts as ``Retain``."""
    policy = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    deleted = DELETE if policy.get("whenDeleted") == DELETE else RETAIN
    scaled = DELETE if policy.get("whenScaled") == DELETE else RETAIN
    return deleted, scaled


def _has_owner(claim: Object, owner: Object) -> bool:
    uid = (owner.get("metadata") or {}).get("uid")
    refs = (claim.get("metadata") or {}).get("ownerReferences") or ()
    return bool(uid) and any(ref.get("uid") == uid for ref in refs)


def has_stale_owner(claim: Object, owner: Object) -> bool:
    """A reference by ``owner``'s name but another uid (a previous incarnation's)."""
    meta = owner.get("metadata") or {}
    return any(
        ref.get("name") == meta.get("name") and ref.get("uid") != meta.get("uid")
        for ref in (claim.get("metadata") or {}).get("ownerReferences") or ()
    )


def _wanted_owners(sts: Object, pod: Object) -> tuple[bool, bool]:
    """(set should own the claim, pod should own it) under the retention policy."""
    deleted, scaled = retention_policy(sts)
    scaled_down = not in_ordinal_range(pod, sts)
    by_pod = scaled == DELETE and scaled_down
    by_set = deleted == DELETE and not (scaled == DELETE and scaled_down)
    return by_set, by_pod


def claim_owners_match(sts: Object, pod: Object, claim: Object) -> bool:
    """The claim's references to the set and pod are what the policy wants."""
    by_set, by_pod = _wanted_owners(sts, pod)
    if _has_owner(claim, sts) != by_set:
        return False
    # A pod not created yet has no uid: it cannot own anything yet.
    return not is_created(pod) or _has_owner(claim, pod) == by_pod


def update_claim_owners(sts: Object, pod: Object, claim: Object) -> bool:
    """Add or remove the set's and pod's plain owner references; True when changed."""
    by_set, by_pod = _wanted_owners(sts, pod)
    changed = _set_owner(claim, sts, API_VERSION, KIND, by_set)
    if is_created(pod):
        changed = _set_owner(claim, pod, "v1", "Pod", by_pod) or changed
    return changed


def _set_owner(claim: Object, owner: Object, api_version: str, kind: str, wanted: bool) -> bool:
    meta = claim.setdefault("metadata", {})
    refs = list(meta.get("ownerReferences") or ())
    present = _has_owner(claim, owner)
    if wanted == present:
        return False
    uid = owner["metadata"]["uid"]
    if wanted:
        refs.append(
            {"apiVersion": api_version, "kind": kind, "name": owner["metadata"]["name"], "uid": uid}
        )
    else:
        refs = [ref for ref in refs if ref.get("uid") != uid]
    meta["ownerReferences"] = refs
    return True


# ----- rolling update numbers --------------------------------------------------------------


def max_unavailable(sts: Object) -> int:
    """``rollingUpdate.maxUnavailable`` as a count (percentages round down), at least 1."""
    rolling = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    value = rolling.get("maxUnavailable", 1)
    if value is None:
        value = 1
    if isinstance(value, str) and value.endswith("%"):
        count = int(value[:-1]) * replicas(sts) // 100
    else:
        count = int(value)
    return max(count, 1)


def partition(sts: Object) -> int:
    rolling = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    return int(rolling.get("partition") or 0)
