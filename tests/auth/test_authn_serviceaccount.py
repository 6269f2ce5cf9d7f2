"""Service-account JWTs: what is accepted, and every hostile token refused."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from kajitori.auth.authn import serviceaccount, union
from kajitori.registry.core import serviceaccount_token

Object = dict[str, Any]
KEY = serviceaccount.generate_signing_key()
OTHER_KEY = serviceaccount.generate_signing_key()
SA_UID = "11111111-1111-1111-1111-111111111111"
POD_UID = "22222222-2222-2222-2222-222222222222"


class Objects:
    """A tiny object table standing in for the stores (plural, namespace, name) -> object."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str, str], Object] = {
            ("serviceaccounts", "demo", "app"): _obj("app", SA_UID),
            ("pods", "demo", "web"): _obj("web", POD_UID),
            ("secrets", "demo", "app-token"): _obj("app-token", "s-uid"),
        }

    async def __call__(self, plural: str, namespace: str, name: str) -> Object | None:
        return self.items.get((plural, namespace, name))


def _obj(name: str, uid: str) -> Object:
    return {"metadata": {"name": name, "uid": uid}}


@pytest.fixture
def objects() -> Objects:
    """The objects tokens may name."""
    return Objects()


@pytest.fixture
def tokens(objects: Objects) -> serviceaccount.ServiceAccountTokens:
    """The authenticator over the cluster's public key."""
    return serviceaccount.ServiceAccountTokens(KEY.public_pem, get_object=objects)


ISSUER = serviceaccount.TokenIssuer(KEY)


def _bound(**kwargs: Any) -> str:
    params: dict[str, Any] = {"audiences": [serviceaccount.ISSUER], "expiration_seconds": 3600}
    params.update(kwargs)
    token, _ = ISSUER.issue("demo", "app", SA_UID, **params)
    return token


async def test_a_bound_token_authenticates_as_its_service_account(
    tokens: serviceaccount.ServiceAccountTokens,
) -> None:
    """A fresh TokenRequest token is system:serviceaccount:<ns>:<name> with the SA groups."""
    user = await tokens.authenticate_token(_bound())
    assert user is not None
    assert user.name == "system:serviceaccount:demo:app"
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:demo")
    assert user.uid == SA_UID


async def test_a_pod_bound_token_carries_the_pod_in_extra(
    tokens: serviceaccount.ServiceAccountTokens,
) -> None:
    """A token bound to a pod reports the pod's name and uid as upstream's extra keys."""
    token = _bound(bound=serviceaccount.BoundObject("Pod", "web", POD_UID))
    user = await tokens.authenticate_token(token)
    assert user is not None
    extra = dict(user.extra)
    assert extra[serviceaccount.EXTRA_POD_NAME] == ("web",)
    assert extra[serviceaccount.EXTRA_POD_UID] == (POD_UID,)


async def test_a_legacy_token_authenticates_while_its_secret_exists(
    tokens: serviceaccount.ServiceAccountTokens, objects: Objects
) -> None:
    """A legacy Secret token works, and stops working once the Secret is gone."""
    token = ISSUER.issue_legacy("demo", "app", SA_UID, secret_name="app-token")
    user = await tokens.authenticate_token(token)
    assert user is not None and user.name == "system:serviceaccount:demo:app"
    del objects.items[("secrets", "demo", "app-token")]
    with pytest.raises(union.AuthenticationError):
        await tokens.authenticate_token(token)


@pytest.mark.parametrize(
    "gone",
    [
        pytest.param(("pods", "demo", "web"), id="pod-deleted"),
        pytest.param(("serviceaccounts", "demo", "app"), id="service-account-deleted"),
    ],
)
async def test_a_bound_token_dies_with_what_it_is_bound_to(
    tokens: serviceaccount.ServiceAccountTokens, objects: Objects, gone: tuple[str, str, str]
) -> None:
    """Deleting the bound pod or the service account invalidates the token."""
    token = _bound(bound=serviceaccount.BoundObject("Pod", "web", POD_UID))
    assert await tokens.authenticate_token(token) is not None
    del objects.items[gone]
    with pytest.raises(union.AuthenticationError):
        await tokens.authenticate_token(token)


async def test_a_recreated_service_account_does_not_inherit_old_tokens(
    tokens: serviceaccount.ServiceAccountTokens, objects: Objects
) -> None:
    """The service account is matched by uid, not only by name."""
    token = _bound()
    objects.items[("serviceaccounts", "demo", "app")] = _obj("app", "a-new-uid")
    with pytest.raises(union.AuthenticationError, match="does not match"):
        await tokens.authenticate_token(token)


async def test_a_pod_deleted_within_the_last_minute_still_authenticates(
    tokens: serviceaccount.ServiceAccountTokens, objects: Objects
) -> None:
    """A terminating pod's token works during the first minute, as upstream's leeway."""
    token = _bound(bound=serviceaccount.BoundObject("Pod", "web", POD_UID))
    pod = objects.items[("pods", "demo", "web")]
    pod["metadata"]["deletionTimestamp"] = _rfc3339(time.time() - 5)
    assert await tokens.authenticate_token(token) is not None
    pod["metadata"]["deletionTimestamp"] = _rfc3339(time.time() - 120)
    with pytest.raises(union.AuthenticationError):
        await tokens.authenticate_token(token)


def _rfc3339(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def _claims(**overrides: Any) -> Object:
    now = int(time.time())
    claims: Object = {
        "iss": serviceaccount.ISSUER,
        "sub": "system:serviceaccount:demo:app",
        "aud": [serviceaccount.ISSUER],
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "kubernetes.io": {"namespace": "demo", "serviceaccount": {"name": "app", "uid": SA_UID}},
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(claims: Object, key: serviceaccount.SigningKey = KEY, alg: str = "RS256") -> str:
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(key.private_pem, password=None)
    return jwt.encode(claims, private, algorithm=alg)  # type: ignore[arg-type]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _alg_none() -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(_claims()).encode())}."


def _tampered() -> str:
    header, _, signature = _signed(_claims()).split(".")
    forged = _claims()
    forged["kubernetes.io"]["serviceaccount"]["name"] = "admin"
    return f"{header}.{_b64(json.dumps(forged).encode())}.{signature}"


def _hs256_with_public_key() -> str:
    # The classic key-confusion attack: HMAC "signed" with the public key's bytes.
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    import hashlib
    import hmac

    mac = hmac.new(KEY.public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(mac)}"


NOW = int(time.time())
HOSTILE: list[Any] = [
    pytest.param(lambda: _signed(_claims(exp=NOW - 3600, iat=NOW - 7200)), id="expired"),
    pytest.param(lambda: _signed(_claims(nbf=int(time.time()) + 3600)), id="nbf-in-future"),
    pytest.param(lambda: _signed(_claims(aud=["https://elsewhere.example"])), id="wrong-audience"),
    pytest.param(lambda: _signed(_claims(aud=None)), id="no-audience"),
    pytest.param(lambda: _signed(_claims(exp=None)), id="no-expiry"),
    pytest.param(_alg_none, id="alg-none"),
    pytest.param(lambda: _signed(_claims(), key=OTHER_KEY), id="wrong-key"),
    pytest.param(_tampered, id="tampered-payload"),
    pytest.param(_hs256_with_public_key, id="hs256-key-confusion"),
    pytest.param(lambda: _signed(_claims(**{"kubernetes.io": "x"})), id="private-claim-not-object"),
    pytest.param(
        lambda: _signed(
            _claims(**{"kubernetes.io": {"namespace": "demo", "serviceaccount": {"name": "ghost"}}})
        ),
        id="unknown-service-account",
    ),
]


@pytest.mark.parametrize("make_token", HOSTILE)
async def test_a_hostile_token_is_refused(
    tokens: serviceaccount.ServiceAccountTokens, make_token: Callable[[], str]
) -> None:
    """Expired, premature, wrong audience, unsigned, forged or dangling tokens never authenticate."""
    with pytest.raises(union.AuthenticationError):
        await tokens.authenticate_token(make_token())


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("not-a-jwt", id="not-a-jwt"),
        pytest.param("a.b.c", id="three-garbage-parts"),
        pytest.param(lambda: _signed(_claims(iss="https://other.issuer")), id="foreign-issuer"),
    ],
)
async def test_a_token_of_another_kind_is_left_to_other_authenticators(
    tokens: serviceaccount.ServiceAccountTokens, token: Any
) -> None:
    """Non-JWTs and other issuers' JWTs are "not mine" (None), not errors."""
    text = token() if callable(token) else token
    assert await tokens.authenticate_token(text) is None


async def test_a_token_for_another_audience_passes_when_that_audience_is_asked_for(
    tokens: serviceaccount.ServiceAccountTokens,
) -> None:
    """TokenReview with spec.audiences checks the token against those audiences."""
    token = _bound(audiences=["vault"])
    assert await tokens.authenticate_token(token, audiences=["vault"]) is not None
    with pytest.raises(union.AuthenticationError):
        await tokens.authenticate_token(token)


@pytest.mark.parametrize(
    ("seconds", "problem"),
    [
        pytest.param(599, "may not specify a duration less than 10 minutes", id="too-short"),
        pytest.param(
            (1 << 32) + 1, "may not specify a duration larger than 2^32 seconds", id="too-long"
        ),
        pytest.param(600, "", id="minimum"),
        pytest.param(1 << 32, "", id="maximum"),
    ],
)
def test_token_request_expiration_is_bounded_as_upstream(seconds: int, problem: str) -> None:
    """expirationSeconds must lie between 10 minutes and 2^32 seconds."""
    errors = serviceaccount_token.validate_token_request({"expirationSeconds": seconds})
    assert [e.detail for e in errors] == ([problem] if problem else [])


def test_the_signing_key_is_created_once_and_reused(tmp_path: Any) -> None:
    """sa.key/sa.pub are generated on first start and read back afterwards."""
    first = serviceaccount.ensure_signing_key(tmp_path)
    again = serviceaccount.ensure_signing_key(tmp_path)
    assert first == again
    assert (tmp_path / "sa.key").stat().st_mode & 0o777 == 0o600
    assert b"BEGIN PUBLIC KEY" in (tmp_path / "sa.pub").read_bytes()
