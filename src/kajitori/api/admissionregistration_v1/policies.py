"""ValidatingAdmissionPolicies and their bindings: defaults and validation.

Upstream: pkg/apis/admissionregistration/v1/defaults.go and
pkg/apis/admissionregistration/validation (the ValidatingAdmissionPolicy
parts), in upstream's words, paths and order.

- defaults: a policy's ``failurePolicy: Fail``; wherever match resources
  appear (a policy's ``matchConstraints``, a binding's ``matchResources``)
  ``matchPolicy: Equivalent``, empty namespace and object selectors, and each
  rule's ``scope: "*"``;
- a policy needs ``matchConstraints`` with ``resourceRules``, at least one
  of ``validations`` / ``auditAnnotations``, CEL that compiles with the
  variables each expression may use (``policy_cel``), variable names that
  are CEL identifiers, single-line messages, a ``reason`` upstream supports
  and a well-formed ``paramKind``;
- a binding needs ``policyName``, ``validationActions`` (unique, among
  Deny/Warn/Audit, never Deny with Warn) and, if it has one, a ``paramRef``
  with exactly one of name or selector and a ``parameterNotFoundAction``.
  Upstream reports a binding's match resources under ``spec.matchResouces``
  (sic); so does this module.

On update, match conditions are not recompiled when neither they nor
``paramKind`` changed (upstream's ratcheting). Rule, selector and match
condition checks are shared with the webhook configurations (``webhooks``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from kajitori.api.admissionregistration_v1 import policy_cel, webhooks
from kajitori.machinery import field, labels, names, objectmeta

Object = dict[str, Any]

_FAILURE_POLICIES = ("Fail", "Ignore")
_MATCH_POLICIES = ("Equivalent", "Exact")
_REASONS = ("Forbidden", "Invalid", "RequestEntityTooLarge")
_ACTIONS = ("Audit", "Deny", "Warn")
_NOT_FOUND_ACTIONS = ("Deny", "Allow")
MAX_AUDIT_ANNOTATIONS = 20
MAX_AUDIT_VALUE_EXPRESSION_LENGTH = 5 * 1024
_CEL_IDENTIFIER = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")
_CEL_RESERVED = frozenset(
    {
        "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
        "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
        "void", "while",
    }
)  # fmt: skip
_NEWLINES = re.compile(r"[\n\r]+")


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _items(spec: Object, key: str) -> list[Object]:
    return [_dict(item) for item in _list(spec.get(key))]


class _GoActions:
    """A []ValidationAction as Go's ``%#v`` prints it in a field error."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def __repr__(self) -> str:
        quoted = ", ".join(orjson.dumps(str(item)).decode() for item in self.items)
        return f"[]admissionregistration.ValidationAction{{{quoted}}}"


# ----- defaults ----------------------------------------------------------------------------


def set_defaults_policy(obj: Object) -> None:
    """SetDefaults_ValidatingAdmissionPolicySpec and the defaults of what it contains."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if spec.get("failurePolicy") is None:
        spec["failurePolicy"] = "Fail"
    if isinstance(spec.get("matchConstraints"), dict):
        set_defaults_match_resources(spec["matchConstraints"])


def set_defaults_binding(obj: Object) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict) and isinstance(spec.get("matchResources"), dict):
        set_defaults_match_resources(spec["matchResources"])


def set_defaults_match_resources(match: Object) -> None:
    """SetDefaults_MatchResources (and SetDefaults_Rule for every rule in it)."""
    if match.get("matchPolicy") is None:
        match["matchPolicy"] = "Equivalent"
    for key in ("namespaceSelector", "objectSelector"):
        if match.get(key) is None:
            match[key] = {}
    for key in ("resourceRules", "excludeResourceRules"):
        for rule in _list(match.get(key)):
            if isinstance(rule, dict) and rule.get("scope") is None:
                rule["scope"] = "*"


# ----- policies ----------------------------------------------------------------------------


def validate_policy(obj: Object) -> field.ErrorList:
    """ValidateValidatingAdmissionPolicy."""
    return _validate_policy(obj, ignore_match_conditions=False)


def validate_policy_update(new: Object, old: Object) -> field.ErrorList:
    """ValidateValidatingAdmissionPolicyUpdate, plus the ObjectMeta update rules."""
    errs = _validate_policy(new, ignore_match_conditions=match_conditions_unchanged(new, old))
    errs.extend(metadata_update_problems(new, old))
    return errs


def match_conditions_unchanged(new: Object, old: Object) -> bool:
    """Whether an update keeps a policy's paramKind and matchConditions: both policy kinds
    then skip compiling the conditions again (upstream's ratcheting)."""
    new_spec, old_spec = _dict(new.get("spec")), _dict(old.get("spec"))
    return new_spec.get("paramKind") == old_spec.get("paramKind") and new_spec.get(
        "matchConditions"
    ) == old_spec.get("matchConditions")


def metadata_update_problems(new: Object, old: Object) -> field.ErrorList:
    return objectmeta.validate_object_meta_update(
        _dict(new.get("metadata")), _dict(old.get("metadata")), path=field.Path("metadata")
    )


def validate_policy_status(obj: Object) -> field.ErrorList:
    """ValidateValidatingAdmissionPolicyStatusUpdate: type-checking warnings and conditions."""
    errs = field.ErrorList()
    status = _dict(obj.get("status"))
    path = field.Path("status", "typeChecking", "expressionWarnings")
    for i, warning in enumerate(_list(_dict(status.get("typeChecking")).get("expressionWarnings"))):
        warning = _dict(warning)
        if not warning.get("warning"):
            errs.append(field.required(path.index(i).child("warning")))
        if not _str(warning.get("fieldRef")).strip():
            errs.append(field.required(path.index(i).child("fieldRef")))
    return errs


def _validate_policy(obj: Object, *, ignore_match_conditions: bool) -> field.ErrorList:
    errs = objectmeta.validate_object_meta(
        _dict(obj.get("metadata")),
        namespaced=False,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )
    spec = _dict(obj.get("spec"))
    name = _str(_dict(obj.get("metadata")).get("name"))
    errs.extend(_validate_policy_spec(spec, name, field.Path("spec"), ignore_match_conditions))
    return errs


def _validate_policy_spec(
    spec: Object, name: str, path: field.Path, ignore_match_conditions: bool
) -> field.ErrorList:
    errs = field.ErrorList()
    failure = spec.get("failurePolicy")
    if failure is None:
        errs.append(field.required(path.child("failurePolicy")))
    elif failure not in _FAILURE_POLICIES:
        errs.append(field.not_supported(path.child("failurePolicy"), failure, _FAILURE_POLICIES))
    has_params = spec.get("paramKind") is not None
    if has_params:
        errs.extend(validate_param_kind(_dict(spec.get("paramKind")), path.child("paramKind")))
    constraints = spec.get("matchConstraints")
    if constraints is None:
        errs.append(field.required(path.child("matchConstraints")))
    else:
        errs.extend(validate_match_resources(_dict(constraints), path.child("matchConstraints")))
        if not _list(_dict(constraints).get("resourceRules")):
            errs.append(field.required(path.child("matchConstraints", "resourceRules")))
    if not ignore_match_conditions:
        variables = policy_cel.environment(params=has_params, authorizer=True, variable_types=None)
        errs.extend(
            webhooks.validate_match_conditions(
                spec.get("matchConditions"),
                path.child("matchConditions"),
                variables=variables.names,
            )
        )
    variable_types = _validate_variables(spec, has_params, path.child("variables"), errs)
    validations = _items(spec, "validations")
    audits = _items(spec, "auditAnnotations")
    if not validations and not audits:
        detail = "validations or auditAnnotations must contain at least one item"
        errs.append(field.required(path.child("validations"), detail))
        errs.append(field.required(path.child("auditAnnotations"), detail))
        return errs
    for i, validation in enumerate(validations):
        errs.extend(
            _validate_validation(
                validation, has_params, variable_types, path.child("validations").index(i)
            )
        )
    if spec.get("auditAnnotations") is not None:
        errs.extend(_validate_audit_annotations(audits, name, has_params, variable_types, path))
    return errs


def validate_param_kind(kind: Object, path: field.Path) -> field.ErrorList:
    """validateParamKind: a parseable group/version and a kind that is a DNS-1035 label."""
    errs = field.ErrorList()
    api_version = _str(kind.get("apiVersion"))
    if not api_version:
        errs.append(field.required(path.child("apiVersion")))
    elif api_version.count("/") > 1:
        errs.append(
            field.invalid(
                path.child("apiVersion"),
                api_version,
                f"unexpected GroupVersion string: {api_version}",
            )
        )
    else:
        group, _, version = (
            api_version.rpartition("/") if "/" in api_version else ("", "", api_version)
        )
        if group:
            problems = names.is_dns1123_subdomain(group)
            if problems:
                errs.append(field.invalid(path.child("apiVersion"), group, ",".join(problems)))
        if not version:
            errs.append(
                field.invalid(path.child("apiVersion"), api_version, "version must be specified")
            )
        else:
            problems = names.is_dns1035_label(version)
            if problems:
                errs.append(field.invalid(path.child("apiVersion"), version, ",".join(problems)))
    kind_name = _str(kind.get("kind"))
    if not kind_name:
        errs.append(field.required(path.child("kind")))
    else:
        problems = names.is_dns1035_label(kind_name.lower())
        if problems:
            detail = "may have mixed case, but should otherwise match: " + ",".join(problems)
            errs.append(field.invalid(path.child("kind"), kind_name, detail))
    return errs


def validate_match_resources(match: Object, path: field.Path) -> field.ErrorList:
    """validateMatchResources: policy, selectors (strictly), rules and exclusions."""
    errs = field.ErrorList()
    policy = match.get("matchPolicy")
    if policy is None:
        errs.append(field.required(path.child("matchPolicy")))
    elif policy not in _MATCH_POLICIES:
        errs.append(field.not_supported(path.child("matchPolicy"), policy, _MATCH_POLICIES))
    for key in ("namespaceSelector", "objectSelector"):
        selector = match.get(key)
        if selector is None:
            errs.append(field.required(path.child(key)))
        else:
            errs.extend(labels.validate_label_selector(_dict(selector), path.child(key)))
    for key in ("resourceRules", "excludeResourceRules"):
        for i, rule in enumerate(_list(match.get(key))):
            errs.extend(_validate_named_rule(_dict(rule), path.child(key).index(i)))
    return errs


def _validate_named_rule(rule: Object, path: field.Path) -> field.ErrorList:
    errs = field.ErrorList()
    seen: set[str] = set()
    for i, name in enumerate(_list(rule.get("resourceNames"))):
        name = _str(name)
        for message in names.validate_path_segment_name(name, False):
            errs.append(field.invalid(path.child("resourceNames").index(i), name, message))
        if name in seen:
            errs.append(field.duplicate(path.child("resourceNames").index(i), name))
        seen.add(name)
    errs.extend(webhooks.validate_rule_with_operations(rule, path))
    return errs


def _validate_variables(
    spec: Object, has_params: bool, path: field.Path, errs: field.ErrorList
) -> dict[str, str]:
    """Check each variable against the ones declared before it; their inferred types."""
    types: dict[str, str] = {}
    for i, variable in enumerate(_items(spec, "variables")):
        item = path.index(i)
        name = _str(variable.get("name"))
        if not name.strip():
            errs.append(field.required(item.child("name"), "name is not specified"))
        elif not is_cel_identifier(name):
            errs.append(
                field.invalid(item.child("name"), name, "name is not a valid CEL identifier")
            )
        expression = _str(variable.get("expression"))
        found = policy_cel.UNKNOWN
        if not expression.strip():
            errs.append(field.required(item.child("expression"), "expression is not specified"))
        else:
            env = policy_cel.environment(params=has_params, authorizer=True, variable_types=types)
            problem, found = policy_cel.compile_problem(expression, env)
            if problem is not None:
                errs.append(field.invalid(item.child("expression"), expression, problem))
        # Upstream declares the variable (with its type) even when it failed to compile.
        types[name] = found or policy_cel.DYN
    return types


def is_cel_identifier(name: str) -> bool:
    return bool(_CEL_IDENTIFIER.match(name)) and name not in _CEL_RESERVED


def _validate_validation(
    validation: Object, has_params: bool, variable_types: Mapping[str, str], path: field.Path
) -> field.ErrorList:
    errs = field.ErrorList()
    expression = _str(validation.get("expression"))
    if not expression.strip():
        errs.append(field.required(path.child("expression"), "expression is not specified"))
    else:
        env = policy_cel.environment(
            params=has_params, authorizer=True, variable_types=variable_types
        )
        problem, _ = policy_cel.compile_problem(expression, env, ("bool",))
        if problem is not None:
            errs.append(field.invalid(path.child("expression"), expression, problem))
    message_expression = _str(validation.get("messageExpression"))
    if message_expression and not message_expression.strip():
        errs.append(
            field.invalid(
                path.child("messageExpression"),
                message_expression,
                "must be non-empty if specified",
            )
        )
    elif message_expression.strip():
        env = policy_cel.environment(
            params=has_params, authorizer=False, variable_types=variable_types
        )
        problem, _ = policy_cel.compile_problem(message_expression, env, ("string",))
        if problem is not None:
            errs.append(field.invalid(path.child("messageExpression"), message_expression, problem))
    message = _str(validation.get("message"))
    if message and not message.strip():
        errs.append(
            field.invalid(path.child("message"), message, "message must be non-empty if specified")
        )
    elif _NEWLINES.search(message.strip()):
        errs.append(
            field.invalid(path.child("message"), message, "message must not contain line breaks")
        )
    reason = validation.get("reason")
    if reason is not None and reason not in _REASONS:
        errs.append(field.not_supported(path.child("reason"), reason, _REASONS))
    return errs


def _validate_audit_annotations(
    audits: list[Object],
    policy_name: str,
    has_params: bool,
    variable_types: Mapping[str, str],
    spec_path: field.Path,
) -> field.ErrorList:
    errs = field.ErrorList()
    path = spec_path.child("auditAnnotations")
    if len(audits) > MAX_AUDIT_ANNOTATIONS:
        errs.append(
            field.invalid(
                path, audits, f"must not have more than {MAX_AUDIT_ANNOTATIONS} auditAnnotations"
            )
        )
    keys: set[str] = set()
    for i, audit in enumerate(audits):
        item = path.index(i)
        key = _str(audit.get("key"))
        if policy_name:
            qualified = f"{policy_name}/{key}"
            errs.extend(
                field.invalid(item.child("key"), qualified, m)
                for m in names.is_qualified_name(qualified)
            )
        else:
            errs.append(
                field.invalid(item.child("key"), key, "requires metadata.name be non-empty")
            )
        errs.extend(_validate_value_expression(audit, has_params, variable_types, item))
        if key in keys:
            errs.append(field.duplicate(item.child("key"), key))
        keys.add(key)
    return errs


def _validate_value_expression(
    audit: Object, has_params: bool, variable_types: Mapping[str, str], path: field.Path
) -> field.ErrorList:
    errs = field.ErrorList()
    expression = _str(audit.get("valueExpression"))
    trimmed = expression.strip()
    if not trimmed:
        errs.append(
            field.required(path.child("valueExpression"), "valueExpression is not specified")
        )
    elif len(trimmed) > MAX_AUDIT_VALUE_EXPRESSION_LENGTH:
        detail = f"must not exceed {MAX_AUDIT_VALUE_EXPRESSION_LENGTH} bytes in length"
        errs.append(field.required(path.child("valueExpression"), detail))
    else:
        env = policy_cel.environment(
            params=has_params, authorizer=True, variable_types=variable_types
        )
        problem, _ = policy_cel.compile_problem(trimmed, env, ("string", "null_type"))
        if problem is not None:
            errs.append(field.invalid(path.child("valueExpression"), expression, problem))
    return errs


# ----- bindings ----------------------------------------------------------------------------


def validate_binding(obj: Object) -> field.ErrorList:
    """ValidateValidatingAdmissionPolicyBinding."""
    errs = validate_binding_common(obj)
    spec = _dict(obj.get("spec"))
    path = field.Path("spec")
    if spec.get("matchResources") is not None:
        # Upstream's path has this spelling.
        errs.extend(
            validate_match_resources(_dict(spec.get("matchResources")), path.child("matchResouces"))
        )
    errs.extend(
        validate_validation_actions(spec.get("validationActions"), path.child("validationActions"))
    )
    return errs


def validate_binding_update(new: Object, old: Object) -> field.ErrorList:
    errs = validate_binding(new)
    errs.extend(metadata_update_problems(new, old))
    return errs


def validate_binding_common(obj: Object) -> field.ErrorList:
    """What both binding kinds check first: metadata, ``policyName`` and ``paramRef``."""
    errs = objectmeta.validate_object_meta(
        _dict(obj.get("metadata")),
        namespaced=False,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )
    spec = _dict(obj.get("spec"))
    path = field.Path("spec")
    policy_name = _str(spec.get("policyName"))
    if not policy_name:
        errs.append(field.required(path.child("policyName")))
    else:
        for message in names.name_is_dns_subdomain(policy_name, False):
            errs.append(field.invalid(path.child("policyName"), policy_name, message))
    if spec.get("paramRef") is not None:
        errs.extend(validate_param_ref(_dict(spec.get("paramRef")), path.child("paramRef")))
    return errs


def validate_param_ref(ref: Object, path: field.Path) -> field.ErrorList:
    """validateParamRef: name xor selector, and a parameterNotFoundAction."""
    errs = field.ErrorList()
    name = _str(ref.get("name"))
    selector = ref.get("selector")
    exclusive = "name and selector are mutually exclusive"
    if name:
        for message in names.validate_path_segment_name(name, False):
            errs.append(field.invalid(path.child("name"), name, message))
        if selector is not None:
            errs.append(field.forbidden(path.child("name"), exclusive))
    if selector is not None:
        errs.extend(labels.validate_label_selector(_dict(selector), path.child("selector")))
        if name:
            errs.append(field.forbidden(path.child("selector"), exclusive))
    if not name and selector is None:
        errs.append(field.required(path, "one of name or selector must be specified"))
    action = ref.get("parameterNotFoundAction")
    if not action:
        errs.append(field.required(path.child("parameterNotFoundAction")))
    elif action not in _NOT_FOUND_ACTIONS:
        errs.append(
            field.not_supported(path.child("parameterNotFoundAction"), action, _NOT_FOUND_ACTIONS)
        )
    return errs


def validate_validation_actions(actions: Any, path: field.Path) -> field.ErrorList:
    """validateValidationActions: known, unique, not both Deny and Warn, at least one."""
    errs = field.ErrorList()
    seen: set[str] = set()
    items = _list(actions)
    for i, action in enumerate(items):
        if action not in _ACTIONS:
            errs.append(field.not_supported(path.index(i), action, _ACTIONS))
        if action in seen:
            errs.append(field.duplicate(path.index(i), action))
        seen.add(action)
    if "Deny" in seen and "Warn" in seen:
        errs.append(
            field.invalid(
                path,
                _GoActions(items),
                "must not contain both Deny and Warn (repeating the same validation failure "
                "information in the API response and headers serves no purpose)",
            )
        )
    if not seen:
        errs.append(field.required(path, "at least one validation action is required"))
    return errs
