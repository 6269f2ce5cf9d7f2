"""Validation of batch/v1 Jobs (upstream: ValidateJob in pkg/apis/batch/validation).

Covers the generated selector (``batch.kubernetes.io/controller-uid``), the
template (restartPolicy OnFailure or Never), counts, completion modes, the
pod replacement policy and update immutability. Pod failure and success
policies are checked only for their enums and sizes (upstream checks more).
"""

from __future__ import annotations

from typing import Any

from kajitori.api.apps_v1.validation import common
from kajitori.api.core_v1.validation import pods
from kajitori.machinery import field, names

Object = dict[str, Any]

CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"

COMPLETION_MODES = ("NonIndexed", "Indexed")
POD_REPLACEMENT_POLICIES = ("TerminatingOrFailed", "Failed")
POD_FAILURE_POLICY_ACTIONS = ("Count", "FailIndex", "FailJob", "Ignore")
MAX_PARALLELISM_FOR_INDEXED_JOB = 100_000
MAX_FAILED_INDEXES_FOR_INDEXED_JOB = 100_000
MAX_POD_FAILURE_POLICY_RULES = 20
MAX_MANAGED_BY_LENGTH = 63


def _validate_has_label(meta: Object, path: field.Path, key: str, value: str) -> field.ErrorList:
    """``ValidateHasLabel``: ``metadata.labels[key]`` must exist and equal ``value``."""
    errs = field.ErrorList()
    labels = meta.get("labels") or {}
    if key not in labels:
        errs.append(field.required(path.child("labels").key(key), f"must be '{value}'"))
    elif labels[key] != value:
        errs.append(field.invalid(path.child("labels").key(key), labels[key], f"must be '{value}'"))
    return errs


def validate_generated_selector(obj: Object) -> field.ErrorList:
    """Without manualSelector the selector and template labels must be the generated ones."""
    errs = field.ErrorList()
    spec = common.dict_at(obj, "spec")
    if spec.get("manualSelector") is True or spec.get("selector") is None:
        return errs
    meta = common.dict_at(obj, "metadata")
    uid = str(meta.get("uid", ""))
    name = str(meta.get("name", ""))
    if not uid:
        errs.append(field.required(field.Path("metadata", "uid")))
    template_meta = common.dict_at(spec, "template", "metadata")
    template_path = field.Path("spec", "template", "metadata")
    expected = {
        LEGACY_CONTROLLER_UID_LABEL: uid,
        LEGACY_JOB_NAME_LABEL: name,
        CONTROLLER_UID_LABEL: uid,
        JOB_NAME_LABEL: name,
    }
    for key, value in expected.items():
        errs.extend(_validate_has_label(template_meta, template_path, key, value))
    selector = spec.get("selector")
    if common.selector_is_valid(selector) and not common.selector_matches(selector, expected):
        errs.append(
            field.invalid(field.Path("spec", "selector"), selector, "`selector` not auto-generated")
        )
    return errs


def _validate_counts(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    for name in (
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ):
        errs.extend(common.validate_nonnegative(spec.get(name), path.child(name)))
    if spec.get("maxFailedIndexes") is not None and spec.get("backoffLimitPerIndex") is None:
        errs.append(
            field.required(path.child("backoffLimitPerIndex"), "when maxFailedIndexes is specified")
        )
    managed_by = spec.get("managedBy")
    if isinstance(managed_by, str):
        errs.extend(_validate_domain_prefixed_path(managed_by, path.child("managedBy")))
        if len(managed_by) > MAX_MANAGED_BY_LENGTH:
            errs.append(field.too_long(path.child("managedBy"), managed_by, MAX_MANAGED_BY_LENGTH))
    return errs


def _validate_domain_prefixed_path(value: str, path: field.Path) -> field.ErrorList:
    """``IsDomainPrefixedPath``: "<DNS subdomain>/<path>"."""
    errs = field.ErrorList()
    host, slash, _ = value.partition("/")
    if not slash or not host:
        errs.append(
            field.invalid(path, value, 'must be a domain-prefixed path (such as "acme.io/foo")')
        )
        return errs
    for msg in names.is_dns1123_subdomain(host):
        errs.append(field.invalid(path, host, msg))
    return errs


def _validate_completion_mode(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    mode = spec.get("completionMode")
    if mode is not None and mode not in COMPLETION_MODES:
        errs.append(field.not_supported(path.child("completionMode"), mode, COMPLETION_MODES))
    if mode == "Indexed":
        parallelism = spec.get("parallelism")
        if spec.get("completions") is None:
            errs.append(
                field.required(path.child("completions"), "when completion mode is Indexed")
            )
        if isinstance(parallelism, int) and parallelism > MAX_PARALLELISM_FOR_INDEXED_JOB:
            errs.append(
                field.invalid(
                    path.child("parallelism"),
                    parallelism,
                    f"must be less than or equal to {MAX_PARALLELISM_FOR_INDEXED_JOB} when completion mode is Indexed",
                )
            )
    elif mode in (None, "NonIndexed"):
        for name in ("backoffLimitPerIndex", "maxFailedIndexes"):
            if spec.get(name) is not None:
                errs.append(
                    field.invalid(path.child(name), spec[name], "requires indexed completion mode")
                )
        if spec.get("successPolicy") is not None:
            errs.append(
                field.invalid(
                    path.child("successPolicy"),
                    spec["successPolicy"],
                    "requires indexed completion mode",
                )
            )
    return errs


def _validate_pod_failure_policy(policy: Any, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    if not isinstance(policy, dict):
        return errs
    rules = policy.get("rules") or []
    rules_path = path.child("rules")
    if len(rules) > MAX_POD_FAILURE_POLICY_RULES:
        errs.append(field.too_many(rules_path, len(rules), MAX_POD_FAILURE_POLICY_RULES))
    for i, rule in enumerate(rules):
        action = (rule or {}).get("action", "")
        if action not in POD_FAILURE_POLICY_ACTIONS:
            errs.append(
                field.not_supported(
                    rules_path.index(i).child("action"), action, POD_FAILURE_POLICY_ACTIONS
                )
            )
    return errs


def _validate_pod_replacement_policy(spec: Object, path: field.Path) -> field.ErrorList:
    """Only "Failed" goes with a podFailurePolicy; otherwise either value."""
    errs = field.ErrorList()
    replacement = spec.get("podReplacementPolicy")
    if replacement is None:
        return errs
    if spec.get("podFailurePolicy") is not None:
        if replacement != "Failed":
            errs.append(field.not_supported(path, replacement, ["Failed"]))
    elif replacement not in POD_REPLACEMENT_POLICIES:
        errs.append(field.not_supported(path, replacement, sorted(POD_REPLACEMENT_POLICIES)))
    return errs


def _validate_restart_policy(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    restart = common.dict_at(spec, "template", "spec").get("restartPolicy", "")
    restart_path = path.child("template", "spec", "restartPolicy")
    if restart in ("Always", ""):
        errs.append(field.required(restart_path, 'valid values: "OnFailure", "Never"'))
    elif restart not in ("OnFailure", "Never"):
        errs.append(field.not_supported(restart_path, restart, ("OnFailure", "Never")))
    elif spec.get("podFailurePolicy") is not None and restart != "Never":
        errs.append(
            field.invalid(
                restart_path,
                restart,
                'only "Never" is supported when podFailurePolicy is specified',
            )
        )
    return errs


def validate_job_spec_common(spec: Object, path: field.Path) -> field.ErrorList:
    """upstream's private ``validateJobSpec``: what Jobs and CronJob job templates share."""
    errs = _validate_counts(spec, path)
    errs.extend(_validate_completion_mode(spec, path))
    errs.extend(
        _validate_pod_failure_policy(spec.get("podFailurePolicy"), path.child("podFailurePolicy"))
    )
    errs.extend(_validate_pod_replacement_policy(spec, path.child("podReplacementPolicy")))
    errs.extend(
        pods.validate_pod_template_spec(common.dict_at(spec, "template"), path.child("template"))
    )
    errs.extend(_validate_restart_policy(spec, path))
    return errs


def validate_job_spec(spec: Object, path: field.Path) -> field.ErrorList:
    errs = validate_job_spec_common(spec, path)
    selector = spec.get("selector")
    if selector is None:
        errs.append(field.required(path.child("selector")))
    else:
        errs.extend(common.validate_label_selector(selector, path.child("selector")))
    if common.selector_is_valid(selector):
        errs.extend(
            common.validate_template_labels_match(
                selector, common.dict_at(spec, "template"), path.child("template"), skip_empty=False
            )
        )
    return errs


def validate_job(obj: Object) -> field.ErrorList:
    errs = common.validate_meta(obj, namespaced=True, name_validator=common.name_is_dns_subdomain)
    errs.extend(validate_generated_selector(obj))
    spec = common.dict_at(obj, "spec")
    errs.extend(validate_job_spec(spec, field.Path("spec")))
    completions = spec.get("completions")
    if spec.get("completionMode") == "Indexed" and isinstance(completions, int) and completions > 0:
        name = str(common.dict_at(obj, "metadata").get("name", ""))
        hostname = f"{name}-{completions - 1}"
        if names.is_dns1123_label(hostname):
            errs.append(
                field.invalid(
                    field.Path("metadata", "name"),
                    name,
                    f"will not able to create pod with invalid DNS label: {hostname}",
                )
            )
    return errs


def _template_for_comparison(spec: Object, old_spec: Object) -> tuple[Any, Any]:
    """The templates to compare; a suspended, never-started Job may change scheduling directives."""
    template = common.dict_at(spec, "template")
    old_template = common.dict_at(old_spec, "template")
    if not old_spec.get("suspend"):
        return template, old_template
    relaxed = {**old_template, "metadata": {**common.dict_at(old_template, "metadata")}}
    relaxed["spec"] = {**common.dict_at(old_template, "spec")}
    for key in ("labels", "annotations"):
        _copy_key(common.dict_at(template, "metadata"), relaxed["metadata"], key)
    for key in ("nodeSelector", "tolerations", "schedulingGates", "affinity"):
        _copy_key(common.dict_at(template, "spec"), relaxed["spec"], key)
    return template, relaxed


def _copy_key(source: Object, target: Object, key: str) -> None:
    if key in source:
        target[key] = source[key]
    else:
        target.pop(key, None)


def validate_job_update(new: Object, old: Object) -> field.ErrorList:
    errs = common.validate_meta_update(new, old)
    spec = common.dict_at(new, "spec")
    old_spec = common.dict_at(old, "spec")
    path = field.Path("spec")
    errs.extend(validate_job_spec(spec, path))
    errs.extend(_validate_completions_update(spec, old_spec, path.child("completions")))
    errs.extend(
        common.validate_immutable(
            spec.get("selector"), old_spec.get("selector"), path.child("selector")
        )
    )
    template, old_template = _template_for_comparison(spec, old_spec)
    if old_spec.get("suspend") and common.dict_at(old, "status").get("startTime") is not None:
        template, old_template = (
            common.dict_at(spec, "template"),
            common.dict_at(old_spec, "template"),
        )
    errs.extend(common.validate_immutable(template, old_template, path.child("template")))
    for name in (
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ):
        errs.extend(common.validate_immutable(spec.get(name), old_spec.get(name), path.child(name)))
    return errs


def _validate_completions_update(
    spec: Object, old_spec: Object, path: field.Path
) -> field.ErrorList:
    """Completions are immutable, except for Indexed Jobs scaled in tandem with parallelism."""
    completions = spec.get("completions")
    if spec.get("completionMode") != "Indexed":
        return common.validate_immutable(completions, old_spec.get("completions"), path)
    errs = field.ErrorList()
    if completions != old_spec.get("completions") and completions is not None:
        if completions != spec.get("parallelism"):
            errs.append(
                field.invalid(
                    path, completions, "can only be modified in tandem with spec.parallelism"
                )
            )
    return errs


def validate_job_status_update(new: Object, old: Object) -> field.ErrorList:
    """Counters non-negative and never decreasing (a subset of upstream's status rules)."""
    errs = common.validate_meta_update(new, old)
    status = common.dict_at(new, "status")
    old_status = common.dict_at(old, "status")
    for name in ("active", "succeeded", "failed", "ready", "terminating"):
        errs.extend(common.validate_nonnegative(status.get(name), field.Path("status", name)))
    for name in ("failed", "succeeded"):
        if status.get(name, 0) < old_status.get(name, 0):
            errs.append(
                field.invalid(
                    field.Path("status", name),
                    status.get(name, 0),
                    f"cannot decrease the {name} counter",
                )
            )
    return errs
