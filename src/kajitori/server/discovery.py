"""Non-resource endpoints: discovery, /version and the health checks.

``/api`` and ``/apis`` answer either the classic documents (APIVersions,
APIGroupList) or, when the client's Accept asks for
``as=APIGroupDiscoveryList;g=apidiscovery.k8s.io;v=v2``, the aggregated
discovery document kubectl 1.3x prefers (one request instead of one per
group version).
"""

from __future__ import annotations

import platform
import sys
from typing import Any, Protocol

import orjson

from kajitori import __version__
from kajitori.machinery import errors
from kajitori.server import asgi, negotiation
from kajitori.server.apis import APIRegistry

AGGREGATED = "APIGroupDiscoveryList"
_AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def version_info() -> dict[str, Any]:
    return {
        "major": "1",
        "minor": "37",
        "emulationMajor": "1",
        "emulationMinor": "37",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "36",
        "gitVersion": f"v1.37.0+kajitori.{__version__}",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": f"cpython{platform.python_version()}",
        "compiler": sys.implementation.name,
        "platform": f"{sys.platform}/{_arch()}",
    }


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def wants_aggregated(accept: str) -> bool:
    for media in negotiation.parse_media_types(accept):
        if media.transform == AGGREGATED and media.param("g") == "apidiscovery.k8s.io":
            return media.param("v") == "v2"
        if media.type in ("application/json", "*/*", "application/*") and not media.transform:
            return False
    return False


class RemoteGroups(Protocol):
    """The groups other servers serve behind this one (``server/aggregator/discovery.py``)."""

    def api_groups(self, exclude: set[str]) -> list[dict[str, Any]]: ...

    def api_group(self, group: str) -> dict[str, Any] | None: ...

    def aggregated_items(self, exclude: set[str]) -> list[dict[str, Any]]: ...


class Discovery:
    """Serves the discovery documents of one ``APIRegistry`` (and of the remote groups)."""

    def __init__(self, registry: APIRegistry, server_address: str) -> None:
        self.registry = registry
        self.server_address = server_address
        # Set once the aggregator runs: remote APIServices' groups are listed after ours.
        self.remote: RemoteGroups | None = None

    async def handle(self, request: asgi.Request, send: asgi.Send) -> bool:
        """Answer ``request`` if it is a discovery path; False if it is not one."""
        parts = [p for p in request.path.strip("/").split("/") if p]
        body = self._document(parts, request.header("accept"))
        if body is None:
            return False
        if isinstance(body, tuple):
            await asgi.send_response(send, 200, orjson.dumps(body[0]), body[1])
        else:
            await asgi.send_json(send, 200, body)
        return True

    def _document(self, parts: list[str], accept: str) -> Any:
        reg = self.registry
        if parts == ["api"]:
            if wants_aggregated(accept):
                return (reg.aggregated_discovery(legacy=True), _AGGREGATED_CONTENT_TYPE)
            return reg.api_versions(self.server_address)
        if parts == ["apis"]:
            if wants_aggregated(accept):
                document = reg.aggregated_discovery(legacy=False)
                if self.remote is not None:
                    local = set(reg.group_versions())
                    document["items"] += self.remote.aggregated_items(local)
                return (document, _AGGREGATED_CONTENT_TYPE)
            groups = reg.api_group_list()
            if self.remote is not None:
                groups["groups"] += self.remote.api_groups(set(reg.group_versions()))
            return groups
        if len(parts) == 2 and parts[0] == "api" and reg.has_group_version("", parts[1]):
            return reg.api_resource_list("", parts[1])
        if len(parts) == 2 and parts[0] == "apis" and parts[1] in reg.group_versions() and parts[1]:
            group = reg.api_group(parts[1])
            return {"kind": "APIGroup", "apiVersion": "v1", **group}
        if len(parts) == 2 and parts[0] == "apis" and self.remote is not None:
            remote = self.remote.api_group(parts[1])
            if remote is not None:
                return {"kind": "APIGroup", "apiVersion": "v1", **remote}
        if len(parts) == 3 and parts[0] == "apis" and reg.has_group_version(parts[1], parts[2]):
            return reg.api_resource_list(parts[1], parts[2])
        return None


HEALTH_CHECKS = ("ping", "log", "etcd", "poststarthook/start-apiserver")


async def health(request: asgi.Request, send: asgi.Send, query: dict[str, str]) -> None:
    """/healthz, /livez, /readyz (and ``?verbose``) as plain text "ok"."""
    endpoint = request.path.strip("/").split("/")[0]
    if "verbose" in query:
        lines = [f"[+]{check} ok" for check in HEALTH_CHECKS]
        lines.append(f"{endpoint} check passed")
        body = ("\n".join(lines) + "\n").encode()
    else:
        body = b"ok"
    await asgi.send_response(
        send,
        200,
        body,
        "text/plain; charset=utf-8",
        headers=[("x-content-type-options", "nosniff")],
    )


def not_found_path() -> errors.StatusError:
    return errors.StatusError(404, "NotFound", "the server could not find the requested resource")
