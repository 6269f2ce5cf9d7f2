"""Service-account tokens: signing (TokenRequest, legacy Secrets) and verifying JWTs.

Upstream: pkg/serviceaccount (jwt.go, claims.go, legacy.go). The cluster keeps
one RSA key pair, ``pki/sa.key`` and ``pki/sa.pub`` as kubeadm lays them out,
and signs with RS256 as upstream does by default (docs/decisions/0011).

Two token shapes are accepted:

* bound tokens (TokenRequest): issuer ``https://kubernetes.default.svc.cluster.local``,
  ``aud``, ``exp``/``iat``/``nbf``, ``jti`` and a private ``kubernetes.io``
  claim naming the namespace, the ServiceAccount (name, uid) and optionally
  the Pod or Secret the token is bound to. One stops working when the
  ServiceAccount or the bound object is gone or was replaced (uid mismatch);
* legacy tokens (Secrets of type ``kubernetes.io/service-account-token``):
  issuer ``kubernetes/serviceaccount``, flat ``kubernetes.io/serviceaccount/*``
  claims and no expiry. One stops working when its Secret or ServiceAccount
  is gone.

A token that is not a JWT, or whose issuer is not ours, is "not mine" (the
next token authenticator may know it). Everything else wrong — signature,
algorithm (``none`` included), expiry, not-before, audience, the objects it
names — is an ``AuthenticationError``. Lookups of those objects are injected
(``ObjectGetter``) because this layer may not import the server.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kajitori.auth.authn import union
from kajitori.machinery import times
from kajitori.registry.generic.request import UserInfo

Object = dict[str, Any]
# (plural, namespace, name) -> the object, or None when it does not exist.
ObjectGetter = Callable[[str, str, str], Awaitable[Object | None]]

ISSUER = "https://kubernetes.default.svc.cluster.local"
LEGACY_ISSUER = "kubernetes/serviceaccount"
ALGORITHM = "RS256"
USER_PREFIX = "system:serviceaccount:"
ALL_GROUP = "system:serviceaccounts"
NAMESPACE_GROUP_PREFIX = "system:serviceaccounts:"
# Clock skew tolerated on exp/nbf/iat, as upstream's 60 s leeway.
LEEWAY_SECONDS = 60
_LEGACY = "kubernetes.io/serviceaccount/"
EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name"
EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid"
EXTRA_CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"


@dataclasses.dataclass(frozen=True, slots=True)
class SigningKey:
    """The cluster's service-account key pair (PEM)."""

    private_pem: bytes
    public_pem: bytes

    @property
    def key_id(self) -> str:
        """Upstream's kid: unpadded base64url of the SHA-256 of the public key's DER."""
        public = serialization.load_pem_public_key(self.public_pem)
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def ensure_signing_key(pki_dir: Path) -> SigningKey:
    """``pki_dir/sa.key`` and ``sa.pub``, created (RSA 2048) on first start."""
    key_path, pub_path = pki_dir / "sa.key", pki_dir / "sa.pub"
    if key_path.exists() and pub_path.exists():
        return SigningKey(key_path.read_bytes(), pub_path.read_bytes())
    key = generate_signing_key()
    pki_dir.mkdir(parents=True, exist_ok=True)
    _write(key_path, key.private_pem, mode=0o600)
    _write(pub_path, key.public_pem, mode=0o644)
    return key


def generate_signing_key() -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


def _write(path: Path, data: bytes, *, mode: int) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    tmp.replace(path)


# ----- issuing ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class BoundObject:
    """The object a token is bound to (kind ``Pod`` or ``Secret``)."""

    kind: str
    name: str
    uid: str


class TokenIssuer:
    """Signs service-account tokens with the cluster key."""

    def __init__(self, key: SigningKey, *, issuer: str = ISSUER) -> None:
        self.key = key
        self.issuer = issuer
        self._headers = {"kid": key.key_id}

    @functools.cached_property
    def _private(self) -> Any:
        # Loaded on first use: OpenSSL checks an RSA key's primes on load (about
        # 40 ms), which every start would otherwise pay before it can serve.
        return serialization.load_pem_private_key(self.key.private_pem, password=None)

    def issue(
        self,
        namespace: str,
        name: str,
        uid: str,
        *,
        audiences: Sequence[str],
        expiration_seconds: int,
        bound: BoundObject | None = None,
        now: float | None = None,
    ) -> tuple[str, int]:
        """A bound token and its expiry (Unix seconds)."""
        issued = int(time.time() if now is None else now)
        private: Object = {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}}
        if bound is not None:
            private[bound.kind.lower()] = {"name": bound.name, "uid": bound.uid}
        expires = issued + expiration_seconds
        claims: Object = {
            "aud": list(audiences),
            "exp": expires,
            "iat": issued,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": private,
            "nbf": issued,
            "sub": f"{USER_PREFIX}{namespace}:{name}",
        }
        return self._sign(claims), expires

    def issue_legacy(self, namespace: str, name: str, uid: str, *, secret_name: str) -> str:
        """A legacy, non-expiring token for a ``kubernetes.io/service-account-token`` Secret."""
        claims = {
            "iss": LEGACY_ISSUER,
            _LEGACY + "namespace": namespace,
            _LEGACY + "secret.name": secret_name,
            _LEGACY + "service-account.name": name,
            _LEGACY + "service-account.uid": uid,
            "sub": f"{USER_PREFIX}{namespace}:{name}",
        }
        return self._sign(claims)

    def _sign(self, claims: Object) -> str:
        return jwt.encode(claims, self._private, algorithm=ALGORITHM, headers=self._headers)  # type: ignore[arg-type]


# ----- verifying --------------------------------------------------------------


class ServiceAccountTokens:
    """Authenticates service-account JWTs signed by ``public_pem``."""

    def __init__(
        self,
        public_pem: bytes,
        *,
        get_object: ObjectGetter,
        api_audiences: Sequence[str] = (ISSUER,),
        issuers: Sequence[str] = (ISSUER, LEGACY_ISSUER),
    ) -> None:
        self._public = serialization.load_pem_public_key(public_pem)
        self.get_object = get_object
        self.api_audiences = tuple(api_audiences)
        self.issuers = tuple(issuers)

    async def authenticate_token(
        self, token: str, *, audiences: Sequence[str] = ()
    ) -> UserInfo | None:
        unverified = _unverified_claims(token)
        if unverified is None or unverified.get("iss") not in self.issuers:
            return None  # not a service-account token
        claims = self._verify(token, unverified, audiences or self.api_audiences)
        if "kubernetes.io" in claims:
            return await self._bound_user(claims)
        return await self._legacy_user(claims)

    def _verify(self, token: str, unverified: Object, audiences: Sequence[str]) -> Object:
        legacy = unverified.get("iss") == LEGACY_ISSUER and "aud" not in unverified
        try:
            claims: Object = jwt.decode(
                token,
                self._public,  # type: ignore[arg-type]
                algorithms=[ALGORITHM],
                audience=None if legacy else list(audiences),
                issuer=list(self.issuers),
                leeway=LEEWAY_SECONDS,
                options={
                    "require": [] if legacy else ["exp", "iat", "aud"],
                    "verify_aud": not legacy,
                },
            )
        except jwt.ExpiredSignatureError:
            raise union.AuthenticationError("service account token has expired") from None
        except jwt.ImmatureSignatureError:
            raise union.AuthenticationError("service account token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise union.AuthenticationError("token audiences is invalid") from None
        except jwt.InvalidSignatureError:
            raise union.AuthenticationError("invalid signature") from None
        except jwt.PyJWTError as exc:
            raise union.AuthenticationError(f"invalid service account token: {exc}") from None
        return claims

    async def _bound_user(self, claims: Object) -> UserInfo:
        private = claims.get("kubernetes.io")
        if not isinstance(private, dict):
            raise union.AuthenticationError("service account token claims could not be validated")
        namespace = _text(private.get("namespace"))
        account = private.get("serviceaccount") or {}
        name, uid = _text(account.get("name")), _text(account.get("uid"))
        if not namespace or not name:
            raise union.AuthenticationError("service account token claims could not be validated")
        await self._require("serviceaccounts", namespace, name, uid)
        extra: list[tuple[str, tuple[str, ...]]] = []
        for kind, plural in (("pod", "pods"), ("secret", "secrets")):
            ref = private.get(kind)
            if not isinstance(ref, dict):
                continue
            await self._require(plural, namespace, _text(ref.get("name")), _text(ref.get("uid")))
            if kind == "pod":
                extra.append((EXTRA_POD_NAME, (_text(ref.get("name")),)))
                extra.append((EXTRA_POD_UID, (_text(ref.get("uid")),)))
        if claims.get("jti"):
            extra.append((EXTRA_CREDENTIAL_ID, (f"JTI={claims['jti']}",)))
        return service_account_user(namespace, name, uid=uid, extra=tuple(sorted(extra)))

    async def _legacy_user(self, claims: Object) -> UserInfo:
        namespace = _text(claims.get(_LEGACY + "namespace"))
        name = _text(claims.get(_LEGACY + "service-account.name"))
        uid = _text(claims.get(_LEGACY + "service-account.uid"))
        secret_name = _text(claims.get(_LEGACY + "secret.name"))
        if not (namespace and name and secret_name):
            raise union.AuthenticationError("service account token claims could not be validated")
        secret = await self.get_object("secrets", namespace, secret_name)
        if secret is None or _deleted(secret):
            raise union.AuthenticationError(
                f"secret {namespace}/{secret_name} referenced by the token has been deleted"
            )
        await self._require("serviceaccounts", namespace, name, uid)
        return service_account_user(namespace, name, uid=uid)

    async def _require(self, plural: str, namespace: str, name: str, uid: str) -> None:
        """The named object exists, is not being deleted, and is the one the token names."""
        obj = await self.get_object(plural, namespace, name) if name else None
        meta = (obj or {}).get("metadata") or {}
        if obj is None or _deleted(obj):
            raise union.AuthenticationError(f"{plural} {namespace}/{name} has been deleted")
        if uid and meta.get("uid") != uid:
            raise union.AuthenticationError(
                f"{plural} UID ({meta.get('uid')}) does not match claim ({uid})"
            )


def service_account_user(
    namespace: str, name: str, *, uid: str = "", extra: tuple[tuple[str, tuple[str, ...]], ...] = ()
) -> UserInfo:
    """The user a ServiceAccount authenticates as."""
    return UserInfo(
        f"{USER_PREFIX}{namespace}:{name}",
        (ALL_GROUP, NAMESPACE_GROUP_PREFIX + namespace),
        uid=uid,
        extra=extra,
    )


def split_username(username: str) -> tuple[str, str] | None:
    """(namespace, name) of a ``system:serviceaccount:<ns>:<name>`` user, else None."""
    if not username.startswith(USER_PREFIX):
        return None
    parts = username[len(USER_PREFIX) :].split(":")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


def _unverified_claims(token: str) -> Object | None:
    if token.count(".") != 2:
        return None
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None


def _deleted(obj: Object) -> bool:
    """Gone for token purposes: deleted more than the leeway ago (upstream's validator).

    A pod stays valid for its first minute of graceful deletion, so its
    containers can still talk to the API while they shut down.
    """
    stamp = (obj.get("metadata") or {}).get("deletionTimestamp")
    if not stamp:
        return False
    when = times.parse_time(stamp)
    if when is None:
        return True
    return when.timestamp() < time.time() - LEEWAY_SECONDS


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
