"""Pods of the oci runtime on the pod network: IPs from the podCIDR, pod-to-pod HTTP, name files.

The CNI plugins run inside a node network namespace the test creates
(decision 0027), so the host's network only ever sees that namespace come
and go: no bridge, veth or route of the host changes.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.kubelet.runtimes.oci import helpers
from tests.kubelet.test_kubelet import eventually

from kajitori.client import rest
from kajitori.cmd import kubelet as kubelet_cmd
from kajitori.kubelet import kubelet
from kajitori.kubelet.runtimes import interface
from kajitori.kubelet.runtimes.oci import busybox, runtime, sandbox_network
from kajitori.testing import netns

REASON = helpers.REASON or netns.skip_reason()
if REASON is None and not Path("/usr/lib/cni/bridge").exists():
    REASON = "the CNI plugins are not installed (containernetworking-plugins)"
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

Object = dict[str, Any]
NODE = helpers.NODE
HOST_RESOLV = "nameserver 192.0.2.53\nsearch example.test\noptions ndots:2\n"


@pytest.fixture
async def node(
    admin: rest.Client, tmp_path: Path, images: busybox.BusyboxImages
) -> AsyncIterator[tuple[kubelet.KubeletHost, runtime.OciRuntime, str]]:
    """A kubelet whose runtime attaches pods in a node netns; nothing may be left behind."""
    before = netns.host_counts()
    (tmp_path / "resolv.conf").write_text(HOST_RESOLV)
    async with netns.Namespaces() as namespaces:
        node_ns = await namespaces.add("node")
        options = sandbox_network.NetworkOptions(
            host_netns=node_ns,
            state_dir=tmp_path / "cni",
            host_resolv_conf=tmp_path / "resolv.conf",
        )
        oci = runtime.OciRuntime(
            tmp_path / "oci", images, network=sandbox_network.SandboxNetwork(options)
        )
        host = kubelet.KubeletHost(admin, kubelet_cmd.node_configs(1), oci)
        await host.start()
        try:
            yield host, oci, node_ns
        finally:
            await host.stop()
            uids = oci.get_pods()
            for uid in uids:
                oci.remove_pod(uid)
            await oci.aclose()
            left = {uid: await helpers.leaks(oci, uid) for uid in uids}
            assert all(found.empty() for found in left.values()), left
            veths = await namespaces.exec(node_ns, "ip", "-o", "link", "show", "type", "veth")
            assert veths.strip() == "", veths
            reserved = tmp_path / "cni" / "networks" / "kajitori"
            assert not [p for p in reserved.glob("*") if p.name[0].isdigit()], "IPs still reserved"
    assert netns.host_counts() == before


async def running_pod(admin: rest.Client, name: str) -> Object:
    async def running() -> Object | None:
        found = await admin.get(rest.PODS, name, namespace="default")
        status = found.get("status", {})
        return found if status.get("phase") == "Running" and status.get("podIP") else None

    return await eventually(running, timeout=20.0)


SERVER = (
    "mkdir -p /tmp/www && echo hello-from-a > /tmp/www/index.html && httpd -f -p 8080 -h /tmp/www"
)


async def test_two_pods_get_ips_from_the_pod_cidr_and_one_fetches_from_the_other_over_http(
    admin: rest.Client, node: tuple[kubelet.KubeletHost, runtime.OciRuntime, str]
) -> None:
    """The CNI result's IP is the pod's podIP; pod b reaches pod a's httpd across the bridge."""
    await admin.create(rest.PODS, helpers.pod("a", SERVER), namespace="default")
    a = await running_pod(admin, "a")
    script = f"wget -q -O - http://{a['status']['podIP']}:8080/index.html"
    await admin.create(rest.PODS, helpers.pod("b", script), namespace="default")

    async def succeeded() -> Object | None:
        found = await admin.get(rest.PODS, "b", namespace="default")
        return found if found.get("status", {}).get("phase") in ("Succeeded", "Failed") else None

    b = await eventually(succeeded, timeout=20.0)
    assert b["status"]["phase"] == "Succeeded", b["status"]
    _, oci, _ = node
    log = oci.log_path(b["metadata"]["uid"], "c", 0).read_text()
    assert "hello-from-a" in log
    v1 = await admin.get(rest.NODES, NODE)
    cidr = ipaddress.ip_network(v1["spec"]["podCIDR"])
    ips = {a["status"]["podIP"], b["status"]["podIP"]}
    assert len(ips) == 2 and all(ipaddress.ip_address(ip) in cidr for ip in ips), (ips, cidr)
    assert str(next(cidr.hosts())) not in ips  # the first address is the bridge's


async def test_containers_see_the_pods_resolv_conf_and_hosts_file(
    admin: rest.Client, node: tuple[kubelet.KubeletHost, runtime.OciRuntime, str]
) -> None:
    """/etc/resolv.conf is ClusterFirst over the node's; /etc/hosts has the IP and hostAliases."""
    aliases = [{"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]}]
    body = helpers.pod("named", "sleep 300", hostAliases=aliases, hostname="web", subdomain="svc")
    body["spec"]["terminationGracePeriodSeconds"] = 0
    await admin.create(rest.PODS, body, namespace="default")
    found = await running_pod(admin, "named")
    _, oci, _ = node
    uid, ip = found["metadata"]["uid"], found["status"]["podIP"]
    code, resolv, _ = await oci.exec(uid, "c", ["cat", "/etc/resolv.conf"])
    assert code == 0
    assert resolv.decode() == (
        "nameserver 10.96.0.10\n"
        "search default.svc.cluster.local svc.cluster.local cluster.local example.test\n"
        "options ndots:5\n"
    )
    code, hosts, _ = await oci.exec(uid, "c", ["cat", "/etc/hosts"])
    assert code == 0
    assert hosts.decode() == (
        "# Kubernetes-managed hosts file.\n"
        + sandbox_network.LOCALHOST_LINES
        + f"{ip}\tweb.svc.default.svc.cluster.local\tweb\n"
        "\n# Entries added by HostAliases.\n"
        "10.1.2.3\tfoo.local\tbar.local\n"
    )
    code, name, _ = await oci.exec(uid, "c", ["hostname"])
    assert name.decode().strip() == "web"
    saved = json.loads((oci.root / "pods" / uid / runtime.NETWORK_FILE).read_text())
    assert saved["ip"] == ip


async def test_a_restarted_runtime_reports_the_same_ip_and_releases_it_on_removal(
    tmp_path: Path, images: busybox.BusyboxImages
) -> None:
    """The IP survives in network.json; removal by the new runtime DELs veth and reservation."""
    cidr = "10.244.7.0/24"
    hooks = interface.KubeletHooks(
        record_event=lambda *_, **__: None, get_secret=_no_secret, pod_cidr=lambda _: cidr
    )
    async with netns.Namespaces() as namespaces:
        node_ns = await namespaces.add("node")
        options = sandbox_network.NetworkOptions(host_netns=node_ns, state_dir=tmp_path / "cni")

        def new_runtime() -> runtime.OciRuntime:
            made = runtime.OciRuntime(
                tmp_path / "oci", images, network=sandbox_network.SandboxNetwork(options)
            )
            made.set_kubelet_hooks(hooks)
            return made

        first = new_runtime()
        body = helpers.make_pod([helpers.sh("c", "sleep 300")], nodeName=NODE)
        uid = str(body["metadata"]["uid"])
        first.sync_pod(body, now=time.time())

        def ip_of(oci: runtime.OciRuntime) -> str:
            found = oci.get_pod_status(uid, now=time.time())
            return found.pod_ip or "" if found is not None else ""

        ip = await helpers.wait_for(lambda: ip_of(first), what="pod IP")
        assert ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)
        assert (tmp_path / "cni" / "networks" / "kajitori" / ip).exists()  # host-local's
        await first.aclose()
        second = new_runtime()
        assert ip_of(second) == ip
        second.remove_pod(uid)
        await second.aclose()
        assert (await helpers.leaks(second, uid)).empty()
        veths = await namespaces.exec(node_ns, "ip", "-o", "link", "show", "type", "veth")
        assert veths.strip() == "", veths
        assert not (tmp_path / "cni" / "networks" / "kajitori" / ip).exists()


async def _no_secret(node: str, namespace: str, name: str) -> Object | None:
    return None
