"""The storage version migrator controller over HTTPS, as kube-controller-manager 1.37 runs it.

The headline case is upstream's documented use: after an encryption key
rotation, a StorageVersionMigration for ``secrets`` makes the API server
re-store every Secret, so the bytes in the database carry the new key's
prefix. The cluster is restarted with the rotated configuration (new key
first) and without the start-up rewrite, so only the migration can have
moved the values. The official client drives it; the database file is read
as the encryption tests read it.
"""

from __future__ import annotations

import base64
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from kajitori.testing.inprocess import ClusterOptions, InProcessCluster, make_signing_key

Object = dict[str, Any]
OPTIONS = ClusterOptions(controllers=True, scheduler=False)
SECRET_KEYS = ("/registry/secrets/default/alpha", "/registry/secrets/default/beta")


def encryption_config(*keys: tuple[str, int]) -> str:
    providers = [
        {
            "aescbc": {
                "keys": [{"name": name, "secret": base64.b64encode(bytes([fill]) * 32).decode()}]
            }
        }
        for name, fill in keys
    ]
    return yaml.safe_dump(
        {
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "EncryptionConfiguration",
            "resources": [{"resources": ["secrets"], "providers": [*providers, {"identity": {}}]}],
        }
    )


def stored(data_dir: Path, key: str) -> bytes:
    """The newest value of ``key`` in the cluster's SQLite log."""
    with sqlite3.connect(f"file:{data_dir / 'kajitori.db'}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT value FROM log WHERE key = ? ORDER BY id DESC LIMIT 1", (key,)
        ).fetchone()
    assert row is not None, key
    return bytes(row[0])


def svm(name: str, resource: str, group: str = "") -> Object:
    return {
        "apiVersion": "storagemigration.k8s.io/v1",
        "kind": "StorageVersionMigration",
        "metadata": {"name": name},
        "spec": {"resource": {"group": group, "resource": resource}},
    }


def wait_for(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not met within {timeout}s (last: {result!r})")
        time.sleep(0.05)


def finished(api: client.StoragemigrationV1Api, name: str) -> Object | None:
    got = api.api_client.sanitize_for_serialization(api.read_storage_version_migration(name))
    kinds = {c["type"]: c for c in (got.get("status") or {}).get("conditions") or []}
    done = any(kinds.get(k, {}).get("status") == "True" for k in ("Succeeded", "Failed"))
    return got if done else None


def test_a_migration_re_encrypts_secrets_with_the_rotated_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "cluster"
    data_dir.mkdir()
    keys = make_signing_key(tmp_path / "keys")
    config = data_dir / "encryption-config.yaml"
    config.write_text(encryption_config(("old", 1)))
    with InProcessCluster(data_dir, OPTIONS, signing_key_dir=keys) as cluster:
        api = cluster.api_client()
        core = client.CoreV1Api(api)
        for name in ("alpha", "beta"):
            core.create_namespaced_secret(
                "default", {"metadata": {"name": name}, "stringData": {"password": "hunter2"}}
            )
        api.close()
    assert all(stored(data_dir, k).startswith(b"k8s:enc:aescbc:v1:old:") for k in SECRET_KEYS)

    config.write_text(encryption_config(("new", 2), ("old", 1)))
    with InProcessCluster(data_dir, OPTIONS, signing_key_dir=keys) as cluster:
        # Rotated, but nothing rewrote the values at start.
        assert all(stored(data_dir, k).startswith(b"k8s:enc:aescbc:v1:old:") for k in SECRET_KEYS)
        api = cluster.api_client()
        migrations = client.StoragemigrationV1Api(api)
        migrations.create_storage_version_migration(svm("secrets-to-new-key", "secrets"))
        done = wait_for(lambda: finished(migrations, "secrets-to-new-key"))
        status = done["status"]
        assert int(status["resourceVersion"]) > 0
        conditions = {c["type"]: c for c in status["conditions"]}
        assert conditions["Succeeded"]["status"] == "True"
        assert conditions["Succeeded"]["reason"] == "StorageVersionMigrationSucceeded"
        assert conditions["Running"]["status"] == "False"
        assert conditions["Running"]["reason"] == "StorageVersionMigrationInProgress"
        assert "Failed" not in conditions
        for key in SECRET_KEYS:
            value = stored(data_dir, key)
            assert value.startswith(b"k8s:enc:aescbc:v1:new:"), value[:30]
            assert b"hunter2" not in value
        # Still readable, and unchanged for the clients.
        secret = client.CoreV1Api(api).read_namespaced_secret("alpha", "default")
        assert base64.b64decode(secret.data["password"]) == b"hunter2"
        api.close()


def test_an_unknown_resource_fails_the_migration(tmp_path: Path) -> None:
    with InProcessCluster(
        tmp_path / "cluster", OPTIONS, signing_key_dir=make_signing_key(tmp_path / "keys")
    ) as cluster:
        api = cluster.api_client()
        migrations = client.StoragemigrationV1Api(api)
        migrations.create_storage_version_migration(svm("nothing", "widgets", "example.com"))
        done = wait_for(lambda: finished(migrations, "nothing"))
        (failed,) = done["status"]["conditions"]
        assert (failed["type"], failed["status"], failed["reason"], failed["message"]) == (
            "Failed",
            "True",
            "StorageVersionMigrationFailed",
            "resource does not exist in discovery",
        )
        assert not done["status"].get("resourceVersion")
        api.close()
