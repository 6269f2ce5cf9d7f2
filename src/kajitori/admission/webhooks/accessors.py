"""The webhooks of every configuration, in call order (upstream: webhook accessors and sources).

Owns ``Webhook`` (one entry of a Validating/MutatingWebhookConfiguration with
upstream's v1 defaults applied and its selectors parsed once) and
``WebhookSource``, which reads the configurations through a ``StoreLister``
(watch-fed: no storage read per request once the watch has caught up) and
keeps the parsed webhooks per configuration resourceVersion. Configurations
are taken in name order and webhooks in their order within one, as upstream
sorts them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kajitori.admission.lister import StoreLister
from kajitori.admission.matching import Criteria, parse_selector
from kajitori.registry.generic.store import ListOptions

if TYPE_CHECKING:
    from kajitori.registry.generic.store import Store

Object = dict[str, Any]
StoreGetter = Callable[[], "Store | None"]

GROUP = "admissionregistration.k8s.io"
DEFAULT_TIMEOUT_SECONDS = 10


@dataclass(frozen=True, slots=True)
class Webhook:
    """One webhook of a configuration, with upstream's v1 defaults filled in."""

    uid: str  # <configuration>/<webhook>/<index>: the reinvocation bookkeeping's key
    configuration: str
    name: str
    client_config: Object
    failure_policy: str
    side_effects: str | None
    timeout_seconds: int
    review_versions: tuple[str, ...]
    reinvocation_policy: str
    match_conditions: tuple[tuple[str, str], ...]
    criteria: Criteria  # rules, matchPolicy and both selectors, as admission.matching takes them

    @property
    def ignores_failures(self) -> bool:
        return self.failure_policy == "Ignore"


def webhooks_of(configuration: Object) -> list[Webhook]:
    name = (configuration.get("metadata") or {}).get("name", "")
    return [
        _webhook(name, index, spec)
        for index, spec in enumerate(configuration.get("webhooks") or ())
        if isinstance(spec, dict)
    ]


def _webhook(configuration: str, index: int, spec: Object) -> Webhook:
    name = spec.get("name", "")
    timeout = spec.get("timeoutSeconds")
    criteria = Criteria(
        rules=tuple(r for r in spec.get("rules") or () if isinstance(r, dict)),
        match_policy=spec.get("matchPolicy") or "Equivalent",
        namespace_selector=parse_selector(spec.get("namespaceSelector")),
        object_selector=parse_selector(spec.get("objectSelector")),
    )
    return Webhook(
        uid=f"{configuration}/{name}/{index}",
        configuration=configuration,
        name=name,
        client_config=spec.get("clientConfig") or {},
        failure_policy=spec.get("failurePolicy") or "Fail",
        side_effects=spec.get("sideEffects"),
        timeout_seconds=DEFAULT_TIMEOUT_SECONDS if timeout is None else int(timeout),
        review_versions=tuple(spec.get("admissionReviewVersions") or ("v1",)),
        reinvocation_policy=spec.get("reinvocationPolicy") or "Never",
        match_conditions=tuple(
            (c.get("name", ""), c.get("expression", ""))
            for c in spec.get("matchConditions") or ()
            if isinstance(c, dict)
        ),
        criteria=criteria,
    )


class WebhookSource:
    """The current webhooks of one configuration resource, in call order."""

    def __init__(self, store: StoreGetter, *, plural: str) -> None:
        self._get_store = store
        self._lister = StoreLister(store, name=f"webhook admission {plural} watch")
        # name -> (resourceVersion, its webhooks)
        self._parsed: dict[str, tuple[str, list[Webhook]]] = {}

    async def webhooks(self) -> list[Webhook]:
        configurations = self._lister.cached_list("")
        if configurations is None:
            store = self._get_store()
            if store is None:  # the resource is not served
                return []
            configurations = (await store.list("", ListOptions())).items
        if not configurations:
            self._parsed.clear()
            return []
        out: list[Webhook] = []
        seen = set()
        for configuration in sorted(configurations, key=_name):
            name, version = _name(configuration), _resource_version(configuration)
            seen.add(name)
            cached = self._parsed.get(name)
            if cached is None or cached[0] != version:
                cached = (version, webhooks_of(configuration))
                self._parsed[name] = cached
            out.extend(cached[1])
        for gone in self._parsed.keys() - seen:
            del self._parsed[gone]
        return out

    async def stop(self) -> None:
        await self._lister.stop()


def _name(obj: Object) -> str:
    name: str = (obj.get("metadata") or {}).get("name", "")
    return name


def _resource_version(obj: Object) -> str:
    version: str = (obj.get("metadata") or {}).get("resourceVersion", "")
    return version
