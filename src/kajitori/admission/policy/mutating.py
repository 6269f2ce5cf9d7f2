"""The MutatingAdmissionPolicy admission plugin.

Upstream: k8s.io/apiserver/pkg/admission/plugin/policy/mutating (plugin.go,
dispatcher.go, patch/json_patch.go, patch/smd.go) over the generic policy
dispatcher. It runs among the mutating plugins, just before the
MutatingAdmissionWebhook, for CREATE, UPDATE and CONNECT (a CONNECT's
object is its options, e.g. ``PodExecOptions``; ``pods/eviction`` is a
CREATE of an Eviction), not of the policy kinds themselves nor the access
reviews (``matching.POLICY_EXCLUDED_RESOURCES``):

1. policies (by name) pair with their bindings (by name); a policy whose
   ``matchConstraints`` match the request, then each binding whose
   ``matchResources`` match, with each param it selects, is one invocation.
   Matching, params (``paramKind``/``paramRef``), the namespace object, the
   CEL variables and the view of the object in the version the policy's rule
   matched are the ValidatingAdmissionPolicy plugin's, whose class this one
   extends;
2. per invocation, ``matchConditions`` gate it, then its mutations run in
   order on the object: a ``JSONPatch`` expression yields JSON patch
   operations, applied with ``machinery.patching`` (a failed ``test`` leaves
   the object as it was); an ``ApplyConfiguration`` expression yields an
   apply configuration, merged in with server-side apply's merge
   (``machinery.fieldmanager.typed``) over the kind's schema, without
   managedFields ownership, refused if it sets an atomic list, map or
   struct. Each result is converted back and defaulted, as upstream;
3. reinvocation: an invocation that changes the object asks the admission
   chain for a second pass of the mutating plugins (``admission.reinvocation``,
   upstream's reinvoker); on it, only the invocations of policies with
   ``reinvocationPolicy: IfNeeded`` that ran before a change (by a later
   invocation, a webhook, or any plugin since) run again;
4. errors (a configuration problem, an expression that fails or yields the
   wrong type, a patch that cannot apply) follow the policy's
   ``failurePolicy``: Ignore drops them, Fail refuses the request once every
   invocation ran, with upstream's 403 Status whose message is the first
   error (``policy '<p>' with binding '<b>' denied request: <why>``), reason
   ``Invalid`` for an invocation's error, each error a cause.

No bindings (most servers): one cached list read, nothing else. Upstream
adds no audit annotation of its own for mutating policies; neither does this.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from kajitori.admission import matching, reinvocation
from kajitori.admission.chain import Plugin
from kajitori.admission.lister import StoreLister
from kajitori.admission.policy import cel_env
from kajitori.admission.policy.validating import (
    GROUP,
    ConfigurationError,
    KindLookup,
    Lookup,
    Request,
    ValidatingAdmissionPolicy,
    _request_variable,
)
from kajitori.admission.webhooks import conditions as match_conditions
from kajitori.admission.webhooks.attributes import (
    Attributes,
    ServedResources,
    attributes_for,
    subresource_attributes,
    view_for,
)
from kajitori.api import definitions
from kajitori.api.admissionregistration_v1 import mutating_policies
from kajitori.machinery import errors
from kajitori.machinery.fieldmanager import typed
from kajitori.machinery.patching import common as patch_common
from kajitori.machinery.patching.json_patch import apply_json_patch
from kajitori.machinery.schema import SchemaNode
from kajitori.registry.authorization.authorizer import Authorizer
from kajitori.registry.generic.request import RequestContext

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store

Object = dict[str, Any]
POLICIES = "mutatingadmissionpolicies"
BINDINGS = "mutatingadmissionpolicybindings"
# The plugin's name: its key in the request's reinvocation state.
PLUGIN = "MutatingAdmissionPolicy"
# Upstream's handler: there is no object to mutate on DELETE.
_HANDLED = frozenset({"CREATE", "UPDATE", "CONNECT"})


@dataclass(frozen=True)
class PolicyError:
    """One failed policy, binding or invocation (upstream's generic PolicyError)."""

    policy: str
    binding: str | None
    message: str
    reason: str = ""
    fail: bool = True

    def __str__(self) -> str:
        if self.binding is not None:
            return f"policy '{self.policy}' with binding '{self.binding}' denied request: {self.message}"
        return f'policy "{self.policy}" denied request: {self.message}'


class MutationError(Exception):
    """A mutation that could not be applied; ``str()`` is upstream's message."""


@dataclass
class _Invocation:
    policy: Object
    binding: Object
    match: matching.Match
    param: Object | None

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Which (policy, binding, param) this is, for reinvocation."""
        meta = (self.param or {}).get("metadata") or {}
        return (
            _name(self.policy),
            _name(self.binding),
            str(meta.get("namespace") or ""),
            str(meta.get("name") or ""),
        )

    @property
    def if_needed(self) -> bool:
        return _spec(self.policy).get("reinvocationPolicy") == "IfNeeded"


def _spec(obj: Object) -> Object:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _name(obj: Object) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _fails(policy: Object) -> bool:
    return _spec(policy).get("failurePolicy", "Fail") != "Ignore"


class MutatingAdmissionPolicy(ValidatingAdmissionPolicy):
    """Applies MutatingAdmissionPolicies through their bindings.

    Extends the validating plugin for what both policy kinds share (listers,
    matching, params, the namespace object, CEL inputs); it validates
    nothing, so the inherited validating hooks are put back to Plugin's.
    """

    validate = Plugin.validate  # type: ignore[assignment]
    validate_delete = Plugin.validate_delete  # type: ignore[assignment]
    validate_subresource = Plugin.validate_subresource  # type: ignore[assignment]

    def __init__(
        self,
        lookup: Lookup,
        find_kind: KindLookup,
        authorizer: Authorizer | None = None,
        *,
        served: ServedResources,
        namespaces: StoreLister | None = None,
    ) -> None:
        super().__init__(lookup, find_kind, authorizer, served=served, namespaces=namespaces)
        # The inherited listers watch nothing until read; these are the ones read.
        self.policies = self._lister(GROUP, "v1", POLICIES)
        self.bindings = self._lister(GROUP, "v1", BINDINGS)

    def _lister(self, group: str, version: str, plural: str) -> StoreLister:
        return StoreLister(
            lambda: self.lookup(group, version, plural),
            name=f"MutatingAdmissionPolicy {plural} watch",
        )

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        # Every CREATE and UPDATE of every kind comes here, and most servers bind no
        # policy: then no attributes, no coroutine (a lister that cannot answer: ``_admit``).
        if operation not in _HANDLED or self.bindings.cached_empty():
            return
        await self._admit(lambda: attributes_for(store, operation, obj, old, ctx), operation, ctx)

    async def admit_subresource(
        self,
        store: Store,
        operation: str,
        name: str,
        namespace: str,
        obj: Object,
        ctx: RequestContext,
    ) -> None:
        """A CONNECT (its options are the object) or a pods/eviction CREATE (an Eviction)."""
        if operation not in _HANDLED or self.bindings.cached_empty():
            return
        await self._admit(
            lambda: subresource_attributes(store, operation, name, namespace, obj, ctx),
            operation,
            ctx,
        )

    async def _admit(
        self, attributes: Callable[[], Attributes], operation: str, ctx: RequestContext
    ) -> None:
        if operation not in _HANDLED:
            return
        bindings = await self._all(self.bindings, GROUP, BINDINGS)
        if not bindings:
            return
        attrs = attributes()
        if matching.is_policy_excluded(attrs):
            return
        policies = {_name(p): p for p in await self._all(self.policies, GROUP, POLICIES)}
        paired = sorted(
            (b for b in bindings if str(_spec(b).get("policyName") or "") in policies),
            key=lambda b: (str(_spec(b).get("policyName")), _name(b)),
        )
        if not paired:
            return
        failures: list[PolicyError] = []
        invocations = await self._invocations(policies, paired, attrs, ctx, failures)
        if invocations:
            await self._mutate(invocations, attrs, ctx, failures)
        denied = [f for f in failures if f.fail]
        if denied:
            raise _denial(attrs, denied)

    # ----- which invocations apply ------------------------------------------------------

    async def _invocations(
        self,
        policies: dict[str, Object],
        bindings: list[Object],
        attrs: Attributes,
        ctx: RequestContext,
        failures: list[PolicyError],
    ) -> list[_Invocation]:
        """upstream's generic dispatcher: policy match, binding match, params."""
        out: list[_Invocation] = []
        matched: dict[str, matching.Match | None] = {}
        stores: dict[str, Store | None] = {}
        for binding in bindings:
            policy = policies[str(_spec(binding).get("policyName"))]
            name = _name(policy)
            if name not in matched:
                matched[name] = await self._policy_match(policy, attrs, failures)
                stores[name] = self._policy_params(policy, failures) if matched[name] else None
            match = matched[name]
            if match is None or any(f.policy == name and f.binding is None for f in failures):
                continue
            request = Request(attrs, ctx)
            params = await self._binding_params(policy, binding, stores[name], request, failures)
            out.extend(_Invocation(policy, binding, match, param) for param in params)
        return out

    async def _policy_match(
        self, policy: Object, attrs: Attributes, failures: list[PolicyError]
    ) -> matching.Match | None:
        constraints = _spec(policy).get("matchConstraints")
        criteria = matching.match_resources_criteria(constraints or {})
        try:
            return await self.matcher.matches(criteria, attrs)
        except errors.StatusError as exc:
            failures.append(_config_error(policy, None, exc))
            return None

    def _policy_params(self, policy: Object, failures: list[PolicyError]) -> Store | None:
        try:
            return self._param_store(_spec(policy))
        except ConfigurationError as exc:
            failures.append(_config_error(policy, None, exc))
            return None

    async def _binding_params(
        self,
        policy: Object,
        binding: Object,
        param_store: Store | None,
        request: Request,
        failures: list[PolicyError],
    ) -> list[Object | None]:
        spec = _spec(binding)
        try:
            if isinstance(spec.get("matchResources"), dict):
                criteria = matching.match_resources_criteria(spec["matchResources"])
                if await self.matcher.matches(criteria, request.attrs) is None:
                    return []
            return await self._collect_params(policy, spec, param_store, request)
        except (ConfigurationError, errors.StatusError) as exc:
            failures.append(_config_error(policy, binding, exc))
            return []

    # ----- mutating -------------------------------------------------------------------------

    async def _mutate(
        self,
        invocations: list[_Invocation],
        attrs: Attributes,
        ctx: RequestContext,
        failures: list[PolicyError],
    ) -> None:
        namespace_object = await self._namespace_object(Request(attrs, ctx))
        pass_ = reinvocation.of(ctx)
        state = pass_.begin(PLUGIN, attrs.obj)
        try:
            for invocation in invocations:
                changed = self._invoke(
                    invocation, attrs, ctx, namespace_object, failures, pass_, state
                )
                if changed is None:
                    continue  # gated out, or not to run again on this pass
                if changed:
                    pass_.changed(state)
                if invocation.if_needed:
                    state.add_previously_invoked(invocation.key)
        finally:
            state.record_output(attrs.obj, pass_)

    def _invoke(
        self,
        invocation: _Invocation,
        attrs: Attributes,
        ctx: RequestContext,
        namespace_object: Object | None,
        failures: list[PolicyError],
        pass_: reinvocation.Reinvocation,
        state: reinvocation.Invoked,
    ) -> bool | None:
        """Gate and run one invocation's mutations; whether the object changed, None: not run."""
        policy, binding = invocation.policy, invocation.binding
        fail = _fails(policy)
        view = view_for(attrs, invocation.match.info, invocation.match.kind)
        inputs = self._invocation_inputs(
            invocation, attrs, ctx, view.obj, view.old, namespace_object
        )
        expressions = [
            str((c if isinstance(c, dict) else {}).get("expression") or "")
            for c in _spec(policy).get("matchConditions") or []
        ]
        gate = match_conditions.evaluate(expressions, inputs, ignore_failures=not fail)
        if gate.error:
            failures.append(PolicyError(_name(policy), _name(binding), gate.error, "Invalid"))
            return None
        if not gate.matches:
            return None
        if pass_.is_reinvoke and not state.should_reinvoke(invocation.key):
            return None
        if view.obj is None:
            return False  # nothing to patch: upstream calls no patcher without an object
        changed = False
        for mutation in _spec(policy).get("mutations") or []:
            try:
                patched = _apply(mutation, inputs, view.obj, invocation.match)
            except MutationError as exc:
                failures.append(
                    PolicyError(_name(policy), _name(binding), str(exc), "Invalid", fail)
                )
                continue
            updated = view.back(patched)
            if not attrs.foreign:  # CONNECT options and Evictions are not the store's kind
                attrs.info.strategy.set_defaults(updated)  # upstream defaults each result
            if updated != attrs.obj:
                assert attrs.obj is not None
                _replace_contents(attrs.obj, updated)
                changed = True
            # The next mutation sees this one's result, in the policy's version.
            view = view_for(attrs, invocation.match.info, invocation.match.kind)
            inputs = self._invocation_inputs(
                invocation, attrs, ctx, view.obj, view.old, namespace_object
            )
        return changed

    def _invocation_inputs(
        self,
        invocation: _Invocation,
        attrs: Attributes,
        ctx: RequestContext,
        obj: Object | None,
        old: Object | None,
        namespace_object: Object | None,
    ) -> cel_env.Inputs:
        request = Request(attrs, ctx, invocation.match, obj, old)
        request.extra = _request_variable(attrs, invocation.match, ctx)
        return self._inputs(invocation.policy, request, ctx, namespace_object, invocation.param)


# ----- one mutation ------------------------------------------------------------------------


def _apply(mutation: Any, inputs: cel_env.Inputs, obj: Object | None, match: matching.Match) -> Any:
    """``obj`` with one mutation applied (a new object); raises MutationError."""
    spec = mutation if isinstance(mutation, dict) else {}
    patch_type = spec.get("patchType")
    member = spec.get("jsonPatch" if patch_type == "JSONPatch" else "applyConfiguration")
    expression = str((member if isinstance(member, dict) else {}).get("expression") or "")
    value = _evaluate(expression, inputs)
    if patch_type == "JSONPatch":
        return _json_patch(obj, value)
    schema = definitions.schema_for(match.kind.group, match.kind.version, match.kind.kind)
    return _apply_configuration(obj, value, schema)


def _evaluate(expression: str, inputs: cel_env.Inputs) -> Any:
    source = mutating_policies.rewrite_initializers(expression)
    try:
        return cel_env.evaluate(source, inputs)
    except cel_env.ExpressionError as exc:
        # Errors name the expression as the policy wrote it, not as it was compiled.
        raise MutationError(str(exc).replace(source, expression)) from exc


def _json_patch(obj: Object | None, value: Any) -> Any:
    if not isinstance(value, list):
        raise MutationError("type mismatch: JSONPatchType.expression should evaluate to array")
    operations = []
    for item in value:
        if not isinstance(item, dict):
            raise MutationError(
                "type mismatch: JSONPatchType.expression should evaluate to array of JSONPatch"
            )
        # Upstream's patch carries op and path always, from only when set.
        op: Object = {"op": item.get("op", ""), "path": item.get("path", "")}
        if item.get("from"):
            op["from"] = item["from"]
        if "value" in item:
            op["value"] = item["value"]
        operations.append(op)
    try:
        return apply_json_patch(copy.deepcopy(obj), operations)
    except patch_common.PatchError as exc:
        if exc.message.endswith(": test failed"):
            return obj  # a failed test leaves the object as it was
        raise MutationError(f"JSON Patch: {exc.message}") from exc


def _apply_configuration(obj: Object | None, value: Any, schema: SchemaNode | None) -> Any:
    if not isinstance(value, dict):
        raise MutationError(
            f"unsupported return type from ApplyConfiguration expression: {cel_env.type_name(value)}"
        )
    atomics = find_atomics(value, schema)
    if atomics:
        raise MutationError(
            "error applying patch: invalid ApplyConfiguration: may not mutate atomic arrays, "
            f"maps or structs: {', '.join(atomics)}"
        )
    return typed.merge(obj or {}, value, schema)


def find_atomics(value: Any, schema: SchemaNode | None, path: str = "") -> list[str]:
    """Paths (upstream's field path text) of atomic lists, maps and structs ``value`` sets."""
    if schema is None:
        return []
    found: list[str] = []
    if isinstance(value, dict) and schema.is_object:
        if typed.atomic_object(schema):
            found.append(path)
        for name, child in value.items():
            node = schema.field(name)
            if node is not None:
                found.extend(find_atomics(child, node, f"{path}.{name}"))
    elif isinstance(value, list) and schema.is_array:
        kind, keys = typed.list_kind(schema)
        if kind == "atomic":
            found.append(path)
        items = schema.items()
        for index, item in enumerate(value):
            found.extend(find_atomics(item, items, path + _element(item, index, kind, keys)))
    return found


def _element(item: Any, index: int, kind: str, keys: tuple[str, ...]) -> str:
    """One list item's path element as structured-merge-diff prints it."""
    if kind == "set":
        return f"[={orjson.dumps(item).decode()}]"
    if kind == "map" and isinstance(item, dict):
        pairs = [f"{k}={orjson.dumps(item[k]).decode()}" for k in keys if k in item]
        return "[" + ",".join(pairs) + "]"
    return f"[{index}]"


def _replace_contents(target: Object, new: Object) -> None:
    """Make ``target`` equal ``new`` in place, keeping its metadata dict (the write path holds it)."""
    meta, new_meta = target.get("metadata"), new.get("metadata")
    target.clear()
    target.update(new)
    if isinstance(meta, dict) and isinstance(new_meta, dict) and meta is not new_meta:
        meta.clear()
        meta.update(new_meta)
        target["metadata"] = meta


# ----- the answer --------------------------------------------------------------------------


def _config_error(policy: Object, binding: Object | None, exc: Exception) -> PolicyError:
    what = "policy" if binding is None else "binding"
    return PolicyError(
        _name(policy),
        None if binding is None else _name(binding),
        f"failed to configure {what}: {exc}",
        fail=_fails(policy),
    )


def _denial(attrs: Attributes, denied: list[PolicyError]) -> errors.StatusError:
    """admission.NewForbidden, its message replaced by the first error, every error a cause."""
    meta = (attrs.obj if attrs.obj is not None else attrs.old or {}).get("metadata") or {}
    name = attrs.name or str(meta.get("name") or meta.get("generateName") or "") or "Unknown"
    resource = errors.GroupResource(attrs.resource.group, attrs.resource.resource)
    err = errors.forbidden(resource, name, "admission request denied by policy")
    err.message = str(denied[0])
    if denied[0].reason:
        err.reason = denied[0].reason
    err.causes.extend(errors.StatusCause("", str(d)) for d in denied)
    return err
