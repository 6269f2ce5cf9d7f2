"""The ValidatingAdmissionPolicy admission plugin.

Upstream: k8s.io/apiserver/pkg/admission/plugin/policy/validating (plugin.go,
dispatcher.go, validator.go) with generic/policy_source.go's param lookup. For
every create, update, delete and connect (not of the policy kinds themselves
nor the access reviews, ``matching.POLICY_EXCLUDED_RESOURCES``; webhook
configurations are policed, as upstream; a CONNECT's ``object`` is its
options, e.g. ``PodExecOptions``; ``pods/eviction`` is a CREATE of a
``policy/v1 Eviction`` and the pod deletion it makes is not admitted again,
as upstream):

1. each binding whose policy exists pairs with it; for each policy whose
   ``matchConstraints`` match the request (``matching``), a ``paramKind``
   that names no served kind is a configuration error of the policy;
2. each binding whose ``matchResources`` match collects its params
   (``paramRef`` by name or selector, in the request's namespace unless it
   names one; none found: nothing to evaluate, or with
   ``parameterNotFoundAction: Deny`` a configuration error of the binding);
3. per param, ``matchConditions`` gate the policy, then every validation
   runs; a false one yields its ``messageExpression``, ``message`` or
   ``failed expression: <expression>``, and its ``reason`` (Invalid);
4. the binding's ``validationActions`` decide what a failure does: Deny
   refuses the request (the first denial's reason picks the HTTP code),
   Warn adds upstream's warning, Audit adds the
   ``validation.policy.admission.k8s.io/validation_failure`` audit
   annotation (the first failure's);
5. evaluation errors and configuration errors follow the policy's
   ``failurePolicy``: Fail denies (through the binding's actions for
   evaluation errors), Ignore admits;
6. each policy's ``auditAnnotations`` values, gathered over its bindings and
   params (distinct values joined by ", "), become ``<policy>/<key>`` audit
   annotations.

Matching (``matchConstraints``, a binding's ``matchResources``) is
``admission.matching``'s, the webhooks' own. Policies, bindings, namespaces
and params are read through ``admission.lister.StoreLister`` (storage while
a lister is not current). The expressions see the objects, ``request.kind``
and ``request.resource`` as the policy's rules matched them, as upstream
converts them: a request through ``apps/v1`` matched by a rule for
``extensions/v1beta1`` (matchPolicy Equivalent) sees an
``extensions/v1beta1`` Deployment; a ``/scale`` request sees an
``autoscaling/v1 Scale``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kajitori.admission import audit_annotations, matching
from kajitori.admission.chain import Plugin
from kajitori.admission.lister import StoreLister
from kajitori.admission.policy import cel_env
from kajitori.admission.webhooks import conditions as match_conditions
from kajitori.admission.webhooks.attributes import (
    SCALE_KIND,
    Attributes,
    ServedResources,
    Versions,
    attributes_for,
    subresource_attributes,
    view_for,
)
from kajitori.machinery import errors, labels
from kajitori.registry.authorization.authorizer import Authorizer
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.store import ListOptions

if TYPE_CHECKING:
    from kajitori.registry.generic.store import DeleteOptions, Store

Object = dict[str, Any]
# (group, version, plural) -> the store serving it, or None.
Lookup = Callable[[str, str, str], "Store | None"]
# (group, version, kind) -> the store serving that kind, or None.
KindLookup = Callable[[str, str, str], "Store | None"]

GROUP = "admissionregistration.k8s.io"
AUDIT_FAILURE_KEY = "validation.policy.admission.k8s.io/validation_failure"
MAX_MESSAGE_BYTES = 5 * 1024
MAX_AUDIT_VALUE_LENGTH = 10 * 1024
_CODES = {"Forbidden": 403, "Unauthorized": 401, "RequestEntityTooLarge": 413, "Invalid": 422}


class ConfigurationError(Exception):
    """A policy or binding that cannot be applied; ``str()`` is upstream's message."""


@dataclass
class Decision:
    """One validation's outcome (upstream's PolicyDecision)."""

    deny: bool
    message: str = ""
    reason: str = ""
    index: int = 0


@dataclass
class Request:
    """One admission request as the plugin sees it.

    ``attrs`` is what matching reads (the webhooks' Attributes: the resource
    as addressed, the objects in the store's shape); ``match`` is the
    resource and kind the policy being applied selected it as, whose version
    the expressions see the objects in, as upstream converts them.
    """

    attrs: Attributes
    ctx: RequestContext
    match: matching.Match | None = None
    obj: Object | None = None
    old: Object | None = None
    # The CEL ``request`` variable (upstream's AdmissionRequest without its objects).
    extra: Object | None = None


@dataclass
class Denial:
    policy: str
    binding: str | None
    message: str
    reason: str = ""


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _meta(obj: Object | None) -> Object:
    return _dict(_dict(obj).get("metadata"))


class ValidatingAdmissionPolicy(Plugin):
    """Enforces ValidatingAdmissionPolicies through their bindings."""

    def __init__(
        self,
        lookup: Lookup,
        find_kind: KindLookup,
        authorizer: Authorizer | None = None,
        *,
        served: ServedResources,
        namespaces: StoreLister | None = None,
    ) -> None:
        """``namespaces``: a namespaces lister the server shares between admission plugins."""
        self.lookup = lookup
        self.find_kind = find_kind
        self.authorizer = authorizer
        self.matcher = matching.Matcher(Versions(served), self._namespace)
        self.policies = self._lister(GROUP, "v1", "validatingadmissionpolicies")
        self.bindings = self._lister(GROUP, "v1", "validatingadmissionpolicybindings")
        self.namespaces = namespaces or self._lister("", "v1", "namespaces")
        self.params: dict[tuple[str, str, str], StoreLister] = {}

    def _lister(self, group: str, version: str, plural: str) -> StoreLister:
        return StoreLister(
            lambda: self.lookup(group, version, plural),
            name=f"ValidatingAdmissionPolicy {plural} watch",
        )

    async def close(self) -> None:
        """Stop the watches behind the listers (the chain calls this when the server stops)."""
        for lister in (self.policies, self.bindings, self.namespaces, *self.params.values()):
            await lister.stop()

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        # Every write of every kind comes here, and most servers bind no policy: then
        # no coroutine and no attributes (a lister that cannot answer: ``_dispatch``).
        if self.bindings.cached_empty():
            return
        await self._dispatch(store, operation, obj, old, ctx)

    async def validate_delete(
        self, store: Store, obj: Object, ctx: RequestContext, options: DeleteOptions | None = None
    ) -> None:
        if ctx.target is not None and ctx.target.subresource == "eviction":
            return  # the Eviction's CREATE was admitted; upstream deletes without admission
        if self.bindings.cached_empty():
            return
        await self._dispatch(store, "DELETE", None, obj, ctx, delete=options)

    async def validate_subresource(
        self,
        store: Store,
        operation: str,
        name: str,
        namespace: str,
        obj: Object,
        ctx: RequestContext,
    ) -> None:
        if self.bindings.cached_empty():
            return
        await self._dispatch(store, operation, obj, None, ctx, named=(name, namespace))

    # ----- reads ---------------------------------------------------------------------------

    async def _all(self, lister: StoreLister, group: str, plural: str) -> list[Object]:
        cached = lister.cached_list("")
        if cached is not None:
            return cached
        store = self.lookup(group, "v1", plural)
        return [] if store is None else (await store.list("", ListOptions())).items

    async def _namespace(self, name: str) -> Object:
        cached = self.namespaces.cached_get("", name)
        if cached is not None:
            return cached
        store = self.lookup("", "v1", "namespaces")
        if store is None:
            raise errors.not_found(errors.GroupResource("", "namespaces"), name)
        return await store.get("", name)

    # ----- dispatch ------------------------------------------------------------------------

    async def _dispatch(
        self,
        store: Store,
        operation: str,
        obj: Object | None,
        old: Object | None,
        ctx: RequestContext,
        *,
        delete: DeleteOptions | None = None,
        named: tuple[str, str] | None = None,
    ) -> None:
        """``named``: the (name, namespace) of a request whose object has none (CONNECT options)."""
        bindings = await self._all(self.bindings, GROUP, "validatingadmissionpolicybindings")
        if not bindings:
            return
        if named is not None:
            attrs = subresource_attributes(store, operation, *named, obj or {}, ctx)
        else:
            attrs = attributes_for(store, operation, obj, old, ctx, delete)
        if matching.is_policy_excluded(attrs):
            return
        policies = {
            _meta(p).get("name"): p
            for p in await self._all(self.policies, GROUP, "validatingadmissionpolicies")
        }
        by_policy: dict[str, list[Object]] = {}
        for binding in sorted(bindings, key=lambda b: str(_meta(b).get("name"))):
            name = str(_dict(binding.get("spec")).get("policyName") or "")
            if name in policies:
                by_policy.setdefault(name, []).append(binding)
        if not by_policy:
            return
        request = Request(attrs, ctx)
        denials: list[Denial] = []
        for name in sorted(by_policy):
            await self._apply_policy(policies[name], by_policy[name], request, ctx, denials)
        if denials:
            raise _denial_error(request, denials[0])

    async def _apply_policy(
        self,
        policy: Object,
        bindings: list[Object],
        request: Request,
        ctx: RequestContext,
        denials: list[Denial],
    ) -> None:
        spec = _dict(policy.get("spec"))
        name = str(_meta(policy).get("name"))
        fail = spec.get("failurePolicy", "Fail") != "Ignore"
        criteria = matching.match_resources_criteria(_dict(spec.get("matchConstraints")))
        try:
            matched = await self.matcher.matches(criteria, request.attrs)
        except errors.StatusError:
            return  # upstream drops an error from matching the definition
        if matched is None:
            return
        _view_as(request, matched)
        try:
            param_store = self._param_store(spec)
        except ConfigurationError as exc:
            if fail:
                denials.append(Denial(name, None, f"failed to configure policy: {exc}"))
            return
        collected: dict[str, list[str]] = {}
        for binding in bindings:
            await self._apply_binding(
                policy, binding, param_store, request, ctx, denials, collected
            )
        for key, values in collected.items():
            # Several distinct values come from bindings' params (upstream joins them).
            audit_annotations.add(ctx, f"{name}/{key}", ", ".join(values))

    def _param_store(self, spec: Object) -> Store | None:
        kind = spec.get("paramKind")
        if not isinstance(kind, dict):
            return None
        api_version = str(kind.get("apiVersion") or "")
        group, _, version = api_version.rpartition("/")
        store = self.find_kind(group, version, str(kind.get("kind") or ""))
        if store is None:
            raise ConfigurationError(
                f"failed to find resource referenced by paramKind: "
                f"'{group}/{version}, Kind={kind.get('kind') or ''}'"
            )
        return store

    async def _apply_binding(
        self,
        policy: Object,
        binding: Object,
        param_store: Store | None,
        request: Request,
        ctx: RequestContext,
        denials: list[Denial],
        collected: dict[str, list[str]],
    ) -> None:
        policy_name = str(_meta(policy).get("name"))
        binding_name = str(_meta(binding).get("name"))
        spec = _dict(binding.get("spec"))
        fail = _dict(policy.get("spec")).get("failurePolicy", "Fail") != "Ignore"
        try:
            if isinstance(spec.get("matchResources"), dict):
                criteria = matching.match_resources_criteria(spec["matchResources"])
                if await self.matcher.matches(criteria, request.attrs) is None:
                    return
            params = await self._collect_params(policy, spec, param_store, request)
        except (ConfigurationError, errors.StatusError) as exc:
            if fail:
                denials.append(
                    Denial(policy_name, binding_name, f"failed to configure binding: {exc}")
                )
            return
        if not params:
            return
        namespace_object = await self._namespace_object(request)
        actions = [str(a) for a in _list(spec.get("validationActions"))]
        for param in params:
            inputs = self._inputs(policy, request, ctx, namespace_object, param)
            for decision in _validate(policy, inputs, fail):
                if decision.deny:
                    self._act(decision, actions, policy_name, binding, ctx, denials)
            for error in _audit_annotations(policy, inputs, fail, collected):
                denials.append(Denial(policy_name, binding_name, error))

    def _act(
        self,
        decision: Decision,
        actions: list[str],
        policy: str,
        binding: Object,
        ctx: RequestContext,
        denials: list[Denial],
    ) -> None:
        name = str(_meta(binding).get("name"))
        for action in actions:
            if action == "Deny":
                denials.append(Denial(policy, name, decision.message, decision.reason))
            elif action == "Warn":
                ctx.warn(
                    f"Validation failed for ValidatingAdmissionPolicy '{policy}' with binding "
                    f"'{name}': {decision.message}"
                )
            elif action == "Audit":
                value = [
                    {
                        "message": decision.message,
                        "policy": _dict(binding.get("spec")).get("policyName", ""),
                        "binding": name,
                        "expressionIndex": decision.index,
                        "validationActions": actions,
                    }
                ]
                audit_annotations.add(ctx, AUDIT_FAILURE_KEY, audit_annotations.go_json(value))

    async def _collect_params(
        self, policy: Object, spec: Object, param_store: Store | None, request: Request
    ) -> list[Object | None]:
        """generic.CollectParams: the param objects to evaluate with ([None]: no params)."""
        ref = spec.get("paramRef")
        if param_store is None or not isinstance(ref, dict):
            return [None]
        namespace = ""
        if param_store.info.namespaced:
            namespace = str(ref.get("namespace") or request.attrs.namespace)
            if not namespace:
                raise ConfigurationError(
                    "cannot use namespaced paramRef in policy binding that matches "
                    "cluster-scoped resources"
                )
        elif ref.get("namespace"):
            raise ConfigurationError(
                "paramRef.namespace must not be provided for a cluster-scoped `paramKind`"
            )
        lister = self._param_lister(param_store)
        if ref.get("name"):
            found = await _param_by_name(lister, param_store, namespace, str(ref["name"]))
            params: list[Object | None] = [] if found is None else [found]
        else:
            params = list(
                await _params_by_selector(lister, param_store, namespace, ref.get("selector"))
            )
        if not params and ref.get("parameterNotFoundAction") == "Deny":
            raise ConfigurationError(
                "no params found for policy binding with `Deny` parameterNotFoundAction"
            )
        return params

    def _param_lister(self, store: Store) -> StoreLister:
        info = store.info
        key = (info.group, info.version, info.plural)
        lister = self.params.get(key)
        if lister is None:
            lister = self._lister(*key)
            self.params[key] = lister
        return lister

    async def _namespace_object(self, request: Request) -> Object | None:
        """upstream's CreateNamespaceObject; a Namespace request has none (its namespace is itself)."""
        attrs = request.attrs
        if not attrs.namespace or (attrs.kind.group, attrs.kind.version, attrs.kind.kind) == (
            "",
            "v1",
            "Namespace",
        ):
            return None
        namespace = await self._namespace(attrs.namespace)
        meta = _meta(namespace)
        kept = (
            "name", "generateName", "namespace", "uid", "resourceVersion", "generation",
            "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
            "annotations", "finalizers",
        )  # fmt: skip
        out: Object = {"metadata": {k: meta[k] for k in kept if k in meta}}
        for key in ("spec", "status"):
            out[key] = namespace.get(key) or {}
        return out

    def _inputs(
        self,
        policy: Object,
        request: Request,
        ctx: RequestContext,
        namespace_object: Object | None,
        param: Object | None,
    ) -> cel_env.Inputs:
        spec = _dict(policy.get("spec"))
        variables = {
            str(_dict(v).get("name")): str(_dict(v).get("expression") or "")
            for v in _list(spec.get("variables"))
        }
        return cel_env.Inputs(
            object=request.obj,
            old_object=request.old,
            request=request.extra or {},
            namespace_object=namespace_object,
            params=param,
            has_params=spec.get("paramKind") is not None,
            authorizer=cel_env.AuthorizerBinding(ctx.user, self.authorizer),
            variables=variables,
        )


# ----- params ----------------------------------------------------------------------------


async def _param_by_name(
    lister: StoreLister, store: Store, namespace: str, name: str
) -> Object | None:
    cached = lister.cached_get(namespace, name)
    if cached is not None:
        return cached
    try:
        return await store.get(namespace, name)
    except errors.StatusError as exc:
        if exc.code == 404:
            return None
        raise


async def _params_by_selector(
    lister: StoreLister, store: Store, namespace: str, selector: Any
) -> list[Object]:
    try:
        chosen = labels.selector_from_label_selector(_dict(selector))
    except labels.SelectorError as exc:
        raise ConfigurationError(str(exc)) from exc
    candidates = lister.cached_list(namespace)
    if candidates is None:
        candidates = (await store.list(namespace, ListOptions())).items
    found = [p for p in candidates if chosen.matches(_meta(p).get("labels") or {})]
    return sorted(found, key=lambda p: (_meta(p).get("namespace", ""), _meta(p).get("name", "")))


# ----- evaluation ------------------------------------------------------------------------


def _validate(policy: Object, inputs: cel_env.Inputs, fail: bool) -> list[Decision]:
    """upstream's validator.Validate: match conditions, then every validation."""
    spec = _dict(policy.get("spec"))
    gate = _match_conditions(_list(spec.get("matchConditions")), inputs, fail)
    if gate is not True:
        return [] if gate is False else [gate]
    decisions = []
    for index, raw in enumerate(_list(spec.get("validations"))):
        validation = _dict(raw)
        expression = str(validation.get("expression") or "")
        try:
            result = cel_env.evaluate(expression, inputs)
        except cel_env.ExpressionError as exc:
            decisions.append(Decision(fail, str(exc), index=index))
            continue
        if result is not True:
            reason = str(validation.get("reason") or "Invalid")
            decisions.append(Decision(True, _message(validation, inputs), reason, index))
    return decisions


def _match_conditions(conditions: list[Any], inputs: cel_env.Inputs, fail: bool) -> bool | Decision:
    """True: the policy applies; False: a condition is false (or errored under Ignore)."""
    expressions = [str(_dict(raw).get("expression") or "") for raw in conditions]
    result = match_conditions.evaluate(expressions, inputs, ignore_failures=not fail)
    if result.error:
        return Decision(True, result.error)
    return result.matches


def _message(validation: Object, inputs: cel_env.Inputs) -> str:
    expression = str(validation.get("messageExpression") or "")
    if expression:
        with contextlib.suppress(cel_env.ExpressionError):
            text = cel_env.evaluate(expression, inputs, with_authorizer=False)
            if isinstance(text, str):
                text = text.strip()
                if text and len(text.encode()) <= MAX_MESSAGE_BYTES and "\n" not in text:
                    return text
    message = str(validation.get("message") or "").strip()
    if message:
        return message
    return f"failed expression: {str(validation.get('expression') or '').strip()}"


def _audit_annotations(
    policy: Object, inputs: cel_env.Inputs, fail: bool, collected: dict[str, list[str]]
) -> list[str]:
    """Collect each auditAnnotation's value by key; the evaluation errors that deny (Fail)."""
    errs: list[str] = []
    for raw in _list(_dict(policy.get("spec")).get("auditAnnotations")):
        audit = _dict(raw)
        expression = str(audit.get("valueExpression") or "")
        try:
            value = cel_env.evaluate(expression, inputs)
        except cel_env.ExpressionError as exc:
            if fail:
                errs.append(str(exc))
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if not isinstance(value, str):
            errs.append(
                f"valueExpression '{expression}' resulted in unsupported return type: "
                f"{cel_env.type_name(value)}. Return type must be either string or null."
            )
            continue
        values = collected.setdefault(str(audit.get("key") or ""), [])
        value = value.strip()[:MAX_AUDIT_VALUE_LENGTH]
        if value not in values:  # the same value from several bindings counts once
            values.append(value)
    return errs


# ----- the request -----------------------------------------------------------------------


def _view_as(request: Request, match: matching.Match) -> None:
    """Point ``request`` at the objects and CEL ``request`` of the resource a policy matched."""
    previous = request.match
    if previous is not None and (previous.resource, previous.kind) == (match.resource, match.kind):
        return  # an earlier policy matched the same way: its view serves
    attrs = request.attrs
    request.match = match
    stored = (match.info.group, match.info.version) == attrs.info.storage_gvk[:2]
    if attrs.foreign or (stored and match.kind != SCALE_KIND):
        request.obj, request.old = attrs.obj, attrs.old  # already in that shape: no copy
    else:
        view = view_for(attrs, match.info, match.kind)
        request.obj, request.old = view.obj, view.old
    request.extra = _request_variable(attrs, match, request.ctx)


def _request_variable(attrs: Attributes, match: matching.Match, ctx: RequestContext) -> Object:
    """The CEL ``request``: upstream's AdmissionRequest without its objects, as JSON."""
    user: Object = {}
    if ctx.user.name:
        user["username"] = ctx.user.name
    if ctx.user.uid:
        user["uid"] = ctx.user.uid
    if ctx.user.groups:
        user["groups"] = list(ctx.user.groups)
    if ctx.user.extra:
        user["extra"] = {k: list(v) for k, v in ctx.user.extra}
    out: Object = {
        "uid": "",
        "kind": match.kind.to_dict(),
        "resource": match.resource.to_dict(),
        "requestKind": attrs.kind.to_dict(),
        "requestResource": attrs.resource.to_dict(),
        "operation": attrs.operation,
        "userInfo": user,
        "dryRun": ctx.dry_run,
        "options": attrs.options,
    }
    if attrs.subresource:
        out["subResource"] = attrs.subresource
        out["requestSubResource"] = attrs.subresource
    if attrs.name:
        out["name"] = attrs.name
    if attrs.namespace:
        out["namespace"] = attrs.namespace
    return out


# ----- the answer ------------------------------------------------------------------------


def _denial_error(request: Request, denial: Denial) -> errors.StatusError:
    """admission.NewForbidden with the first denial's message, reason and code."""
    if denial.binding is not None:
        message = (
            f"ValidatingAdmissionPolicy '{denial.policy}' with binding '{denial.binding}' "
            f"denied request: {denial.message}"
        )
    else:
        message = f"ValidatingAdmissionPolicy '{denial.policy}' denied request: {denial.message}"
    attrs = request.attrs
    meta = _meta(attrs.obj if attrs.obj is not None else attrs.old)
    name = attrs.name or str(meta.get("name") or meta.get("generateName") or "") or "Unknown"
    resource = errors.GroupResource(attrs.resource.group, attrs.resource.resource)
    err = errors.forbidden(resource, name, message)
    reason = denial.reason or "Invalid"
    err.reason = reason
    err.code = _CODES.get(reason, 422)
    err.causes.append(errors.StatusCause("", message))
    return err
