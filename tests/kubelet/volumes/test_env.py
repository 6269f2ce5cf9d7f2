"""Container environment as upstream builds it: expansion, service links, valueFrom, envFrom."""

from __future__ import annotations

from typing import Any

import pytest
from tests.kubelet.volumes.fakes import DictSource, configmap, secret, service

from kajitori.kubelet.volumes import env
from kajitori.kubelet.volumes.errors import ContainerConfigError

Object = dict[str, Any]


KUBERNETES = service("kubernetes", "10.96.0.1", {"name": "https", "port": 443, "protocol": "TCP"})


def pod(namespace: str = "default", **spec: Any) -> Object:
    return {
        "metadata": {
            "name": "p",
            "namespace": namespace,
            "uid": "u-1",
            "labels": {"app": "web", "tier": 'a"b'},
        },
        "spec": {"nodeName": "n1", "serviceAccountName": "sa", **spec},
        "status": {
            "podIP": "10.244.0.5",
            "podIPs": [{"ip": "10.244.0.5"}, {"ip": "fd00::5"}],
            "hostIP": "192.168.1.2",
        },
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)", "a"),
        ("x-$(A)-$(B)", "x-a-b"),
        ("$$(A)", "$(A)"),
        ("$$$(A)", "$a"),
        ("$(MISSING)", "$(MISSING)"),
        ("$(A", "$(A"),
        ("$A $", "$A $"),
        ("$()", "$()"),
        ("$$$$", "$$"),
    ],
)
def test_expansion_follows_upstream(text: str, expected: str) -> None:
    assert env.expand(text, {"A": "a", "B": "b"}.get) == expected


def test_service_variables_include_docker_links() -> None:
    web = service(
        "my-web",
        "10.0.0.7",
        {"name": "http", "port": 80, "protocol": "TCP"},
        {"name": "dns", "port": 53, "protocol": "UDP"},
    )
    headless = service("headless", "None", {"port": 80})
    got = env.service_env([KUBERNETES, web, headless])
    assert got["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert got["KUBERNETES_SERVICE_PORT"] == "443"
    assert got["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert got["KUBERNETES_PORT"] == "tcp://10.96.0.1:443"
    assert got["KUBERNETES_PORT_443_TCP"] == "tcp://10.96.0.1:443"
    assert got["KUBERNETES_PORT_443_TCP_PROTO"] == "tcp"
    assert got["KUBERNETES_PORT_443_TCP_PORT"] == "443"
    assert got["KUBERNETES_PORT_443_TCP_ADDR"] == "10.96.0.1"
    assert got["MY_WEB_SERVICE_PORT_DNS"] == "53"
    assert got["MY_WEB_PORT_53_UDP"] == "udp://10.0.0.7:53"
    assert not any(k.startswith("HEADLESS") for k in got)


def test_ipv6_service_addresses_are_bracketed_in_urls() -> None:
    got = env.service_env([service("v6", "fd00::10", {"port": 80, "protocol": "TCP"})])
    assert got["V6_PORT"] == "tcp://[fd00::10]:80"
    assert got["V6_PORT_80_TCP_ADDR"] == "fd00::10"


def test_service_links_off_keeps_the_master_service() -> None:
    """Upstream always injects the ``kubernetes`` Service of ``default``."""
    other = service("db", "10.0.0.9", {"port": 5432}, namespace="team")
    chosen = env.services_for(pod("team", enableServiceLinks=False), [other], [KUBERNETES])
    assert [s["metadata"]["name"] for s in chosen] == ["kubernetes"]
    chosen = env.services_for(pod("team"), [other], [KUBERNETES])
    assert [s["metadata"]["name"] for s in chosen] == ["db", "kubernetes"]


async def test_value_from_envfrom_and_expansion() -> None:
    source = DictSource(
        {
            ("Secret", "default", "db"): secret("db", {"password": "s3cret"}),
            ("ConfigMap", "default", "cfg"): configmap(
                "cfg", {"MODE": "fast", "bad=key": "x", "LEVEL": "2"}
            ),
        },
        services={"default": [KUBERNETES]},
    )
    container = {
        "name": "c",
        "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}},
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
        "env": [
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "URL", "value": "postgres://u:$(PW)@$(KUBERNETES_SERVICE_HOST)/$$(PW)"},
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {
                "name": "CPU",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}},
            },
            {
                "name": "MEM",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
            {
                "name": "OPT",
                "valueFrom": {
                    "secretKeyRef": {"name": "nope", "key": "k", "optional": True},
                },
            },
        ],
    }
    builder = env.EnvBuilder(source, pod())
    got = dict(await builder.build(container, await builder.service_env()))
    assert got["PW"] == "s3cret"
    assert got["URL"] == "postgres://u:s3cret@10.96.0.1/$(PW)"
    assert got["CFG_MODE"] == "fast" and got["CFG_LEVEL"] == "2"
    assert "CFG_bad=key" not in got
    assert (got["NAME"], got["IPS"], got["SA"]) == ("p", "10.244.0.5,fd00::5", "sa")
    assert (got["CPU"], got["MEM"]) == ("250", "64")
    assert "OPT" not in got
    assert builder.skipped[0].message() == (
        "Keys [CFG_bad=key] from the EnvFrom configMap default/cfg were skipped since they "
        "are considered invalid environment variable names."
    )


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (
            {"secretKeyRef": {"name": "db", "key": "password"}},
            "couldn't find key password in Secret default/db",
        ),
        ({"secretKeyRef": {"name": "x", "key": "k"}}, 'secret "x" not found'),
        ({"configMapKeyRef": {"name": "x", "key": "k"}}, 'configmap "x" not found'),
        (
            {"configMapKeyRef": {"name": "cfg", "key": "k"}},
            "couldn't find key k in ConfigMap default/cfg",
        ),
    ],
)
async def test_missing_objects_and_keys_give_upstream_messages(ref: Object, message: str) -> None:
    source = DictSource(
        {
            ("Secret", "default", "db"): secret("db", {"user": "u"}),
            ("ConfigMap", "default", "cfg"): configmap("cfg", {}),
        }
    )
    builder = env.EnvBuilder(source, pod())
    with pytest.raises(ContainerConfigError) as caught:
        await builder.build({"env": [{"name": "V", "valueFrom": ref}]}, {})
    assert str(caught.value) == message
    assert caught.value.reason == "CreateContainerConfigError"
