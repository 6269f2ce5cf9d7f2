"""Encryption at rest: upstream's stored format, config validation, resource matching, rewrite."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import nacl.bindings
import pytest
import yaml
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kajitori.machinery.errors import GroupResource
from kajitori.registry import encryption
from kajitori.storage import sqlite

KEY = "/registry/secrets/default/s1"
PLAIN = b'{"kind":"Secret","data":{"password":"aHVudGVyMg=="}}'
SECRETS = GroupResource("", "secrets")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def config_text(*entries: tuple[list[str], list[dict[str, object]]]) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "EncryptionConfiguration",
            "resources": [{"resources": r, "providers": p} for r, p in entries],
        }
    )


def provider(name: str, key_name: str = "k1", secret: bytes = b"\x01" * 32) -> dict[str, object]:
    if name == "identity":
        return {"identity": {}}
    return {name: {"keys": [{"name": key_name, "secret": b64(secret)}]}}


def transformer(name: str, key_name: str = "k1", size: int = 32) -> encryption.ResourceTransformer:
    text = config_text((["secrets"], [provider(name, key_name, b"\x07" * size)]))
    return encryption.parse_config(text).transformer_for(SECRETS)


@pytest.mark.parametrize(
    ("name", "size"),
    [
        pytest.param("aescbc", 16, id="aescbc-128"),
        pytest.param("aescbc", 32, id="aescbc-256"),
        pytest.param("aesgcm", 24, id="aesgcm-192"),
        pytest.param("aesgcm", 32, id="aesgcm-256"),
        pytest.param("secretbox", 32, id="secretbox"),
    ],
)
def test_each_provider_round_trips_with_upstreams_prefix(name: str, size: int) -> None:
    """A value is stored as k8s:enc:<provider>:v1:<key>: + ciphertext and reads back."""
    t = transformer(name, "first", size)
    stored = t.to_storage(PLAIN, KEY)
    assert stored.startswith(f"k8s:enc:{name}:v1:first:".encode())
    assert b"password" not in stored and b"aHVudGVyMg" not in stored
    assert t.from_storage(stored, KEY) == PLAIN
    assert t.to_storage(PLAIN, KEY) != stored, "nonce/IV must be fresh per write"


def test_identity_stores_plain_bytes() -> None:
    """The identity provider writes the value unchanged, without a prefix."""
    t = transformer("identity")
    assert t.to_storage(PLAIN, KEY) == PLAIN
    assert t.from_storage(PLAIN, KEY) == PLAIN


def test_values_built_as_upstream_does_are_readable() -> None:
    """Layouts built independently (IV+CBC/PKCS#7, nonce+GCM with key as AAD, nonce+box) decrypt."""
    secret = bytes(range(32))
    iv, nonce12, nonce24 = b"\x02" * 16, b"\x03" * 12, b"\x04" * 24
    padder = padding.PKCS7(128).padder()
    padded = padder.update(PLAIN) + padder.finalize()
    enc = Cipher(algorithms.AES(secret), modes.CBC(iv)).encryptor()
    cbc = b"k8s:enc:aescbc:v1:k:" + iv + enc.update(padded) + enc.finalize()
    gcm = b"k8s:enc:aesgcm:v1:k:" + nonce12 + AESGCM(secret).encrypt(nonce12, PLAIN, KEY.encode())
    box = (
        b"k8s:enc:secretbox:v1:k:"
        + nonce24
        + nacl.bindings.crypto_secretbox(PLAIN, nonce24, secret)
    )
    for name, stored in (("aescbc", cbc), ("aesgcm", gcm), ("secretbox", box)):
        cfg = encryption.parse_config(config_text((["secrets"], [provider(name, "k", secret)])))
        assert cfg.transformer_for(SECRETS).from_storage(stored, KEY) == PLAIN, name


@pytest.mark.parametrize(
    ("name", "tamper"),
    [
        pytest.param("aesgcm", lambda b: b[:-1] + bytes([b[-1] ^ 1]), id="aesgcm-flipped-tag"),
        pytest.param("secretbox", lambda b: b[:-1] + bytes([b[-1] ^ 1]), id="secretbox-flipped"),
        pytest.param("aescbc", lambda b: b[:-3], id="aescbc-truncated"),
        pytest.param("aesgcm", lambda b: b[:30], id="aesgcm-too-short"),
    ],
)
def test_tampered_ciphertext_fails_with_a_clear_error(
    name: str, tamper: Callable[[bytes], bytes]
) -> None:
    """Changed ciphertext is refused, naming the key, provider and key name."""
    t = transformer(name, "k1")
    stored = t.to_storage(PLAIN, KEY)
    with pytest.raises(
        encryption.TransformError, match=rf'cannot decrypt {KEY} with {name} key "k1"'
    ):
        t.from_storage(tamper(stored), KEY)


def test_aesgcm_binds_the_value_to_its_storage_key() -> None:
    """A GCM value copied under another key fails: the key is authenticated data."""
    t = transformer("aesgcm")
    stored = t.to_storage(PLAIN, KEY)
    with pytest.raises(encryption.TransformError, match="message authentication failed"):
        t.from_storage(stored, "/registry/secrets/default/other")


def test_a_value_under_an_unknown_key_is_refused() -> None:
    """Data naming a key the config no longer has cannot be read."""
    stored = transformer("aescbc", "old").to_storage(PLAIN, KEY)
    with pytest.raises(encryption.TransformError, match="no matching prefix found"):
        transformer("aescbc", "new").from_storage(stored, KEY)


def test_unprefixed_data_reads_as_identity_under_any_config() -> None:
    """Values stored before encryption was turned on stay readable."""
    assert transformer("secretbox").from_storage(PLAIN, KEY) == PLAIN


def test_rotation_writes_with_the_first_key_and_reads_with_either() -> None:
    """After adding a new key first, old values read and new writes use the new key."""
    old = encryption.parse_config(config_text((["secrets"], [provider("aescbc", "old")])))
    rotated = encryption.parse_config(
        config_text(
            (
                ["secrets"],
                [provider("aesgcm", "new", b"\x09" * 32), provider("aescbc", "old")],
            )
        )
    )
    before = old.transformer_for(SECRETS).to_storage(PLAIN, KEY)
    t = rotated.transformer_for(SECRETS)
    assert t.from_storage(before, KEY) == PLAIN
    assert t.is_stale(before)
    after = t.to_storage(PLAIN, KEY)
    assert after.startswith(b"k8s:enc:aesgcm:v1:new:")
    assert not t.is_stale(after)


MATCHING = config_text(
    (["secrets", "deployments.apps"], [provider("aescbc", "a")]),
    (["*.batch"], [provider("aesgcm", "b")]),
    (["*."], [provider("secretbox", "c")]),
    (["*.*"], [provider("identity")]),
)


@pytest.mark.parametrize(
    ("group", "resource", "expected"),
    [
        pytest.param("", "secrets", "aescbc", id="exact-core"),
        pytest.param("apps", "deployments", "aescbc", id="exact-group"),
        pytest.param("batch", "jobs", "aesgcm", id="star-group"),
        pytest.param("", "configmaps", "secretbox", id="star-core"),
        pytest.param("apps", "replicasets", "identity", id="star-star"),
        pytest.param("events.k8s.io", "events", "secretbox", id="events-stored-as-core"),
    ],
)
def test_resources_match_exact_then_group_wildcard_then_any(
    group: str, resource: str, expected: str
) -> None:
    """Lookup order is upstream's: resource.group, *.group, *.*."""
    cfg = encryption.parse_config(MATCHING)
    assert cfg.transformer_for(GroupResource(group, resource)).write_key.provider == expected


def test_unlisted_resources_are_not_encrypted() -> None:
    """Only listed resources are encrypted: configmaps stay plain when only secrets is listed."""
    cfg = encryption.parse_config(config_text((["secrets"], [provider("aescbc")])))
    assert cfg.encrypts(SECRETS)
    assert not cfg.encrypts(GroupResource("", "configmaps"))
    configmaps = cfg.transformer_for(GroupResource("", "configmaps"))
    assert configmaps.to_storage(PLAIN, KEY) == PLAIN
    with pytest.raises(encryption.TransformError):
        configmaps.from_storage(cfg.transformer_for(SECRETS).to_storage(PLAIN, KEY), KEY)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            config_text((["secrets"], [provider("aescbc", secret=b"x" * 10)])),
            "resources[0].providers[0].aescbc.keys[0].secret: Invalid value: "
            '"REDACTED": secret is not of the expected length, got 10, expected one of [16 24 32]',
            id="aescbc-key-size",
        ),
        pytest.param(
            config_text((["secrets"], [provider("aesgcm", secret=b"x" * 33)])),
            "got 33, expected one of [16 24 32]",
            id="aesgcm-key-size",
        ),
        pytest.param(
            config_text((["secrets"], [provider("secretbox", secret=b"x" * 16)])),
            'secretbox.keys[0].secret: Invalid value: "REDACTED": secret is not of the '
            "expected length, got 16, expected one of [32]",
            id="secretbox-key-size",
        ),
        pytest.param(
            config_text((["secrets"], [{"rot13": {}}])),
            'resources[0].providers[0].rot13: Unsupported value: "rot13"',
            id="unknown-provider",
        ),
        pytest.param(
            config_text((["secrets"], [{"kms": {"name": "x"}}])),
            "kms providers are not supported",
            id="kms",
        ),
        pytest.param(
            config_text((["secrets"], [{"aescbc": {"keys": [{"name": "k", "secret": "!!"}]}}])),
            "secrets must be base64 encoded",
            id="not-base64",
        ),
        pytest.param(
            config_text((["secrets"], [{"aescbc": {"keys": []}}])),
            "resources[0].providers[0].aescbc.keys: Required value: at least one keys is required",
            id="no-keys",
        ),
        pytest.param(
            config_text((["secrets"], [])),
            "resources[0].providers: Required value",
            id="no-providers",
        ),
        pytest.param(
            config_text((["*"], [provider("identity")])),
            "use '*.' to encrypt all the resources from core API group",
            id="bare-star",
        ),
        pytest.param(
            config_text((["secrets", "*."], [provider("identity")])),
            "using overlapping resources",
            id="overlap",
        ),
        pytest.param(
            config_text((["*.*"], [provider("identity")]), (["secrets"], [provider("aescbc")])),
            'resource "secrets" is masked by earlier rule "*.*"',
            id="masked",
        ),
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\n",
            "expected apiVersion apiserver.config.k8s.io/v1 and kind EncryptionConfiguration",
            id="wrong-kind",
        ),
    ],
)
def test_invalid_configs_are_refused_with_upstreams_messages(text: str, message: str) -> None:
    """Validation reports field paths and upstream's wording, never the key itself."""
    with pytest.raises(encryption.EncryptionConfigError) as caught:
        encryption.parse_config(text)
    assert message in str(caught.value)
    assert "eHh4" not in str(caught.value)


def test_json_configs_are_accepted() -> None:
    """The file may be JSON as well as YAML."""
    doc = yaml.safe_load(config_text((["secrets"], [provider("aesgcm")])))
    cfg = encryption.parse_config(json.dumps(doc))
    assert cfg.transformer_for(SECRETS).write_key.provider == "aesgcm"


def test_the_default_config_is_generated_once_private_and_encrypts_only_secrets(
    tmp_path: Path,
) -> None:
    """First start writes an aescbc config (0600); later starts reuse the same key."""
    path = encryption.ensure_default_config(tmp_path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = path.read_text()
    assert encryption.ensure_default_config(tmp_path) == path
    assert path.read_text() == text
    cfg = encryption.load_config(path)
    assert cfg.transformer_for(SECRETS).write_key.provider == "aescbc"
    assert not cfg.encrypts(GroupResource("", "configmaps"))
    secret = yaml.safe_load(text)["resources"][0]["providers"][0]["aescbc"]["keys"][0]["secret"]
    assert len(base64.b64decode(secret)) == 32


async def test_rewrite_re_encrypts_stale_values_with_the_new_key(
    sqlite_backend: sqlite.SqliteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After rotation, rewrite moves every value to the first key; a second pass does nothing."""
    old = transformer("aescbc", "old")
    keys = [f"/registry/secrets/ns/s{i}" for i in range(7)]
    for key in keys:
        await sqlite_backend.create(key, old.to_storage(PLAIN, key))
    await sqlite_backend.create("/registry/secrets/ns/plain", PLAIN)
    await sqlite_backend.create("/registry/configmaps/ns/c", PLAIN)
    rotated = encryption.parse_config(
        config_text(
            (["secrets"], [provider("secretbox", "new"), provider("aescbc", "old", b"\x07" * 32)])
        )
    ).transformer_for(SECRETS)
    monkeypatch.setattr(encryption, "_REWRITE_PAGE", 3)  # several pages
    result = await encryption.rewrite_stale(sqlite_backend, [("/registry/secrets/", rotated)] * 2)
    assert (result.rewritten, result.raced) == (8, 0)
    page = await sqlite_backend.range("/registry/secrets/")
    assert all(kv.value.startswith(b"k8s:enc:secretbox:v1:new:") for kv in page.kvs)
    assert all(rotated.from_storage(kv.value, kv.key) == PLAIN for kv in page.kvs)
    _, configmap = await sqlite_backend.get("/registry/configmaps/ns/c")
    assert configmap is not None and configmap.value == PLAIN
    again = await encryption.rewrite_stale(sqlite_backend, [("/registry/secrets/", rotated)])
    assert again.rewritten == 0


async def test_rewrite_skips_a_value_changed_meanwhile(
    sqlite_backend: sqlite.SqliteBackend,
) -> None:
    """A concurrent write wins the compare-and-swap and is counted as raced, not overwritten."""
    old = transformer("aescbc", "old")
    new = encryption.parse_config(
        config_text(
            (["secrets"], [provider("aesgcm", "new"), provider("aescbc", "old", b"\x07" * 32)])
        )
    ).transformer_for(SECRETS)
    await sqlite_backend.create(KEY, old.to_storage(PLAIN, KEY))
    _, stale = await sqlite_backend.get(KEY)
    assert stale is not None
    await sqlite_backend.update(
        KEY, new.to_storage(b"{}", KEY), expected_revision=stale.mod_revision
    )
    result = encryption.RewriteResult()
    await encryption._rewrite_one(sqlite_backend, stale, new, result)
    assert (result.rewritten, result.raced) == (0, 1)
    _, current = await sqlite_backend.get(KEY)
    assert current is not None and new.from_storage(current.value, KEY) == b"{}"
