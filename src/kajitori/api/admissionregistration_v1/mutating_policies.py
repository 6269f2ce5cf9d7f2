"""MutatingAdmissionPolicies and their bindings: defaults, validation and their CEL dialect.

Upstream: pkg/apis/admissionregistration/v1/defaults.go and
pkg/apis/admissionregistration/validation (the MutatingAdmissionPolicy
parts), in upstream's words, paths and order. What the two policy kinds
share (param kinds and refs, match resources, variables, match conditions)
is ``policies``' and ``webhooks``', used here as is.

- defaults: a policy's ``failurePolicy: Fail``; match resources (a policy's
  ``matchConstraints``, a binding's ``matchResources``) get
  ``matchPolicy: Equivalent``, empty selectors and rule ``scope: "*"``.
  Upstream gives ``reinvocationPolicy`` no default: it is required.
- a policy needs ``matchConstraints`` with ``resourceRules`` whose
  operations a mutation can act on (no DELETE), at least one mutation, each
  with a ``patchType`` (``ApplyConfiguration`` or ``JSONPatch``), the
  matching member and an expression that compiles to the right result
  (an ``Object`` apply configuration, or a list of ``JSONPatch``), and a
  ``reinvocationPolicy`` (``Never`` or ``IfNeeded``);
- a binding needs ``policyName``; a ``paramRef`` and ``matchResources`` are
  checked as a ValidatingAdmissionPolicyBinding's (``matchResources`` under
  its right spelling here, as upstream).

Mutation expressions build values with CEL object initializers
(``Object{spec: Object.spec{replicas: 2}}``, ``JSONPatch{op: "add", ...}``)
and may call ``jsonpatch.escapeKey``. The CEL package we run on has no
message types, so ``rewrite_initializers`` turns initializers into map
literals (and ``escapeKey`` into two ``replace`` calls) before an expression
is compiled, here and in the admission plugin (``admission.policy.mutating``).
"""

from __future__ import annotations

from typing import Any

from kajitori.api.admissionregistration_v1 import policies, policy_cel, webhooks
from kajitori.api.apiextensions_v1 import cel_cost
from kajitori.machinery import field, names, objectmeta

Object = dict[str, Any]

_FAILURE_POLICIES = ("Fail", "Ignore")
# In upstream's order (a list there, not a sorted set as for webhooks).
_REINVOCATION_POLICIES = ("Never", "IfNeeded")
_MUTATING_OPERATIONS = ("*", "CONNECT", "CREATE", "UPDATE")
PATCH_TYPES = ("ApplyConfiguration", "JSONPatch")
# The CEL type each patch type's expression must yield (upstream's ReturnTypes).
RESULT_TYPES = {"ApplyConfiguration": "Object", "JSONPatch": "list(JSONPatch)"}
_MEMBERS = {"ApplyConfiguration": "applyConfiguration", "JSONPatch": "jsonPatch"}
_TYPE_ROOTS = frozenset({"Object", "JSONPatch"})


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


# ----- the CEL dialect ---------------------------------------------------------------------


def rewrite_initializers(source: str) -> str:
    """Object and JSONPatch initializers as map literals; ``jsonpatch.escapeKey`` inlined.

    ``Object.spec{replicas: 2}`` becomes ``{"replicas": 2}``: the field names of
    an initializer are quoted, the type name dropped. Map literals, strings and
    everything else are left as written.
    """
    if not any(root in source for root in (*_TYPE_ROOTS, "jsonpatch")):
        return source
    tokens = [
        (m.lastgroup or "", m.group(m.lastgroup or 0), m.start(m.lastgroup or 0), m.end())
        for m in cel_cost.TOKEN.finditer(source)
    ]
    out: list[str] = []
    # What each open bracket is: "struct" (an initializer), "escape" (escapeKey's call), "".
    opened: list[str] = []
    expect_field = False
    pos, i = 0, 0
    while i < len(tokens):
        kind, text, start, end = tokens[i]
        out.append(source[pos:start])
        pos = end
        after_dot = i > 0 and tokens[i - 1][1] == "."
        if kind == "id" and text in _TYPE_ROOTS and not after_dot:
            brace = _initializer_brace(tokens, i)
            if brace is not None:
                out.append("{")
                opened.append("struct")
                pos, i, expect_field = tokens[brace][3], brace + 1, True
                continue
        if kind == "id" and text == "jsonpatch" and not after_dot and _is_escape_call(tokens, i):
            out.append("(")
            opened.append("escape")
            pos, i = tokens[i + 3][3], i + 4
            continue
        if expect_field and kind == "id" and i + 1 < len(tokens) and tokens[i + 1][1] == ":":
            out.append(f'"{text}"')
            expect_field = False
            i += 1
            continue
        expect_field = False
        if kind == "op" and text in ("(", "[", "{"):
            opened.append("")
        elif kind == "op" and text in (")", "]", "}") and opened:
            if opened.pop() == "escape":
                text = ").replace('~', '~0').replace('/', '~1')"
        elif kind == "op" and text == "," and opened and opened[-1] == "struct":
            expect_field = True
        out.append(text)
        i += 1
    out.append(source[pos:])
    return "".join(out)


def _initializer_brace(tokens: list[tuple[str, str, int, int]], i: int) -> int | None:
    """Where the ``{`` of an initializer whose type name starts at ``i`` is, if it is one."""
    j = i + 1
    while j + 1 < len(tokens) and tokens[j][1] == "." and tokens[j + 1][0] == "id":
        j += 2
    if j < len(tokens) and tokens[j][1] == "{":
        return j
    return None


def _is_escape_call(tokens: list[tuple[str, str, int, int]], i: int) -> bool:
    wanted = (".", "escapeKey", "(")
    return [t[1] for t in tokens[i + 1 : i + 4]] == list(wanted)


def expression_problem(
    expression: str, patch_type: str, has_params: bool, variable_types: dict[str, str]
) -> str | None:
    """Why a mutation's expression is refused (upstream's compile result text), or None."""
    env = policy_cel.environment(params=has_params, authorizer=True, variable_types=variable_types)
    source = rewrite_initializers(expression)
    problem, found = policy_cel.compile_problem(source, env)
    if problem is not None:
        return problem
    wanted = RESULT_TYPES[patch_type]
    # A map literal (what an initializer became) has no type we can name: accepted.
    if found not in (policy_cel.UNKNOWN, wanted):
        return f"must evaluate to {wanted} but got {found}"
    return None


# ----- defaults ----------------------------------------------------------------------------


def set_defaults_policy(obj: Object) -> None:
    """SetDefaults_MutatingAdmissionPolicySpec and the defaults of what it contains."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if spec.get("failurePolicy") is None:
        spec["failurePolicy"] = "Fail"
    if isinstance(spec.get("matchConstraints"), dict):
        policies.set_defaults_match_resources(spec["matchConstraints"])


def set_defaults_binding(obj: Object) -> None:
    policies.set_defaults_binding(obj)


# ----- policies ----------------------------------------------------------------------------


def validate_policy(obj: Object) -> field.ErrorList:
    """ValidateMutatingAdmissionPolicy."""
    return _validate_policy(obj, ignore_match_conditions=False)


def validate_policy_update(new: Object, old: Object) -> field.ErrorList:
    """ValidateMutatingAdmissionPolicyUpdate: unchanged match conditions are not recompiled."""
    unchanged = policies.match_conditions_unchanged(new, old)
    errs = _validate_policy(new, ignore_match_conditions=unchanged)
    errs.extend(policies.metadata_update_problems(new, old))
    return errs


def _validate_policy(obj: Object, *, ignore_match_conditions: bool) -> field.ErrorList:
    errs = objectmeta.validate_object_meta(
        _dict(obj.get("metadata")),
        namespaced=False,
        name_validator=names.name_is_dns_subdomain,
        path=field.Path("metadata"),
    )
    errs.extend(_validate_spec(_dict(obj.get("spec")), field.Path("spec"), ignore_match_conditions))
    return errs


def _validate_spec(
    spec: Object, path: field.Path, ignore_match_conditions: bool
) -> field.ErrorList:
    errs = field.ErrorList()
    failure = spec.get("failurePolicy")
    if failure is None:
        errs.append(field.required(path.child("failurePolicy")))
    elif failure not in _FAILURE_POLICIES:
        errs.append(field.not_supported(path.child("failurePolicy"), failure, _FAILURE_POLICIES))
    has_params = spec.get("paramKind") is not None
    if has_params:
        errs.extend(
            policies.validate_param_kind(_dict(spec.get("paramKind")), path.child("paramKind"))
        )
    constraints = spec.get("matchConstraints")
    if constraints is None:
        errs.append(field.required(path.child("matchConstraints")))
    else:
        match_path = path.child("matchConstraints")
        errs.extend(policies.validate_match_resources(_dict(constraints), match_path))
        if not _list(_dict(constraints).get("resourceRules")):
            errs.append(field.required(match_path.child("resourceRules")))
        errs.extend(validate_mutating_operations(_dict(constraints), match_path))
    if not ignore_match_conditions:
        env = policy_cel.environment(params=has_params, authorizer=True, variable_types=None)
        errs.extend(
            webhooks.validate_match_conditions(
                spec.get("matchConditions"), path.child("matchConditions"), variables=env.names
            )
        )
    # The variables' checks and inferred types are the validating policy's own.
    variable_types = policies._validate_variables(spec, has_params, path.child("variables"), errs)
    mutations = _list(spec.get("mutations"))
    if not mutations:
        errs.append(
            field.required(path.child("mutations"), "mutations must contain at least one item")
        )
    for i, mutation in enumerate(mutations):
        errs.extend(
            _validate_mutation(
                _dict(mutation), has_params, variable_types, path.child("mutations").index(i)
            )
        )
    reinvocation = spec.get("reinvocationPolicy")
    if reinvocation is None:
        errs.append(field.required(path.child("reinvocationPolicy")))
    elif reinvocation not in _REINVOCATION_POLICIES:
        errs.append(
            field.not_supported(
                path.child("reinvocationPolicy"), reinvocation, _REINVOCATION_POLICIES
            )
        )
    return errs


def validate_mutating_operations(match: Object, path: field.Path) -> field.ErrorList:
    """Only CREATE, UPDATE and CONNECT can be mutated (upstream reports no rule index)."""
    errs = field.ErrorList()
    where = path.child("resourceRules", "operations")
    for rule in _list(match.get("resourceRules")):
        for operation in _list(_dict(rule).get("operations")):
            if operation not in _MUTATING_OPERATIONS:
                errs.append(field.not_supported(where, operation, _MUTATING_OPERATIONS))
    return errs


def _validate_mutation(
    mutation: Object, has_params: bool, variable_types: dict[str, str], path: field.Path
) -> field.ErrorList:
    errs = field.ErrorList()
    patch_type = _str(mutation.get("patchType"))
    if not patch_type:
        errs.append(field.required(path.child("patchType")))
        return errs
    if patch_type not in PATCH_TYPES:
        errs.append(field.not_supported(path.child("patchType"), patch_type, PATCH_TYPES))
        return errs
    member = _MEMBERS[patch_type]
    body = mutation.get(member)
    if body is None:
        detail = f"must be specified when patchType is {patch_type}"
        errs.append(field.required(path.child(member), detail))
    else:
        errs.extend(
            _validate_expression(
                _dict(body), patch_type, has_params, variable_types, path.child(member)
            )
        )
    other = next(m for t, m in _MEMBERS.items() if t != patch_type)
    if mutation.get(other) is not None:
        detail = f"must not be specified when patchType is {patch_type}"
        errs.append(field.invalid(path.child(other), "{" + other + "}", detail))
    return errs


def _validate_expression(
    body: Object,
    patch_type: str,
    has_params: bool,
    variable_types: dict[str, str],
    path: field.Path,
) -> field.ErrorList:
    errs = field.ErrorList()
    expression = _str(body.get("expression")).strip()
    if not expression:
        errs.append(field.required(path.child("expression")))
        return errs
    problem = expression_problem(expression, patch_type, has_params, variable_types)
    if problem is not None:
        errs.append(field.invalid(path.child("expression"), expression, problem))
    return errs


# ----- bindings ----------------------------------------------------------------------------


def validate_binding(obj: Object) -> field.ErrorList:
    """ValidateMutatingAdmissionPolicyBinding."""
    errs = policies.validate_binding_common(obj)
    spec = _dict(obj.get("spec"))
    path = field.Path("spec")
    if spec.get("matchResources") is not None:
        match = _dict(spec.get("matchResources"))
        errs.extend(policies.validate_match_resources(match, path.child("matchResources")))
        errs.extend(validate_mutating_operations(match, path.child("matchResources")))
    return errs


def validate_binding_update(new: Object, old: Object) -> field.ErrorList:
    errs = validate_binding(new)
    errs.extend(policies.metadata_update_problems(new, old))
    return errs
