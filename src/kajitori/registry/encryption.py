"""Encryption at rest: upstream's EncryptionConfiguration and its value transformers.

Owns: reading and validating an ``apiserver.config.k8s.io/v1``
``EncryptionConfiguration`` (YAML or JSON), building one storage
``Transformer`` per GroupResource from it, generating the default config
``kajitori up`` uses, and rewriting stored values that are not in the
current write format (after a key rotation).

The stored format is upstream's, byte for byte, so a value written here
reads with upstream's transformers and the other way round:

* ``k8s:enc:aescbc:v1:<key>:`` + 16-byte IV + AES-CBC with PKCS#7 padding;
* ``k8s:enc:aesgcm:v1:<key>:`` + 12-byte nonce + ciphertext and tag, the
  storage key as additional authenticated data;
* ``k8s:enc:secretbox:v1:<key>:`` + 24-byte nonce + XSalsa20-Poly1305 box;
* identity: the plain bytes, no prefix.

Writes use the first provider (and its first key) of the entry that matches
the resource; reads use the provider and key the stored prefix names, and
unprefixed data is plain (identity). Resources are matched as upstream's
``transformerFromOverrides``: ``secrets`` / ``deployments.apps`` exactly,
then ``*.<group>`` (``*.`` for the core group), then ``*.*``.
(Upstream: k8s.io/apiserver/pkg/server/options/encryptionconfig and
k8s.io/apiserver/pkg/storage/value/encrypt.) KMS providers are not supported.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import yaml
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kajitori.machinery import errors, field
from kajitori.storage import interface as storage

API_VERSION = "apiserver.config.k8s.io/v1"
KIND = "EncryptionConfiguration"
ENCRYPTED_PREFIX = b"k8s:enc:"
DEFAULT_CONFIG_NAME = "encryption-config.yaml"

_AES_KEY_SIZES = (16, 24, 32)
_SECRETBOX_KEY_SIZES = (32,)
_KEY_SIZES = {"aescbc": _AES_KEY_SIZES, "aesgcm": _AES_KEY_SIZES, "secretbox": _SECRETBOX_KEY_SIZES}
_PROVIDERS = ("identity", "aescbc", "aesgcm", "secretbox", "kms")
_ANY = "*"
_REWRITE_PAGE = 500


class EncryptionConfigError(ValueError):
    """The encryption configuration file is unreadable or invalid."""


class TransformError(Exception):
    """A stored value could not be decrypted (wrong key, tampered data, unknown prefix)."""


# ----- ciphers ----------------------------------------------------------------


class _Cipher(Protocol):
    def seal(self, plain: bytes, aad: bytes) -> bytes: ...

    def open(self, sealed: bytes, aad: bytes) -> bytes: ...


class _AESCBC:
    """IV + CBC ciphertext; no authentication (upstream's aescbc, kept for compatibility)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def seal(self, plain: bytes, aad: bytes) -> bytes:
        iv = os.urandom(16)
        padder = padding.PKCS7(128).padder()
        padded = padder.update(plain) + padder.finalize()
        encryptor = Cipher(algorithms.AES(self._key), modes.CBC(iv)).encryptor()
        return iv + encryptor.update(padded) + encryptor.finalize()

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        if len(sealed) < 32:
            raise TransformError("the stored data was shorter than the required size")
        if len(sealed) % 16:
            raise TransformError("the stored data is not a multiple of the block size")
        iv, body = sealed[:16], sealed[16:]
        decryptor = Cipher(algorithms.AES(self._key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(body) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        try:
            return unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise TransformError("invalid PKCS7 data (empty or not padded)") from None


class _AESGCM:
    """12-byte random nonce + GCM ciphertext and tag, authenticated with the storage key."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plain: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plain, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag

        if len(sealed) < 12 + 16:
            raise TransformError("the stored data was shorter than the required size")
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], aad)
        except InvalidTag:
            raise TransformError("message authentication failed") from None


class _Secretbox:
    """24-byte random nonce + NaCl secretbox (XSalsa20-Poly1305); the storage key is not bound."""

    def __init__(self, key: bytes) -> None:
        import nacl.secret

        self._box = nacl.secret.SecretBox(key)

    def seal(self, plain: bytes, aad: bytes) -> bytes:
        return bytes(self._box.encrypt(plain))

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        import nacl.exceptions

        if len(sealed) < 24 + 16:
            raise TransformError("the stored data was shorter than the required size")
        try:
            return bytes(self._box.decrypt(sealed))
        except nacl.exceptions.CryptoError:
            raise TransformError("message authentication failed") from None


_CIPHERS: dict[str, Callable[[bytes], _Cipher]] = {
    "aescbc": _AESCBC,
    "aesgcm": _AESGCM,
    "secretbox": _Secretbox,
}


# ----- transformers -----------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ProviderKey:
    """One way to store a value: a provider and key (identity has neither cipher nor name)."""

    provider: str
    name: str = ""
    cipher: _Cipher | None = None

    @property
    def prefix(self) -> bytes:
        if self.cipher is None:
            return b""
        return f"k8s:enc:{self.provider}:v1:{self.name}:".encode()


IDENTITY = ProviderKey("identity")


class ResourceTransformer:
    """The storage ``Transformer`` of one resource: write with the first, read with any."""

    def __init__(self, keys: Sequence[ProviderKey]) -> None:
        self.keys = tuple(keys) or (IDENTITY,)
        self._by_prefix = {k.prefix: k for k in self.keys if k.cipher is not None}

    @property
    def write_key(self) -> ProviderKey:
        return self.keys[0]

    def to_storage(self, data: bytes, key: str) -> bytes:
        first = self.write_key
        if first.cipher is None:
            return data
        return first.prefix + first.cipher.seal(data, key.encode())

    def from_storage(self, data: bytes, key: str) -> bytes:
        if not data.startswith(ENCRYPTED_PREFIX):
            return data
        prefix = _stored_prefix(data)
        found = self._by_prefix.get(prefix)
        if found is None or found.cipher is None:
            raise TransformError(
                f"cannot decrypt {key}: no configured provider key matches "
                f"{prefix.decode(errors='replace')!r} (no matching prefix found)"
            )
        try:
            return found.cipher.open(data[len(prefix) :], key.encode())
        except TransformError as exc:
            raise TransformError(
                f'cannot decrypt {key} with {found.provider} key "{found.name}": {exc}'
            ) from None

    def is_stale(self, data: bytes) -> bool:
        """Whether ``data`` is not in the current write format (a rewrite would change it)."""
        prefix = self.write_key.prefix
        if not prefix:
            return data.startswith(ENCRYPTED_PREFIX)
        return not data.startswith(prefix)


def _stored_prefix(data: bytes) -> bytes:
    """``k8s:enc:<provider>:v1:<name>:`` of an encrypted value (up to the fifth colon)."""
    end = 0
    for _ in range(5):
        found = data.find(b":", end)
        if found < 0:
            return data[:end]
        end = found + 1
    return data[:end]


# ----- configuration ----------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class EncryptionConfig:
    """Parsed configuration: ordered provider keys per (group, resource) pattern."""

    rules: Mapping[tuple[str, str], tuple[ProviderKey, ...]]
    path: Path | None = None

    def transformer_for(self, gr: errors.GroupResource) -> ResourceTransformer:
        group = _storage_group(gr)
        for pattern in ((group, gr.resource), (group, _ANY), (_ANY, _ANY)):
            keys = self.rules.get(pattern)
            if keys is not None:
                return ResourceTransformer(keys)
        return ResourceTransformer((IDENTITY,))

    def encrypts(self, gr: errors.GroupResource) -> bool:
        return self.transformer_for(gr).write_key.cipher is not None


def _storage_group(gr: errors.GroupResource) -> str:
    # events.k8s.io Events share the core Events' storage, as upstream.
    return "" if gr.group == "events.k8s.io" and gr.resource == "events" else gr.group


def parse_group_resource(text: str) -> tuple[str, str]:
    """``secrets`` → ("", "secrets"); ``deployments.apps`` → ("apps", "deployments"); ``*.`` → ("", "*")."""
    resource, dot, group = text.partition(".")
    return (group, resource) if dot else ("", resource)


def load_config(path: Path) -> EncryptionConfig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise EncryptionConfigError(f"error while parsing file: {exc}") from exc
    config = parse_config(text)
    return dataclasses.replace(config, path=path)


def parse_config(text: str) -> EncryptionConfig:
    """Parse and validate; errors read as upstream's (``resources[0].providers[0]...``)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise EncryptionConfigError(f"error while parsing file: {exc}") from exc
    problems = validate_config(doc)
    if problems:
        detail = ", ".join(str(p) for p in problems)
        raise EncryptionConfigError(f"error while parsing file: {detail}")
    return EncryptionConfig(_build_rules(doc["resources"]))


def validate_config(doc: Any) -> field.ErrorList:
    root = field.Path("resources")
    if not isinstance(doc, dict):
        return field.ErrorList([field.invalid(root, doc, "EncryptionConfiguration can't be nil")])
    found = (doc.get("apiVersion"), doc.get("kind"))
    if found != (API_VERSION, KIND):
        detail = f"expected apiVersion {API_VERSION} and kind {KIND}, got {found[0]} {found[1]}"
        return field.ErrorList([field.invalid(field.Path("kind"), found[1], detail)])
    entries = doc.get("resources")
    if not isinstance(entries, list) or not entries:
        return field.ErrorList([field.required(root, "at least one resources is required")])
    problems = field.ErrorList()
    for i, entry in enumerate(entries):
        problems.extend(_validate_entry(entry, root.index(i)))
    if not problems:
        problems.extend(_validate_masking(entries))
    return problems


def _validate_entry(entry: Any, path: field.Path) -> field.ErrorList:
    problems = field.ErrorList()
    if not isinstance(entry, dict):
        return field.ErrorList([field.invalid(path, entry, "must be an object")])
    resources = entry.get("resources") or []
    if not resources:
        problems.append(
            field.required(
                path.child("resources"), f"at least one {path.child('resources')} is required"
            )
        )
    problems.extend(_validate_resource_names(resources, path.child("resources")))
    providers = entry.get("providers") or []
    if not providers:
        problems.append(
            field.required(
                path.child("providers"), f"at least one {path.child('providers')} is required"
            )
        )
    for j, provider in enumerate(providers):
        problems.extend(_validate_provider(provider, path.child("providers").index(j)))
    return problems


def _validate_resource_names(resources: list[Any], path: field.Path) -> field.ErrorList:
    problems = field.ErrorList()
    seen: set[tuple[str, str]] = set()
    for j, res in enumerate(resources):
        if not isinstance(res, str):
            problems.append(field.invalid(path.index(j), res, "must be a string"))
            continue
        group, resource = parse_group_resource(res)
        detail = ""
        if res.lower() != res:
            detail = "resource name should not contain capital letters"
        elif res == _ANY:
            detail = "use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources"
        elif group == "extensions":
            detail = "'extensions' group has been removed and cannot be used for encryption"
        elif group == _ANY and resource != _ANY:
            detail = "encrypting the same resource across groups is not supported"
        elif (group, resource) in seen:
            detail = "the same resource cannot be specified multiple times"
        if detail:
            problems.append(field.invalid(path.index(j), res, detail))
        seen.add((group, resource))
    if _overlaps(resources):
        detail = (
            "using overlapping resources such as 'secrets' and '*.' in the same resource "
            "list is not allowed as they will be masked"
        )
        problems.append(field.invalid(path, resources, detail))
    return problems


def _overlaps(resources: list[Any]) -> bool:
    patterns = {parse_group_resource(r) for r in resources if isinstance(r, str)}
    if len(patterns) < 2:
        return False
    if (_ANY, _ANY) in patterns:
        return True
    return any((g, _ANY) in patterns for g, r in patterns if r != _ANY)


def _validate_provider(provider: Any, path: field.Path) -> field.ErrorList:
    if not isinstance(provider, dict) or len(provider) == 0:
        detail = "provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, Secretbox, Identity"
        return field.ErrorList([field.invalid(path, provider, detail)])
    if len(provider) > 1:
        detail = "more than one provider specified in a single element, should split into different list elements"
        return field.ErrorList([field.invalid(path, sorted(provider), detail)])
    ((name, spec),) = provider.items()
    if name not in _PROVIDERS:
        return field.ErrorList([field.not_supported(path.child(name), name, _PROVIDERS[:4])])
    if name == "kms":
        return field.ErrorList(
            [field.forbidden(path.child("kms"), "kms providers are not supported by kajitori")]
        )
    if name == "identity":
        return field.ErrorList()
    keys = (spec or {}).get("keys") if isinstance(spec, dict) else None
    return _validate_keys(keys or [], path.child(name, "keys"), _KEY_SIZES[name])


def _validate_keys(keys: list[Any], path: field.Path, sizes: tuple[int, ...]) -> field.ErrorList:
    if not keys:
        return field.ErrorList([field.required(path, "at least one keys is required")])
    problems = field.ErrorList()
    for i, key in enumerate(keys):
        key = key if isinstance(key, dict) else {}
        if not key.get("name"):
            problems.append(
                field.required(path.index(i).child("name"), "name is a mandatory field for a key")
            )
        secret_path = path.index(i).child("secret")
        if not key.get("secret"):
            problems.append(field.required(secret_path, "secret is a mandatory field for a key"))
            continue
        try:
            secret = base64.b64decode(str(key["secret"]), validate=True)
        except (binascii.Error, ValueError):
            problems.append(
                field.invalid(secret_path, "REDACTED", "secrets must be base64 encoded")
            )
            continue
        if len(secret) not in sizes:
            expected = " ".join(str(s) for s in sizes)
            detail = f"secret is not of the expected length, got {len(secret)}, expected one of [{expected}]"
            problems.append(field.invalid(secret_path, "REDACTED", detail))
    return problems


def _validate_masking(entries: list[dict[str, Any]]) -> field.ErrorList:
    """A resource after an earlier ``*.group`` or ``*.*`` rule could never be used."""
    seen: set[tuple[str, str]] = set()
    for entry in entries:
        for res in entry["resources"]:
            group, resource = parse_group_resource(res)
            for mask in ((group, _ANY), (_ANY, _ANY)):
                if mask in seen:
                    text = f'resource "{_pattern_text(group, resource)}" is masked by earlier rule "{_pattern_text(*mask)}"'
                    return field.ErrorList([field.invalid(field.Path("resources"), res, text)])
        seen.update(parse_group_resource(res) for res in entry["resources"])
    return field.ErrorList()


def _pattern_text(group: str, resource: str) -> str:
    if group == "" and resource == _ANY:
        return "*."
    return f"{resource}.{group}" if group else resource


def _build_rules(entries: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[ProviderKey, ...]]:
    """Every entry's keys appended per resource, in file order (later entries only read)."""
    rules: dict[tuple[str, str], tuple[ProviderKey, ...]] = {}
    for entry in entries:
        keys = tuple(k for provider in entry["providers"] for k in _provider_keys(provider))
        for res in entry["resources"]:
            pattern = parse_group_resource(res)
            rules[pattern] = rules.get(pattern, ()) + keys
    return rules


def _provider_keys(provider: dict[str, Any]) -> list[ProviderKey]:
    ((name, spec),) = provider.items()
    if name == "identity":
        return [IDENTITY]
    cipher_type = _CIPHERS[name]
    return [
        ProviderKey(name, str(k["name"]), cipher_type(base64.b64decode(str(k["secret"]))))
        for k in spec["keys"]
    ]


# ----- the default config -----------------------------------------------------


def default_config_text(*, key_name: str = "key1", secret: bytes | None = None) -> str:
    """Secrets with one fresh 32-byte aescbc key; identity second reads data written before."""
    key = base64.b64encode(secret if secret is not None else secrets.token_bytes(32)).decode()
    doc = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "resources": [
            {
                "resources": ["secrets"],
                "providers": [
                    {"aescbc": {"keys": [{"name": key_name, "secret": key}]}},
                    {"identity": {}},
                ],
            }
        ],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def ensure_default_config(data_dir: Path) -> Path:
    """The data dir's generated config, written (mode 0600) on first use and reused after."""
    path = data_dir / DEFAULT_CONFIG_NAME
    if path.exists():
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(default_config_text())
    return path


# ----- rewrite after rotation -------------------------------------------------


@dataclasses.dataclass(slots=True)
class RewriteResult:
    rewritten: int = 0
    # Changed or deleted by someone else meanwhile: that write used the current key.
    raced: int = 0


async def rewrite_stale(
    backend: storage.Backend, targets: Iterable[tuple[str, ResourceTransformer]]
) -> RewriteResult:
    """Re-store, with the current write key, every value under each prefix that is stale.

    Each rewrite is a compare-and-swap on the revision read, so it is safe
    while the API server serves writes: a lost race means a newer write has
    already stored the value with the current key.
    """
    result = RewriteResult()
    done: set[str] = set()
    for prefix, transformer in targets:
        if prefix in done:
            continue
        done.add(prefix)
        await _rewrite_prefix(backend, prefix, transformer, result)
    return result


async def _rewrite_prefix(
    backend: storage.Backend, prefix: str, transformer: ResourceTransformer, result: RewriteResult
) -> None:
    start_after = ""
    while True:
        page = await backend.range(prefix, start_after=start_after, limit=_REWRITE_PAGE)
        for kv in page.kvs:
            if transformer.is_stale(kv.value):
                await _rewrite_one(backend, kv, transformer, result)
        if not page.more or not page.kvs:
            return
        start_after = page.kvs[-1].key


async def _rewrite_one(
    backend: storage.Backend,
    kv: storage.KeyValue,
    transformer: ResourceTransformer,
    result: RewriteResult,
) -> None:
    plain = transformer.from_storage(kv.value, kv.key)
    try:
        await backend.update(
            kv.key, transformer.to_storage(plain, kv.key), expected_revision=kv.mod_revision
        )
    except (storage.RevisionConflictError, storage.KeyNotFoundError):
        result.raced += 1
        return
    result.rewritten += 1
