"""The node's pod network: its conflist from the podCIDR, and a pod sandbox's setup and teardown.

What the CRI runtime does for the kubelet (containerd's ``setupPodNetwork`` /
``teardownPodNetwork``), over ``cni.CNI``:

* ``pod_network_conflist`` — bridge ``kjbr0`` with host-local IPAM inside
  the node's podCIDR (gateway = its first address), hairpin mode so a pod
  reaches itself through a Service, ``ipMasq: false`` so nothing is ever
  NATed out of the node, then portmap for ``hostPort``. Names start with
  ``kj`` so they cannot collide with a host's ``cni0``/``docker0``/``cbr0``;
* ``PodNetwork`` — loopback (``lo``; skipped for sandboxes that bring it up
  themselves) then the pod network (``eth0``) on ADD, the reverse on DEL,
  with failures worded as containerd's
  ``failed to setup network for sandbox "<id>": plugin type=... failed (add): ...``;
  a failed ADD is rolled back so no reservation or veth outlives it;
* ``ensure_service_blackhole`` — ``blackhole 10.96.0.0/12`` so traffic to a
  Service IP that no proxy rule rewrote is dropped, never routed out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kajitori.kubelet.network import cni

log = logging.getLogger(__name__)

NETWORK_NAME = "kajitori"
BRIDGE = "kjbr0"
SERVICE_CIDR = "10.96.0.0/12"
LOOPBACK = cni.NetworkConfigList("cni-loopback", ({"type": "loopback"},))


def pod_network_conflist(
    pod_cidr: str,
    *,
    bridge: str = BRIDGE,
    name: str = NETWORK_NAME,
    ipam_dir: Path = cni.DEFAULT_IPAM_DIR,
    is_gateway: bool = True,
    host_ports: bool = True,
) -> cni.NetworkConfigList:
    """The node's conflist: bridge + host-local in ``pod_cidr`` (+ portmap for hostPort).

    ``is_gateway`` makes the bridge plugin give the bridge the gateway address
    and set ``ip_forward=1`` in the namespace it runs in: use it where that
    namespace is a node namespace of its own (``CNI.host_netns``).
    """
    subnet = ipaddress.ip_network(pod_cidr)
    gateway = str(next(subnet.hosts()))
    bridge_conf: dict[str, Any] = {
        "type": "bridge",
        "bridge": bridge,
        "isGateway": is_gateway,
        "ipMasq": False,
        "hairpinMode": True,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": str(subnet), "gateway": gateway}]],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": str(ipam_dir),
        },
    }
    plugins: list[dict[str, Any]] = [bridge_conf]
    if host_ports:
        plugins.append({"type": "portmap", "capabilities": {"portMappings": True}, "snat": True})
    return cni.NetworkConfigList(name, tuple(plugins))


class NetworkSetupError(Exception):
    """A sandbox's network could not be set up or torn down (containerd's wording)."""


@dataclasses.dataclass(frozen=True, slots=True)
class PodNetworkStatus:
    ip: str
    result: dict[str, Any]


class PodNetwork:
    """Attach and detach pod sandboxes: loopback, then the pod network on ``eth0``."""

    def __init__(
        self,
        network: cni.NetworkConfigList,
        *,
        cni_path: Sequence[str] = cni.DEFAULT_CNI_PATH,
        cache_dir: Path = cni.DEFAULT_CACHE_DIR,
        host_netns: str | None = None,
        loopback: bool = True,
    ) -> None:
        options: dict[str, Any] = {"cni_path": cni_path, "cache_dir": cache_dir}
        self.loopback = cni.CNI(LOOPBACK, **options)  # lo lives in the pod: no host namespace
        # False when the sandbox brings lo up itself (the oci runtime's pinned namespaces):
        # one plugin process less per ADD and per DEL (decision 0034).
        self.with_loopback = loopback
        self.pods = cni.CNI(network, host_netns=host_netns, **options)

    async def setup(
        self,
        sandbox_id: str,
        netns: str,
        *,
        namespace: str,
        name: str,
        port_mappings: Sequence[Mapping[str, Any]] = (),
    ) -> PodNetworkStatus:
        """ADD the sandbox; on failure nothing it reserved is left behind."""
        args = {
            "K8S_POD_NAMESPACE": namespace,
            "K8S_POD_NAME": name,
            "K8S_POD_INFRA_CONTAINER_ID": sandbox_id,
        }
        capability = {"portMappings": list(port_mappings)} if port_mappings else {}
        lo = cni.RuntimeConf(sandbox_id, netns, "lo", args)
        eth0 = cni.RuntimeConf(sandbox_id, netns, "eth0", args, capability)
        try:
            if self.with_loopback:
                await self.loopback.add_network(lo)
            result = await self.pods.add_network(eth0)
        except cni.PluginError as exc:
            await self._rollback(eth0, lo)
            raise NetworkSetupError(
                f'failed to setup network for sandbox "{sandbox_id}": {exc}'
            ) from exc
        return PodNetworkStatus(cni.pod_ip(result), result)

    async def teardown(self, sandbox_id: str, netns: str) -> None:
        """DEL the sandbox (idempotent; ``netns`` may already be gone)."""
        try:
            await self.pods.del_network(cni.RuntimeConf(sandbox_id, netns, "eth0"))
            if self.with_loopback:
                await self.loopback.del_network(cni.RuntimeConf(sandbox_id, netns, "lo"))
        except cni.PluginError as exc:
            raise NetworkSetupError(
                f'failed to destroy network for sandbox "{sandbox_id}": {exc}'
            ) from exc

    async def gc(self, live_sandbox_ids: set[str]) -> list[str]:
        """Release what dead sandboxes hold; returns orphan IPs freed without a DEL."""
        await self.loopback.gc(live_sandbox_ids)
        return await self.pods.gc(live_sandbox_ids)

    async def _rollback(self, eth0: cni.RuntimeConf, lo: cni.RuntimeConf) -> None:
        steps = [(self.pods, eth0)] + ([(self.loopback, lo)] if self.with_loopback else [])
        for network, runtime in steps:
            try:
                await network.del_network(runtime)
            except cni.PluginError as exc:  # the ADD error is the one to report
                log.warning("rollback of %s failed: %s", runtime.container_id, exc)


async def _ip(*args: str, netns: str | None = None) -> tuple[int, str]:
    argv = ["ip", *(("-n", netns) if netns else ()), *args]
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace").strip()


async def ensure_service_blackhole(cidr: str = SERVICE_CIDR, *, netns: str | None = None) -> None:
    """Install ``blackhole <cidr>`` (idempotent): unproxied Service traffic goes nowhere."""
    code, output = await _ip("route", "replace", "blackhole", cidr, netns=netns)
    if code != 0:
        raise OSError(f"ip route replace blackhole {cidr}: {output}")


async def remove_service_blackhole(cidr: str = SERVICE_CIDR, *, netns: str | None = None) -> None:
    """Remove the blackhole route if present."""
    code, output = await _ip("route", "show", "type", "blackhole", cidr, netns=netns)
    if code == 0 and output:
        await _ip("route", "del", "blackhole", cidr, netns=netns)
