"""The MutatingAdmissionWebhook and ValidatingAdmissionWebhook plugins (upstream:
webhook/generic, webhook/mutating, webhook/validating).

Owns which webhooks a request calls (``should_call``: the webhook's rules and
selectors through ``admission.matching``, the matcher policies use too, then
matchConditions), and the two ways of calling them:

* mutating webhooks one after another, configurations in name order; each
  JSON patch is applied to the object in the webhook's version, converted
  back and defaulted; a webhook that changes the object asks the admission
  chain for a second pass of the mutating plugins (``admission.reinvocation``),
  in which only the webhooks with reinvocationPolicy IfNeeded that ran before a
  change (by a later webhook, or by any plugin since) are called again. DELETE
  requests reach them too (through ``validate_delete``); a patch there is an
  error.
* validating webhooks all at once; the first refusal in webhook order wins.

CONNECT requests (``pods/exec`` and the other connect subresources, their
options as the object) and the create of ``pods/eviction`` (an Eviction) come
through ``admit_subresource``/``validate_subresource``; the pod deletion an
eviction then makes is not shown to webhooks, as upstream's eviction deletes
without admission.

Audit annotations, as upstream: a webhook's ``auditAnnotations`` as
``<webhook name>/<key>``; for each mutating webhook called,
``mutation.webhook.admission.k8s.io/round_<r>_index_<i>`` (configuration,
webhook, whether it mutated) and, for a patch it applied,
``patch.webhook.admission.k8s.io/round_<r>_index_<i>`` (Request level and
up); ``failed-open.`` variants of both dispatchers' prefixes name a webhook
that failed open. ``<i>`` is the webhook's place among all mutating webhooks,
or among the validating webhooks called.

A webhook that cannot be reached, times out or answers nonsense is skipped
under failurePolicy Ignore and refuses the request with upstream's 500
InternalError under Fail. Denials, the dry-run refusal of webhooks with side
effects and bad patches refuse the request whatever the policy.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from kajitori.admission import audit_annotations, matching, reinvocation
from kajitori.admission.chain import Plugin
from kajitori.admission.lister import StoreLister
from kajitori.admission.policy import cel_env
from kajitori.admission.webhooks import conditions, review
from kajitori.admission.webhooks.accessors import Webhook, WebhookSource
from kajitori.admission.webhooks.attributes import (
    Attributes,
    VersionedView,
    Versions,
    attributes_for,
    subresource_attributes,
    view_for,
)
from kajitori.admission.webhooks.client import WebhookClients
from kajitori.admission.webhooks.review import CallError, Invocation
from kajitori.machinery import errors
from kajitori.machinery.patching import common as patch_common
from kajitori.machinery.patching.json_patch import apply_json_patch
from kajitori.registry.authorization.authorizer import Authorizer
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.resource import ResourceInfo

if TYPE_CHECKING:
    from kajitori.registry.generic.store import DeleteOptions, Store

Object = dict[str, Any]
StoreGetter = Callable[[], "Store | None"]

_log = logging.getLogger(__name__)

MUTATION_PREFIX = "mutation.webhook.admission.k8s.io/"
PATCH_PREFIX = "patch.webhook.admission.k8s.io/"
MUTATION_FAILED_OPEN_PREFIX = "failed-open." + MUTATION_PREFIX
VALIDATING_FAILED_OPEN_PREFIX = "failed-open.validating.webhook.admission.k8s.io/"
# The plugin's name: its key in the request's reinvocation state.
MUTATING_PLUGIN = "MutatingAdmissionWebhook"


@dataclass(frozen=True, slots=True)
class Matched:
    """A webhook to call, the resource it matched, and the served resource that is."""

    webhook: Webhook
    invocation: Invocation
    info: ResourceInfo


class Namespaces:
    """Namespaces for namespaceSelector, from a watch of namespaces (storage until synced)."""

    def __init__(self, store: StoreGetter, lister: StoreLister | None = None) -> None:
        """``lister``: a namespaces lister the server shares between admission plugins."""
        self._get_store = store
        self._lister = lister or StoreLister(store, name="webhook admission namespaces watch")

    async def get(self, name: str) -> Object | None:
        """The namespace ``name``; None when namespaces are not served; NotFound when absent."""
        namespace = self._lister.cached_get("", name)
        if namespace is None:
            store = self._get_store()
            if store is None:
                return None
            namespace = await store.get("", name)  # NotFound: refused as upstream
        return namespace

    async def stop(self) -> None:
        await self._lister.stop()


class WebhookDispatcher:
    """What both plugins share: the webhook source, matching and the HTTPS calls."""

    def __init__(
        self,
        source: WebhookSource,
        *,
        namespaces: Namespaces,
        versions: Versions,
        clients: WebhookClients,
        mutating: bool,
        authorizer: Authorizer | None = None,
    ) -> None:
        self.source = source
        self.authorizer = authorizer  # matchConditions' ``authorizer``; None: no opinion
        self.namespaces = namespaces
        self.versions = versions
        self.matcher = matching.Matcher(versions, namespaces.get)
        self.clients = clients
        self.mutating = mutating

    async def close(self) -> None:
        """Stop the watches and close the HTTPS connections (shared ones may close twice)."""
        await self.source.stop()
        await self.namespaces.stop()
        await self.clients.aclose()

    async def should_call(self, webhook: Webhook, attrs: Attributes) -> Matched | None:
        """The webhook's invocation for this request, or None; raises for selector trouble."""
        found = await self.matcher.matches(webhook.criteria, attrs)
        if found is None:
            return None
        invocation = Invocation(found.resource, attrs.subresource, found.kind)
        matched = Matched(webhook, invocation, found.info)
        if webhook.match_conditions and not self._conditions_hold(webhook, attrs, matched):
            return None
        return matched

    def _conditions_hold(self, webhook: Webhook, attrs: Attributes, matched: Matched) -> bool:
        view = view_for(attrs, matched.info, matched.invocation.kind)
        request = review.admission_request("", attrs, matched.invocation, None, None)
        # As upstream's CEL request: the AdmissionRequest without its objects.
        del request["object"], request["oldObject"]
        inputs = cel_env.Inputs(
            object=view.obj,
            old_object=view.old,
            request=request,
            namespace_object=None,
            params=None,
            has_params=False,
            authorizer=cel_env.AuthorizerBinding(attrs.user, self.authorizer),
        )
        expressions = [expression for _name, expression in webhook.match_conditions]
        result = conditions.evaluate(expressions, inputs, ignore_failures=webhook.ignores_failures)
        if result.error:
            _log.warning(
                "Failed evaluating match conditions, failing closed %s: %s",
                webhook.name,
                result.error,
            )
            gr = errors.GroupResource(attrs.resource.group, attrs.resource.resource)
            raise errors.forbidden(gr, attrs.name, result.error)
        return result.matches

    async def call(
        self, matched: Matched, attrs: Attributes, view: VersionedView, ctx: RequestContext
    ) -> review.Response:
        """Send the AdmissionReview and check the answer; raises CallError or a StatusError."""
        webhook = matched.webhook
        if attrs.dry_run:
            if webhook.side_effects is None:
                raise review.side_effects_nil(webhook.name)
            if webhook.side_effects not in ("None", "NoneOnDryRun"):
                raise review.dry_run_unsupported(webhook.name)
        try:
            version = review.review_version(webhook.review_versions)
        except review.NoKnownVersion as exc:
            raise CallError(webhook.name, f"could not create admission objects: {exc}") from exc
        uid = str(uuid.uuid4())
        request = review.admission_request(uid, attrs, matched.invocation, view.obj, view.old)
        answer = await self.clients.post(webhook, review.admission_review(version, request))
        try:
            response = review.verify_response(uid, version, self.mutating, answer)
        except review.InvalidResponse as exc:
            raise CallError(webhook.name, f"received invalid webhook response: {exc}") from exc
        for key, value in response.audit_annotations.items():
            audit_annotations.add(ctx, f"{webhook.name}/{key}", value)
        for warning in response.warnings:
            ctx.warn(warning)
        if not response.allowed:
            raise review.denial_error(webhook.name, response.result)
        return response


def _skips(attrs: Attributes) -> bool:
    """Requests webhooks never see: the admission configuration kinds, an eviction's delete."""
    if attrs.operation == "DELETE" and attrs.subresource == "eviction":
        return True  # the Eviction's CREATE was admitted; upstream deletes without admission
    return matching.is_exempt(attrs)


def _fail_open_or_raise(webhook: Webhook, exc: CallError, ctx: RequestContext, key: str) -> None:
    if webhook.ignores_failures:
        _log.warning("Failed calling webhook, failing open %s: %s", webhook.name, exc)
        audit_annotations.add(ctx, key, webhook.name)
        return
    _log.warning("Failed calling webhook, failing closed %s: %s", webhook.name, exc)
    raise exc.to_status_error() from exc


# ----- mutating -------------------------------------------------------------------------------


class _WebhookPlugin(Plugin):
    """What both webhook plugins do with a request before their own dispatch."""

    def __init__(self, dispatcher: WebhookDispatcher) -> None:
        self.dispatcher = dispatcher

    async def close(self) -> None:
        await self.dispatcher.close()

    async def validate_delete(
        self, store: Store, obj: Object, ctx: RequestContext, options: DeleteOptions | None = None
    ) -> None:
        await self._admission(lambda: attributes_for(store, "DELETE", None, obj, ctx, options), ctx)

    async def _admission(self, attributes: Callable[[], Attributes], ctx: RequestContext) -> None:
        webhooks = await self.dispatcher.source.webhooks()
        if webhooks:  # most servers have none: nothing else to work out
            await self._dispatch(webhooks, attributes(), ctx)

    async def _dispatch(
        self, webhooks: list[Webhook], attrs: Attributes, ctx: RequestContext
    ) -> None:
        raise NotImplementedError


class MutatingWebhook(_WebhookPlugin):
    """Upstream's MutatingAdmissionWebhook plugin."""

    async def admit(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        await self._admission(lambda: attributes_for(store, operation, obj, old, ctx), ctx)

    async def admit_subresource(
        self,
        store: Store,
        operation: str,
        name: str,
        namespace: str,
        obj: Object,
        ctx: RequestContext,
    ) -> None:
        await self._admission(
            lambda: subresource_attributes(store, operation, name, namespace, obj, ctx), ctx
        )

    async def _dispatch(
        self, webhooks: list[Webhook], attrs: Attributes, ctx: RequestContext
    ) -> None:
        if _skips(attrs):
            return
        pass_ = reinvocation.of(ctx)
        state = pass_.begin(MUTATING_PLUGIN, attrs.obj)
        try:
            await self._round(webhooks, attrs, ctx, pass_, state)
        finally:
            state.record_output(attrs.obj, pass_)

    async def _round(
        self,
        webhooks: list[Webhook],
        attrs: Attributes,
        ctx: RequestContext,
        pass_: reinvocation.Reinvocation,
        state: reinvocation.Invoked,
    ) -> None:
        again = pass_.is_reinvoke
        round_ = 1 if again else 0
        for index, webhook in enumerate(webhooks):
            matched = await self.dispatcher.should_call(webhook, attrs)
            if matched is None or (again and not state.should_reinvoke(webhook.uid)):
                continue
            where = f"round_{round_}_index_{index}"
            changed = False
            try:
                changed = await self._call(matched, attrs, ctx, PATCH_PREFIX + where)
            except CallError as exc:
                _fail_open_or_raise(webhook, exc, ctx, MUTATION_FAILED_OPEN_PREFIX + where)
            finally:
                # Every call is recorded, whatever came of it (upstream defers this).
                mutation = {
                    "configuration": webhook.configuration,
                    "webhook": webhook.name,
                    "mutated": changed,
                }
                audit_annotations.add(
                    ctx, MUTATION_PREFIX + where, audit_annotations.go_json(mutation)
                )
            if changed:
                pass_.changed(state)
            if webhook.reinvocation_policy == "IfNeeded":
                state.add_previously_invoked(webhook.uid)

    async def _call(
        self, matched: Matched, attrs: Attributes, ctx: RequestContext, patch_key: str
    ) -> bool:
        """Call one mutating webhook and apply its patch; whether the object changed."""
        view = view_for(attrs, matched.info, matched.invocation.kind)
        response = await self.dispatcher.call(matched, attrs, view, ctx)
        if not response.patch:
            return False
        name = matched.webhook.name
        try:
            operations = orjson.loads(response.patch)
        except orjson.JSONDecodeError as exc:
            raise CallError(name, f"received undecodable patch in webhook response: {exc}") from exc
        if not isinstance(operations, list):
            raise CallError(
                name,
                "received undecodable patch in webhook response: "
                "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
            )
        if not operations:
            return False
        if view.obj is None or attrs.obj is None:
            raise review.modifies_nothing(name)
        if response.patch_type != "JSONPatch":
            raise CallError(name, f'unsupported patch type "{response.patch_type}"')
        try:
            patched = apply_json_patch(view.obj, operations)
        except patch_common.PatchError as exc:
            raise errors.internal_error(exc.message) from exc
        if not isinstance(patched, dict):
            raise errors.internal_error("Object 'Kind' is missing in the patched object")
        _annotate_patch(ctx, patch_key, matched.webhook, operations)
        updated = view.back(patched)
        if not attrs.foreign:
            attrs.info.strategy.set_defaults(updated)
        if updated == attrs.obj:
            return False
        _replace_contents(attrs.obj, updated)
        return True


def _annotate_patch(ctx: RequestContext, key: str, webhook: Webhook, operations: list[Any]) -> None:
    """The applied patch, for audit levels Request and up (upstream's PatchAuditAnnotation)."""
    # Each operation's keys sorted, values as sent: Go writes map keys sorted, raw values as is.
    patch = [{k: op[k] for k in sorted(op)} if isinstance(op, dict) else op for op in operations]
    value = {
        "configuration": webhook.configuration,
        "webhook": webhook.name,
        "patch": patch,
        "patchType": "JSONPatch",
    }
    audit_annotations.add(ctx, key, audit_annotations.go_json(value), level="Request")


def _replace_contents(target: Object, new: Object) -> None:
    """Make ``target`` equal ``new`` in place, keeping its metadata dict.

    The write path holds both the object and its metadata (registry.generic.hooks
    carries uid and creationTimestamp into that metadata after mutating admission).
    """
    meta, new_meta = target.get("metadata"), new.get("metadata")
    target.clear()
    target.update(new)
    if isinstance(meta, dict) and isinstance(new_meta, dict) and meta is not new_meta:
        meta.clear()
        meta.update(new_meta)
        target["metadata"] = meta


# ----- validating -----------------------------------------------------------------------------


class ValidatingWebhook(_WebhookPlugin):
    """Upstream's ValidatingAdmissionWebhook plugin."""

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        await self._admission(lambda: attributes_for(store, operation, obj, old, ctx), ctx)

    async def validate_subresource(
        self,
        store: Store,
        operation: str,
        name: str,
        namespace: str,
        obj: Object,
        ctx: RequestContext,
    ) -> None:
        await self._admission(
            lambda: subresource_attributes(store, operation, name, namespace, obj, ctx), ctx
        )

    async def _dispatch(
        self, webhooks: list[Webhook], attrs: Attributes, ctx: RequestContext
    ) -> None:
        if _skips(attrs):
            return
        calls: list[Coroutine[Any, Any, errors.StatusError | None]] = []
        views: dict[Any, VersionedView] = {}
        for webhook in webhooks:
            matched = await self.dispatcher.should_call(webhook, attrs)
            if matched is None:
                continue
            key = (matched.info.group, matched.info.version, matched.invocation.kind)
            if key not in views:  # one conversion per version, shared by its webhooks
                views[key] = view_for(attrs, matched.info, matched.invocation.kind)
            failed_open_key = f"{VALIDATING_FAILED_OPEN_PREFIX}round_0_index_{len(calls)}"
            calls.append(self._call(matched, attrs, views[key], ctx, failed_open_key))
        if not calls:
            return
        for refusal in await asyncio.gather(*calls):
            if refusal is not None:
                raise refusal

    async def _call(
        self,
        matched: Matched,
        attrs: Attributes,
        view: VersionedView,
        ctx: RequestContext,
        failed_open_key: str,
    ) -> errors.StatusError | None:
        try:
            await self.dispatcher.call(matched, attrs, view, ctx)
        except CallError as exc:
            try:
                _fail_open_or_raise(matched.webhook, exc, ctx, failed_open_key)
            except errors.StatusError as refusal:
                return refusal
        except errors.StatusError as refusal:
            _log.info("rejected by webhook %r: %s", matched.webhook.name, refusal)
            return refusal
        return None
