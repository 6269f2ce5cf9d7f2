"""PodDisruptionBudget status helpers shared by the eviction API and the disruption controller.

Upstream keeps them in pkg/apis/policy/helper (``UpdateDisruptionAllowedCondition``,
``ConditionsAreUpToDate``): the ``DisruptionAllowed`` condition is True with
reason ``SufficientPods`` while ``status.disruptionsAllowed`` is above zero,
else False with ``InsufficientPods``; its ``lastTransitionTime`` moves only
when its status changes (``meta.SetStatusCondition``).
"""

from __future__ import annotations

from typing import Any

from kajitori.machinery import times

Object = dict[str, Any]

DISRUPTION_ALLOWED = "DisruptionAllowed"
SUFFICIENT_PODS = "SufficientPods"
INSUFFICIENT_PODS = "InsufficientPods"
SYNC_FAILED = "SyncFailed"


def set_condition(status: Object, condition: Object) -> None:
    """``meta.SetStatusCondition``: replace by type, keeping the transition time if unchanged."""
    conditions = [dict(c) for c in status.get("conditions") or ()]
    for existing in conditions:
        if existing.get("type") == condition["type"]:
            if existing.get("status") != condition["status"] or not existing.get(
                "lastTransitionTime"
            ):
                existing["lastTransitionTime"] = times.now_rfc3339()
            existing.update(condition)
            break
    else:
        conditions.append({**condition, "lastTransitionTime": times.now_rfc3339()})
    status["conditions"] = conditions


def update_disruption_allowed_condition(status: Object) -> None:
    """Set ``DisruptionAllowed`` from ``disruptionsAllowed``, at ``observedGeneration``."""
    allowed = int(status.get("disruptionsAllowed") or 0) > 0
    set_condition(
        status,
        {
            "type": DISRUPTION_ALLOWED,
            "status": "True" if allowed else "False",
            "reason": SUFFICIENT_PODS if allowed else INSUFFICIENT_PODS,
            "message": "",
            "observedGeneration": int(status.get("observedGeneration") or 0),
        },
    )


def conditions_are_up_to_date(status: Object) -> bool:
    """Whether ``DisruptionAllowed`` already says what ``disruptionsAllowed`` implies."""
    generation = int(status.get("observedGeneration") or 0)
    allowed = int(status.get("disruptionsAllowed") or 0) > 0
    for condition in status.get("conditions") or ():
        if condition.get("type") != DISRUPTION_ALLOWED:
            continue
        if int(condition.get("observedGeneration") or 0) != generation:
            return False
        expected = ("True", SUFFICIENT_PODS) if allowed else ("False", INSUFFICIENT_PODS)
        return (condition.get("status"), condition.get("reason")) == expected
    return False
