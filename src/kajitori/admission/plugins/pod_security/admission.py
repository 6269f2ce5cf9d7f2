"""PodSecurity: the namespace's Pod Security Standards levels, enforced, audited and warned.

Upstream's built-in PodSecurity plugin (plugin/pkg/admission/security/podsecurity
over k8s.io/pod-security-admission/admission), a validating plugin on by
default. Without an AdmissionConfiguration (kajitori reads none) every mode
defaults to ``privileged:latest`` and nothing is exempt, so nothing changes
until a namespace carries ``pod-security.kubernetes.io/<mode>`` labels.

* Pods (create; an update only when it changes a container image or adds or
  changes an ephemeral container; the ephemeralcontainers subresource): a
  violation of the enforce level is 403 Forbidden ``violates PodSecurity
  "<level>:<version>": ...``; audit violations become audit annotations;
  warn violations (only if not refused) a ``would violate PodSecurity``
  warning. status, binding, eviction and the streaming subresources are
  left alone.
* Workloads with a pod template (Deployments, ReplicaSets, StatefulSets,
  DaemonSets, Jobs, CronJobs, ReplicationControllers, PodTemplates): audit
  and warn only, never refused.
* Namespaces: invalid label values are 422 Invalid (on update only when they
  changed); an update that makes ``enforce`` stricter evaluates the
  namespace's existing pods (at most 3000, within one second, one pod per
  controller first) and returns upstream's warnings.
* Exemptions (users, namespaces, runtime classes) keep upstream's shape and
  are empty. Mirror pods are not exempt: upstream's plugin evaluates them as
  any pod.

The namespace is read through a ``StoreLister`` (as upstream reads its
informer), storage when the lister cannot answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from kajitori.admission.chain import Plugin
from kajitori.admission.lister import StoreLister
from kajitori.admission.plugins.pod_security import api
from kajitori.admission.plugins.pod_security.api import LevelVersion, Policy
from kajitori.admission.plugins.pod_security.evaluator import AggregateResult, Evaluator
from kajitori.machinery import errors
from kajitori.machinery.field import FieldError
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.store import ListOptions

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store

Object = dict[str, Any]
# (group, version, plural) -> the store serving it, None if not served.
Lookup = Callable[[str, str, str], "Store | None"]

NAMESPACE_MAX_PODS_TO_CHECK = 3000
NAMESPACE_POD_CHECK_TIMEOUT_SECONDS = 1.0
# How many pods to evaluate between yields to the event loop.
_PODS_PER_SLICE = 200

_NAMESPACE_KIND = errors.GroupKind("", "Namespace")
_PODS = ("", "pods")
_NAMESPACES = ("", "namespaces")
# Stored (group, plural) of the kinds carrying a pod template -> the template's path.
_TEMPLATE_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "podtemplates"): ("template",),
    ("", "replicationcontrollers"): ("spec", "template"),
    ("apps", "replicasets"): ("spec", "template"),
    ("apps", "deployments"): ("spec", "template"),
    ("apps", "statefulsets"): ("spec", "template"),
    ("apps", "daemonsets"): ("spec", "template"),
    ("batch", "jobs"): ("spec", "template"),
    ("batch", "cronjobs"): ("spec", "jobTemplate", "spec", "template"),
}
# Upstream's ReplicationController template is a pointer: none means nothing to check.
_OPTIONAL_TEMPLATES = frozenset({("", "replicationcontrollers")})
# Pod subresources that cannot change what the checks read.
IGNORED_POD_SUBRESOURCES = frozenset(
    ("exec", "attach", "binding", "eviction", "log", "portforward", "proxy", "status")
)


@dataclass(frozen=True, slots=True)
class Exemptions:
    """Requests the plugin never evaluates (upstream's PodSecurityConfiguration exemptions)."""

    usernames: frozenset[str] = frozenset()
    namespaces: frozenset[str] = frozenset()
    runtime_classes: frozenset[str] = frozenset()


@dataclass(slots=True)
class Response:
    """The plugin's decision: a refusal (``error``), warnings and audit annotations."""

    error: errors.StatusError | None = None
    warnings: list[str] = field(default_factory=list)
    audit_annotations: dict[str, str] = field(default_factory=dict)


class PodSecurity(Plugin):
    # The (group, plural)s validate acts on: pods, namespaces, the pod-template kinds
    # (also as the legacy extensions group serves them; they reach admission as apps/v1).
    VALIDATES: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            _PODS,
            _NAMESPACES,
            *_TEMPLATE_PATHS,
            ("extensions", "deployments"),
            ("extensions", "replicasets"),
            ("extensions", "daemonsets"),
        }
    )

    def __init__(
        self,
        lookup: Lookup,
        *,
        defaults: Policy = api.DEFAULT_POLICY,
        exemptions: Exemptions = Exemptions(),
        evaluator: Evaluator | None = None,
        namespaces: StoreLister | None = None,
    ) -> None:
        self.lookup = lookup
        self.defaults = defaults
        self.exemptions = exemptions
        self.evaluator = evaluator or Evaluator()
        self.namespaces = namespaces
        self.max_pods_to_check = NAMESPACE_MAX_PODS_TO_CHECK
        self.pod_check_timeout = NAMESPACE_POD_CHECK_TIMEOUT_SECONDS

    async def close(self) -> None:
        if self.namespaces is not None:
            await self.namespaces.stop()

    async def validate(
        self, store: Store, operation: str, obj: Object, old: Object | None, ctx: RequestContext
    ) -> None:
        if operation not in ("CREATE", "UPDATE"):
            return
        resource = (store.info.group, store.info.plural)
        if resource[0] == "extensions":  # legacy workloads, stored (and admitted) as apps/v1
            resource = ("apps", resource[1])
        subresource = ctx.target.subresource if ctx.target is not None else ""
        if resource == _NAMESPACES:
            response = await self.validate_namespace(operation, obj, old, subresource)
        elif resource == _PODS:
            response = await self.validate_pod(store, operation, obj, old, subresource, ctx)
        elif resource in _TEMPLATE_PATHS:
            response = await self.validate_pod_controller(resource, obj, subresource, ctx)
        else:
            return
        _deliver(response, ctx)

    # ----- namespaces -------------------------------------------------------------------------

    async def validate_namespace(
        self, operation: str, obj: Object, old: Object | None, subresource: str
    ) -> Response:
        if subresource:
            return Response()
        name = _meta(obj).get("name", "")
        labels = _labels(obj)
        policy, errs = api.policy_to_evaluate(labels, self.defaults)
        if operation == "CREATE":
            if errs:
                return Response(error=errors.invalid(_NAMESPACE_KIND, name, errs))
            return self._exempt_namespace_response(name, policy, labels)
        old_policy, old_errs = api.policy_to_evaluate(_labels(old or {}), self.defaults)
        if errs and (not old_errs or [str(e) for e in errs] != [str(e) for e in old_errs]):
            return Response(error=errors.invalid(_NAMESPACE_KIND, name, errs))
        new_enforce, old_enforce = policy.enforce, old_policy.enforce
        if new_enforce == old_enforce or new_enforce.level == api.PRIVILEGED:
            return Response()
        if (
            new_enforce.version == old_enforce.version
            and api.compare_levels(new_enforce.level, old_enforce.level) < 1
        ):
            return Response()  # the same version, relaxed
        if self._exempt_namespace(name):
            return self._exempt_namespace_response(name, policy, labels)
        return Response(warnings=await self.evaluate_pods_in_namespace(name, new_enforce))

    def _exempt_namespace_response(
        self, name: str, policy: Policy, labels: Mapping[str, str]
    ) -> Response:
        if not self._exempt_namespace(name):
            return Response()
        warning = self._exempt_namespace_warning(name, policy, labels)
        return Response(warnings=[warning] if warning else [])

    def _exempt_namespace_warning(
        self, name: str, policy: Policy, labels: Mapping[str, str]
    ) -> str:
        if policy.fully_privileged() or policy.equivalent(self.defaults):
            return ""
        modes = (
            ("enforce", policy.enforce, api.ENFORCE_LEVEL_LABEL, api.ENFORCE_VERSION_LABEL),
            ("audit", policy.audit, api.AUDIT_LEVEL_LABEL, api.AUDIT_VERSION_LABEL),
            ("warn", policy.warn, api.WARN_LEVEL_LABEL, api.WARN_VERSION_LABEL),
        )
        parts = [
            f"{mode}={lv}"
            for mode, lv, level_label, version_label in modes
            if lv.level != api.PRIVILEGED and (level_label in labels or version_label in labels)
        ]
        return (
            f'namespace "{name}" is exempt from Pod Security, '
            f"and the policy ({', '.join(parts)}) will be ignored"
        )

    async def evaluate_pods_in_namespace(self, namespace: str, enforce: LevelVersion) -> list[str]:
        """Upstream's warnings for the namespace's pods that the new enforce level would refuse."""
        deadline = time.monotonic() + self.pod_check_timeout
        try:
            pods = await self._list_pods(namespace)
        except errors.StatusError:
            return ["failed to list pods while checking new PodSecurity enforce level"]
        prioritized = self._prioritize(pods)
        total = len(prioritized)
        prioritized = prioritized[: self.max_pods_to_check]
        checked = len(prioritized)
        first_pod: dict[str, str] = {}
        counts: dict[str, int] = {}
        for i, pod in enumerate(prioritized):
            result = self.evaluator.evaluate(enforce, _meta(pod), _dict(pod.get("spec")))
            if not result.allowed:
                _count(first_pod, counts, result.forbidden_reason(), _meta(pod).get("name", ""))
            if time.monotonic() > deadline:
                checked = i + 1
                break
            if (i + 1) % _PODS_PER_SLICE == 0:
                await asyncio.sleep(0)  # let other requests run during a long check
        warnings = []
        if checked < total:
            warnings.append(
                f"new PodSecurity enforce level only checked against the first {checked} "
                f"of {total} existing pods"
            )
        if counts:
            warnings.append(
                f'existing pods in namespace "{namespace}" violate the new PodSecurity '
                f'enforce level "{enforce}"'
            )
        return warnings + sorted(_decorated(first_pod, counts))

    async def _list_pods(self, namespace: str) -> list[Object]:
        pods = self.lookup("", "v1", "pods")
        if pods is None:
            return []
        return (await pods.list(namespace, ListOptions())).items

    def _prioritize(self, pods: Iterable[Object]) -> list[Object]:
        """Pods without an exempt runtime class; one pod per controller first, its others last."""
        first: list[Object] = []
        later: list[Object] = []
        seen_controllers: set[str] = set()
        for pod in pods:
            if self._exempt_runtime_class(_dict(pod.get("spec")).get("runtimeClassName")):
                continue
            controller = _controller_uid(pod)
            if controller is None:
                first.append(pod)
            elif controller in seen_controllers:
                later.append(pod)
            else:
                seen_controllers.add(controller)
                first.append(pod)
        return first + later

    # ----- pods -------------------------------------------------------------------------------

    async def validate_pod(
        self,
        store: Store,
        operation: str,
        pod: Object,
        old: Object | None,
        subresource: str,
        ctx: RequestContext,
    ) -> Response:
        if subresource in IGNORED_POD_SUBRESOURCES:
            return Response()
        namespace = _meta(pod).get("namespace", "")
        exempt = self._exemption(namespace, ctx)
        if exempt is not None:
            return exempt
        try:
            ns = await self._namespace(namespace)
        except errors.StatusError as exc:
            error = errors.internal_error(f'failed to lookup namespace "{namespace}"')
            return Response(
                error=error, audit_annotations={"error": f"{error.message}: {exc.message}"}
            )
        policy, errs = api.policy_to_evaluate(_labels(ns), self.defaults)
        if not errs and policy.fully_privileged():
            enforced = str(LevelVersion(api.PRIVILEGED, api.LATEST))
            return Response(audit_annotations={api.ENFORCED_POLICY_ANNOTATION: enforced})
        if operation == "UPDATE" and old is not None and not significant_pod_update(pod, old):
            return Response()
        subject = (store.gr, _meta(pod).get("name", ""))
        return self.evaluate_pod(policy, errs, _meta(pod), _dict(pod.get("spec")), enforce=subject)

    async def validate_pod_controller(
        self, resource: tuple[str, str], obj: Object, subresource: str, ctx: RequestContext
    ) -> Response:
        if subresource:
            return Response()
        namespace = _meta(obj).get("namespace", "")
        exempt = self._exemption(namespace, ctx)
        if exempt is not None:
            return exempt
        try:
            ns = await self._namespace(namespace)
        except errors.StatusError as exc:
            message = f'failed to lookup namespace "{namespace}": {exc.message}'
            return Response(audit_annotations={"error": message})
        policy, errs = api.policy_to_evaluate(_labels(ns), self.defaults)
        if not errs and api.PRIVILEGED == policy.warn.level == policy.audit.level:
            return Response()
        template = _template(obj, resource)
        if template is None:
            return Response()
        return self.evaluate_pod(policy, errs, _meta(template), _dict(template.get("spec")))

    def evaluate_pod(
        self,
        policy: Policy,
        policy_errors: list[FieldError],
        meta: Object,
        spec: Object,
        *,
        enforce: tuple[errors.GroupResource, str] | None = None,
    ) -> Response:
        """The three modes on one pod (or template); ``enforce``: the pod's resource and name
        (a refusal names them), for pods only: templates are never refused."""
        if self._exempt_runtime_class(spec.get("runtimeClassName")):
            return Response(audit_annotations={api.EXEMPTION_REASON_ANNOTATION: "runtimeClass"})
        response = Response()
        if policy_errors:
            response.audit_annotations["error"] = (
                f"Failed to parse policy: {api.aggregate_errors(policy_errors)}"
            )
        results: dict[LevelVersion, AggregateResult] = {}
        if enforce is not None:
            response.audit_annotations[api.ENFORCED_POLICY_ANNOTATION] = str(policy.enforce)
            result = results[policy.enforce] = self.evaluator.evaluate(policy.enforce, meta, spec)
            if not result.allowed:
                response.error = errors.forbidden(
                    *enforce,
                    f'violates PodSecurity "{policy.enforce}": {result.forbidden_detail()}',
                )
        audit = results.get(policy.audit)
        if audit is None:
            audit = results[policy.audit] = self.evaluator.evaluate(policy.audit, meta, spec)
        if not audit.allowed:
            response.audit_annotations[api.AUDIT_VIOLATIONS_ANNOTATION] = (
                f'would violate PodSecurity "{policy.audit}": {audit.forbidden_detail()}'
            )
        if response.error is None:
            warn = results.get(policy.warn) or self.evaluator.evaluate(policy.warn, meta, spec)
            if not warn.allowed:
                response.warnings.append(
                    f'would violate PodSecurity "{policy.warn}": {warn.forbidden_detail()}'
                )
        return response

    # ----- shared -----------------------------------------------------------------------------

    def _exemption(self, namespace: str, ctx: RequestContext) -> Response | None:
        if self._exempt_namespace(namespace):
            return Response(audit_annotations={api.EXEMPTION_REASON_ANNOTATION: "namespace"})
        if ctx.user.name and ctx.user.name in self.exemptions.usernames:
            return Response(audit_annotations={api.EXEMPTION_REASON_ANNOTATION: "user"})
        return None

    def _exempt_namespace(self, namespace: str) -> bool:
        return bool(namespace) and namespace in self.exemptions.namespaces

    def _exempt_runtime_class(self, name: Any) -> bool:
        return bool(name) and name in self.exemptions.runtime_classes

    async def _namespace(self, name: str) -> Object:
        if self.namespaces is not None:
            cached = self.namespaces.cached_get("", name)
            if cached is not None:
                return cached
        store = self.lookup("", "v1", "namespaces")
        if store is None:
            raise errors.not_found(errors.GroupResource("", "namespaces"), name)
        found: Object = await store.get("", name)
        return found


def significant_pod_update(pod: Object, old: Object) -> bool:
    """Whether a pod update changes what the checks read (upstream: an image, or an ephemeral
    container added or changed); anything else (labels, status, tolerations...) is let through."""
    spec, old_spec = _dict(pod.get("spec")), _dict(old.get("spec"))
    for key in ("containers", "initContainers"):
        new, before = _list(spec.get(key)), _list(old_spec.get(key))
        if len(new) != len(before):
            return True
        if any(_image(a) != _image(b) for a, b in zip(new, before, strict=True)):
            return True
    old_ephemeral = {
        _dict(c).get("name"): _image(c) for c in _list(old_spec.get("ephemeralContainers"))
    }
    for container in _list(spec.get("ephemeralContainers")):
        name = _dict(container).get("name")
        if name not in old_ephemeral or old_ephemeral[name] != _image(container):
            return True
    return False


def _deliver(response: Response, ctx: RequestContext) -> None:
    """Hand the response to the request: warnings, audit annotations, then any refusal."""
    for warning in response.warnings:
        ctx.warn(warning)
    annotate = getattr(ctx, "add_audit_annotation", None)
    if annotate is not None:
        for key, value in response.audit_annotations.items():
            annotate(api.AUDIT_ANNOTATION_PREFIX + key, value)
    if response.error is not None:
        raise response.error


def _count(first_pod: dict[str, str], counts: dict[str, int], warning: str, name: str) -> None:
    """Count a pod under ``warning``, keeping the lexically first pod name per warning."""
    if warning not in counts:
        first_pod[warning] = name
        counts[warning] = 0
    elif name < first_pod[warning]:
        first_pod[warning] = name
    counts[warning] += 1


def _decorated(first_pod: dict[str, str], counts: dict[str, int]) -> list[str]:
    lines = []
    for warning, count in counts.items():
        name = first_pod[warning]
        if count == 1:
            lines.append(f"{name}: {warning}")
        elif count == 2:
            lines.append(f"{name} (and 1 other pod): {warning}")
        else:
            lines.append(f"{name} (and {count - 1} other pods): {warning}")
    return lines


def _template(obj: Object, resource: tuple[str, str]) -> Object | None:
    value: Any = obj
    for key in _TEMPLATE_PATHS[resource]:
        value = _dict(value).get(key)
    if isinstance(value, dict):
        return value
    # A value type upstream: a missing template is an empty one.
    return None if resource in _OPTIONAL_TEMPLATES else {}


def _controller_uid(pod: Object) -> str | None:
    for ref in _list(_meta(pod).get("ownerReferences")):
        if isinstance(ref, dict) and ref.get("controller") is True:
            return str(ref.get("uid", ""))
    return None


def _image(container: Any) -> Any:
    return _dict(container).get("image")


def _meta(obj: Object) -> Object:
    return _dict(obj.get("metadata"))


def _labels(obj: Object) -> dict[str, str]:
    return _dict(_meta(obj).get("labels"))


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
