"""Invoke CNI plugins per the CNI 1.0 spec, as libcni does for containerd and CRI-O.

A plugin is an executable named by its config's ``type``, found on the CNI
path (Debian's containernetworking-plugins install to ``/usr/lib/cni``,
upstream's tarballs to ``/opt/cni/bin``). Each call gets:

* the environment ``CNI_COMMAND`` (ADD, DEL, CHECK, VERSION),
  ``CNI_CONTAINERID``, ``CNI_NETNS`` (the path of the pod's network
  namespace file), ``CNI_IFNAME``, ``CNI_PATH`` (where it finds delegated
  plugins such as ``host-local``) and ``CNI_ARGS`` (``K=V;K=V``: the kubelet's
  ``K8S_POD_NAMESPACE``, ``K8S_POD_NAME``, ``K8S_POD_INFRA_CONTAINER_ID``);
* on stdin one entry of the conflist's ``plugins`` plus the list's
  ``cniVersion`` and ``name``, the ``runtimeConfig`` keys the plugin declares
  under ``capabilities`` (``portMappings`` for portmap), and the previous
  plugin's result as ``prevResult``.

It answers a Result on stdout and exit 0, or ``{"code", "msg", "details"}``
and a non-zero exit. ``CNI.add_network`` runs the list in order and caches the
final result (libcni's ``/var/lib/cni/results``) because DEL and CHECK must
be handed it as ``prevResult``; ``del_network`` runs the list in reverse and
is idempotent: with no cached result, or after the namespace is gone, the
plugins are still asked to release what they hold. ``gc`` removes what pods
that no longer exist leaked: cached results and host-local IP reservations.

Errors read as upstream's: ``plugin type="bridge" failed (add): <msg>`` from
here (libcni's wording), wrapped by ``PodNetwork`` in containerd's
``failed to setup network for sandbox "<id>": ...``.

``host_netns`` runs every plugin inside a named network namespace (``ip netns
exec``) instead of the kubelet's own: the bridge, the host-side veths and the
``ip_forward=1`` bridge's ``isGateway`` sets then live in a "node" namespace
with no uplink, so pod traffic can never leave the machine (decision 0027).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

Object = dict[str, Any]
Command = Literal["ADD", "DEL", "CHECK", "VERSION"]

CNI_VERSION = "1.0.0"
DEFAULT_CNI_PATH: tuple[str, ...] = ("/usr/lib/cni", "/opt/cni/bin")
DEFAULT_CACHE_DIR = Path("/var/lib/kajitori/cni/results")
DEFAULT_IPAM_DIR = Path("/var/lib/cni/networks")  # host-local's own default
# libcni's verbs in its error text: "failed (add)", "failed (delete)", "failed (check)".
_VERBS: dict[str, str] = {"ADD": "add", "DEL": "delete", "CHECK": "check", "VERSION": "version"}
# The error codes the spec reserves (section "Error"): 1 incompatible version,
# 2 unsupported field, 3 container unknown, 7 invalid config, 11 try again later.
CODE_TRY_AGAIN = 11
# A plugin that does not answer in this long is killed (containerd's default is 5 min,
# ours is shorter because every plugin here is local and measured at tens of ms).
DEFAULT_TIMEOUT = 30.0


class PluginError(Exception):
    """A plugin answered an error (or could not be run); ``str()`` is libcni's text."""

    def __init__(
        self, plugin_type: str, command: Command, *, code: int, msg: str, details: str = ""
    ) -> None:
        self.plugin_type = plugin_type
        self.command = command
        self.code = code
        self.msg = msg
        self.details = details
        text = f"{msg}: {details}" if details else msg
        super().__init__(f'plugin type="{plugin_type}" failed ({_VERBS[command]}): {text}')


@dataclasses.dataclass(frozen=True, slots=True)
class RuntimeConf:
    """One attachment: a container's namespace and interface (libcni's ``RuntimeConf``).

    ``netns`` may be "" for DEL once the namespace is gone (the spec allows it).
    ``capability_args`` holds runtime values such as ``portMappings``; each
    plugin receives only those it lists under ``capabilities``.
    """

    container_id: str
    netns: str
    ifname: str = "eth0"
    args: Mapping[str, str] = dataclasses.field(default_factory=dict)
    capability_args: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def cni_args(self) -> str:
        pairs = [("IgnoreUnknown", "1"), *self.args.items()]
        return ";".join(f"{key}={value}" for key, value in pairs)


@dataclasses.dataclass(frozen=True, slots=True)
class NetworkConfigList:
    """A ``.conflist``: a named network and its chain of plugin configs."""

    name: str
    plugins: tuple[Object, ...]
    cni_version: str = CNI_VERSION

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> NetworkConfigList:
        """Accept a parsed conflist; a single-plugin ``.conf`` becomes a list of one."""
        plugins = raw.get("plugins")
        if plugins is None:
            plugins = [{k: v for k, v in raw.items() if k not in ("cniVersion", "name")}]
        if not raw.get("name") or not plugins or any("type" not in p for p in plugins):
            raise ValueError("a CNI network needs a name and plugins that each have a type")
        return cls(
            str(raw["name"]), tuple(dict(p) for p in plugins), raw.get("cniVersion", CNI_VERSION)
        )

    def to_dict(self) -> Object:
        return {"cniVersion": self.cni_version, "name": self.name, "plugins": list(self.plugins)}

    def ipam_data_dir(self) -> Path | None:
        """Where the chain's host-local IPAM keeps its reservations, if it uses host-local."""
        for plugin in self.plugins:
            ipam = plugin.get("ipam") or {}
            if ipam.get("type") == "host-local":
                return Path(ipam.get("dataDir") or DEFAULT_IPAM_DIR) / self.name
        return None


def pod_ip(result: Mapping[str, Any]) -> str:
    """The first IP of a 1.0 Result, without its prefix length ("" when it has none)."""
    ips = result.get("ips") or []
    return str(ips[0]["address"]).split("/")[0] if ips else ""


def find_plugin(plugin_type: str, cni_path: Sequence[str]) -> str | None:
    """The executable for ``plugin_type`` on ``cni_path`` (libcni's FindInPath)."""
    if os.sep in plugin_type:
        return None  # a type is a file name, never a path out of the plugin directories
    for directory in cni_path:
        candidate = os.path.join(directory, plugin_type)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


async def exec_plugin(
    plugin_type: str,
    command: Command,
    config: Mapping[str, Any],
    runtime: RuntimeConf,
    *,
    cni_path: Sequence[str] = DEFAULT_CNI_PATH,
    host_netns: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Object | None:
    """Run one plugin once; its parsed Result, or None when it printed nothing (DEL)."""
    executable = find_plugin(plugin_type, cni_path)
    if executable is None:
        raise PluginError(
            plugin_type,
            command,
            code=7,
            msg=f'failed to find plugin "{plugin_type}" in path {list(cni_path)}',
        )
    argv = [executable] if host_netns is None else ["ip", "netns", "exec", host_netns, executable]
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": runtime.container_id,
        "CNI_NETNS": runtime.netns,
        "CNI_IFNAME": runtime.ifname,
        "CNI_PATH": os.pathsep.join(cni_path),
        "CNI_ARGS": runtime.cni_args(),
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    }
    stdout, stderr, returncode = await _run(argv, env, json.dumps(config).encode(), timeout)
    if returncode != 0:
        raise _plugin_error(plugin_type, command, stdout, stderr, returncode)
    text = stdout.strip()
    return json.loads(text) if text else None


async def _run(
    argv: list[str], env: dict[str, str], stdin: bytes, timeout: float
) -> tuple[bytes, bytes, int]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return b"", f"timed out after {timeout:g}s".encode(), -1
    assert process.returncode is not None
    return stdout, stderr, process.returncode


def _plugin_error(
    plugin_type: str, command: Command, stdout: bytes, stderr: bytes, returncode: int
) -> PluginError:
    """The spec's error object from stdout, or the process's own words when it gave none."""
    try:
        error = json.loads(stdout)
        if not isinstance(error, dict) or "msg" not in error:
            raise ValueError("not an error object")
    except ValueError:
        text = (stdout + stderr).decode(errors="replace").strip() or f"exit status {returncode}"
        return PluginError(plugin_type, command, code=returncode, msg=text)
    return PluginError(
        plugin_type,
        command,
        code=int(error.get("code") or 0),
        msg=str(error.get("msg")),
        details=str(error.get("details") or ""),
    )


class CNI:
    """One network (a conflist) attached and detached per container, with libcni's cache."""

    def __init__(
        self,
        network: NetworkConfigList,
        *,
        cni_path: Sequence[str] = DEFAULT_CNI_PATH,
        cache_dir: Path = DEFAULT_CACHE_DIR,
        host_netns: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.network = network
        self.cni_path = tuple(cni_path)
        self.cache_dir = Path(cache_dir)
        self.host_netns = host_netns
        self.timeout = timeout

    async def add_network(self, runtime: RuntimeConf) -> Object:
        """ADD each plugin in order; the final Result is cached for DEL and CHECK."""
        result: Object | None = None
        for plugin in self.network.plugins:
            config = self._plugin_config(plugin, runtime.capability_args, result)
            result = await self._exec(plugin, "ADD", config, runtime) or result
        final = result or {"cniVersion": self.network.cni_version}
        self._write_cache(runtime, final)
        return final

    async def check_network(self, runtime: RuntimeConf) -> None:
        """CHECK each plugin against the cached Result; raises ``PluginError`` on drift."""
        cached = self._read_cache(runtime)
        if cached is None:
            raise PluginError(
                self.network.plugins[0]["type"],
                "CHECK",
                code=3,
                msg=f"no cached result for container {runtime.container_id}",
            )
        for plugin in self.network.plugins:
            if plugin["type"] == "portmap":
                # portmap 1.1.1 fails CHECK on IPv4-only pods: containernetworking/plugins#819.
                continue
            config = self._plugin_config(plugin, cached["capabilityArgs"], cached["result"])
            await self._exec(plugin, "CHECK", config, runtime)

    async def del_network(self, runtime: RuntimeConf) -> None:
        """DEL each plugin in reverse; safe to repeat, and after the namespace is gone."""
        cached = self._read_cache(runtime)
        capability_args = cached["capabilityArgs"] if cached else runtime.capability_args
        prev = cached["result"] if cached else None
        if runtime.netns and not os.path.exists(runtime.netns):
            runtime = dataclasses.replace(runtime, netns="")
        for plugin in reversed(self.network.plugins):
            config = self._plugin_config(plugin, capability_args, prev)
            await self._exec(plugin, "DEL", config, runtime)
        with contextlib.suppress(FileNotFoundError):
            self._cache_path(runtime.container_id, runtime.ifname).unlink()

    def cached_container_ids(self) -> set[str]:
        """Containers with a cached attachment to this network."""
        prefix = f"{self.network.name}-"
        ids: set[str] = set()
        for path in self.cache_dir.glob(f"{prefix}*"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                ids.add(json.loads(path.read_text())["containerId"])
        return ids

    async def gc(self, live_container_ids: set[str]) -> list[str]:
        """DEL cached attachments of dead containers, then drop orphan IPAM reservations.

        Returns the IP addresses released by removing host-local files that no
        DEL claimed (reservations of containers the cache never saw, e.g. a
        kubelet killed between IPAM and caching).
        """
        for container_id in self.cached_container_ids() - live_container_ids:
            for path in self.cache_dir.glob(f"{self.network.name}-{container_id}-*.json"):
                entry = json.loads(path.read_text())
                await self.del_network(
                    RuntimeConf(container_id, "", entry["ifName"], entry["args"])
                )
        return self._release_orphan_reservations(live_container_ids)

    def _release_orphan_reservations(self, live_container_ids: set[str]) -> list[str]:
        data_dir = self.network.ipam_data_dir()
        if data_dir is None or not data_dir.is_dir():
            return []
        released = []
        for path in data_dir.iterdir():
            if path.name == "lock" or path.name.startswith("last_reserved_ip"):
                continue
            # host-local writes "<container id>\r\n<ifname>" (older releases: the id only).
            owner = path.read_text().splitlines()[0].strip() if path.stat().st_size else ""
            if owner not in live_container_ids:
                path.unlink()
                released.append(path.name)
        return sorted(released)

    async def _exec(
        self, plugin: Object, command: Command, config: Object, runtime: RuntimeConf
    ) -> Object | None:
        return await exec_plugin(
            plugin["type"],
            command,
            config,
            runtime,
            cni_path=self.cni_path,
            host_netns=self.host_netns,
            timeout=self.timeout,
        )

    def _plugin_config(
        self, plugin: Object, capability_args: Mapping[str, Any], prev: Object | None
    ) -> Object:
        config = dict(plugin)
        config["cniVersion"] = self.network.cni_version
        config["name"] = self.network.name
        capabilities = plugin.get("capabilities") or {}
        runtime_config = {k: v for k, v in capability_args.items() if capabilities.get(k)}
        if runtime_config:
            config["runtimeConfig"] = runtime_config
        if prev is not None:
            config["prevResult"] = prev
        return config

    def _cache_path(self, container_id: str, ifname: str) -> Path:
        return self.cache_dir / f"{self.network.name}-{container_id}-{ifname}.json"

    def _write_cache(self, runtime: RuntimeConf, result: Object) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        entry = {
            "kind": "cniCacheV1",
            "containerId": runtime.container_id,
            "ifName": runtime.ifname,
            "networkName": self.network.name,
            "args": dict(runtime.args),
            "capabilityArgs": dict(runtime.capability_args),
            "result": result,
        }
        path = self._cache_path(runtime.container_id, runtime.ifname)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entry))
        tmp.replace(path)  # a reader never sees half an entry

    def _read_cache(self, runtime: RuntimeConf) -> Object | None:
        try:
            entry: Object = json.loads(
                self._cache_path(runtime.container_id, runtime.ifname).read_text()
            )
        except (FileNotFoundError, ValueError):
            return None
        return entry
