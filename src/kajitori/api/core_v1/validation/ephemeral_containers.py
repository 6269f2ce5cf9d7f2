"""Validation of ephemeral containers (upstream validateEphemeralContainers and
ValidatePodEphemeralContainersUpdate).

Owns what ``pods/ephemeralcontainers`` checks: each ephemeral container passes
the checks every container passes (``pods.validate_container``), has a name
unique across all of the pod's containers, names an existing regular or init
container as ``targetContainerName``, sets only the fields upstream allows
(``ALLOWED_FIELDS``; others are "cannot be set for an Ephemeral Container")
and no volume subPaths. An update may add ephemeral containers but never
change or remove one, and static (mirror) pods take none.

The main pod update path needs nothing from here: ``spec.ephemeralContainers``
is not among the fields ``pods.validate_pod_update`` lets change, so a change
there is its usual "pod updates may not change fields other than ..." error.
Paths and messages follow pkg/apis/core/validation/validation.go.
"""

from __future__ import annotations

from typing import Any

import orjson

from kajitori.api.core_v1.validation import pods
from kajitori.machinery import field, objectmeta

Object = dict[str, Any]

MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
NOT_FOR_EPHEMERAL = "cannot be set for an Ephemeral Container"

# The Go fields of EphemeralContainerCommon in declaration order, as JSON names,
# with whether an ephemeral container may set them (upstream's
# allowedEphemeralContainerFields; a field it does not list is refused).
EPHEMERAL_CONTAINER_FIELDS: tuple[tuple[str, bool], ...] = (
    ("name", True),
    ("image", True),
    ("command", True),
    ("args", True),
    ("workingDir", True),
    ("ports", False),
    ("envFrom", True),
    ("env", True),
    ("resources", False),
    ("resizePolicy", False),
    ("restartPolicy", False),
    ("restartPolicyRules", False),
    ("volumeMounts", True),
    ("volumeDevices", True),
    ("livenessProbe", False),
    ("readinessProbe", False),
    ("startupProbe", False),
    ("lifecycle", False),
    ("terminationMessagePath", True),
    ("terminationMessagePolicy", True),
    ("imagePullPolicy", True),
    ("securityContext", True),
    ("stdin", True),
    ("stdinOnce", True),
    ("tty", True),
)
ALLOWED_FIELDS = frozenset(name for name, allowed in EPHEMERAL_CONTAINER_FIELDS if allowed)
# Struct-valued (not pointer) fields: Go sees an empty one as unset.
_STRUCT_FIELDS = frozenset(("resources",))


def _items(value: Any) -> list[Object]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _is_set(name: str, value: Any) -> bool:
    """Whether Go would see the field as different from its zero value.

    A list or map sent empty is still set (Go decodes ``[]`` to an empty,
    non-nil slice, which reflect.DeepEqual tells from nil); a struct is unset
    when all its members are.
    """
    if value is None or value is False or value == 0 or value == "":
        return False
    if name in _STRUCT_FIELDS and isinstance(value, dict):
        return any(member is not None for member in value.values())
    return True


def _disallowed_fields(container: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    for name, allowed in EPHEMERAL_CONTAINER_FIELDS:
        if not allowed and _is_set(name, container.get(name)):
            errs.append(field.forbidden(path.child(name), NOT_FOR_EPHEMERAL))
    return errs


def _sub_paths(container: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    for i, mount in enumerate(_items(container.get("volumeMounts"))):
        mount_path = path.child("volumeMounts").index(i)
        for key in ("subPath", "subPathExpr"):
            if mount.get(key):
                errs.append(field.forbidden(mount_path.child(key), NOT_FOR_EPHEMERAL))
    return errs


def validate_ephemeral_containers(spec: Object, path: field.Path) -> field.ErrorList:
    """validateEphemeralContainers for ``spec.ephemeralContainers`` at ``path``."""
    ephemeral = _items(spec.get("ephemeralContainers"))
    if not ephemeral:
        return field.ErrorList()
    volumes, _ = pods.validate_volumes(spec.get("volumes"), field.Path("spec", "volumes"))
    others = {
        c.get("name") or ""
        for key in ("containers", "initContainers")
        for c in _items(spec.get(key))
    }
    names = set(others)
    errs = field.ErrorList()
    for i, container in enumerate(ephemeral):
        item_path = path.index(i)
        errs.extend(pods.validate_container(container, volumes, item_path))
        image = container.get("image") or ""
        if image != image.strip():  # validateContainerOnlyForPod
            errs.append(
                field.invalid(
                    item_path.child("image"), image, "must not have leading or trailing whitespace"
                )
            )
        name = container.get("name") or ""
        if name in names:
            errs.append(field.duplicate(item_path.child("name"), name))
        else:
            names.add(name)
        target = container.get("targetContainerName") or ""
        if target and target not in others:
            errs.append(field.not_found(item_path.child("targetContainerName"), target))
        errs.extend(_disallowed_fields(container, item_path))
        errs.extend(_sub_paths(container, item_path))
    return errs


def _container_diff(old: Object, new: Object) -> str:
    """A short stand-in for Go's ``cmp.Diff`` of two ephemeral containers."""
    lines = ["  core.EphemeralContainer{"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        if key in old:
            lines.append(f"- \t{key}: {orjson.dumps(old[key]).decode()},")
        if key in new:
            lines.append(f"+ \t{key}: {orjson.dumps(new[key]).decode()},")
    lines.append("  }")
    return "\n".join(lines) + "\n"


def validate_pod_ephemeral_containers_update(new: Object, old: Object) -> field.ErrorList:
    """ValidatePodEphemeralContainersUpdate: ``new`` differs from ``old`` only in them."""
    meta_path = field.Path("metadata")
    new_meta, old_meta = _dict(new.get("metadata")), _dict(old.get("metadata"))
    errs = objectmeta.validate_object_meta_update(new_meta, old_meta, path=meta_path)
    # Upstream's validatePodMetadataAndSpec, as the main update path runs it.
    errs.extend(pods.validate_pod_metadata_and_spec(new))
    spec_path = field.Path("spec", "ephemeralContainers")
    errs.extend(validate_ephemeral_containers(_dict(new.get("spec")), spec_path))
    if MIRROR_POD_ANNOTATION in _dict(old_meta.get("annotations")):
        return field.ErrorList(
            [field.forbidden(field.Path(""), "static pods do not support ephemeral containers")]
        )
    # A patch does not keep their order: match them by name.
    by_name = {c.get("name"): c for c in _items(_dict(new.get("spec")).get("ephemeralContainers"))}
    for container in _items(_dict(old.get("spec")).get("ephemeralContainers")):
        name = container.get("name")
        current = by_name.get(name)
        if current is None:
            message = f'existing ephemeral containers "{name}" may not be removed\n'
            errs.append(field.forbidden(spec_path, message))
        elif current != container:
            message = (
                f'existing ephemeral containers "{name}" may not be changed\n'
                f"{_container_diff(container, current)}"
            )
            errs.append(field.forbidden(spec_path, message))
    return errs
