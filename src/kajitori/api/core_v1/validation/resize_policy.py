"""Validation of containers' ``resizePolicy`` (upstream validateResizePolicy).

Owns the rule every PodSpec (a pod's or a template's) obeys for in-place
resize: each policy names ``cpu`` or ``memory`` once, with ``NotRequired``
or ``RestartContainer``, and a pod whose ``restartPolicy`` is ``Never`` may
only say ``NotRequired`` (a restart would end it). ``pods.validate_pod_spec``
runs it over the regular, init and ephemeral containers, after their other
checks, since it depends on the pod's restart policy and not on the
container alone (so the per-container memo there cannot hold it).
Paths and messages follow pkg/apis/core/validation/validation.go.
"""

from __future__ import annotations

from typing import Any

from kajitori.machinery import field

Object = dict[str, Any]

SUPPORTED_RESOURCES = ("cpu", "memory")
SUPPORTED_POLICIES = ("NotRequired", "RestartContainer")
NEVER_MESSAGE = "must be 'NotRequired' when `restartPolicy` is 'Never'"


def validate_resize_policy(
    policies: Any, path: field.Path, pod_restart_policy: str
) -> field.ErrorList:
    """validateResizePolicy for one container's ``resizePolicy`` at ``path``."""
    errs = field.ErrorList()
    seen: set[Any] = set()
    for i, policy in enumerate(policies if isinstance(policies, list) else ()):
        policy = policy if isinstance(policy, dict) else {}
        resource, restart = policy.get("resourceName") or "", policy.get("restartPolicy") or ""
        if resource in seen:
            errs.append(field.duplicate(path.index(i), resource))
        seen.add(resource)
        if not resource:
            errs.append(field.required(path))
        elif resource not in SUPPORTED_RESOURCES:
            errs.append(field.not_supported(path, resource, SUPPORTED_RESOURCES))
        if not restart:
            errs.append(field.required(path))
        elif restart not in SUPPORTED_POLICIES:
            errs.append(field.not_supported(path, restart, SUPPORTED_POLICIES))
        if pod_restart_policy == "Never" and restart != "NotRequired":
            errs.append(field.invalid(path, restart, NEVER_MESSAGE))
    return errs


def validate_pod_spec_resize_policies(spec: Object, path: field.Path) -> field.ErrorList:
    """Every container's ``resizePolicy`` in ``spec`` (at ``path``, the spec's own)."""
    errs = field.ErrorList()
    restart = str(spec.get("restartPolicy") or "")
    for key in ("containers", "initContainers", "ephemeralContainers"):
        containers = spec.get(key)
        for i, container in enumerate(containers if isinstance(containers, list) else ()):
            if isinstance(container, dict) and container.get("resizePolicy"):
                item_path = path.child(key).index(i).child("resizePolicy")
                errs.extend(validate_resize_policy(container["resizePolicy"], item_path, restart))
    return errs
