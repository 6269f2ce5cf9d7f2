"""Encryption at rest end to end: what ``kajitori up`` really writes to SQLite and etcd.

Each test starts the real command line, writes Secrets (and ConfigMaps)
through the API, then reads the storage underneath (the SQLite ``log``
table, or etcd's keys) to check that no plaintext value reached it, that
the stored values carry upstream's ``k8s:enc:<provider>:v1:<key>:`` prefix,
and that a rotation plus ``--rewrite-encrypted-on-start`` moves every
value to the new key.
"""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kajitori.storage.etcd import EtcdBackend
from kajitori.testing.cluster import ClusterStartError, KajitoriCluster
from kajitori.testing.etcd_server import EtcdServer, etcd_available

PLAIN_VALUE = "correct-horse-battery-staple"
B64_VALUE = base64.b64encode(PLAIN_VALUE.encode()).decode()
CM_VALUE = "configmap-value-in-the-clear"


def client(cluster: KajitoriCluster, work: Path) -> httpx.Client:
    """An httpx client with the kubeconfig's CA and client certificate."""
    cfg = yaml.safe_load(cluster.kubeconfig.read_text())
    server = cfg["clusters"][0]["cluster"]
    user = cfg["users"][0]["user"]
    work.mkdir(parents=True, exist_ok=True)
    for name, data in (
        ("ca.pem", server["certificate-authority-data"]),
        ("cert.pem", user["client-certificate-data"]),
        ("key.pem", user["client-key-data"]),
    ):
        (work / name).write_bytes(base64.b64decode(data))
    context = ssl.create_default_context(cafile=str(work / "ca.pem"))
    context.load_cert_chain(str(work / "cert.pem"), str(work / "key.pem"))
    return httpx.Client(base_url=server["server"], verify=context, timeout=30)


def write_objects(http: httpx.Client, names: list[str]) -> None:
    for name in names:
        secret = {"metadata": {"name": name}, "data": {"password": B64_VALUE}}
        http.post("/api/v1/namespaces/default/secrets", json=secret).raise_for_status()
    configmap = {"metadata": {"name": "cm"}, "data": {"value": CM_VALUE}}
    http.post("/api/v1/namespaces/default/configmaps", json=configmap).raise_for_status()


def read_secret(http: httpx.Client, name: str) -> str:
    r = http.get(f"/api/v1/namespaces/default/secrets/{name}")
    r.raise_for_status()
    return str(r.json()["data"]["password"])


def wait_for_root_ca(http: httpx.Client) -> None:
    """Wait for the controller manager (started after the ready line) to publish kube-root-ca.crt."""
    for _ in range(300):
        if http.get("/api/v1/namespaces/default/configmaps/kube-root-ca.crt").status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError("kube-root-ca.crt was never published in default")


def sqlite_rows(data_dir: Path, prefix: str) -> list[tuple[str, bytes, bytes | None]]:
    """Every row ever written under ``prefix`` (history included), read from the db file."""
    with sqlite3.connect(f"file:{data_dir / 'kajitori.db'}?mode=ro", uri=True) as db:
        return db.execute(
            "SELECT key, value, prev_value FROM log WHERE key LIKE ? ORDER BY id", (prefix + "%",)
        ).fetchall()


def newest(rows: list[tuple[str, bytes, bytes | None]]) -> dict[str, bytes]:
    latest: dict[str, bytes] = {}
    for key, value, _ in rows:
        latest[key] = value
    return latest


def assert_no_plaintext(blobs: list[bytes]) -> None:
    for blob in blobs:
        assert PLAIN_VALUE.encode() not in blob
        assert B64_VALUE.encode() not in blob


def encryption_config(*entries: tuple[list[str], list[dict[str, Any]]]) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "EncryptionConfiguration",
            "resources": [{"resources": r, "providers": p} for r, p in entries],
        }
    )


def key(provider: str, name: str, fill: int) -> dict[str, Any]:
    secret = base64.b64encode(bytes([fill]) * 32).decode()
    return {provider: {"keys": [{"name": name, "secret": secret}]}}


def test_kajitori_up_encrypts_secrets_by_default_and_never_stores_the_value(tmp_path: Path) -> None:
    """The generated aescbc config (0600) encrypts every stored Secret row; ConfigMaps stay plain."""
    work = tmp_path
    data_dir = work / "cluster"
    with KajitoriCluster(data_dir) as cluster, client(cluster, work / "certs") as http:
        write_objects(http, ["s1", "s2"])
        assert read_secret(http, "s1") == B64_VALUE
        secrets = sqlite_rows(data_dir, "/registry/secrets/default/")
        configmaps = sqlite_rows(data_dir, "/registry/configmaps/default/cm")
    assert (data_dir / "encryption-config.yaml").stat().st_mode & 0o777 == 0o600
    assert {k for k, _, _ in secrets} == {
        "/registry/secrets/default/s1",
        "/registry/secrets/default/s2",
    }
    assert all(v.startswith(b"k8s:enc:aescbc:v1:key1:") for _, v, _ in secrets)
    assert_no_plaintext([v for _, v, _ in secrets] + [p for _, _, p in secrets if p])
    assert CM_VALUE.encode() in newest(configmaps)["/registry/configmaps/default/cm"]


def test_kubectl_created_secrets_are_encrypted_too(tmp_path: Path) -> None:
    """Secrets sent by kubectl (protobuf bodies) are stored encrypted and read back intact."""
    work = tmp_path
    data_dir = work / "cluster"
    with KajitoriCluster(data_dir) as cluster:
        cluster.kubectl("create", "secret", "generic", "k", f"--from-literal=pw={PLAIN_VALUE}")
        shown = cluster.kubectl("get", "secret", "k", "-o", "jsonpath={.data.pw}").stdout
        rows = sqlite_rows(data_dir, "/registry/secrets/default/k")
    assert base64.b64decode(shown).decode() == PLAIN_VALUE
    assert rows and all(v.startswith(b"k8s:enc:aescbc:v1:key1:") for _, v, _ in rows)
    assert_no_plaintext([v for _, v, _ in rows])


def test_rotation_then_rewrite_moves_every_value_to_the_new_key(tmp_path: Path) -> None:
    """New key first, old second: old values still read; the rewrite re-stores them all."""
    work = tmp_path
    data_dir = work / "cluster"
    config = work / "encryption.yaml"
    config.write_text(encryption_config((["secrets", "configmaps"], [key("aesgcm", "old", 1)])))
    flags = ["--encryption-provider-config", str(config)]
    with KajitoriCluster(data_dir, extra_args=flags) as cluster:
        with client(cluster, work / "certs") as http:
            write_objects(http, ["a", "b", "c"])
            wait_for_root_ca(http)
    cm = newest(sqlite_rows(data_dir, "/registry/configmaps/default/cm"))
    assert cm["/registry/configmaps/default/cm"].startswith(b"k8s:enc:aesgcm:v1:old:")

    config.write_text(
        encryption_config(
            (["secrets", "configmaps"], [key("secretbox", "new", 2), key("aesgcm", "old", 1)])
        )
    )
    with KajitoriCluster(data_dir, extra_args=flags) as cluster:
        with client(cluster, work / "certs2") as http:
            assert read_secret(http, "a") == B64_VALUE
        before = newest(sqlite_rows(data_dir, "/registry/secrets/default/"))
    assert all(v.startswith(b"k8s:enc:aesgcm:v1:old:") for v in before.values())

    rewrite = [*flags, "--rewrite-encrypted-on-start"]
    with KajitoriCluster(data_dir, extra_args=rewrite) as cluster:
        with client(cluster, work / "certs3") as http:
            assert [read_secret(http, n) for n in "abc"] == [B64_VALUE] * 3
        after = newest(sqlite_rows(data_dir, "/registry/secrets/default/"))
        after |= newest(sqlite_rows(data_dir, "/registry/configmaps/default/"))
    # Three Secrets, our ConfigMap and the kube-root-ca.crt every namespace gets.
    assert len(after) == 5
    assert all(v.startswith(b"k8s:enc:secretbox:v1:new:") for v in after.values())
    assert_no_plaintext(list(after.values()))


def test_a_bad_encryption_config_stops_kajitori_up_with_the_reason(tmp_path: Path) -> None:
    """An invalid key size is reported at start, and the server does not come up."""
    work = tmp_path
    config = work / "encryption.yaml"
    short = base64.b64encode(b"short").decode()
    config.write_text(
        encryption_config((["secrets"], [{"aescbc": {"keys": [{"name": "k", "secret": short}]}}]))
    )
    cluster = KajitoriCluster(
        work / "cluster", extra_args=["--encryption-provider-config", str(config)]
    )
    with pytest.raises(ClusterStartError, match="secret is not of the expected length, got 5"):
        cluster.start()


async def _etcd_values(endpoint: str, prefix: str) -> dict[str, bytes]:
    backend = EtcdBackend(endpoint)
    await backend.start()
    try:
        page = await backend.range(prefix)
        return {kv.key: kv.value for kv in page.kvs}
    finally:
        await backend.close()


@pytest.mark.etcd
@pytest.mark.skipif(not etcd_available(), reason="no etcd binary")
def test_secrets_in_etcd_are_encrypted(tmp_path: Path) -> None:
    """With --storage etcd, etcd's own keys hold only ciphertext for Secrets."""
    work = tmp_path
    with EtcdServer(work / "etcd") as etcd:
        flags = ["--storage", "etcd", "--etcd-endpoint", etcd.endpoint]
        with KajitoriCluster(work / "cluster", extra_args=flags) as cluster:
            with client(cluster, work / "certs") as http:
                write_objects(http, ["e1"])
                assert read_secret(http, "e1") == B64_VALUE
        values = asyncio.run(_etcd_values(etcd.endpoint, "/registry/secrets/default/"))
        configmaps = asyncio.run(_etcd_values(etcd.endpoint, "/registry/configmaps/default/"))
    assert list(values) == ["/registry/secrets/default/e1"]
    assert values["/registry/secrets/default/e1"].startswith(b"k8s:enc:aescbc:v1:key1:")
    assert_no_plaintext(list(values.values()))
    assert CM_VALUE.encode() in configmaps["/registry/configmaps/default/cm"]
