"""Validation of CustomResourceDefinitions (upstream: apiextensions/validation/validation.go).

Owns: the name is ``<plural>.<group>``; names are DNS-1035 labels and kinds
are identifiers; scope is Cluster or Namespaced; exactly one storage version;
every served schema is structural (every node typed, object at the root,
metadata limited to name/generateName) with upstream's messages; CEL rules
compile; printer columns are well formed. Protected groups (``*.k8s.io``,
``*.kubernetes.io``) need the ``api-approved.kubernetes.io`` annotation.
"""

from __future__ import annotations

import re
from typing import Any

from kajitori.api.apiextensions_v1 import cel
from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]

_SCOPES = ("Cluster", "Namespaced")
_COLUMN_TYPES = ("boolean", "date", "integer", "number", "string")
_TYPES = ("array", "boolean", "integer", "number", "object", "string")
_KIND = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
APPROVAL_ANNOTATION = "api-approved.kubernetes.io"


def validate_crd(obj: Object) -> field.ErrorList:
    root = field.Path("metadata")
    meta = obj.get("metadata") or {}
    errs = objectmeta.validate_object_meta(
        meta, namespaced=False, name_validator=names.name_is_dns_subdomain, path=root
    )
    spec = obj.get("spec") or {}
    group, plural = spec.get("group", ""), (spec.get("names") or {}).get("plural", "")
    if meta.get("name") != f"{plural}.{group}":
        errs.append(
            field.invalid(
                root.child("name"), meta.get("name"), 'must be spec.names.plural+"."+spec.group'
            )
        )
    errs.extend(_validate_approval(meta, group))
    errs.extend(validate_spec(spec, field.Path("spec")))
    return errs


def validate_crd_update(obj: Object, old: Object) -> field.ErrorList:
    errs = objectmeta.validate_object_meta_update(
        obj.get("metadata"), old.get("metadata"), path=field.Path("metadata")
    )
    spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
    if spec.get("group") != old_spec.get("group"):
        errs.append(field.invalid("spec.group", spec.get("group"), "field is immutable"))
    if spec.get("scope") != old_spec.get("scope"):
        errs.append(field.invalid("spec.scope", spec.get("scope"), "field is immutable"))
    errs.extend(validate_spec(spec, field.Path("spec")))
    return errs


def _validate_approval(meta: Object, group: str) -> field.ErrorList:
    errs = field.ErrorList()
    protected = group.endswith((".k8s.io", ".kubernetes.io"))
    annotations = meta.get("annotations") or {}
    if protected and APPROVAL_ANNOTATION not in annotations:
        errs.append(
            field.required(
                f"metadata.annotations[{APPROVAL_ANNOTATION}]",
                f'protected groups must have approval annotation "{APPROVAL_ANNOTATION}", '
                "see https://github.com/kubernetes/enhancements/pull/1111",
            )
        )
    return errs


def validate_spec(spec: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    group = spec.get("group", "")
    if not group:
        errs.append(field.required(path.child("group")))
    else:
        errs.extend(field.invalid(path.child("group"), group, m) for m in _group_problems(group))
    scope = spec.get("scope", "")
    if not scope:
        errs.append(field.required(path.child("scope")))
    elif scope not in _SCOPES:
        errs.append(field.not_supported(path.child("scope"), scope, _SCOPES))
    errs.extend(_validate_names(spec.get("names") or {}, path.child("names")))
    errs.extend(_validate_versions(spec.get("versions") or [], path.child("versions")))
    return errs


def _group_problems(group: str) -> list[str]:
    problems = names.is_dns1123_subdomain(group)
    if "." not in group:
        problems.append("should be a domain with at least one dot")
    return problems


def _validate_names(crd_names: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    for key in ("plural", "singular"):
        value = crd_names.get(key, "")
        if not value:
            if key == "plural":
                errs.append(field.required(path.child(key)))
            continue
        errs.extend(field.invalid(path.child(key), value, m) for m in names.is_dns1035_label(value))
    for key in ("kind", "listKind"):
        value = crd_names.get(key, "")
        if not value:
            errs.append(field.required(path.child(key)))
        elif not _KIND.match(value):
            errs.append(
                field.invalid(
                    path.child(key),
                    value,
                    "may have mixed case, but should otherwise match: [a-z]([-a-z0-9]*[a-z0-9])?",
                )
            )
    if crd_names.get("kind") and crd_names.get("kind") == crd_names.get("listKind"):
        errs.append(
            field.invalid(
                path.child("listKind"),
                crd_names["listKind"],
                "kind and listKind may not be the same",
            )
        )
    for key in ("shortNames", "categories"):
        for i, value in enumerate(crd_names.get(key) or []):
            for m in names.is_dns1035_label(value):
                errs.append(field.invalid(path.child(key).index(i), value, m))
    return errs


def _validate_versions(versions: list[Any], path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    if not versions:
        errs.append(
            field.invalid(path, versions, "must have exactly one version marked as storage version")
        )
        return errs
    storage = sum(1 for v in versions if isinstance(v, dict) and v.get("storage"))
    if storage != 1:
        errs.append(
            field.invalid(path, versions, "must have exactly one version marked as storage version")
        )
    if not any(isinstance(v, dict) and v.get("served") for v in versions):
        errs.append(field.invalid(path, versions, "must have at least one served version"))
    seen: set[str] = set()
    for i, version in enumerate(versions):
        vpath = path.index(i)
        name = version.get("name", "") if isinstance(version, dict) else ""
        if not name:
            errs.append(field.required(vpath.child("name")))
        else:
            errs.extend(
                field.invalid(vpath.child("name"), name, m) for m in names.is_dns1035_label(name)
            )
            if name in seen:
                errs.append(field.duplicate(vpath.child("name"), name))
            seen.add(name)
        if isinstance(version, dict):
            errs.extend(_validate_version(version, vpath))
    return errs


def _validate_version(version: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    schema = (version.get("schema") or {}).get("openAPIV3Schema")
    spath = path.child("schema", "openAPIV3Schema")
    if not isinstance(schema, dict):
        errs.append(field.required(spath, "schemas are required"))
    else:
        errs.extend(validate_structural(schema, spath))
        rule_errs = field.ErrorList()
        for rule_path, rule, node in cel.rules_with_schema(schema, str(spath)):
            rule_errs.extend(_validate_rule(rule, rule_path))
            rule_errs.extend(_validate_rule_field_path(rule, rule_path, node))
        errs.extend(rule_errs)
        if not rule_errs:
            errs.extend(cel.check_costs(schema, str(spath)))
    for i, column in enumerate(version.get("additionalPrinterColumns") or []):
        errs.extend(_validate_column(column, path.child("additionalPrinterColumns").index(i)))
    return errs


_REASONS = ("FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired")


def _validate_rule(rule: Object, path: str) -> field.ErrorList:
    """One x-kubernetes-validations entry: it compiles, and its companions are well formed."""
    errs = field.ErrorList()
    source = str(rule.get("rule", "")).strip()
    if not source:
        errs.append(field.required(f"{path}.rule", "rule is not specified"))
        return errs
    problem = cel.compile_problem(source)
    if problem:
        errs.append(field.invalid(f"{path}.rule", rule["rule"], f"compilation failed: {problem}"))
    message = rule.get("message")
    if message is not None and message != "" and not str(message).strip():
        errs.append(
            field.invalid(f"{path}.message", message, "message must be non-empty if specified")
        )
    elif message and _NEWLINES.search(str(message).strip()):
        errs.append(
            field.invalid(f"{path}.message", message, "message must not contain line breaks")
        )
    elif _NEWLINES.search(source) and not str(message or "").strip():
        errs.append(
            field.required(
                f"{path}.message", "message must be specified if rule contains line breaks"
            )
        )
    expression = rule.get("messageExpression")
    if expression is not None and expression != "":
        if not str(expression).strip():
            errs.append(
                field.required(
                    f"{path}.messageExpression", "messageExpression must be non-empty if specified"
                )
            )
        elif (expression_problem := cel.compile_problem(expression)) is not None:
            errs.append(
                field.invalid(
                    f"{path}.messageExpression",
                    expression,
                    f"messageExpression compilation failed: {expression_problem}",
                )
            )
    reason = rule.get("reason")
    if reason is not None and reason not in _REASONS:
        errs.append(field.not_supported(f"{path}.reason", reason, _REASONS))
    if "optionalOldSelf" in rule and not problem and not cel.compile_rule(source).uses_old_self:
        errs.append(
            field.invalid(
                f"{path}.optionalOldSelf",
                rule["optionalOldSelf"],
                "may not be set if oldSelf is not used in rule",
            )
        )
    return errs


_NEWLINES = re.compile(r"[\n\r]+")


def _validate_rule_field_path(rule: Object, path: str, node: Object) -> field.ErrorList:
    """A rule's fieldPath: non-empty, one line, and naming a field of the rule's node."""
    errs = field.ErrorList()
    value = rule.get("fieldPath")
    if not value:
        return errs
    where = f"{path}.fieldPath"
    if not str(value).strip():
        errs.append(field.invalid(where, value, "fieldPath must be non-empty if specified"))
    elif _NEWLINES.search(str(value)):
        errs.append(field.invalid(where, value, "fieldPath must not contain line breaks"))
    elif not cel.field_path_valid(node, str(value)):
        errs.append(field.invalid(where, value, "fieldPath must be a valid path"))
    return errs


def _validate_column(column: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    if not column.get("name"):
        errs.append(field.required(path.child("name")))
    if not column.get("type"):
        errs.append(field.required(path.child("type")))
    elif column["type"] not in _COLUMN_TYPES:
        errs.append(field.not_supported(path.child("type"), column["type"], _COLUMN_TYPES))
    if not column.get("jsonPath"):
        errs.append(field.required(path.child("jsonPath")))
    return errs


# ----- structural schemas -----------------------------------------------------------------


def validate_structural(schema: Object, path: field.Path) -> field.ErrorList:
    """Upstream's structural-schema rules, with its messages."""
    errs = field.ErrorList()
    if schema.get("type") != "object":
        if not schema.get("type"):
            errs.append(field.required(path.child("type"), "must not be empty at the root"))
        else:
            errs.append(
                field.invalid(path.child("type"), schema["type"], "must be object at the root")
            )
    for key, child in (schema.get("properties") or {}).items():
        if key == "metadata" and isinstance(child, dict):
            errs.extend(_validate_root_metadata(child, path.child("properties").key(key)))
        if isinstance(child, dict):
            _walk(child, path.child("properties").key(key), "specified object fields", errs)
    return errs


def _validate_root_metadata(schema: Object, path: field.Path) -> field.ErrorList:
    allowed = {"type", "properties", "description"}
    props = set((schema.get("properties") or {}).keys())
    if set(schema) - allowed or props - {"name", "generateName"}:
        return field.ErrorList(
            [
                field.forbidden(
                    path,
                    "must not specify anything other than name and generateName, but metadata is implicitly specified",
                )
            ]
        )
    return field.ErrorList()


def _walk(schema: Object, path: field.Path, where: str, errs: field.ErrorList) -> None:
    typ = schema.get("type", "")
    int_or_string = schema.get("x-kubernetes-int-or-string")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields")
    if not typ and not int_or_string and not preserve:
        errs.append(field.required(path.child("type"), f"must not be empty for {where}"))
    elif typ and typ not in _TYPES:
        errs.append(field.not_supported(path.child("type"), typ, _TYPES))
    if int_or_string and typ:
        errs.append(
            field.invalid(
                path.child("type"), typ, "must be empty if x-kubernetes-int-or-string is true"
            )
        )
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "map" and not schema.get("x-kubernetes-list-map-keys"):
        errs.append(
            field.required(
                path.child("x-kubernetes-list-map-keys"),
                "must not be empty if x-kubernetes-list-type is map",
            )
        )
    if typ == "array" and not isinstance(schema.get("items"), dict):
        errs.append(field.required(path.child("items"), "must be specified"))
    for key, child in (schema.get("properties") or {}).items():
        if isinstance(child, dict):
            _walk(child, path.child("properties").key(key), "specified object fields", errs)
    if isinstance(schema.get("items"), dict):
        _walk(schema["items"], path.child("items"), "specified array items", errs)
    if isinstance(schema.get("additionalProperties"), dict):
        _walk(
            schema["additionalProperties"],
            path.child("additionalProperties"),
            "specified additionalProperties",
            errs,
        )
