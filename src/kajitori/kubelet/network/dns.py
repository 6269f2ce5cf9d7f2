"""A pod's resolv.conf, as the kubelet writes it (upstream pkg/kubelet/network/dns/dns.go).

``pod_dns_config`` follows the pod's ``dnsPolicy``:

* ``ClusterFirst`` (the default): the cluster DNS Service IP, the search
  list ``<ns>.svc.<domain> svc.<domain> <domain>`` followed by the host's own
  search domains, and ``options ndots:5``. A hostNetwork pod falls back to
  ``Default`` under this policy, as upstream, unless it says
  ``ClusterFirstWithHostNet``;
* ``Default``: the host's resolv.conf (nameservers, search, options);
* ``None``: nothing but the pod's ``dnsConfig``.

Every policy then appends ``dnsConfig`` (nameservers and searches without
duplicates; options replace the same-named ones), and the limits of glibc
apply as upstream: at most 3 nameservers, 32 search domains and 2048
characters of search list. With no cluster DNS configured, ClusterFirst
degrades to Default (upstream records a ``MissingClusterDNS`` event).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

CLUSTER_DNS = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
MAX_NAMESERVERS = 3
MAX_SEARCH_PATHS = 32
MAX_SEARCH_CHARS = 2048
DEFAULT_OPTIONS = ("ndots:5",)


@dataclasses.dataclass(frozen=True, slots=True)
class DNSConfig:
    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def render(self) -> str:
        """resolv.conf text: nameserver lines, then search, then options."""
        lines = [f"nameserver {server}" for server in self.nameservers]
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "".join(f"{line}\n" for line in lines)


def parse_resolv_conf(text: str) -> DNSConfig:
    """Parse resolv.conf: ``nameserver``, ``search``/``domain`` (last wins) and ``options``."""
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for raw in text.splitlines():
        fields = raw.split("#", 1)[0].split(";", 1)[0].split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            nameservers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            searches = [s.rstrip(".") for s in fields[1:] if s != "."]
        elif fields[0] == "options":
            options.extend(fields[1:])
    return DNSConfig(tuple(nameservers), tuple(searches), tuple(options))


def pod_dns_config(
    pod: Mapping[str, Any],
    *,
    host: DNSConfig,
    cluster_dns: Sequence[str] = (CLUSTER_DNS,),
    cluster_domain: str = CLUSTER_DOMAIN,
) -> DNSConfig:
    """The resolver configuration for ``pod`` on a node whose own resolv.conf is ``host``."""
    spec = pod.get("spec") or {}
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    policy = _effective_policy(spec, has_cluster_dns=bool(cluster_dns))
    if policy == "None":
        base = DNSConfig()
    elif policy == "Default":
        base = host
    else:
        cluster_searches = (
            f"{namespace}.svc.{cluster_domain}",
            f"svc.{cluster_domain}",
            cluster_domain,
        )
        base = DNSConfig(
            tuple(cluster_dns), _dedup((*cluster_searches, *host.searches)), DEFAULT_OPTIONS
        )
    return _limit(_append_dns_config(base, spec.get("dnsConfig") or {}))


def _effective_policy(spec: Mapping[str, Any], *, has_cluster_dns: bool) -> str:
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"  # upstream: a hostNetwork pod keeps the host's resolver
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        return "ClusterFirst" if has_cluster_dns else "Default"
    return str(policy)


def _append_dns_config(base: DNSConfig, extra: Mapping[str, Any]) -> DNSConfig:
    nameservers = _dedup((*base.nameservers, *(extra.get("nameservers") or ())))
    searches = _dedup((*base.searches, *(extra.get("searches") or ())))
    options = _merge_options(base.options, extra.get("options") or ())
    return DNSConfig(nameservers, searches, options)


def _merge_options(base: Sequence[str], extra: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """Options by name, later ones replacing earlier ones; ``name:value`` or bare ``name``."""
    merged: dict[str, str] = {}
    for option in base:
        merged[option.partition(":")[0]] = option
    for entry in extra:
        name = str(entry.get("name") or "")
        if name:
            value = entry.get("value")
            merged[name] = f"{name}:{value}" if value is not None else name
    return tuple(merged.values())


def _limit(config: DNSConfig) -> DNSConfig:
    searches: list[str] = []
    length = 0
    for domain in config.searches[:MAX_SEARCH_PATHS]:
        length += len(domain) + (1 if searches else 0)
        if length > MAX_SEARCH_CHARS:
            break
        searches.append(domain)
    return DNSConfig(config.nameservers[:MAX_NAMESERVERS], tuple(searches), config.options)


def _dedup(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def write_resolv_conf(path: Path, config: DNSConfig) -> None:
    """Write ``path`` atomically (a container may be reading it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(config.render())
    os.chmod(tmp, 0o644)
    tmp.replace(path)
