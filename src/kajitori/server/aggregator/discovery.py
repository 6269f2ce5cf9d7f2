"""The groups remote APIServices serve, as discovery shows them (upstream: the aggregator's
apis handler and its aggregated discovery manager).

Owns what ``server/discovery.py`` adds for remote APIServices:

- ``/apis`` (APIGroupList): every remote group, its versions ordered by
  versionPriority (highest first, then Kubernetes version order), the first
  preferred; groups after kajitori's own, by groupPriorityMinimum, then name;
- ``/apis/<group>``: that APIGroup;
- aggregated discovery (``apidiscovery.k8s.io/v2``): each Available version's
  resources, fetched from the service itself: its aggregated ``/apis``
  document when it has one, else its ``/apis/<group>/<version>`` resource list
  converted. A document is fetched when the APIService changes or becomes
  Available and again every 30 seconds; a version whose refresh fails keeps its
  last document marked ``Stale``; one never fetched, or no longer Available,
  is left out.

Requests for ``/apis/<group>/<version>`` itself are proxied (``proxy.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from kajitori.registry.apiregistration import apiservices
from kajitori.server.aggregator.index import APIServiceIndex, name_of
from kajitori.server.aggregator.transport import Transport, request_extensions
from kajitori.server.crds import version_priority

log = logging.getLogger(__name__)


Object = dict[str, Any]

REFRESH_SECONDS = 30.0
_TIMEOUT = 5.0
_AGGREGATED_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
)
_DISCOVERY_USER = ("X-Remote-User", "system:kube-aggregator")
_DISCOVERY_GROUP = ("X-Remote-Group", "system:masters")


def _spec(obj: Object) -> Object:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _version_order(obj: Object) -> tuple[int, tuple[int, int, int, str]]:
    spec = _spec(obj)
    return -int(spec.get("versionPriority") or 0), version_priority(str(spec.get("version")))


def resources_from_list(resource_list: Object) -> list[Object]:
    """An APIResourceList's entries as aggregated discovery resources."""
    group, _, version = str(resource_list.get("groupVersion") or "").rpartition("/")
    top: dict[str, Object] = {}
    subresources: list[tuple[str, str, Object]] = []
    for entry in resource_list.get("resources") or ():
        name = str(entry.get("name") or "")
        if "/" in name:
            parent, _, sub = name.partition("/")
            subresources.append((parent, sub, entry))
            continue
        resource: Object = {
            "resource": name,
            "responseKind": {"group": group, "version": version, "kind": entry.get("kind", "")},
            "scope": "Namespaced" if entry.get("namespaced") else "Cluster",
            "singularResource": entry.get("singularName") or "",
            "verbs": list(entry.get("verbs") or []),
        }
        for key in ("shortNames", "categories"):
            if entry.get(key):
                resource[key] = list(entry[key])
        top[name] = resource
    for parent, sub, entry in subresources:
        if parent in top:
            top[parent].setdefault("subresources", []).append(
                {
                    "subresource": sub,
                    "responseKind": {
                        "group": entry.get("group", group),
                        "version": entry.get("version", version),
                        "kind": entry.get("kind", ""),
                    },
                    "verbs": list(entry.get("verbs") or []),
                }
            )
    return list(top.values())


class RemoteDiscovery:
    """Discovery documents of the remote APIServices, kept fresh in the background."""

    def __init__(self, index: APIServiceIndex, transport: Transport) -> None:
        self.index = index
        self.transport = transport
        # APIService name -> (its resources in aggregated form, fresh?)
        self.documents: dict[str, tuple[list[Object], bool]] = {}
        self._fetched_at: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._changed: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        index.subscribe(self._api_service_changed)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # ----- documents served -------------------------------------------------------

    def _by_group(self) -> dict[str, list[Object]]:
        groups: dict[str, list[Object]] = {}
        for obj in self.index.remotes():
            group = str(_spec(obj).get("group") or "")
            if group:
                groups.setdefault(group, []).append(obj)
        for members in groups.values():
            members.sort(key=_version_order)
        return dict(
            sorted(
                groups.items(),
                key=lambda kv: (
                    -max(int(_spec(o).get("groupPriorityMinimum") or 0) for o in kv[1]),
                    kv[0],
                ),
            )
        )

    def api_groups(self, exclude: set[str]) -> list[Object]:
        """APIGroup entries of the remote groups kajitori does not serve itself."""
        return [
            self._api_group(group, members)
            for group, members in self._by_group().items()
            if group not in exclude
        ]

    def api_group(self, group: str) -> Object | None:
        members = self._by_group().get(group)
        return None if not members else self._api_group(group, members)

    @staticmethod
    def _api_group(group: str, members: list[Object]) -> Object:
        versions = [
            {
                "groupVersion": f"{group}/{_spec(o).get('version')}",
                "version": _spec(o).get("version"),
            }
            for o in members
        ]
        return {"name": group, "versions": versions, "preferredVersion": versions[0]}

    def aggregated_items(self, exclude: set[str]) -> list[Object]:
        """apidiscovery.k8s.io/v2 APIGroupDiscovery items of the remote groups."""
        items = []
        for group, members in self._by_group().items():
            if group in exclude:
                continue
            versions = []
            for obj in members:
                document = self.documents.get(name_of(obj))
                if document is None or not apiservices.is_available(obj):
                    continue
                resources, fresh = document
                versions.append(
                    {
                        "version": _spec(obj).get("version"),
                        "resources": resources,
                        "freshness": "Current" if fresh else "Stale",
                    }
                )
            if versions:
                items.append(
                    {"metadata": {"name": group, "creationTimestamp": None}, "versions": versions}
                )
        return items

    # ----- fetching ---------------------------------------------------------------

    def _api_service_changed(self, name: str) -> None:
        self._changed.add(name)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(REFRESH_SECONDS):
                    await self._wake.wait()
            self._wake.clear()
            changed, self._changed = self._changed, set()
            now = time.monotonic()
            remote_names = {name_of(obj) for obj in self.index.remotes()}
            for name in set(self.documents) - remote_names:
                self.documents.pop(name, None)
                self._fetched_at.pop(name, None)
            due = [
                obj
                for obj in self.index.remotes()
                if apiservices.is_available(obj)
                and (
                    name_of(obj) in changed
                    or now - self._fetched_at.get(name_of(obj), 0.0) >= REFRESH_SECONDS
                )
            ]
            await asyncio.gather(*(self._refresh(obj) for obj in due))

    async def _refresh(self, api_service: Object) -> None:
        import httpx  # on first use: importing it costs ~0.1 s of every start

        name = name_of(api_service)
        self._fetched_at[name] = time.monotonic()
        try:
            resources = await self.fetch(api_service)
        except (LookupError, httpx.HTTPError, ValueError) as exc:
            log.info("aggregated discovery of %s failed: %s", name, exc)
            stale = self.documents.get(name)
            if stale is not None:
                self.documents[name] = (stale[0], False)
            return
        self.documents[name] = (resources, True)

    async def fetch(self, api_service: Object) -> list[Object]:
        """The resources of one APIService's group version, read from its server."""
        spec = _spec(api_service)
        group, version = str(spec.get("group")), str(spec.get("version"))
        target = await self.transport.target(api_service)
        client = self.transport.client(target.ca_bundle, target.verify)
        headers = [("Host", target.host_header), _DISCOVERY_USER, _DISCOVERY_GROUP]
        response = await client.get(
            target.base_url + "/apis",
            headers=[*headers, ("Accept", _AGGREGATED_ACCEPT)],
            extensions=request_extensions(target),
            timeout=_TIMEOUT,
        )
        if response.status_code == 200 and "APIGroupDiscoveryList" in response.headers.get(
            "content-type", ""
        ):
            for item in response.json().get("items") or ():
                if (item.get("metadata") or {}).get("name") != group:
                    continue
                for entry in item.get("versions") or ():
                    if entry.get("version") == version:
                        return list(entry.get("resources") or [])
        legacy = await client.get(
            target.base_url + f"/apis/{group}/{version}",
            headers=[*headers, ("Accept", "application/json")],
            extensions=request_extensions(target),
            timeout=_TIMEOUT,
        )
        if legacy.status_code != 200:
            raise ValueError(f"bad status from /apis/{group}/{version}: {legacy.status_code}")
        return resources_from_list(legacy.json())
