"""Validation of CSIDrivers (upstream: ValidateCSIDriver in pkg/apis/storage/validation).

Owns the spec rules: the booleans defaulting fills (attachRequired,
podInfoOnMount, storageCapacity, seLinuxMount) must be set, fsGroupPolicy
and volumeLifecycleModes are enums, token request audiences are unique and
their expirations between 10 minutes and 2^32 seconds, and
nodeAllocatableUpdatePeriodSeconds is at least 10, and
serviceAccountTokenInSecrets needs token requests. On update attachRequired
and volumeLifecycleModes are immutable; upstream reports the first under the
misspelt path ``spec.attachedRequired``, kept here. Also owns
``validate_csi_driver_name`` (core's ValidateCSIDriverName), which CSINodes
and VolumeAttachments use for driver names.
"""

from __future__ import annotations

from typing import Any

from kajitori.api.apps_v1.validation import common
from kajitori.machinery import field, gostrings, names

Object = dict[str, Any]

FS_GROUP_POLICIES = ("File", "None", "ReadWriteOnceWithFSType")
LIFECYCLE_MODES = ("Persistent", "Ephemeral")
MAX_DRIVER_NAME_LENGTH = 63
MIN_TOKEN_SECONDS = 10 * 60
MAX_TOKEN_SECONDS = 1 << 32


def validate_csi_driver_name(name: Any, path: field.Path) -> field.ErrorList:
    """A CSI driver name: required, at most 63 bytes, a DNS subdomain once lower-cased."""
    text = name if isinstance(name, str) else ""
    errs = field.ErrorList()
    if not text:
        errs.append(field.required(path))
    if len(text.encode()) > MAX_DRIVER_NAME_LENGTH:
        errs.append(field.too_long(path, text, MAX_DRIVER_NAME_LENGTH))
    errs.extend(field.invalid(path, text, m) for m in names.is_dns1123_subdomain(text.lower()))
    return errs


def _required_bools(spec: Object, path: field.Path) -> field.ErrorList:
    # Upstream's path for attachRequired really is "attachedRequired".
    checks = (
        ("attachRequired", "attachedRequired"),
        ("podInfoOnMount", "podInfoOnMount"),
        ("storageCapacity", "storageCapacity"),
    )
    return field.ErrorList(
        field.required(path.child(shown)) for key, shown in checks if spec.get(key) is None
    )


def _validate_token_requests(requests: Any, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    seen: set[str] = set()
    for i, request in enumerate(requests if isinstance(requests, list) else []):
        request = request if isinstance(request, dict) else {}
        item = path.index(i)
        audience = str(request.get("audience") or "")
        if audience in seen:
            errs.append(field.duplicate(item.child("audience"), audience))
            continue
        seen.add(audience)
        seconds = request.get("expirationSeconds")
        if not isinstance(seconds, int):
            continue
        if seconds < MIN_TOKEN_SECONDS:
            detail = "may not specify a duration less than 10 minutes"
            errs.append(field.invalid(item.child("expirationSeconds"), seconds, detail))
        if seconds > MAX_TOKEN_SECONDS:
            detail = "may not specify a duration larger than 2^32 seconds"
            errs.append(field.invalid(item.child("expirationSeconds"), seconds, detail))
    return errs


def validate_csi_driver_spec(spec: Object, path: field.Path) -> field.ErrorList:
    """validateCSIDriverSpec, in upstream's order of checks."""
    errs = _required_bools(spec, path)
    policy = spec.get("fsGroupPolicy")
    if policy is not None and policy not in FS_GROUP_POLICIES:
        errs.append(field.not_supported(path.child("fsGroupPolicy"), policy, FS_GROUP_POLICIES))
    errs.extend(_validate_token_requests(spec.get("tokenRequests"), path.child("tokenRequests")))
    for mode in spec.get("volumeLifecycleModes") or []:
        if mode not in LIFECYCLE_MODES:
            errs.append(
                field.not_supported(path.child("volumeLifecycleModes"), mode, LIFECYCLE_MODES)
            )
    # SELinuxMountReadWriteOncePod is on in 1.37, so seLinuxMount must be set.
    if spec.get("seLinuxMount") is None:
        errs.append(field.required(path.child("seLinuxMount")))
    period = spec.get("nodeAllocatableUpdatePeriodSeconds")
    if isinstance(period, int) and period < 10:
        errs.append(
            field.invalid(
                path.child("nodeAllocatableUpdatePeriodSeconds"),
                period,
                "must be greater than or equal to 10 seconds",
            )
        )
    in_secrets = spec.get("serviceAccountTokenInSecrets")
    if in_secrets is not None and not spec.get("tokenRequests"):
        # Since 1.35 the tokens may travel in NodePublish secrets, if any are asked for.
        detail = "serviceAccountTokenInSecrets is set but no tokenRequests are specified"
        errs.append(field.invalid(path.child("serviceAccountTokenInSecrets"), in_secrets, detail))
    return errs


def validate_csi_driver(obj: Object) -> field.ErrorList:
    """ValidateCSIDriver: a DNS-subdomain name and a valid spec."""
    errs = common.validate_meta(obj, namespaced=False, name_validator=names.name_is_dns_subdomain)
    errs.extend(validate_csi_driver_spec(common.dict_at(obj, "spec"), field.Path("spec")))
    return errs


def _modes(spec: Object) -> gostrings.GoValue:
    modes = spec.get("volumeLifecycleModes")
    shown = modes if isinstance(modes, list) and modes else None
    return gostrings.GoValue(gostrings.string_slice(shown, "storage.VolumeLifecycleMode"))


def validate_csi_driver_update(new: Object, old: Object) -> field.ErrorList:
    """ValidateCSIDriverUpdate: metadata, the new spec, and the two immutable fields."""
    errs = common.validate_meta_update(new, old)
    new_spec, old_spec = common.dict_at(new, "spec"), common.dict_at(old, "spec")
    errs.extend(validate_csi_driver_spec(new_spec, field.Path("spec")))
    if new_spec.get("attachRequired") != old_spec.get("attachRequired"):
        errs.append(
            field.invalid(
                field.Path("spec", "attachedRequired"),
                new_spec.get("attachRequired"),
                common.IMMUTABLE,
            )
        )
    if (new_spec.get("volumeLifecycleModes") or []) != (old_spec.get("volumeLifecycleModes") or []):
        errs.append(
            field.invalid(
                field.Path("spec", "volumeLifecycleModes"), _modes(new_spec), common.IMMUTABLE
            )
        )
    return errs
