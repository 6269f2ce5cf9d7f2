"""Static token file and bootstrap tokens."""

from __future__ import annotations

import base64
import datetime
from typing import Any

import pytest

from kajitori.auth.authn import bootstrap, tokenfile, union

Object = dict[str, Any]


def test_a_token_file_row_maps_a_token_to_user_uid_and_groups() -> None:
    """Upstream's CSV: token,user,uid,"group1,group2"; spaces after commas are ignored."""
    tokens = tokenfile.parse('t1,alice,100,"devs, ops"\n\nt2, bob, 200\n')
    assert tokens["t1"].name == "alice"
    assert tokens["t1"].uid == "100"
    assert tokens["t1"].groups == ("devs", "ops")
    assert tokens["t2"].name == "bob"
    assert tokens["t2"].groups == ()


def test_a_token_file_row_with_fewer_than_three_columns_is_refused() -> None:
    """A short row makes the whole file unusable, with upstream's message."""
    with pytest.raises(ValueError, match="must have at least 3 columns"):
        tokenfile.parse("t1,alice\n", source="tokens.csv")


async def test_a_token_file_answers_only_for_its_own_tokens() -> None:
    """Known tokens authenticate; others are left to the next authenticator."""
    tokens = tokenfile.TokenFile(tokenfile.parse("t1,alice,100\n"))
    user = await tokens.authenticate_token("t1")
    assert user is not None and user.name == "alice"
    assert await tokens.authenticate_token("t2") is None


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _bootstrap_secret(**data: str) -> Object:
    fields = {
        "token-id": "abcdef",
        "token-secret": "0123456789abcdef",
        "usage-bootstrap-authentication": "true",
    }
    fields.update(data)
    return {
        "metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"},
        "type": bootstrap.SECRET_TYPE,
        "data": {k: _b64(v) for k, v in fields.items() if v},
    }


def _tokens(secret: Object | None) -> bootstrap.BootstrapTokens:
    async def get(plural: str, namespace: str, name: str) -> Object | None:
        if (plural, namespace, name) == ("secrets", "kube-system", "bootstrap-token-abcdef"):
            return secret
        return None

    return bootstrap.BootstrapTokens(get)


async def test_a_bootstrap_token_authenticates_with_its_extra_groups() -> None:
    """system:bootstrap:<id> in system:bootstrappers plus auth-extra-groups."""
    secret = _bootstrap_secret(**{"auth-extra-groups": "system:bootstrappers:kubeadm:default"})
    user = await _tokens(secret).authenticate_token("abcdef.0123456789abcdef")
    assert user is not None
    assert user.name == "system:bootstrap:abcdef"
    assert user.groups == ("system:bootstrappers", "system:bootstrappers:kubeadm:default")


PAST = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)).isoformat()
FUTURE = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).isoformat()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"token-secret": "ffffffffffffffff"}, id="wrong-secret"),
        pytest.param({"expiration": PAST}, id="expired"),
        pytest.param({"expiration": "yesterday"}, id="unparsable-expiration"),
        pytest.param({"usage-bootstrap-authentication": ""}, id="not-for-authentication"),
    ],
)
async def test_a_bootstrap_token_whose_secret_does_not_fit_is_refused(data: dict[str, str]) -> None:
    """Wrong secret, past expiration or missing usage make the token invalid."""
    with pytest.raises(union.AuthenticationError):
        await _tokens(_bootstrap_secret(**data)).authenticate_token("abcdef.0123456789abcdef")


async def test_a_bootstrap_token_before_its_expiration_authenticates() -> None:
    """An expiration in the future is fine."""
    user = await _tokens(_bootstrap_secret(expiration=FUTURE)).authenticate_token(
        "abcdef.0123456789abcdef"
    )
    assert user is not None


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("abcdef.0123456789abcdef", id="no-secret"),
        pytest.param("ABCDEF.0123456789abcdef", id="uppercase-id"),
        pytest.param("abcdef0123456789abcdef", id="no-dot"),
    ],
)
async def test_tokens_that_are_not_bootstrap_tokens_are_left_alone(token: str) -> None:
    """Other shapes, or a token whose Secret does not exist, are "not mine"."""
    assert await _tokens(None).authenticate_token(token) is None
