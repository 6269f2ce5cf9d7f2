"""A container's environment, as upstream's makeEnvironmentVariables builds it.

Order of work (pkg/kubelet/kubelet_pods.go): the service variables of the
namespace, then ``envFrom`` sources (with ``prefix``; names that are not
valid environment variable names are skipped and reported), then ``env`` in
order: ``value`` with ``$(VAR)`` expanded against what came before,
``valueFrom`` (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef).
A missing object or key that is not ``optional`` raises
``ContainerConfigError`` with upstream's message; the runtime reports it
as CreateContainerConfigError.

Service variables (pkg/kubelet/envvars): for every Service of the pod's
namespace with a cluster IP (unless ``enableServiceLinks: false``), and
always for the ``kubernetes`` Service of ``default``, the
``{NAME}_SERVICE_HOST``/``_SERVICE_PORT`` pair and Docker-link variables.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from kajitori.kubelet.volumes import downward
from kajitori.kubelet.volumes.errors import ContainerConfigError
from kajitori.kubelet.volumes.source import ObjectSource

Object = dict[str, Any]

MASTER_SERVICES = ("kubernetes",)


@dataclasses.dataclass(frozen=True, slots=True)
class Skipped:
    """Keys of an envFrom source dropped as invalid names (an event, as upstream)."""

    kind: str
    namespace: str
    name: str
    keys: tuple[str, ...]

    def message(self) -> str:
        return (
            f"Keys [{', '.join(self.keys)}] from the EnvFrom {self.kind} {self.namespace}/"
            f"{self.name} were skipped since they are considered invalid environment "
            "variable names."
        )


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Upstream's expansion.Expand: ``$(VAR)`` → its value, ``$$`` → ``$``.

    A reference to an unknown variable, an unclosed ``$(`` and a ``$``
    before any other character stay as written.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char != "$" or i + 1 >= n:
            out.append(char)
            i += 1
            continue
        after = text[i + 1]
        if after == "$":
            out.append("$")
            i += 2
        elif after == "(":
            close = text.find(")", i + 2)
            if close < 0:
                out.append("$(")
                i += 2
                continue
            name = text[i + 2 : close]
            value = lookup(name)
            out.append(value if value is not None else text[i : close + 1])
            i = close + 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


def is_env_var_name(name: str) -> bool:
    """Relaxed names (GA in 1.34): printable ASCII other than ``=``, not empty."""
    return bool(name) and all(32 <= ord(c) <= 126 and c != "=" for c in name)


def _service_name(name: str) -> str:
    return name.upper().replace("-", "_")


def service_env(services: list[Object]) -> dict[str, str]:
    """The variables for ``services`` (each with a cluster IP), as upstream's FromServices."""
    env: dict[str, str] = {}
    for service in services:
        spec = service.get("spec") or {}
        ip = spec.get("clusterIP") or ""
        if not ip or ip == "None":
            continue
        name = _service_name((service.get("metadata") or {}).get("name", ""))
        ports = spec.get("ports") or []
        env[f"{name}_SERVICE_HOST"] = ip
        if not ports:
            continue
        env[f"{name}_SERVICE_PORT"] = str(ports[0].get("port"))
        for port in ports:
            if port.get("name"):
                env[f"{name}_SERVICE_PORT_{_service_name(port['name'])}"] = str(port.get("port"))
        host = f"[{ip}]" if ":" in ip else ip
        first = ports[0]
        env[f"{name}_PORT"] = (
            f"{str(first.get('protocol') or 'TCP').lower()}://{host}:{first.get('port')}"
        )
        for port in ports:
            protocol = str(port.get("protocol") or "TCP")
            prefix = f"{name}_PORT_{port.get('port')}_{protocol.upper()}"
            env[prefix] = f"{protocol.lower()}://{host}:{port.get('port')}"
            env[f"{prefix}_PROTO"] = protocol.lower()
            env[f"{prefix}_PORT"] = str(port.get("port"))
            env[f"{prefix}_ADDR"] = ip
    return env


def services_for(
    pod: Object, namespace_services: list[Object], default_services: list[Object]
) -> list[Object]:
    """Which Services give the pod variables: the namespace's, and the master services always."""
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    links = (pod.get("spec") or {}).get("enableServiceLinks", True) is not False
    chosen: dict[str, Object] = {}
    for service in default_services:
        name = str((service.get("metadata") or {}).get("name") or "")
        if name in MASTER_SERVICES:
            chosen[name] = service
    if links:
        for service in namespace_services:
            name = str((service.get("metadata") or {}).get("name") or "")
            if namespace == "default" or name not in chosen:
                chosen[name] = service
    return [chosen[name] for name in sorted(chosen)]


class EnvBuilder:
    """Builds container environments of one pod, fetching each object once."""

    def __init__(self, source: ObjectSource, pod: Object, *, allocatable: Object | None = None):
        self.source = source
        self.pod = pod
        self.namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
        self.allocatable = allocatable
        self.skipped: list[Skipped] = []
        self._cache: dict[tuple[str, str], Object | None] = {}

    async def _object(self, kind: str, name: str) -> Object | None:
        key = (kind, name)
        if key not in self._cache:
            getter = self.source.get_secret if kind == "Secret" else self.source.get_configmap
            self._cache[key] = await getter(self.namespace, name)
        return self._cache[key]

    async def _data(self, kind: str, name: str, *, optional: bool) -> dict[str, str] | None:
        found = await self._object(kind, name)
        if found is None:
            if optional:
                return None
            raise ContainerConfigError(f'{kind.lower()} "{name}" not found')
        return decoded(found, secret=kind == "Secret")

    async def service_env(self) -> dict[str, str]:
        namespace_services = await self.source.list_services(self.namespace)
        default = (
            namespace_services
            if self.namespace == "default"
            else await self.source.list_services("default")
        )
        return service_env(services_for(self.pod, namespace_services, default))

    async def build(self, container: Object, services: Mapping[str, str]) -> list[tuple[str, str]]:
        """``(name, value)`` pairs in order; later duplicates win when made a dict."""
        env: dict[str, str] = dict(services)
        for source in container.get("envFrom") or ():
            await self._env_from(source, env)
        for var in container.get("env") or ():
            name = var["name"]
            if "valueFrom" in var:
                value = await self._value_from(var["valueFrom"], container)
                if value is None:
                    continue
            else:
                value = expand(str(var.get("value") or ""), env.get)
            env[name] = value
        return list(env.items())

    async def _env_from(self, source: Object, env: dict[str, str]) -> None:
        if "configMapRef" in source:
            kind, ref = "ConfigMap", source["configMapRef"]
        elif "secretRef" in source:
            kind, ref = "Secret", source["secretRef"]
        else:
            return
        data = await self._data(kind, ref.get("name", ""), optional=bool(ref.get("optional")))
        if data is None:
            return
        invalid = []
        for key, value in data.items():
            full = f"{source.get('prefix') or ''}{key}"
            if not is_env_var_name(full):
                invalid.append(full)
                continue
            env[full] = value
        if invalid:
            label = "configMap" if kind == "ConfigMap" else "secret"
            self.skipped.append(
                Skipped(label, self.namespace, ref.get("name", ""), tuple(sorted(invalid)))
            )

    async def _value_from(self, source: Object, container: Object) -> str | None:
        for field, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
            if field in source:
                ref = source[field]
                optional = bool(ref.get("optional"))
                data = await self._data(kind, ref.get("name", ""), optional=optional)
                if data is None:
                    return None
                key = ref.get("key", "")
                if key not in data:
                    if optional:
                        return None
                    raise ContainerConfigError(
                        f"couldn't find key {key} in {kind} {self.namespace}/{ref.get('name')}"
                    )
                return data[key]
        try:
            if "fieldRef" in source:
                return downward.field_value(self.pod, source["fieldRef"].get("fieldPath", ""))
            if "resourceFieldRef" in source:
                ref = source["resourceFieldRef"]
                target = container
                if ref.get("containerName"):
                    target = downward.container_named(self.pod, ref["containerName"]) or container
                return downward.resource_value(ref, target, self.allocatable)
        except ValueError as exc:
            raise ContainerConfigError(str(exc)) from exc
        return None


def decoded(found: Object, *, secret: bool) -> dict[str, str]:
    """A Secret's ``data`` (base64) or a ConfigMap's ``data``, as strings."""
    if secret:
        return {
            key: base64.b64decode(value).decode(errors="replace")
            for key, value in (found.get("data") or {}).items()
        }
    return dict(found.get("data") or {})


def expand_command(words: list[str], env: Mapping[str, str]) -> list[str]:
    """``command``/``args`` with ``$(VAR)`` expanded against the final environment."""
    return [expand(word, env.get) for word in words]
