"""ObjectMeta validation on create and update, shared by every kind.

Owns the rules upstream applies to ``metadata`` of every object: name or
generateName, namespace by scope, labels, annotations (and their 256 KiB
budget), ownerReferences, finalizers, managedFields, and on update the
immutable fields. Mirrors apimachinery ``pkg/api/validation/objectmeta.go`` and
``pkg/apis/meta/v1/validation``, plus the extra finalizer rule that
kubernetes' ``pkg/apis/core/validation.ValidateObjectMeta`` adds for built-in
kinds (custom resources get a warning instead: ``finalizer_warnings``).

Objects are wire dicts; a missing key and a null both mean "unset". Errors are
returned in upstream's order, so the first cause a client sees is the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from kajitori.machinery import field, names, times

FIELD_IMMUTABLE_ERROR_MSG = "field is immutable"
TOTAL_ANNOTATION_SIZE_LIMIT_B = 256 * (1 << 10)
FIELD_MANAGER_MAX_LENGTH = 128
MAX_SUBRESOURCE_NAME_LENGTH = 256
IS_NEGATIVE_ERROR_MSG = "must be greater than or equal to 0"

FINALIZER_ORPHAN_DEPENDENTS = "orphan"
FINALIZER_DELETE_DEPENDENTS = "foregroundDeletion"
FINALIZER_KUBERNETES = "kubernetes"
STANDARD_FINALIZERS = frozenset(
    {FINALIZER_KUBERNETES, FINALIZER_ORPHAN_DEPENDENTS, FINALIZER_DELETE_DEPENDENTS}
)

# Kinds that may never own anything, as (group, version, kind).
_BANNED_OWNERS = frozenset({("", "v1", "Event")})
# Go's json.Marshal order for metav1.OwnerReference, used when a reference is
# the bad value of an error.
_OWNER_REFERENCE_KEYS = ("apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion")


def _mapping(value: Any) -> Mapping[str, Any]:
    if type(value) is dict:  # what decoded JSON holds: no ABC check
        return value
    return value if isinstance(value, Mapping) else {}


def _sequence(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def _quote(text: str) -> str:
    # Go's %q for the ASCII strings these messages carry.
    return orjson.dumps(text).decode()


def _text(meta: Mapping[str, Any], key: str) -> str:
    value = meta.get(key)
    return value if isinstance(value, str) else ""


# --- labels and annotations ----------------------------------------------------


def validate_label_name(name: str, path: field.Path) -> field.ErrorList:
    """A label key (qualified name); errors sit on ``path`` itself, as upstream."""
    return field.ErrorList(field.invalid(path, name, msg) for msg in names.is_qualified_name(name))


# Label keys and values that passed (bounded): the same few labels are on most
# objects written, and a valid text stays valid.
_VALID_LABEL_KEYS: set[str] = set()
_VALID_LABEL_VALUES: set[str] = set()
_VALID_TEXT_LIMIT = 8192


def _remember_valid(seen: set[str], text: str) -> None:
    if len(seen) >= _VALID_TEXT_LIMIT:
        seen.clear()
    seen.add(text)


def validate_labels(labels: Mapping[str, str] | None, path: field.Path) -> field.ErrorList:
    """Label keys and values; errors name the map, not the key (upstream quirk)."""
    errs = field.ErrorList()
    for key, value in _mapping(labels).items():
        text = value if isinstance(value, str) else ""
        if key in _VALID_LABEL_KEYS and text in _VALID_LABEL_VALUES:
            continue
        key_errs = validate_label_name(key, path)
        value_problems = names.is_valid_label_value(text)
        if not key_errs:
            _remember_valid(_VALID_LABEL_KEYS, key)
        if not value_problems:
            _remember_valid(_VALID_LABEL_VALUES, text)
        errs.extend(key_errs)
        errs.extend(field.invalid(path, text, msg) for msg in value_problems)
    return errs


# Annotation keys that passed (bounded, as the label texts above).
_VALID_ANNOTATION_KEYS: set[str] = set()


def annotations_size(annotations: Mapping[str, str] | None) -> int:
    """Bytes counted against the annotation budget: every key plus every value."""
    total = 0
    for key, value in _mapping(annotations).items():
        total += len(key.encode()) + len(str(value).encode())
    return total


def validate_annotations(
    annotations: Mapping[str, str] | None, path: field.Path
) -> field.ErrorList:
    """Annotation keys (qualified names, case-insensitive) and the 256 KiB budget."""
    errs = field.ErrorList()
    for key in _mapping(annotations):
        if key in _VALID_ANNOTATION_KEYS:
            continue
        # Case does not matter for annotation keys, so check the lowered key.
        problems = names.is_qualified_name(key.lower())
        if not problems:
            _remember_valid(_VALID_ANNOTATION_KEYS, key)
        errs.extend(field.invalid(path, key, msg) for msg in problems)
    if annotations_size(annotations) > TOTAL_ANNOTATION_SIZE_LIMIT_B:
        errs.append(field.too_long(path, "", TOTAL_ANNOTATION_SIZE_LIMIT_B))
    return errs


# --- owner references ------------------------------------------------------------


def _parse_group_version(text: str) -> tuple[str, str] | None:
    # schema.ParseGroupVersion: "" and "/" are the empty group-version.
    if text in ("", "/"):
        return ("", "")
    parts = text.split("/")
    if len(parts) == 1:
        return ("", text)
    if len(parts) == 2:
        return (parts[0], parts[1])
    return None


def _owner_reference_value(ref: Mapping[str, Any]) -> dict[str, Any]:
    # As Go marshals metav1.OwnerReference: the four strings always, the two
    # optional booleans only when set.
    value: dict[str, Any] = {key: _text(ref, key) for key in _OWNER_REFERENCE_KEYS[:4]}
    for key in _OWNER_REFERENCE_KEYS[4:]:
        if ref.get(key) is not None:
            value[key] = ref[key]
    return value


def _validate_owner_reference(ref: Mapping[str, Any], path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    api_version = _text(ref, "apiVersion")
    group_version = _parse_group_version(api_version)
    if not api_version:
        errs.append(field.required(path.child("apiVersion"), "must not be empty"))
    elif group_version is None or not group_version[1]:
        errs.append(
            field.invalid(
                path.child("apiVersion"), api_version, "must be <group>/<version> or <version>"
            )
        )
    for key in ("kind", "name", "uid"):
        if not _text(ref, key):
            errs.append(field.required(path.child(key), "must not be empty"))
    group, version = group_version or ("", "")
    kind = _text(ref, "kind")
    if (group, version, kind) in _BANNED_OWNERS:
        errs.append(
            field.invalid(
                path,
                _owner_reference_value(ref),
                f"{group}/{version}, Kind={kind} is disallowed from being an owner",
            )
        )
    return errs


def validate_owner_references(references: Any, path: field.Path) -> field.ErrorList:
    """Each reference is complete; at most one has ``controller: true``."""
    errs = field.ErrorList()
    refs = [_mapping(ref) for ref in _sequence(references)]
    first_controller = ""
    for i, ref in enumerate(refs):
        errs.extend(_validate_owner_reference(ref, path.index(i)))
        if ref.get("controller") is True:
            current = f"{_text(ref, 'kind')}/{_text(ref, 'name')}"
            if first_controller:
                errs.append(
                    field.invalid(
                        path,
                        [_owner_reference_value(r) for r in refs],
                        "Only one reference can have Controller set to true. "
                        f'Found "true" in references for {first_controller} and {current}',
                    )
                )
            else:
                first_controller = current
    return errs


# --- finalizers ------------------------------------------------------------------


def validate_finalizer_name(name: str, path: field.Path) -> field.ErrorList:
    """A finalizer is a qualified name (apimachinery's rule)."""
    return field.ErrorList(field.invalid(path, name, msg) for msg in names.is_qualified_name(name))


def validate_kube_finalizer_name(name: str, path: field.Path) -> field.ErrorList:
    """Built-in kinds: an unqualified finalizer must be one of the standard three."""
    if "/" not in name and name not in STANDARD_FINALIZERS:
        return field.ErrorList(
            [
                field.invalid(
                    path,
                    name,
                    "name is neither a standard finalizer name nor is it fully qualified",
                )
            ]
        )
    return field.ErrorList()


def validate_finalizers(finalizers: Any, path: field.Path) -> field.ErrorList:
    """Finalizer names, and never both ``orphan`` and ``foregroundDeletion``.

    Name errors sit on the list's path, not the item's, as upstream.
    """
    items = [f for f in _sequence(finalizers) if isinstance(f, str)]
    errs = field.ErrorList()
    for name in items:
        errs.extend(validate_finalizer_name(name, path))
    if FINALIZER_ORPHAN_DEPENDENTS in items and FINALIZER_DELETE_DEPENDENTS in items:
        errs.append(
            field.invalid(
                path,
                items,
                f"finalizer {FINALIZER_ORPHAN_DEPENDENTS} and {FINALIZER_DELETE_DEPENDENTS} "
                "cannot be both set",
            )
        )
    return errs


def _validate_kube_finalizers(finalizers: Any, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    for i, name in enumerate(_sequence(finalizers)):
        if isinstance(name, str):
            errs.extend(validate_kube_finalizer_name(name, path.index(i)))
    return errs


def finalizer_warnings(finalizers: Any, path: field.Path) -> list[str]:
    """Warnings (not errors) custom resources get for finalizer names.

    Upstream's apiextensions validator: bad syntax, and unqualified names that
    are not one of the standard finalizers.
    """
    warnings: list[str] = []
    for i, name in enumerate(_sequence(finalizers)):
        if not isinstance(name, str):
            continue
        item = path.index(i)
        quoted = _quote(name)
        warnings.extend(f"{item}: {quoted}: {msg}" for msg in names.is_qualified_name(name))
        if "/" not in name and name not in STANDARD_FINALIZERS:
            # A dotted name looks like a domain already: the hint asks for a path.
            hint = " including a path (/)" if "." in name else ""
            warnings.append(
                f"{item}: {quoted}: prefer a domain-qualified finalizer name{hint} "
                "to avoid accidental conflicts with other finalizer writers"
            )
    return warnings


def validate_no_new_finalizers(new: Any, old: Any, path: field.Path) -> field.ErrorList:
    """While an object is being deleted no finalizer may be added."""
    extra = sorted(set(_sequence(new)) - set(_sequence(old)))
    if not extra:
        return field.ErrorList()
    rendered = ", ".join(_quote(name) for name in extra)
    return field.ErrorList(
        [
            field.forbidden(
                path,
                "no new finalizers can be added if the object is being deleted, "
                f"found new finalizers []string{{{rendered}}}",
            )
        ]
    )


# --- managed fields -----------------------------------------------------------------


def validate_field_manager(manager: str, path: field.Path) -> field.ErrorList:
    """At most 128 bytes, printable characters only."""
    errs = field.ErrorList()
    if len(manager.encode()) > FIELD_MANAGER_MAX_LENGTH:
        errs.append(field.too_long(path, "", FIELD_MANAGER_MAX_LENGTH))
    if manager.isprintable():  # the usual case: no character to report
        return errs
    position = 0
    for ch in manager:
        if not ch.isprintable():
            errs.append(
                field.invalid(
                    path,
                    manager,
                    f"invalid character U+{ord(ch):04X} (at position {position})",
                )
            )
        position += len(ch.encode())
    return errs


def validate_managed_fields(entries: Any, path: field.Path) -> field.ErrorList:
    """Each entry names an operation (Apply/Update), FieldsV1, a valid manager."""
    errs = field.ErrorList()
    for i, raw in enumerate(_sequence(entries)):
        entry = _mapping(raw)
        if _plainly_valid_entry(entry):
            continue
        item = path.index(i)
        operation = _text(entry, "operation")
        if not operation:
            errs.append(field.required(item.child("operation"), "must not be empty"))
        elif operation not in ("Apply", "Update"):
            errs.append(
                field.not_supported(item.child("operation"), operation, ["Apply", "Update"])
            )
        fields_type = _text(entry, "fieldsType")
        if fields_type and fields_type != "FieldsV1":
            errs.append(field.invalid(item.child("fieldsType"), fields_type, "must be `FieldsV1`"))
        errs.extend(validate_field_manager(_text(entry, "manager"), item.child("manager")))
        if len(_text(entry, "subresource").encode()) > MAX_SUBRESOURCE_NAME_LENGTH:
            errs.append(field.too_long(item.child("subresource"), "", MAX_SUBRESOURCE_NAME_LENGTH))
    return errs


def _plainly_valid_entry(entry: Mapping[str, Any]) -> bool:
    """The usual entry, which the checks above pass, told without building their paths."""
    manager = entry.get("manager")
    subresource = entry.get("subresource", "")
    return (
        entry.get("operation") in ("Apply", "Update")
        and entry.get("fieldsType", "") in ("", "FieldsV1")
        and isinstance(manager, str)
        and manager.isprintable()
        and len(manager) * 4 <= FIELD_MANAGER_MAX_LENGTH  # bytes: at most 4 per character
        and isinstance(subresource, str)
        and len(subresource) * 4 <= MAX_SUBRESOURCE_NAME_LENGTH
    )


# --- create ---------------------------------------------------------------------


def validate_nonnegative_field(value: int, path: field.Path) -> field.ErrorList:
    if value < 0:
        return field.ErrorList([field.invalid(path, value, IS_NEGATIVE_ERROR_MSG)])
    return field.ErrorList()


def _validate_name(
    meta: Mapping[str, Any], name_validator: names.NameValidator, path: field.Path
) -> field.ErrorList:
    errs = field.ErrorList()
    generate_name = _text(meta, "generateName")
    if generate_name:
        errs.extend(
            field.invalid(path.child("generateName"), generate_name, msg)
            for msg in name_validator(generate_name, True)
        )
    name = _text(meta, "name")
    if not name:
        errs.append(field.required(path.child("name"), "name or generateName is required"))
    else:
        problems = name_validator(name, False)
        if problems:  # the path only when there is something to report
            name_path = path.child("name")
            errs.extend(field.invalid(name_path, name, msg) for msg in problems)
    return errs


def _validate_namespace(
    meta: Mapping[str, Any], namespaced: bool, path: field.Path
) -> field.ErrorList:
    namespace = _text(meta, "namespace")
    if not namespaced:
        if namespace:
            return field.ErrorList(
                [field.forbidden(path.child("namespace"), "not allowed on this type")]
            )
        return field.ErrorList()
    if not namespace:
        return field.ErrorList([field.required(path.child("namespace"))])
    if namespace in _VALID_NAMESPACES:
        return field.ErrorList()
    problems = names.validate_namespace_name(namespace, False)
    if not problems:
        _remember_valid(_VALID_NAMESPACES, namespace)
        return field.ErrorList()
    namespace_path = path.child("namespace")
    return field.ErrorList(field.invalid(namespace_path, namespace, msg) for msg in problems)


# Namespace names that passed (bounded, as the label texts above).
_VALID_NAMESPACES: set[str] = set()


def _generation(meta: Mapping[str, Any]) -> int:
    value = meta.get("generation")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _passes_at_a_glance(key: str, value: Any) -> bool:
    """Whether ``validate_labels`` / ``validate_managed_fields`` would find nothing, told cheaply.

    Labels whose every key and value passed before (``_VALID_LABEL_KEYS``,
    ``_VALID_LABEL_VALUES``), and managedFields whose every entry is
    ``_plainly_valid_entry``: the checks' own shortcuts, taken without
    building their field paths. Anything else (other fields included) gets
    the full check.
    """
    if key == "labels":
        return type(value) is dict and all(
            type(text) is str and label in _VALID_LABEL_KEYS and text in _VALID_LABEL_VALUES
            for label, text in value.items()
        )
    if key == "managedFields":
        return type(value) is list and all(
            type(entry) is dict and _plainly_valid_entry(entry) for entry in value
        )
    return False


# validate_object_meta's checks of optional fields, in upstream's order.
_META_FIELD_CHECKS: tuple[tuple[str, Callable[[Any, field.Path], field.ErrorList]], ...] = (
    ("labels", validate_labels),
    ("annotations", validate_annotations),
    ("ownerReferences", validate_owner_references),
    ("finalizers", validate_finalizers),
    ("managedFields", validate_managed_fields),
)


def validate_object_meta(
    meta: Mapping[str, Any] | None,
    *,
    namespaced: bool,
    name_validator: names.NameValidator,
    path: field.Path,
    kube_finalizers: bool = True,
) -> field.ErrorList:
    """Validate ``metadata`` of an object being created (after name generation).

    ``kube_finalizers`` adds the built-in kinds' rule that unqualified
    finalizers must be standard ones; pass False for custom resources.
    """
    meta = _mapping(meta)
    errs = field.ErrorList().extend_all(
        _validate_name(meta, name_validator, path),
        _validate_namespace(meta, namespaced, path),
    )
    if _generation(meta) < 0:
        errs.extend(validate_nonnegative_field(_generation(meta), path.child("generation")))
    # Each of these finds nothing in an absent field, nor in labels or
    # managedFields that pass at a glance; skipping them (and their paths)
    # is most of this function's cost on a typical create.
    for key, validate in _META_FIELD_CHECKS:
        value = meta.get(key)
        if value is not None and not _passes_at_a_glance(key, value):
            errs.extend(validate(value, path.child(key)))
    finalizers = meta.get("finalizers")
    if kube_finalizers and finalizers is not None:
        errs.extend(_validate_kube_finalizers(finalizers, path.child("finalizers")))
    return errs


# --- update ---------------------------------------------------------------------


def _semantically_equal(new: Any, old: Any) -> bool:
    if new == old:  # what nearly every update sends; equal texts name one instant
        return True
    # apiequality.Semantic compares metav1.Time by instant, not by spelling.
    new_time, old_time = times.parse_time(new), times.parse_time(old)
    if new_time is not None and old_time is not None:
        return new_time == old_time
    return bool(new == old)


def validate_immutable_field(new: Any, old: Any, path: field.Path) -> field.ErrorList:
    """``field is immutable`` unless new and old are semantically equal."""
    if _semantically_equal(new, old):
        return field.ErrorList()
    return field.ErrorList([field.invalid(path, new, FIELD_IMMUTABLE_ERROR_MSG)])


# The fields an update may not change, as ``_validate_immutables`` checks them.
_IMMUTABLE_KEYS = (
    "name",
    "namespace",
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)


def _validate_immutables(
    new: Mapping[str, Any], old: Mapping[str, Any], path: field.Path
) -> field.ErrorList:
    errs = field.ErrorList()
    for key in _IMMUTABLE_KEYS:
        if new.get(key) != old.get(key):
            break
    else:
        return errs  # equal values: equal texts, the same instant (the usual update)
    # The paths are built only for a field that changed (nearly never).
    for key in ("name", "namespace", "uid"):
        new_text, old_text = _text(new, key), _text(old, key)
        if new_text != old_text:
            errs.extend(validate_immutable_field(new_text, old_text, path.child(key)))
    for key in ("creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
        new_value, old_value = new.get(key), old.get(key)
        if not _semantically_equal(new_value, old_value):
            errs.extend(validate_immutable_field(new_value, old_value, path.child(key)))
    return errs


def _validate_generation_update(
    new: Mapping[str, Any], old: Mapping[str, Any], path: field.Path
) -> field.ErrorList:
    generation = _generation(new)
    if generation >= 0 and generation >= _generation(old):
        return field.ErrorList()  # the usual update: no path built
    errs = validate_nonnegative_field(generation, path.child("generation"))
    if generation < _generation(old):
        errs.append(field.invalid(path.child("generation"), generation, "must not be decremented"))
    return errs


def validate_object_meta_update(
    new: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    *,
    path: field.Path,
    kube_finalizers: bool = True,
) -> field.ErrorList:
    """Validate ``metadata`` of an update against the stored object's.

    Name, namespace and generateName syntax are not re-checked (upstream
    doesn't); name, namespace, uid, creationTimestamp, deletionTimestamp and
    deletionGracePeriodSeconds must not change, and resourceVersion must be set.
    generateName may change freely.

    ``old`` is the stored metadata, which passed these same validators when
    it was written: a part (labels, annotations, ...) equal to the stored one
    is not validated again (``_validate_update``).
    """
    return _validate_update(
        _mapping(new), _mapping(old), path, kube_finalizers=kube_finalizers, trust_stored=True
    )


# The parts of ``metadata`` an update validates by a function of the part's
# value alone, in upstream's order; ``_validate_kube_finalizers`` follows for
# built-in kinds.
_UPDATE_PART_CHECKS: tuple[tuple[str, Callable[[Any, field.Path], field.ErrorList]], ...] = (
    ("labels", validate_labels),
    ("annotations", validate_annotations),
    ("ownerReferences", validate_owner_references),
    ("managedFields", validate_managed_fields),
)
_KUBE_FINALIZERS_CHECK = (("finalizers", _validate_kube_finalizers),)
# The parts compared with the stored ones. managedFields is not: nearly every
# write changes it (its own entry's time and fields), and comparing the
# creator's large entry first would cost more than validating every entry.
_COMPARED_PARTS = ("labels", "annotations", "ownerReferences", "finalizers")


def _validate_update(
    new: Mapping[str, Any],
    old: Mapping[str, Any],
    path: field.Path,
    *,
    kube_finalizers: bool,
    trust_stored: bool,
) -> field.ErrorList:
    """``validate_object_meta_update``'s checks; ``trust_stored`` skips parts equal to ``old``'s.

    Each part check is a function of the part's value only, so a part equal
    to the stored one gets the stored one's answer: none, as it was
    validated when it was written. The usual update (a kubelet's or a
    controller's status write) sends the stored labels, annotations, owners
    and finalizers back, so only managedFields is walked. The relational
    checks (resourceVersion, generation, immutable fields, no new finalizers
    while deleting) always run; they build no path unless they find
    something. False for ``trust_stored``: every part is validated (the
    tests' reference).
    """
    errs = field.ErrorList()
    if old.get("deletionTimestamp") is not None:
        errs.extend(
            validate_no_new_finalizers(
                new.get("finalizers"), old.get("finalizers"), path.child("finalizers")
            )
        )
    if not _text(new, "resourceVersion"):
        errs.append(
            field.invalid(path.child("resourceVersion"), "", "must be specified for an update")
        )
    errs.extend(_validate_generation_update(new, old, path))
    errs.extend(_validate_immutables(new, old, path))
    unchanged = _unchanged_parts(new, old) if trust_stored else ()
    checks = (
        _UPDATE_PART_CHECKS + _KUBE_FINALIZERS_CHECK if kube_finalizers else _UPDATE_PART_CHECKS
    )
    for key, validate in checks:
        if key not in unchanged:
            errs.extend(validate(new.get(key), path.child(key)))
    return errs


def _unchanged_parts(new: Mapping[str, Any], old: Mapping[str, Any]) -> set[str]:
    """The ``_COMPARED_PARTS`` of ``new`` that are the stored ones: the same objects, or the same JSON.

    ``==`` alone is not enough: Python finds ``1 == True`` and ``1 == 1.0``,
    which the checks tell apart (``controller: true`` is counted, 1 is not;
    an annotation's size is its text's). So the parts found equal are also
    encoded, all in one text each side (the usual case: equal texts); when
    the texts differ, or a part does not encode, those parts are validated.
    """
    same: set[str] = set()
    equal: list[str] = []
    for key in _COMPARED_PARTS:
        value, stored = new.get(key), old.get(key)
        if value is stored:
            same.add(key)
        elif value == stored:
            equal.append(key)
    if equal:
        try:
            texts_equal = orjson.dumps([new.get(k) for k in equal]) == orjson.dumps(
                [old.get(k) for k in equal]
            )
        except (orjson.JSONEncodeError, TypeError):
            texts_equal = False
        if texts_equal:
            same.update(equal)
    return same
