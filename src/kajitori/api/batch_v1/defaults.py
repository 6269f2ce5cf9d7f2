"""Defaulting for batch/v1 objects (upstream: pkg/apis/batch/v1/defaults.go).

Owns the Job and CronJob defaults and the pod-template defaults nested in
them. The Job selector is *not* defaulted here: upstream generates it in the
registry strategy on create, because it needs the Job's UID.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.core_v1 import defaults as core_defaults

Object = dict[str, Any]

DEFAULT_BACKOFF_LIMIT = 6
# With backoffLimitPerIndex the global limit is effectively unbounded.
MAX_INT32 = 2**31 - 1


def _sub(obj: Object, key: str) -> Object:
    value = obj.get(key)
    if not isinstance(value, dict):
        value = obj[key] = {}
    return value


def _set_default(obj: Object, key: str, value: Any) -> None:
    if obj.get(key) is None:
        obj[key] = value


def _default_pod_failure_policy(spec: Object) -> None:
    policy = spec.get("podFailurePolicy")
    if not isinstance(policy, dict):
        return
    for rule in policy.get("rules") or []:
        for pattern in (rule or {}).get("onPodConditions") or []:
            if isinstance(pattern, dict) and not pattern.get("status"):
                pattern["status"] = "True"


def set_defaults_job_spec(spec: Object) -> None:
    """SetDefaults_Job's spec part (also used for jobTemplate-less callers)."""
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    _set_default(spec, "parallelism", 1)
    if spec.get("backoffLimit") is None:
        per_index = spec.get("backoffLimitPerIndex") is not None
        spec["backoffLimit"] = MAX_INT32 if per_index else DEFAULT_BACKOFF_LIMIT
    _set_default(spec, "completionMode", "NonIndexed")
    _set_default(spec, "suspend", False)
    _default_pod_failure_policy(spec)
    if spec.get("podReplacementPolicy") is None:
        has_policy = spec.get("podFailurePolicy") is not None
        spec["podReplacementPolicy"] = "Failed" if has_policy else "TerminatingOrFailed"
    _set_default(spec, "manualSelector", False)


def set_defaults_job(obj: Object) -> None:
    """Completions/parallelism 1, backoffLimit 6, NonIndexed, not suspended, labels from template."""
    spec = _sub(obj, "spec")
    set_defaults_job_spec(spec)
    template = _sub(spec, "template")
    labels = (template.get("metadata") or {}).get("labels")
    meta = _sub(obj, "metadata")
    if isinstance(labels, dict) and not meta.get("labels"):
        meta["labels"] = dict(labels)
    core_defaults.set_defaults_pod_template_spec(template)


def set_defaults_cron_job(obj: Object) -> None:
    """Allow, not suspended, history limits 3/1; the job template's pods are defaulted.

    The job template's own spec is not Job-defaulted (upstream's generated
    defaulter only descends into the pod template).
    """
    spec = _sub(obj, "spec")
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    _set_default(spec, "suspend", False)
    _set_default(spec, "successfulJobsHistoryLimit", 3)
    _set_default(spec, "failedJobsHistoryLimit", 1)
    job_spec = _sub(_sub(spec, "jobTemplate"), "spec")
    _default_pod_failure_policy(job_spec)
    core_defaults.set_defaults_pod_template_spec(_sub(job_spec, "template"))
