"""Validation of Pods, PodSpecs and PodTemplateSpecs (upstream ValidatePod*, ValidatePodSpec).

Owns the checks every pod-bearing object shares: containers, volumes, ports,
env, probes, resources, scheduling fields. ``validate_pod_spec`` and
``validate_pod_template_spec`` are the entry points other groups use for the
templates embedded in Deployments, Jobs, ReplicationControllers, ...

Pods are nearly immutable after creation; ``validate_pod_update`` reproduces
upstream's one catch-all "pod updates may not change fields other than ..."
error, with a readable diff in place of Go's ``cmp.Diff`` output.

Paths and messages follow pkg/apis/core/validation/validation.go. Not yet
covered: securityContext details, affinity/topology-spread internals, resource
claims, Windows/Linux OS-specific rules, sysctls.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson

from kajitori.api.core_v1 import validation as common
from kajitori.api.core_v1.validation import resize_policy
from kajitori.machinery import field, names, objectmeta, shapes

Object = dict[str, Any]

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
HTTP_SCHEMES = ("HTTP", "HTTPS")
HOST_PATH_TYPES = (
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
)
PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
TOLERATION_OPERATORS = ("Equal", "Exists")
STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
FILE_MODE_ERROR = "must be a number between 0 and 0777 (octal), both inclusive"
# In upstream's validateVolumeSource order: the first one present wins, later ones are "Forbidden".
VOLUME_SOURCES = (
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "quobyte",
    "downwardAPI",
    "fc",
    "flexVolume",
    "configMap",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "projected",
    "scaleIO",
    "csi",
    "ephemeral",
    "image",
)
ENV_FIELD_PATHS = (
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
)
UPDATABLE_POD_SPEC_FIELDS = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
)


def _items(value: Any) -> list[Object]:
    return [item if isinstance(item, dict) else {} for item in value or ()]


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


# Texts that passed a check with no error at all. The checks below read only
# the JSON they are given (and the inputs named in the key), and a workload's
# pods repeat their containers, volume sources and tolerations byte for byte,
# so a later copy of a text that passed skips the check. A text with any
# error is never remembered: its errors are built each time, with their
# paths, as before. Keys are JSON texts (key order and scalar types included).
_PASSED_CONTAINERS = shapes.JsonMemo(2048, digest=True)  # all but volumeMounts
_PASSED_PROBES = shapes.JsonMemo(2048, digest=True)  # grace period + container
_PASSED_VOLUME_SOURCES = shapes.JsonMemo(1024, digest=True)  # a volume but its name
_PASSED_TOLERATIONS = shapes.JsonMemo(1024, digest=True)


def _checked_once(
    passed: shapes.JsonMemo, key: bytes | None, check: Callable[[], field.ErrorList]
) -> field.ErrorList:
    """``check()``, unless ``key``'s text passed it before; remembered once it passes."""
    if key is not None and passed.get(key):
        return field.ErrorList()
    errs = check()
    if key is not None and not errs:
        passed.put(key, True)
    return errs


def _text_without(item: Object, key: str) -> bytes | None:
    """``item``'s JSON text without ``key`` (None: not plain JSON, never remembered)."""
    return shapes.JsonMemo.key({k: v for k, v in item.items() if k != key})


# --- volumes ------------------------------------------------------------------------


def validate_volumes(volumes: Any, path: field.Path) -> tuple[dict[str, Object], field.ErrorList]:
    """ValidateVolumes: the valid volumes by name (for mount checks) and all errors."""
    errs = field.ErrorList()
    valid: dict[str, Object] = {}
    for i, volume in enumerate(_items(volumes)):
        vol_path = path.index(i)
        name_path = vol_path.child("name")
        vol_errs = _validate_volume_source_once(volume, vol_path)
        name = volume.get("name") or ""
        if not name:
            vol_errs.append(field.required(name_path))
        else:
            vol_errs.extend(common.dns1123_label(name, name_path))
        if name in valid:
            vol_errs.append(field.duplicate(name_path, name))
        if vol_errs:
            errs.extend(vol_errs)
        else:
            valid[name] = volume
    return valid, errs


def _validate_volume_source_once(volume: Object, path: field.Path) -> field.ErrorList:
    """``_validate_volume_source``, skipped for a volume (but its name) that passed before."""
    return _checked_once(
        _PASSED_VOLUME_SOURCES,
        _text_without(volume, "name"),
        lambda: _validate_volume_source(volume, path),
    )


def _validate_volume_source(volume: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    seen = 0
    for key in VOLUME_SOURCES:
        if volume.get(key) is None:
            continue
        if seen:
            errs.append(field.forbidden(path.child(key), "may not specify more than 1 volume type"))
            continue
        seen += 1
        errs.extend(_validate_one_source(key, _dict(volume[key]), path.child(key)))
    if not seen:
        errs.append(field.required(path, "must specify a volume type"))
    return errs


def _validate_one_source(key: str, source: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    required_by_kind = {
        "secret": "secretName",
        "persistentVolumeClaim": "claimName",
        "hostPath": "path",
        "nfs": "server",
    }
    if key in required_by_kind and not source.get(required_by_kind[key]):
        errs.append(field.required(path.child(required_by_kind[key])))
    if key == "nfs":
        nfs_path = source.get("path") or ""
        if not nfs_path:
            errs.append(field.required(path.child("path")))
        elif not nfs_path.startswith("/"):
            errs.append(field.invalid(path.child("path"), nfs_path, "must be an absolute path"))
    if key == "hostPath" and (kind := source.get("type")) not in (None, *HOST_PATH_TYPES):
        errs.append(field.not_supported(path.child("type"), kind, HOST_PATH_TYPES[1:]))
    if key in ("secret", "configMap", "downwardAPI", "projected"):
        errs.extend(_file_mode(source.get("defaultMode"), path.child("defaultMode")))
    if key in ("secret", "configMap"):
        for j, item in enumerate(_items(source.get("items"))):
            errs.extend(_key_to_path(item, path.child("items").index(j)))
    return errs


def _file_mode(mode: Any, path: field.Path) -> field.ErrorList:
    if mode is not None and (not isinstance(mode, int) or not 0 <= mode <= 0o777):
        return field.ErrorList([field.invalid(path, mode, FILE_MODE_ERROR)])
    return field.ErrorList()


def _key_to_path(item: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    if not item.get("key"):
        errs.append(field.required(path.child("key")))
    item_path = item.get("path") or ""
    if not item_path:
        errs.append(field.required(path.child("path")))
    else:
        errs.extend(_local_non_reserved_path(item_path, path.child("path")))
    errs.extend(_file_mode(item.get("mode"), path.child("mode")))
    return errs


def _local_non_reserved_path(target: str, path: field.Path) -> field.ErrorList:
    errs = _local_descending_path(target, path)
    if target.startswith(".."):
        errs.append(field.invalid(path, target, "must not start with '..'"))
    return errs


def _local_descending_path(target: str, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    if target.startswith("/"):
        errs.append(field.invalid(path, target, "must be a relative path"))
    if ".." in target.split("/"):
        errs.append(field.invalid(path, target, "must not contain '..'"))
    return errs


# --- containers ---------------------------------------------------------------------


def _validate_ports(ports: Any, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    seen: set[str] = set()
    for i, port in enumerate(_items(ports)):
        port_path = path.index(i)
        name = port.get("name") or ""
        if name:
            details = names.is_valid_port_name(name)
            if details:
                errs.extend(common.from_details(port_path.child("name"), name, details))
            elif name in seen:
                errs.append(field.duplicate(port_path.child("name"), name))
            else:
                seen.add(name)
        container_port = port.get("containerPort")
        if not container_port:
            errs.append(field.required(port_path.child("containerPort")))
        else:
            errs.extend(common.port_num(container_port, port_path.child("containerPort")))
        if port.get("hostPort"):
            errs.extend(common.port_num(port["hostPort"], port_path.child("hostPort")))
        errs.extend(common.protocol(port.get("protocol"), port_path.child("protocol")))
    return errs


def _validate_env(env: Any, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    for i, var in enumerate(_items(env)):
        var_path = path.index(i)
        name = var.get("name") or ""
        if not name:
            errs.append(field.required(var_path.child("name")))
        errs.extend(common.from_details(var_path.child("name"), name, _relaxed_env_name(name)))
        if var.get("valueFrom") is not None:
            errs.extend(_validate_env_value_from(var, var_path.child("valueFrom")))
    return errs


def _relaxed_env_name(name: str) -> list[str]:
    if any(not 32 <= ord(char) <= 126 or char == "=" for char in name):
        return [
            "a valid environment variable name must consist only of printable ASCII characters other than '='"
        ]
    return []


_ENV_SOURCES = ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef", "fileKeyRef")


def _validate_env_value_from(var: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    value_from = _dict(var.get("valueFrom"))
    present = [key for key in _ENV_SOURCES if value_from.get(key) is not None]
    if not present:
        return field.ErrorList(
            [
                field.invalid(
                    path,
                    "",
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef` or `fileKeyRef`",
                )
            ]
        )
    if var.get("value"):
        errs.append(field.invalid(path, "", "may not be specified when `value` is not empty"))
    if len(present) > 1:
        errs.append(field.invalid(path, "", "may not have more than one field specified at a time"))
        return errs
    key = present[0]
    source = _dict(value_from[key])
    if key == "fieldRef":
        errs.extend(_validate_object_field_selector(source, path.child("fieldRef")))
    elif key in ("configMapKeyRef", "secretKeyRef"):
        if not source.get("name"):
            errs.append(field.required(path.child(key, "name")))
        ref_key = source.get("key") or ""
        if not ref_key:
            errs.append(field.required(path.child(key, "key")))
        else:
            errs.extend(
                common.from_details(
                    path.child(key, "key"), ref_key, names.is_config_map_key(ref_key)
                )
            )
    elif key == "resourceFieldRef" and not source.get("resource"):
        errs.append(field.required(path.child(key, "resource")))
    return errs


def _validate_object_field_selector(selector: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    if not selector.get("apiVersion"):
        errs.append(field.required(path.child("apiVersion")))
        return errs
    field_path = selector.get("fieldPath") or ""
    if not field_path:
        errs.append(field.required(path.child("fieldPath")))
        return errs
    base = field_path.split("[", 1)[0] if field_path.endswith("]") else field_path
    if base not in ENV_FIELD_PATHS or (
        base in ("metadata.labels", "metadata.annotations") and base == field_path
    ):
        errs.append(field.not_supported(path.child("fieldPath"), field_path, ENV_FIELD_PATHS))
    return errs


def _validate_env_from(env_from: Any, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    for i, source in enumerate(_items(env_from)):
        source_path = path.index(i)
        prefix = source.get("prefix") or ""
        if prefix:
            errs.extend(
                common.from_details(source_path.child("prefix"), prefix, _relaxed_env_name(prefix))
            )
        refs = [key for key in ("configMapRef", "secretRef") if source.get(key) is not None]
        if not refs:
            errs.append(
                field.invalid(source_path, "", "must specify one of: `configMapRef` or `secretRef`")
            )
        elif len(refs) > 1:
            errs.append(
                field.invalid(
                    source_path, "", "may not have more than one field specified at a time"
                )
            )
        elif not _dict(source[refs[0]]).get("name"):
            errs.append(field.required(source_path.child(refs[0], "name")))
    return errs


def _validate_volume_mounts(
    mounts: Any, volumes: dict[str, Object], path: field.Path
) -> field.ErrorList:
    errs = field.ErrorList()
    mount_points: set[str] = set()
    for i, mount in enumerate(_items(mounts)):
        mount_path = path.index(i)
        name = mount.get("name") or ""
        if not name:
            errs.append(field.required(mount_path.child("name")))
        if name not in volumes:
            errs.append(field.not_found(mount_path.child("name"), name))
        target = mount.get("mountPath") or ""
        if not target:
            errs.append(field.required(mount_path.child("mountPath")))
        if target in mount_points:
            errs.append(field.invalid(mount_path.child("mountPath"), target, "must be unique"))
        mount_points.add(target)
        if sub_path := mount.get("subPath"):
            errs.extend(_local_descending_path(sub_path, mount_path.child("subPath")))
    return errs


def validate_resource_requirements(requirements: Any, path: field.Path) -> field.ErrorList:
    """ValidateContainerResourceRequirements: names, non-negative values, requests <= limits."""
    errs = field.ErrorList()
    requirements = _dict(requirements)
    limits = _dict(requirements.get("limits"))
    requests = _dict(requirements.get("requests"))
    limits_path, requests_path = path.child("limits"), path.child("requests")
    for name, value in limits.items():
        errs.extend(_resource_name(name, limits_path.key(name)))
        errs.extend(_quantity_value(value, limits_path.key(name)))
    for name, value in requests.items():
        errs.extend(_resource_name(name, requests_path.key(name)))
        errs.extend(_quantity_value(value, requests_path.key(name)))
        errs.extend(_request_within_limit(name, value, limits, requests_path, limits_path))
    return errs


def _request_within_limit(
    name: str,
    value: Any,
    limits: Object,
    requests_path: field.Path,
    limits_path: field.Path,
) -> field.ErrorList:
    overcommit = is_overcommit_allowed(name)
    if name not in limits:
        if overcommit:
            return field.ErrorList()
        detail = "Limit must be set for non overcommitable resources"
        return field.ErrorList([field.required(limits_path, detail)])
    request = common.quantity_value(value)
    limit = common.quantity_value(limits[name])
    if request is None or limit is None:
        return field.ErrorList()
    if request != limit and not overcommit:
        detail = f"must be equal to {name} limit of {limits[name]}"
        return field.ErrorList([field.invalid(requests_path, str(value), detail)])
    if request > limit:
        detail = f"must be less than or equal to {name} limit of {limits[name]}"
        return field.ErrorList([field.invalid(requests_path, str(value), detail)])
    return field.ErrorList()


def is_native_resource(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def is_overcommit_allowed(name: str) -> bool:
    return is_native_resource(name) and not name.startswith("hugepages-")


def _resource_name(name: str, path: field.Path) -> field.ErrorList:
    errs = common.qualified_name(name, path)
    if "/" not in name:
        if name not in STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            errs.append(field.invalid(path, name, "must be a standard resource for containers"))
    elif not is_native_resource(name) and name.startswith("requests."):
        errs.append(field.invalid(path, name, "doesn't follow extended resource name standard"))
    return errs


def _quantity_value(value: Any, path: field.Path) -> field.ErrorList:
    amount = common.quantity_value(value)
    if amount is None:
        return field.ErrorList([field.invalid(path, value, common.QUANTITY_FORMAT_ERROR)])
    if amount < 0:
        return field.ErrorList([field.invalid(path, str(value), common.IS_NEGATIVE_ERROR)])
    return field.ErrorList()


def _validate_handler(handler: Object, path: field.Path, grace: Any) -> field.ErrorList:
    errs = field.ErrorList()
    present = 0
    for key in ("exec", "httpGet", "tcpSocket", "grpc", "sleep"):
        action = handler.get(key)
        if action is None:
            continue
        if present:
            errs.append(
                field.forbidden(path.child(key), "may not specify more than 1 handler type")
            )
            continue
        present += 1
        errs.extend(_validate_action(key, _dict(action), path.child(key), grace))
    if not present:
        errs.append(field.required(path, "must specify a handler type"))
    return errs


def _validate_action(key: str, action: Object, path: field.Path, grace: Any) -> field.ErrorList:
    errs = field.ErrorList()
    if key == "exec" and not action.get("command"):
        errs.append(field.required(path.child("command")))
    elif key == "httpGet":
        if not action.get("path"):
            errs.append(field.required(path.child("path")))
        errs.extend(common.port_num_or_name(action.get("port"), path.child("port")))
        errs.extend(common.enum(action.get("scheme"), path.child("scheme"), HTTP_SCHEMES))
    elif key == "tcpSocket":
        errs.extend(common.port_num_or_name(action.get("port"), path.child("port")))
    elif key == "grpc":
        errs.extend(common.port_num(action.get("port"), path.child("port")))
    elif key == "sleep":
        seconds = action.get("seconds")
        limit = grace if isinstance(grace, int) else 30
        if not isinstance(seconds, int) or not 0 <= seconds <= limit:
            detail = f"must be non-negative and less than terminationGracePeriodSeconds ({limit})"
            errs.append(field.invalid(path.child("seconds"), seconds, detail))
    return errs


def _validate_probe(
    probe: Any, path: field.Path, grace: Any, *, one_success: bool
) -> field.ErrorList:
    if probe is None:
        return field.ErrorList()
    probe = _dict(probe)
    errs = _validate_handler(probe, path, grace)
    for key in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        errs.extend(common.nonnegative(probe.get(key), path.child(key)))
    if (seconds := probe.get("terminationGracePeriodSeconds")) is not None and seconds <= 0:
        errs.append(
            field.invalid(
                path.child("terminationGracePeriodSeconds"), seconds, "must be greater than 0"
            )
        )
    if one_success and probe.get("successThreshold") != 1:
        errs.append(
            field.invalid(
                path.child("successThreshold"), probe.get("successThreshold"), "must be 1"
            )
        )
    return errs


def _validate_lifecycle_and_probes(
    container: Object, path: field.Path, grace: Any
) -> field.ErrorList:
    errs = field.ErrorList()
    lifecycle = container.get("lifecycle")
    if lifecycle is not None:
        for hook in ("postStart", "preStop"):
            if (handler := _dict(lifecycle).get(hook)) is not None:
                errs.extend(_validate_handler(_dict(handler), path.child("lifecycle", hook), grace))
    errs.extend(
        _validate_probe(
            container.get("livenessProbe"), path.child("livenessProbe"), grace, one_success=True
        )
    )
    errs.extend(
        _validate_probe(
            container.get("readinessProbe"), path.child("readinessProbe"), grace, one_success=False
        )
    )
    errs.extend(
        _validate_probe(
            container.get("startupProbe"), path.child("startupProbe"), grace, one_success=True
        )
    )
    return errs


def validate_container(
    container: Object, volumes: dict[str, Object], path: field.Path
) -> field.ErrorList:
    """validateContainerCommon: what every container kind (regular, init, ephemeral) must satisfy.

    Only ``volumeMounts`` depends on the pod's volumes; the rest of a container
    that passed before is not checked again (``_PASSED_CONTAINERS``).
    """
    return _validate_container(container, volumes, path, _text_without(container, "volumeMounts"))


def _validate_container(
    container: Object, volumes: dict[str, Object], path: field.Path, key: bytes | None
) -> field.ErrorList:
    """``validate_container``; ``key`` is the container's text without its mounts."""
    mounts_path = path.child("volumeMounts")
    if key is not None and _PASSED_CONTAINERS.get(key):
        return _validate_volume_mounts(container.get("volumeMounts"), volumes, mounts_path)
    errs = _validate_container_before_mounts(container, path)
    mount_errs = _validate_volume_mounts(container.get("volumeMounts"), volumes, mounts_path)
    after = _validate_container_after_mounts(container, path)
    if key is not None and not errs and not after:
        _PASSED_CONTAINERS.put(key, True)
    return errs.extend_all(mount_errs, after)


def _validate_container_before_mounts(container: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    name = container.get("name") or ""
    if not name:
        errs.append(field.required(path.child("name")))
    else:
        errs.extend(common.dns1123_label(name, path.child("name")))
    if not container.get("image"):
        errs.append(field.required(path.child("image")))
    policy = container.get("terminationMessagePolicy")
    errs.extend(
        common.enum(policy, path.child("terminationMessagePolicy"), TERMINATION_MESSAGE_POLICIES)
    )
    errs.extend(_validate_ports(container.get("ports"), path.child("ports")))
    errs.extend(_validate_env(container.get("env"), path.child("env")))
    errs.extend(_validate_env_from(container.get("envFrom"), path.child("envFrom")))
    return errs


def _validate_container_after_mounts(container: Object, path: field.Path) -> field.ErrorList:
    errs = common.enum(
        container.get("imagePullPolicy"), path.child("imagePullPolicy"), PULL_POLICIES
    )
    errs.extend(validate_resource_requirements(container.get("resources"), path.child("resources")))
    return errs


def _validate_lifecycle_and_probes_once(
    container: Object, path: field.Path, grace: Any, container_key: bytes | None
) -> field.ErrorList:
    """``_validate_lifecycle_and_probes``, skipped for a container and grace that passed before."""
    grace_key = shapes.JsonMemo.key(grace)
    # JSON texts hold no raw NUL byte, so the joined key is unambiguous.
    key = None if container_key is None or grace_key is None else grace_key + b"\0" + container_key
    return _checked_once(
        _PASSED_PROBES, key, lambda: _validate_lifecycle_and_probes(container, path, grace)
    )


def _host_port_conflicts(containers: list[Object], path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    seen: set[str] = set()
    for i, container in enumerate(containers):
        for j, port in enumerate(_items(container.get("ports"))):
            host_port = port.get("hostPort")
            if not host_port:
                continue
            key = f"{port.get('protocol', '')}/{port.get('hostIP', '')}/{host_port}"
            if key in seen:
                errs.append(
                    field.duplicate(path.index(i).child("ports").index(j).child("hostPort"), key)
                )
            seen.add(key)
    return errs


def _validate_containers(
    spec: Object, volumes: dict[str, Object], path: field.Path
) -> field.ErrorList:
    containers = _items(spec.get("containers"))
    grace = spec.get("terminationGracePeriodSeconds")
    if not containers:
        return field.ErrorList([field.required(path)])
    errs = field.ErrorList()
    seen: set[str] = set()
    for i, container in enumerate(containers):
        item_path = path.index(i)
        text = _text_without(container, "volumeMounts")
        errs.extend(_validate_container(container, volumes, item_path, text))
        name = container.get("name") or ""
        if name in seen:
            errs.append(field.duplicate(item_path.child("name"), name))
        seen.add(name)
        errs.extend(_validate_lifecycle_and_probes_once(container, item_path, grace, text))
        if container.get("restartPolicy") is not None:
            errs.append(
                field.forbidden(
                    item_path.child("restartPolicy"), "may not be set for non-init containers"
                )
            )
    errs.extend(_host_port_conflicts(containers, path))
    return errs


def _validate_init_containers(
    spec: Object, volumes: dict[str, Object], path: field.Path
) -> field.ErrorList:
    errs = field.ErrorList()
    grace = spec.get("terminationGracePeriodSeconds")
    seen = {c.get("name") for c in _items(spec.get("containers"))}
    for i, container in enumerate(_items(spec.get("initContainers"))):
        item_path = path.index(i)
        text = _text_without(container, "volumeMounts")
        errs.extend(_validate_container(container, volumes, item_path, text))
        restart = container.get("restartPolicy")
        if restart is not None and restart != "Always":
            errs.append(field.not_supported(item_path.child("restartPolicy"), restart, ("Always",)))
        name = container.get("name") or ""
        if name in seen:
            errs.append(field.duplicate(item_path.child("name"), name))
        elif name:
            seen.add(name)
        errs.extend(_host_port_conflicts([container], path))
        if restart == "Always":
            errs.extend(_validate_lifecycle_and_probes_once(container, item_path, grace, text))
            continue
        for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
            if container.get(key) is not None:
                errs.append(
                    field.forbidden(
                        item_path.child(key),
                        "may not be set for init containers without restartPolicy=Always",
                    )
                )
    return errs


# --- pod spec -----------------------------------------------------------------------


def validate_tolerations(tolerations: Any, path: field.Path) -> field.ErrorList:
    if not tolerations:
        return field.ErrorList()
    return _checked_once(
        _PASSED_TOLERATIONS,
        shapes.JsonMemo.key(tolerations),
        lambda: _validate_tolerations(tolerations, path),
    )


def _validate_tolerations(tolerations: Any, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    for i, toleration in enumerate(_items(tolerations)):
        item_path = path.index(i)
        key = toleration.get("key") or ""
        operator = toleration.get("operator") or ""
        effect = toleration.get("effect") or ""
        if key:
            errs.extend(common.qualified_name(key, item_path.child("key")))
        if not key and operator != "Exists":
            detail = 'operator must be Exists when `key` is empty, which means "match all values and all keys"'
            errs.append(field.invalid(item_path.child("operator"), operator, detail))
        if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
            detail = "effect must be 'NoExecute' when `tolerationSeconds` is set"
            errs.append(field.invalid(item_path.child("effect"), effect, detail))
        value = toleration.get("value") or ""
        if operator in ("", "Equal"):
            details = names.is_valid_label_value(value)
            if details:
                errs.append(field.invalid(item_path.child("operator"), value, ";".join(details)))
        elif operator == "Exists":
            if value:
                detail = "value must be empty when `operator` is 'Exists'"
                errs.append(field.invalid(item_path.child("operator"), value, detail))
        else:
            errs.append(
                field.not_supported(item_path.child("operator"), operator, TOLERATION_OPERATORS)
            )
        if effect and effect not in TAINT_EFFECTS:
            errs.append(field.not_supported(item_path.child("effect"), effect, TAINT_EFFECTS))
    return errs


def _validate_dns(spec: Object, path: field.Path) -> field.ErrorList:
    errs = common.enum(spec.get("dnsPolicy"), path.child("dnsPolicy"), DNS_POLICIES)
    config = spec.get("dnsConfig")
    config_path = path.child("dnsConfig")
    if spec.get("dnsPolicy") == "None":
        if config is None:
            errs.append(
                field.required(config_path, "must provide `dnsConfig` when `dnsPolicy` is None")
            )
            return errs
        if not _dict(config).get("nameservers"):
            detail = "must provide at least one DNS nameserver when `dnsPolicy` is None"
            errs.append(field.required(config_path.child("nameservers"), detail))
            return errs
    nameservers = _dict(config).get("nameservers") or []
    if len(nameservers) > 3:
        errs.append(
            field.invalid(
                config_path.child("nameservers"),
                nameservers,
                "must not have more than 3 nameservers",
            )
        )
    for i, server in enumerate(nameservers):
        errs.extend(common.ip_address(server, config_path.child("nameservers").index(i)))
    return errs


def _validate_scheduling(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    for key in ("serviceAccountName", "nodeName", "priorityClassName"):
        value = spec.get(key)
        if value:
            errs.extend(
                common.from_details(
                    path.child(key), value, names.name_is_dns_subdomain(value, False)
                )
            )
    for key in ("hostname", "subdomain"):
        if value := spec.get(key):
            errs.extend(common.dns1123_label(value, path.child(key)))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and not (
        isinstance(deadline, int) and 1 <= deadline <= common.MAX_INT32
    ):
        errs.append(
            field.invalid(
                path.child("activeDeadlineSeconds"),
                deadline,
                names.inclusive_range_error(1, common.MAX_INT32),
            )
        )
    errs.extend(validate_tolerations(spec.get("tolerations"), path.child("tolerations")))
    if (preemption := spec.get("preemptionPolicy")) is not None:
        errs.extend(common.enum(preemption, path.child("preemptionPolicy"), PREEMPTION_POLICIES))
    for i, gate in enumerate(_items(spec.get("readinessGates"))):
        errs.extend(
            common.qualified_name(
                gate.get("conditionType") or "",
                path.child("readinessGates").index(i).child("conditionType"),
            )
        )
    seen: set[str] = set()
    for i, gate in enumerate(_items(spec.get("schedulingGates"))):
        gate_name = gate.get("name") or ""
        errs.extend(common.qualified_name(gate_name, path.child("schedulingGates").index(i)))
        if gate_name in seen:
            errs.append(field.duplicate(path.child("schedulingGates").index(i), gate_name))
        seen.add(gate_name)
    errs.extend(
        objectmeta.validate_labels(_dict(spec.get("nodeSelector")), path.child("nodeSelector"))
    )
    return errs


def _validate_host_network(
    spec: Object, path: field.Path, *, resource_is_pod: bool
) -> field.ErrorList:
    errs = field.ErrorList()
    if not spec.get("hostNetwork"):
        return errs
    for i, container in enumerate(_items(spec.get("containers"))):
        for j, port in enumerate(_items(container.get("ports"))):
            host, target = port.get("hostPort") or 0, port.get("containerPort") or 0
            if (resource_is_pod or host) and host != target:
                port_path = (
                    path.child("containers").index(i).child("ports").index(j).child("hostPort")
                )
                errs.append(
                    field.invalid(
                        port_path, host, "must match `containerPort` when `hostNetwork` is true"
                    )
                )
    return errs


def validate_pod_spec(
    spec: Any, path: field.Path, *, resource_is_pod: bool = False
) -> field.ErrorList:
    """ValidatePodSpec: everything a PodSpec must satisfy, in a Pod or in a template."""
    spec = _dict(spec)
    errs = field.ErrorList()
    if spec.get("terminationGracePeriodSeconds") is None:
        errs.append(field.required(path.child("terminationGracePeriodSeconds")))
    volumes, volume_errs = validate_volumes(spec.get("volumes"), path.child("volumes"))
    errs.extend(volume_errs)
    errs.extend(_validate_containers(spec, volumes, path.child("containers")))
    errs.extend(_validate_init_containers(spec, volumes, path.child("initContainers")))
    errs.extend(resize_policy.validate_pod_spec_resize_policies(spec, path))
    errs.extend(_validate_host_network(spec, path, resource_is_pod=resource_is_pod))
    errs.extend(
        common.enum(spec.get("restartPolicy"), path.child("restartPolicy"), RESTART_POLICIES)
    )
    errs.extend(_validate_dns(spec, path))
    for i, secret in enumerate(_items(spec.get("imagePullSecrets"))):
        if set(secret) - {"name"}:
            errs.append(
                field.invalid(
                    path.child("imagePullSecrets").index(i), secret, "only name may be set"
                )
            )
    errs.extend(_validate_scheduling(spec, path))
    for i, alias in enumerate(_items(spec.get("hostAliases"))):
        errs.extend(
            common.ip_address(alias.get("ip") or "", path.child("hostAliases").index(i).child("ip"))
        )
    return errs


def validate_pod_template_spec(template: Any, path: field.Path) -> field.ErrorList:
    """ValidatePodTemplateSpec: labels, annotations and spec of an embedded pod template."""
    template = _dict(template)
    meta = _dict(template.get("metadata"))
    errs = objectmeta.validate_labels(_dict(meta.get("labels")), path.child("labels"))
    errs.extend(
        objectmeta.validate_annotations(_dict(meta.get("annotations")), path.child("annotations"))
    )
    spec = _dict(template.get("spec"))
    errs.extend(validate_pod_spec(spec, path.child("spec")))
    if spec.get("ephemeralContainers"):
        errs.append(
            field.forbidden(
                path.child("spec", "ephemeralContainers"),
                "ephemeral containers not allowed in pod template",
            )
        )
    return errs


# --- pods ---------------------------------------------------------------------------


def _validate_pod_metadata_and_spec(pod: Object) -> field.ErrorList:
    errs = objectmeta.validate_object_meta(
        _dict(pod.get("metadata")),
        namespaced=True,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )
    spec_path = field.Path("spec")
    spec = _dict(pod.get("spec"))
    errs.extend(validate_pod_spec(spec, spec_path, resource_is_pod=True))
    if not spec.get("serviceAccountName"):
        for i, volume in enumerate(_items(spec.get("volumes"))):
            for j, source in enumerate(_items(_dict(volume.get("projected")).get("sources"))):
                if source.get("serviceAccountToken") is not None:
                    token_path = (
                        spec_path.child("volumes").index(i).child("projected", "sources").index(j)
                    )
                    errs.append(
                        field.forbidden(
                            token_path.child("serviceAccountToken"),
                            "must not be specified when serviceAccountName is not set",
                        )
                    )
    for key in ("containers", "initContainers"):
        for i, container in enumerate(_items(spec.get(key))):
            image = container.get("image") or ""
            if image != image.strip():
                errs.append(
                    field.invalid(
                        spec_path.child(key).index(i).child("image"),
                        image,
                        "must not have leading or trailing whitespace",
                    )
                )
    return errs


# validatePodMetadataAndSpec, also run by the pods/ephemeralcontainers update
# (validation/ephemeral_containers.py).
validate_pod_metadata_and_spec = _validate_pod_metadata_and_spec


def validate_pod(pod: Object) -> field.ErrorList:
    """ValidatePodCreate."""
    errs = _validate_pod_metadata_and_spec(pod)
    spec = _dict(pod.get("spec"))
    if spec.get("ephemeralContainers"):
        errs.append(
            field.forbidden(field.Path("spec", "ephemeralContainers"), "cannot be set on create")
        )
    return errs


def _container_updates(new: Any, old: Any, path: field.Path) -> tuple[field.ErrorList, bool]:
    new_items, old_items = _items(new), _items(old)
    if len(new_items) != len(old_items):
        return field.ErrorList(
            [field.forbidden(path, "pod updates may not add or remove containers")]
        ), True
    errs = field.ErrorList()
    for i, container in enumerate(new_items):
        image = container.get("image") or ""
        if not image:
            errs.append(field.required(path.index(i).child("image")))
        if image != image.strip():
            errs.append(
                field.invalid(
                    path.index(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                )
            )
    return errs, False


def _active_deadline_update(
    new: Object, old: Object, path: field.Path
) -> tuple[field.ErrorList, bool]:
    new_value, old_value = new.get("activeDeadlineSeconds"), old.get("activeDeadlineSeconds")
    if new_value is not None:
        if not isinstance(new_value, int) or not 0 <= new_value <= common.MAX_INT32:
            detail = names.inclusive_range_error(0, common.MAX_INT32)
            return field.ErrorList([field.invalid(path, new_value, detail)]), True
        if old_value is not None and old_value < new_value:
            return field.ErrorList(
                [field.invalid(path, new_value, "must be less than or equal to previous value")]
            ), True
    elif old_value is not None:
        return field.ErrorList(
            [field.invalid(path, None, "must not update from a positive integer to nil value")]
        ), False
    return field.ErrorList(), False


def _tolerations_only_added(new: Any, old: Any, path: field.Path) -> field.ErrorList:
    def without_seconds(toleration: Object) -> Object:
        return {k: v for k, v in toleration.items() if k != "tolerationSeconds"}

    remaining = [without_seconds(t) for t in _items(new)]
    for toleration in _items(old):
        if without_seconds(toleration) not in remaining:
            return field.ErrorList(
                [
                    field.forbidden(
                        path, "existing toleration can not be modified except its tolerationSeconds"
                    )
                ]
            )
    return validate_tolerations(new, path)


def _scheduling_gates_only_removed(new: Any, old: Any, path: field.Path) -> field.ErrorList:
    old_names = {gate.get("name") for gate in _items(old)}
    errs = field.ErrorList()
    for i, gate in enumerate(_items(new)):
        if gate.get("name") not in old_names:
            detail = f"only deletion is allowed, but found new scheduling gate '{gate.get('name')}'"
            errs.append(field.forbidden(path.index(i).child("name"), detail))
    return errs


def _munge_updatable(new_spec: Object, old_spec: Object) -> Object:
    """The new spec with every field a pod update may change copied from the old one."""
    munged = copy.deepcopy(new_spec)
    for key in ("containers", "initContainers"):
        for container, old_container in zip(
            _items(munged.get(key)), _items(old_spec.get(key)), strict=False
        ):
            if "image" in old_container:
                container["image"] = old_container["image"]
            else:
                container.pop("image", None)
    for key in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        if key in old_spec:
            munged[key] = old_spec[key]
        else:
            munged.pop(key, None)
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    if (
        isinstance(old_grace, int)
        and old_grace < 0
        and munged.get("terminationGracePeriodSeconds") == 1
    ):
        munged["terminationGracePeriodSeconds"] = old_grace
    if old_spec.get("schedulingGates") and munged.get("nodeSelector") != old_spec.get(
        "nodeSelector"
    ):
        # Gated pods may gain node selector terms; additions only is checked loosely here.
        old_selector = _dict(old_spec.get("nodeSelector"))
        if all(_dict(munged.get("nodeSelector")).get(k) == v for k, v in old_selector.items()):
            munged["nodeSelector"] = old_spec.get("nodeSelector")
    return munged


def spec_diff(old: Object, new: Object) -> str:
    """A short, readable stand-in for Go's ``cmp.Diff(old, new)`` of two pod specs."""
    lines = ["  core.PodSpec{"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        if key in old:
            lines.append(f"- \t{key}: {orjson.dumps(old[key]).decode()},")
        if key in new:
            lines.append(f"+ \t{key}: {orjson.dumps(new[key]).decode()},")
    lines.append("  }")
    return "\n".join(lines) + "\n"


def validate_pod_update(new: Object, old: Object) -> field.ErrorList:
    """ValidatePodUpdate: metadata rules plus the short list of mutable spec fields."""
    meta_path = field.Path("metadata")
    errs = objectmeta.validate_object_meta_update(
        _dict(new.get("metadata")), _dict(old.get("metadata")), path=meta_path
    )
    errs.extend(_validate_pod_metadata_and_spec(new))
    spec_path = field.Path("spec")
    new_spec, old_spec = _dict(new.get("spec")), _dict(old.get("spec"))
    for key in ("containers", "initContainers"):
        container_errs, stop = _container_updates(
            new_spec.get(key), old_spec.get(key), spec_path.child(key)
        )
        errs.extend(container_errs)
        if stop:
            return errs
    deadline_errs, stop = _active_deadline_update(
        new_spec, old_spec, spec_path.child("activeDeadlineSeconds")
    )
    errs.extend(deadline_errs)
    if stop:
        return errs
    errs.extend(
        _tolerations_only_added(
            new_spec.get("tolerations"), old_spec.get("tolerations"), spec_path.child("tolerations")
        )
    )
    errs.extend(
        _scheduling_gates_only_removed(
            new_spec.get("schedulingGates"),
            old_spec.get("schedulingGates"),
            spec_path.child("schedulingGates"),
        )
    )
    if new_spec == old_spec:
        return errs
    munged = _munge_updatable(new_spec, old_spec)
    if munged != old_spec:
        detail = (
            f"pod updates may not change fields other than {','.join(UPDATABLE_POD_SPEC_FIELDS)}\n"
            f"{spec_diff(old_spec, munged)}"
        )
        errs.append(field.forbidden(spec_path, detail))
    return errs


# Immutable, so built once: every kubelet status write starts from them.
_METADATA_PATH = field.Path("metadata")
_STATUS_PATH = field.Path("status")


# Conditions whose types predate the qualified-name rule (upstream's systemConditions).
_SYSTEM_CONDITIONS = frozenset(("PodScheduled", "Ready", "Initialized"))
NON_NEGATIVE_INTEGER = "must be a non-negative integer"


def _non_negative_generation(owner: Object, path: field.Path) -> field.ErrorList:
    """``observedGeneration`` (KEP-5067) may go back, but never below 0."""
    generation = owner.get("observedGeneration")
    if isinstance(generation, int) and generation < 0:
        generation_path = path.child("observedGeneration")
        return field.ErrorList([field.invalid(generation_path, generation, NON_NEGATIVE_INTEGER)])
    return field.ErrorList()


def _validate_pod_conditions(status: Object, path: field.Path) -> field.ErrorList:
    """validatePodConditions: custom types are qualified names; generations not negative."""
    errs = field.ErrorList()
    for i, condition in enumerate(_items(status.get("conditions"))):
        errs.extend(_non_negative_generation(condition, path.index(i)))
        kind = condition.get("type") or ""
        if kind in _SYSTEM_CONDITIONS or not isinstance(kind, str):
            continue
        errs.extend(common.qualified_name(kind, path.index(i).child("Type")))
    return errs


def validate_pod_status_update(new: Object, old: Object) -> field.ErrorList:
    """ValidatePodStatusUpdate: node binding and QoS class cannot change through status."""
    errs = objectmeta.validate_object_meta_update(
        _dict(new.get("metadata")), _dict(old.get("metadata")), path=_METADATA_PATH
    )
    status_path = _STATUS_PATH
    new_status, old_status = _dict(new.get("status")), _dict(old.get("status"))
    errs.extend(_validate_pod_conditions(new_status, status_path.child("conditions")))
    if _dict(new.get("spec")).get("nodeName") != _dict(old.get("spec")).get("nodeName"):
        errs.append(field.forbidden(status_path.child("nodeName"), "may not be changed directly"))
    nominated = new_status.get("nominatedNodeName")
    if nominated and nominated != old_status.get("nominatedNodeName"):
        errs.extend(
            common.from_details(
                status_path.child("nominatedNodeName"),
                nominated,
                names.name_is_dns_subdomain(nominated, False),
            )
        )
    errs.extend(_non_negative_generation(new_status, status_path))
    if new_status.get("qosClass") != old_status.get("qosClass"):
        errs.append(
            field.invalid(
                status_path.child("qosClass"), new_status.get("qosClass"), "field is immutable"
            )
        )
    pod_ips = _items(new_status.get("podIPs"))
    if pod_ips:
        ips_path = status_path.child("podIPs")
        for i, pod_ip in enumerate(pod_ips):
            errs.extend(common.ip_address(pod_ip.get("ip") or "", ips_path.index(i).child("ip")))
    return errs
