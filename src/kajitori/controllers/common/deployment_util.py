"""Pure Deployment arithmetic (upstream's pkg/controller/deployment/util), free of I/O.

* ``compute_hash``: the ``pod-template-hash`` of a template (FNV-32a, then
  upstream's "safe encode" of the decimal digits; see decision 0014 for why
  the hashed bytes are canonical JSON rather than Go's spew dump);
* ``resolve_fenceposts`` / ``max_surge`` / ``max_unavailable``: maxSurge
  rounds percentages up, maxUnavailable rounds down, and both zero means one
  may be unavailable;
* ``new_rs_new_replicas``: how far the new ReplicaSet may grow now;
* ``plan_cleanup_unhealthy`` and ``plan_scale_down_old``: how far old
  ReplicaSets may shrink without dropping below minimum availability;
* ``plan_proportional_scale``: spreading a change of ``spec.replicas`` over
  the active ReplicaSets in proportion to their size, mid-rollout;
* ``calculate_status`` and ``rollout_status`` (counters, the Available and
  Progressing conditions with upstream's reasons and messages, ReplicaSet
  failures surfaced as ReplicaFailure);
* ``new_replica_set`` and ``set_new_rs_annotations``: the ReplicaSet a
  template gets, its revision (and ``revision-history``) and replica
  annotations.

ReplicaSets are wire dicts; ``replicas(rs)`` is ``spec.replicas`` and
``status(rs, field)`` a status counter.
"""

# No `from __future__ import annotations` here: it would clash with this module's
# annotations() helper for the type checker (the future feature shares the name).

import copy
import datetime
import math
from collections.abc import Sequence
from typing import Any

import orjson

from kajitori.controllers.common import controller_ref
from kajitori.machinery import times

Object = dict[str, Any]

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
# Deployment annotations never copied onto its ReplicaSets (upstream's annotationsToSkip).
SKIPPED_ANNOTATIONS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        REVISION_HISTORY,
        DESIRED_REPLICAS,
        MAX_REPLICAS,
        "deprecated.deployment.rollback.to",
    }
)
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
FNV32_OFFSET = 0x811C9DC5
FNV32_PRIME = 0x01000193
MAX_INT32 = 2**31 - 1
API_VERSION = "apps/v1"

# ----- hashing and templates ------------------------------------------------------


def fnv32a(data: bytes, start: int = FNV32_OFFSET) -> int:
    value = start
    for byte in data:
        value = ((value ^ byte) * FNV32_PRIME) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """Upstream's rand.SafeEncodeString: each byte picks from an alphabet without vowels."""
    return "".join(SAFE_ALPHABET[ord(ch) % len(SAFE_ALPHABET)] for ch in text)


def compute_hash(template: Object, collision_count: int | None = None) -> str:
    """The pod-template-hash of ``template`` (and of ``collisionCount`` when set)."""
    value = fnv32a(orjson.dumps(template, option=orjson.OPT_SORT_KEYS))
    if collision_count is not None:
        value = fnv32a(int(collision_count).to_bytes(4, "little"), value)
    return safe_encode(str(value))


def _without_hash(template: Object) -> Object:
    clean = copy.deepcopy(template or {})
    meta = clean.get("metadata") or {}
    labels = dict(meta.get("labels") or {})
    labels.pop(HASH_LABEL, None)
    if labels:
        meta["labels"] = labels
    else:
        meta.pop("labels", None)
    meta.pop("creationTimestamp", None)
    if meta:
        clean["metadata"] = meta
    else:
        clean.pop("metadata", None)
    return clean


def equal_ignore_hash(a: Object, b: Object) -> bool:
    """Templates equal apart from the pod-template-hash label (upstream's EqualIgnoreHash)."""
    return _without_hash(a) == _without_hash(b)


# ----- small accessors ---------------------------------------------------------------


def replicas(obj: Object | None) -> int:
    if obj is None:
        return 0
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def status(obj: Object | None, field: str) -> int:
    return 0 if obj is None else int((obj.get("status") or {}).get(field) or 0)


def annotations(obj: Object) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def revision(rs: Object) -> int:
    try:
        return int(annotations(rs).get(REVISION, "0"))
    except ValueError:
        return 0


def created(obj: Object) -> str:
    return str((obj.get("metadata") or {}).get("creationTimestamp") or "")


def by_creation(rses: Sequence[Object]) -> list[Object]:
    """Oldest first, names breaking ties (upstream's ReplicaSetsByCreationTimestamp)."""
    return sorted(rses, key=lambda rs: (created(rs), rs["metadata"]["name"]))


def by_revision(rses: Sequence[Object]) -> list[Object]:
    return sorted(rses, key=lambda rs: (revision(rs), created(rs), rs["metadata"]["name"]))


def active(rses: Sequence[Object | None]) -> list[Object]:
    return [rs for rs in rses if rs is not None and replicas(rs) > 0]


def total_replicas(rses: Sequence[Object | None]) -> int:
    return sum(replicas(rs) for rs in rses if rs is not None)


def total_status(rses: Sequence[Object | None], field: str) -> int:
    return sum(status(rs, field) for rs in rses if rs is not None)


def find_new_rs(deployment: Object, rses: Sequence[Object]) -> Object | None:
    """The oldest ReplicaSet whose template is the Deployment's (ignoring the hash label)."""
    template = (deployment.get("spec") or {}).get("template") or {}
    for rs in by_creation(rses):
        if equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, template):
            return rs
    return None


# ----- rolling update arithmetic -----------------------------------------------------


def scaled_value(value: int | str | None, total: int, *, round_up: bool) -> int:
    """An IntOrString as a count of ``total`` (``GetScaledValueFromIntOrPercent``)."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    if not value.endswith("%"):
        raise ValueError(f"invalid value for IntOrString: invalid value {value!r}")
    percent = int(value[:-1])
    exact = percent * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def is_rolling(deployment: Object) -> bool:
    strategy = (deployment.get("spec") or {}).get("strategy") or {}
    return strategy.get("type", "RollingUpdate") == "RollingUpdate"


def resolve_fenceposts(
    max_surge: int | str | None, max_unavailable: int | str | None, desired: int
) -> tuple[int, int]:
    surge = scaled_value(max_surge, desired, round_up=True)
    unavailable = scaled_value(max_unavailable, desired, round_up=False)
    if surge == 0 and unavailable == 0:
        # Both zero would make progress impossible: allow one unavailable.
        unavailable = 1
    return surge, unavailable


def _fenceposts(deployment: Object) -> tuple[int, int]:
    rolling = ((deployment.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    return resolve_fenceposts(
        rolling.get("maxSurge", "25%"), rolling.get("maxUnavailable", "25%"), replicas(deployment)
    )


def max_surge(deployment: Object) -> int:
    return _fenceposts(deployment)[0] if is_rolling(deployment) else 0


def max_unavailable(deployment: Object) -> int:
    desired = replicas(deployment)
    if not is_rolling(deployment) or desired == 0:
        return 0
    return min(_fenceposts(deployment)[1], desired)


def new_rs_new_replicas(
    deployment: Object, all_rses: Sequence[Object | None], new_rs: Object | None
) -> int:
    """The size the new ReplicaSet may have now (upstream's NewRSNewReplicas)."""
    desired = replicas(deployment)
    if not is_rolling(deployment):
        return desired
    current_new = replicas(new_rs)
    max_total = desired + max_surge(deployment)
    current_total = total_replicas(all_rses)
    if current_total >= max_total:
        return current_new
    grow = min(max_total - current_total, desired - current_new)
    return current_new + grow


def plan_cleanup_unhealthy(old_rses: Sequence[Object], limit: int) -> dict[str, int]:
    """New sizes for old ReplicaSets shrunk by their unavailable pods, at most ``limit`` in all."""
    sizes: dict[str, int] = {}
    done = 0
    for rs in by_creation(old_rses):
        if done >= limit:
            break
        size, available = replicas(rs), status(rs, "availableReplicas")
        if size == 0 or size == available:
            continue
        shrink = min(limit - done, size - available)
        sizes[rs["metadata"]["name"]] = size - shrink
        done += shrink
    return sizes


def max_old_scale_down(
    deployment: Object, all_rses: Sequence[Object | None], new_rs: Object | None
) -> int:
    """How many old replicas may go now without breaking minimum availability."""
    min_available = replicas(deployment) - max_unavailable(deployment)
    new_unavailable = replicas(new_rs) - status(new_rs, "availableReplicas")
    return total_replicas(all_rses) - min_available - new_unavailable


def plan_scale_down_old(
    deployment: Object, all_rses: Sequence[Object | None], old_rses: Sequence[Object]
) -> dict[str, int]:
    """New sizes for old ReplicaSets, oldest first, keeping minimum availability."""
    min_available = replicas(deployment) - max_unavailable(deployment)
    available = total_status(all_rses, "availableReplicas")
    if available <= min_available:
        return {}
    budget = available - min_available
    sizes: dict[str, int] = {}
    done = 0
    for rs in by_creation(old_rses):
        if done >= budget:
            break
        size = replicas(rs)
        if size == 0:
            continue
        shrink = min(size, budget - done)
        sizes[rs["metadata"]["name"]] = size - shrink
        done += shrink
    return sizes


def _round_half_away(value: float) -> int:
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)


def _fraction(rs: Object, deployment: Object) -> int:
    if replicas(deployment) == 0:
        return -replicas(rs)
    allowed = replicas(deployment) + max_surge(deployment)
    try:
        annotated = int(annotations(rs)[MAX_REPLICAS])
    except (KeyError, ValueError):
        annotated = status(deployment, "replicas")
    if annotated == 0:
        return 0
    return _round_half_away(replicas(rs) * allowed / annotated) - replicas(rs)


def plan_proportional_scale(deployment: Object, rses: Sequence[Object]) -> dict[str, int]:
    """New sizes of the active ReplicaSets when ``spec.replicas`` changes mid-rollout."""
    desired = replicas(deployment)
    allowed = desired + max_surge(deployment) if desired > 0 else 0
    to_add = allowed - total_replicas(rses)
    if to_add > 0:  # larger first, newer first among equals
        ordered = sorted(by_creation(rses), key=lambda rs: created(rs), reverse=True)
        ordered.sort(key=replicas, reverse=True)
    else:  # larger first, older first among equals
        ordered = sorted(by_creation(rses), key=replicas, reverse=True)
    sizes: dict[str, int] = {}
    added = 0
    for rs in ordered:
        proportion = 0
        if to_add != 0 and to_add != added and replicas(rs) != 0:
            fraction = _fraction(rs, deployment)
            remaining = to_add - added
            proportion = min(fraction, remaining) if to_add > 0 else max(fraction, remaining)
        sizes[rs["metadata"]["name"]] = replicas(rs) + proportion
        added += proportion
    if ordered and to_add != 0 and added != to_add:
        first = ordered[0]["metadata"]["name"]
        sizes[first] = max(0, sizes[first] + to_add - added)
    return sizes


# ----- status and conditions -----------------------------------------------------------


def condition(obj: Object, kind: str) -> Object | None:
    for found in (obj.get("status") or {}).get("conditions") or ():
        if found.get("type") == kind:
            return found
    return None


def new_condition(
    kind: str, status_: str, reason: str, message: str, *, now: datetime.datetime
) -> Object:
    stamp = times.format_time(now)
    return {
        "type": kind,
        "status": status_,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def set_condition(status_: Object, new: Object) -> None:
    """Upstream's SetDeploymentCondition: same status and reason is no change; moves it last."""
    conditions = status_.get("conditions") or []
    current = next((c for c in conditions if c.get("type") == new["type"]), None)
    if (
        current is not None
        and current.get("status") == new["status"]
        and current.get("reason") == new["reason"]
    ):
        return
    if current is not None and current.get("status") == new["status"]:
        new = {**new, "lastTransitionTime": current.get("lastTransitionTime")}
    status_["conditions"] = [c for c in conditions if c.get("type") != new["type"]] + [new]


def remove_condition(status_: Object, kind: str) -> None:
    conditions = [c for c in status_.get("conditions") or [] if c.get("type") != kind]
    if conditions:
        status_["conditions"] = conditions
    else:
        status_.pop("conditions", None)


def calculate_status(
    deployment: Object,
    all_rses: Sequence[Object | None],
    new_rs: Object | None,
    *,
    now: datetime.datetime,
) -> Object:
    """The Deployment's status from its ReplicaSets, with the Available condition."""
    old = deployment.get("status") or {}
    available = total_status(all_rses, "availableReplicas")
    unavailable = max(0, total_replicas(all_rses) - available)
    result: Object = {
        "observedGeneration": (deployment.get("metadata") or {}).get("generation", 0),
        "replicas": total_status(all_rses, "replicas"),
        "updatedReplicas": status(new_rs, "replicas"),
        "readyReplicas": total_status(all_rses, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": unavailable,
    }
    if old.get("collisionCount") is not None:
        result["collisionCount"] = old["collisionCount"]
    if old.get("conditions"):
        result["conditions"] = [dict(c) for c in old["conditions"]]
    if available >= replicas(deployment) - max_unavailable(deployment):
        cond = new_condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            now=now,
        )
    else:
        cond = new_condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            now=now,
        )
    set_condition(result, cond)
    return result


def deployment_complete(deployment: Object, new_status: Object) -> bool:
    desired = replicas(deployment)
    return (
        int(new_status.get("updatedReplicas") or 0) == desired
        and int(new_status.get("replicas") or 0) == desired
        and int(new_status.get("availableReplicas") or 0) == desired
        and int(new_status.get("observedGeneration") or 0)
        >= (deployment.get("metadata") or {}).get("generation", 0)
    )


def deployment_progressing(deployment: Object, new_status: Object) -> bool:
    old = deployment.get("status") or {}

    def get(s: Object, field: str) -> int:
        return int(s.get(field) or 0)

    old_old = get(old, "replicas") - get(old, "updatedReplicas")
    new_old = get(new_status, "replicas") - get(new_status, "updatedReplicas")
    return (
        get(new_status, "updatedReplicas") > get(old, "updatedReplicas")
        or new_old < old_old
        or get(new_status, "readyReplicas") > get(old, "readyReplicas")
        or get(new_status, "availableReplicas") > get(old, "availableReplicas")
    )


def progress_deadline(deployment: Object) -> int | None:
    value = (deployment.get("spec") or {}).get("progressDeadlineSeconds")
    if value is None or int(value) == MAX_INT32:
        return None
    return int(value)


def deployment_timed_out(deployment: Object, *, now: datetime.datetime) -> bool:
    deadline = progress_deadline(deployment)
    progressing = condition(deployment, "Progressing")
    if deadline is None or progressing is None:
        return False
    if progressing.get("reason") == "NewReplicaSetAvailable":
        return False
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return True
    since = times.parse_time(progressing.get("lastUpdateTime"))
    return since is not None and since + datetime.timedelta(seconds=deadline) < now


def rollout_status(
    deployment: Object,
    all_rses: Sequence[Object | None],
    new_rs: Object | None,
    *,
    now: datetime.datetime,
) -> Object:
    """The status upstream's syncRolloutStatus writes: counters, Available, Progressing, failures."""
    status_ = calculate_status(deployment, all_rses, new_rs, now=now)
    if progress_deadline(deployment) is None:
        remove_condition(status_, "Progressing")
    current = condition(deployment, "Progressing")
    complete = (
        status_.get("replicas") == status_.get("updatedReplicas")
        and current is not None
        and current.get("reason") == "NewReplicaSetAvailable"
    )
    if progress_deadline(deployment) is not None and not complete:
        _set_progressing(deployment, status_, new_rs, current, now)
    failures = [
        c
        for rs in all_rses
        if rs is not None
        for c in (rs.get("status") or {}).get("conditions") or ()
        if c.get("type") == "ReplicaFailure"
    ]
    if failures:
        failure = failures[0]
        set_condition(
            status_,
            new_condition(
                "ReplicaFailure",
                failure.get("status", "True"),
                failure.get("reason", ""),
                failure.get("message", ""),
                now=now,
            ),
        )
    else:
        remove_condition(status_, "ReplicaFailure")
    return status_


def _set_progressing(
    deployment: Object,
    status_: Object,
    new_rs: Object | None,
    current: Object | None,
    now: datetime.datetime,
) -> None:
    subject = (
        f'ReplicaSet "{new_rs["metadata"]["name"]}"'
        if new_rs is not None
        else f'Deployment "{deployment["metadata"]["name"]}"'
    )
    if deployment_complete(deployment, status_):
        message = f"{subject} has successfully progressed."
        set_condition(
            status_,
            new_condition("Progressing", "True", "NewReplicaSetAvailable", message, now=now),
        )
    elif deployment_progressing(deployment, status_):
        message = f"{subject} is progressing."
        progressing = new_condition("Progressing", "True", "ReplicaSetUpdated", message, now=now)
        if current is not None and current.get("status") == "True":
            progressing["lastTransitionTime"] = current.get("lastTransitionTime")
        remove_condition(status_, "Progressing")
        set_condition(status_, progressing)
    elif deployment_timed_out(deployment, now=now):
        message = f"{subject} has timed out progressing."
        set_condition(
            status_,
            new_condition("Progressing", "False", "ProgressDeadlineExceeded", message, now=now),
        )


def is_saturated(deployment: Object, rs: Object | None) -> bool:
    """The new ReplicaSet has all replicas, annotated for this size, all available."""
    if rs is None:
        return False
    desired = annotations(rs).get(DESIRED_REPLICAS, "")
    return (
        replicas(rs) == replicas(deployment)
        and desired == str(replicas(deployment))
        and status(rs, "availableReplicas") == replicas(deployment)
    )


# ----- new ReplicaSets and their annotations -----------------------------------------

# Upstream's maxRevHistoryLengthInChars.
MAX_REVISION_HISTORY_CHARS = 2000
_INT_STATUS_FIELDS = (
    "observedGeneration",
    "replicas",
    "updatedReplicas",
    "readyReplicas",
    "availableReplicas",
    "unavailableReplicas",
)


def set_new_rs_annotations(
    deployment: Object, rs: Object, new_revision: str, *, exists: bool
) -> bool:
    """Upstream's SetNewReplicaSetAnnotations; True when ``rs``'s annotations changed."""
    meta = rs.setdefault("metadata", {})
    current = dict(meta.get("annotations") or {})
    before = dict(current)
    for key, value in annotations(deployment).items():
        if key not in SKIPPED_ANNOTATIONS:
            current[key] = value
    old_revision = current.get(REVISION, "")
    try:
        old_number = int(old_revision) if old_revision else 0
    except ValueError:
        return False
    if old_number < int(new_revision):
        current[REVISION] = new_revision
        if old_revision:
            history = [h for h in current.get(REVISION_HISTORY, "").split(",") if h]
            history.append(old_revision)
            while len(",".join(history)) > MAX_REVISION_HISTORY_CHARS:
                history.pop(0)
            current[REVISION_HISTORY] = ",".join(history)
    if not exists:
        current.update(replicas_annotations(deployment))
    meta["annotations"] = current
    return current != before


def replicas_annotations(deployment: Object) -> dict[str, str]:
    desired = replicas(deployment)
    return {
        DESIRED_REPLICAS: str(desired),
        MAX_REPLICAS: str(desired + max_surge(deployment)),
    }


def new_replica_set(deployment: Object, *, replicas: int, revision: str) -> Object:
    """The ReplicaSet for the Deployment's current template (not yet created)."""
    spec = deployment.get("spec") or {}
    template = copy.deepcopy(spec.get("template") or {})
    hash_ = compute_hash(template, (deployment.get("status") or {}).get("collisionCount"))
    template.setdefault("metadata", {})
    template["metadata"]["labels"] = {
        **(template["metadata"].get("labels") or {}),
        HASH_LABEL: hash_,
    }
    selector = copy.deepcopy(spec.get("selector") or {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: hash_}
    meta = deployment["metadata"]
    rs: Object = {
        "apiVersion": API_VERSION,
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{meta['name']}-{hash_}",
            "namespace": meta.get("namespace", ""),
            "labels": dict(template["metadata"]["labels"]),
            "ownerReferences": [
                controller_ref.owner_reference(
                    deployment, api_version=API_VERSION, kind="Deployment"
                )
            ],
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": int(spec.get("minReadySeconds") or 0),
            "selector": selector,
            "template": template,
        },
    }
    set_new_rs_annotations(deployment, rs, revision, exists=False)
    return rs


def clean_status(status: Object) -> Object:
    """The status as upstream serializes it: zero counters omitted."""
    return {k: v for k, v in status.items() if not (k in _INT_STATUS_FIELDS and not v)}
