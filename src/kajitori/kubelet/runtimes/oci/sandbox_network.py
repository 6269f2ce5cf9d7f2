"""A pod sandbox's network and name files: CNI ADD/DEL, /etc/resolv.conf, /etc/hosts.

What containerd's CRI plugin does around ``RunPodSandbox`` (``setupPodNetwork``)
and ``StopPodSandbox``, plus the two files upstream's kubelet writes per pod
and mounts into every container (pkg/kubelet/kubelet_pods.go
``makeHostsMount``, ``managedHostsFileContent``; network/dns/dns.go):

* ``setup(pod, uid, netns, pod_cidr)`` — ADD the sandbox's pinned network
  namespace to the node's pod network (``network.pod_network.PodNetwork``
  over the conflist of the node's podCIDR; one ``PodNetwork`` per CIDR) and
  return the pod's IP. hostNetwork pods are not attached: with a node
  namespace they join it (their "host") and report the node's IP;
* ``teardown(uid, netns)`` — DEL (idempotent, also after a restart: the CNI
  result cache remembers the attachment);
* ``gc(live)`` — when a runtime starts: DEL the cached attachments of
  sandboxes not in ``live`` and drop IPAM reservations nobody owns (pods
  removed while no runtime ran, a kubelet killed mid-ADD);
* ``write_files(directory, pod, ip)`` — ``resolv.conf`` (dns.py, from the
  node's own resolv.conf and the cluster DNS) and ``hosts`` (localhost
  lines, the pod's IP with its hostname, hostAliases) in the pod's
  directory; ``mounts(directory)`` are the bind mounts that put them at
  /etc/resolv.conf and /etc/hosts in each container.

Where the plugins run is ``NetworkOptions.host_netns``: a named "node"
namespace with no uplink keeps the bridge, host veths and ``ip_forward``
out of the machine's own network (decision 0027). ``None`` runs them in
the kubelet's namespace, which changes the host's network: only for a real
node. Without a ``SandboxNetwork`` the runtime leaves pods on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kajitori.kubelet.network import cni, dns, pod_network
from kajitori.kubelet.runtimes.oci import spec

Object = dict[str, Any]

NETNS_DIR = "/run/netns"  # where ``ip netns add`` pins named namespaces
HOSTS_FILE = "hosts"
GC_PLACEHOLDER_CIDR = "192.0.2.0/24"  # TEST-NET-1: never ADDed, only for a GC with no cache
RESOLV_FILE = "resolv.conf"
# upstream's managedHostsFileContent header and IPv6 localhost block.
HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
HOSTS_HEADER_HOST_NETWORK = "# Kubernetes-managed hosts file (host network).\n"
LOCALHOST_LINES = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n"
)


@dataclasses.dataclass(frozen=True, slots=True)
class NetworkOptions:
    """Where the CNI plugins are and run, and what the pods' resolvers say."""

    host_netns: str | None  # a named node netns (safe), or None: the kubelet's own (real host)
    cni_path: Sequence[str] = cni.DEFAULT_CNI_PATH
    state_dir: Path = Path("/var/lib/kajitori/cni")  # result cache and IPAM reservations
    host_ports: bool = False  # portmap costs ~140 ms per ADD; off until hostPort is needed
    cluster_dns: Sequence[str] = (dns.CLUSTER_DNS,)
    cluster_domain: str = dns.CLUSTER_DOMAIN
    host_resolv_conf: Path = Path("/etc/resolv.conf")
    host_hosts: Path = Path("/etc/hosts")
    # The node's InternalIP: a hostNetwork pod joins ``host_netns`` and reports it (decision 0031).
    node_ip: str = ""


class SandboxNetwork:
    """Attaches sandboxes to the node's pod network and writes their name files."""

    def __init__(self, options: NetworkOptions) -> None:
        self.options = options
        self._networks: dict[str, pod_network.PodNetwork] = {}  # podCIDR → its network

    def _network(self, pod_cidr: str) -> pod_network.PodNetwork:
        found = self._networks.get(pod_cidr)
        if found is None:
            conflist = pod_network.pod_network_conflist(
                pod_cidr,
                ipam_dir=self.options.state_dir / "networks",
                # isGateway sets ip_forward=1 where the plugin runs: only in a node netns.
                is_gateway=self.options.host_netns is not None,
                host_ports=self.options.host_ports,
            )
            found = pod_network.PodNetwork(
                conflist,
                cni_path=self.options.cni_path,
                cache_dir=self.options.state_dir / "results",
                host_netns=self.options.host_netns,
                loopback=False,  # pinns.py brought lo up in the sandbox
            )
            self._networks[pod_cidr] = found
        return found

    async def setup(self, pod: Object, uid: str, netns: Path, pod_cidr: str) -> str:
        """ADD the sandbox; its IP ("" for a hostNetwork pod). Raises ``NetworkSetupError``."""
        if (pod.get("spec") or {}).get("hostNetwork"):
            if self.options.host_netns is None:
                return ""
            # The node namespace is the pod's "host": swap the pinned namespace for it.
            await _bind_netns(netns, Path(NETNS_DIR) / self.options.host_netns)
            return self.options.node_ip
        meta = pod.get("metadata") or {}
        status = await self._network(pod_cidr).setup(
            uid,
            str(netns),
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
        )
        return status.ip

    async def teardown(self, uid: str, netns: Path, pod_cidr: str) -> None:
        """DEL the sandbox (a no-op for a pod that was never attached)."""
        if not pod_cidr or self._is_node_netns(netns):  # hostNetwork: never DEL the node's eth0
            return
        await self._network(pod_cidr).teardown(uid, str(netns) if netns.exists() else "")

    def _is_node_netns(self, netns: Path) -> bool:
        if self.options.host_netns is None:
            return False
        try:
            mine, node = os.stat(netns), os.stat(Path(NETNS_DIR) / self.options.host_netns)
        except OSError:
            return False
        return (mine.st_dev, mine.st_ino) == (node.st_dev, node.st_ino)

    async def gc(self, live: set[str]) -> list[str]:
        """Release what sandboxes not in ``live`` still hold; the orphan IPs freed."""
        # DEL needs the network's conflist; its podCIDR is in the cached results (the
        # reservations alone need none: the placeholder only names their directory).
        return await self._network(self._cached_cidr() or GC_PLACEHOLDER_CIDR).gc(live)

    def _cached_cidr(self) -> str:
        name = pod_network.NETWORK_NAME
        for path in sorted((self.options.state_dir / "results").glob(f"{name}-*-eth0.json")):
            with contextlib.suppress(OSError, ValueError, KeyError, IndexError, TypeError):
                entry = json.loads(path.read_text())
                address = entry["result"]["ips"][0]["address"]
                return str(ipaddress.ip_interface(address).network)
        return ""

    def write_files(self, directory: Path, pod: Object, ip: str) -> None:
        """The pod's resolv.conf and hosts under ``directory``."""
        try:
            host = dns.parse_resolv_conf(self.options.host_resolv_conf.read_text())
        except OSError:
            host = dns.DNSConfig()
        config = dns.pod_dns_config(
            pod,
            host=host,
            cluster_dns=self.options.cluster_dns,
            cluster_domain=self.options.cluster_domain,
        )
        dns.write_resolv_conf(directory / RESOLV_FILE, config)
        host_hosts = ""
        if (pod.get("spec") or {}).get("hostNetwork"):
            try:
                host_hosts = self.options.host_hosts.read_text()
            except OSError:
                pass
        text = hosts_file(pod, ip, cluster_domain=self.options.cluster_domain, host=host_hosts)
        _write_atomically(directory / HOSTS_FILE, text)


def hosts_file(pod: Object, ip: str, *, cluster_domain: str, host: str = "") -> str:
    """/etc/hosts as upstream's kubelet writes it for ``pod`` at ``ip``.

    A pod on the pod network: the localhost block, ``<ip>\\t<fqdn>\\t<hostname>``
    (the FQDN only with ``spec.subdomain``), then hostAliases. A hostNetwork
    pod: the node's own hosts file, then hostAliases.
    """
    pod_spec = pod.get("spec") or {}
    if pod_spec.get("hostNetwork"):
        text = HOSTS_HEADER_HOST_NETWORK + host
    else:
        text = HOSTS_HEADER + LOCALHOST_LINES
        if ip:
            hostname = spec.hostname_of(pod)
            subdomain = pod_spec.get("subdomain")
            namespace = (pod.get("metadata") or {}).get("namespace") or "default"
            if subdomain:
                fqdn = f"{hostname}.{subdomain}.{namespace}.svc.{cluster_domain}"
                text += f"{ip}\t{fqdn}\t{hostname}\n"
            else:
                text += f"{ip}\t{hostname}\n"
    aliases = pod_spec.get("hostAliases") or []
    if aliases:
        if not text.endswith("\n"):
            text += "\n"
        text += "\n# Entries added by HostAliases.\n"
        for alias in aliases:
            names = "\t".join(str(n) for n in alias.get("hostnames") or ())
            text += f"{alias.get('ip')}\t{names}\n"
    return text


def mounts(directory: Path) -> list[Object]:
    """Bind mounts of the pod's name files written under ``directory`` (those that exist)."""
    found = []
    for name, target in ((HOSTS_FILE, "/etc/hosts"), (RESOLV_FILE, "/etc/resolv.conf")):
        source = directory / name
        if source.exists():
            found.append(
                {
                    "destination": target,
                    "type": "bind",
                    "source": str(source),
                    "options": ["rbind", "rprivate", "rw"],
                }
            )
    return found


async def _bind_netns(target: Path, source: Path) -> None:
    """Make ``target`` (a pinned namespace file) refer to the namespace at ``source``."""
    for argv in (["umount", str(target)], ["mount", "--bind", str(source), str(target)]):
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        output, _ = await process.communicate()
        if process.returncode != 0 and argv[0] == "mount":
            raise OSError(f"{' '.join(argv)}: {output.decode(errors='replace').strip()}")


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    tmp.replace(path)
