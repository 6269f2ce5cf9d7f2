"""The authenticator the server uses: credentials in a request → user, anonymous or 401."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kajitori.auth import authenticator, authorizer, pki, rbac
from kajitori.auth.authn import impersonation, tokenfile
from kajitori.machinery import errors
from kajitori.registry.generic.request import UserInfo

CA = pki.generate_ca()
AUTH = authenticator.new_authenticator(
    [tokenfile.TokenFile(tokenfile.parse('static,carol,1001,"devs"\n'))]
)


def _scope(*, headers: list[tuple[bytes, bytes]] = (), cert: str = "") -> dict[str, Any]:  # type: ignore[assignment]
    extensions = {"tls": {"client_cert_chain": [cert]}} if cert else {}
    return {"headers": list(headers), "extensions": extensions}


async def test_no_credentials_is_anonymous() -> None:
    """A request with nothing is system:anonymous in system:unauthenticated."""
    user = await AUTH.authenticate(_scope())
    assert user is not None
    assert (user.name, user.groups) == ("system:anonymous", ("system:unauthenticated",))


async def test_a_client_certificate_is_its_common_name_and_organizations() -> None:
    """x509: CN is the user, O the groups, plus system:authenticated."""
    pair = pki.issue_client_cert(CA, user="dave", groups=["qa"])
    user = await AUTH.authenticate(_scope(cert=pair.cert_pem.decode()))
    assert user is not None
    assert (user.name, user.groups) == ("dave", ("qa", "system:authenticated"))


async def test_a_static_token_is_its_user_in_system_authenticated() -> None:
    """Authorization: Bearer with a token-file token."""
    user = await AUTH.authenticate(_scope(headers=[(b"authorization", b"Bearer static")]))
    assert user is not None
    assert (user.name, user.uid, user.groups) == ("carol", "1001", ("devs", "system:authenticated"))


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"Bearer nobody-knows-me", id="unknown-token"),
        pytest.param(b"bearer nobody-knows-me", id="lowercase-scheme"),
        pytest.param(b"Bearer eyJhbGciOiJub25lIn0.e30.", id="unsigned-jwt-shape"),
    ],
)
async def test_a_bearer_token_nobody_accepts_is_unauthorized_not_anonymous(value: bytes) -> None:
    """Rejected credentials never fall back to anonymous (upstream's FailOnError)."""
    assert await AUTH.authenticate(_scope(headers=[(b"authorization", value)])) is None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"Basic YWxpY2U6cHc=", id="basic-scheme"),
        pytest.param(b"Bearer", id="scheme-only"),
        pytest.param(b"Bearer a b", id="three-parts"),
    ],
)
async def test_an_authorization_header_that_is_not_a_bearer_token_is_ignored(
    value: bytes,
) -> None:
    """Other schemes and malformed values carry no bearer token: the request is anonymous."""
    user = await AUTH.authenticate(_scope(headers=[(b"authorization", value)]))
    assert user is not None and user.name == "system:anonymous"


@settings(max_examples=200, deadline=None, database=None)
@given(token=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=255), min_size=1))
async def test_any_garbage_bearer_token_is_unauthorized_and_never_crashes(token: str) -> None:
    """Arbitrary bearer tokens (except the one static token) authenticate nobody."""
    if token == "static":
        return
    header = b"Bearer " + token.encode("latin-1")
    assert await AUTH.authenticate(_scope(headers=[(b"authorization", header)])) is None


@settings(max_examples=100, deadline=None, database=None)
@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from([b"authorization", b"impersonate-user", b"x-anything"]),
            st.binary(max_size=64),
        ),
        max_size=4,
    )
)
async def test_random_headers_never_crash_the_authenticator(
    headers: list[tuple[bytes, bytes]],
) -> None:
    """Whatever the headers, the answer is a user or None (401), never an exception."""
    user = await AUTH.authenticate(_scope(headers=headers))
    assert user is None or isinstance(user, UserInfo)


# ----- impersonation -------------------------------------------------------------


def _authorizer(*grants: dict[str, Any]) -> authorizer.Union:
    index = rbac.PolicyIndex()
    index.replace("clusterroles", [_cluster_role(i, rule) for i, rule in enumerate(grants)])
    index.replace(
        "clusterrolebindings",
        [
            {
                "metadata": {"name": f"grant-{i}"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": f"grant-{i}",
                },
                "subjects": [
                    {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}
                ],
            }
            for i in range(len(grants))
        ],
    )
    return authorizer.Union(
        [authorizer.PrivilegedGroups("system:masters"), rbac.RBACAuthorizer(index)]
    )


def _cluster_role(index: int, rule: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": f"grant-{index}"}, "rules": [rule]}


ALICE = UserInfo("alice", ("system:authenticated",))
IMPERSONATE_USERS = {
    "index": 0,
    "verbs": ["impersonate"],
    "apiGroups": [""],
    "resources": ["users"],
}
IMPERSONATE_GROUPS = {
    "verbs": ["impersonate"],
    "apiGroups": [""],
    "resources": ["groups"],
}


def test_impersonation_without_permission_is_forbidden_with_upstreams_message() -> None:
    """alice may not act as bob until RBAC grants impersonate on users."""
    with pytest.raises(errors.StatusError) as caught:
        impersonation.impersonate(ALICE, [("impersonate-user", "bob")], _authorizer())
    assert caught.value.code == 403
    assert caught.value.message == (
        'users "bob" is forbidden: User "alice" cannot impersonate resource "users" '
        'in API group "" at the cluster scope'
    )


def test_impersonating_a_user_and_group_replaces_the_identity() -> None:
    """Granted users and groups: the request runs as bob in g plus system:authenticated."""
    authz = _authorizer(dict(IMPERSONATE_USERS), dict(IMPERSONATE_GROUPS))
    user = impersonation.impersonate(
        ALICE, [("impersonate-user", "bob"), ("impersonate-group", "g")], authz
    )
    assert (user.name, user.groups) == ("bob", ("g", "system:authenticated"))


def test_each_impersonated_group_is_authorized_separately() -> None:
    """Permission on users alone does not cover groups."""
    with pytest.raises(errors.StatusError) as caught:
        impersonation.impersonate(
            ALICE,
            [("impersonate-user", "bob"), ("impersonate-group", "admins")],
            _authorizer(dict(IMPERSONATE_USERS)),
        )
    assert caught.value.message.startswith('groups "admins" is forbidden: User "alice" cannot')


def test_impersonating_a_service_account_asks_about_serviceaccounts_in_its_namespace() -> None:
    """system:serviceaccount:<ns>:<name> is checked as serviceaccounts in <ns> and gets SA groups."""
    with pytest.raises(errors.StatusError) as caught:
        impersonation.impersonate(
            ALICE, [("impersonate-user", "system:serviceaccount:demo:app")], _authorizer()
        )
    assert caught.value.message == (
        'serviceaccounts "app" is forbidden: User "alice" cannot impersonate resource '
        '"serviceaccounts" in API group "" in the namespace "demo"'
    )
    admin = UserInfo("root", ("system:masters",))
    user = impersonation.impersonate(
        admin, [("impersonate-user", "system:serviceaccount:demo:app")], _authorizer()
    )
    assert user.groups == (
        "system:serviceaccounts",
        "system:serviceaccounts:demo",
        "system:authenticated",
    )


def test_impersonating_groups_without_a_user_is_a_bad_request() -> None:
    """Impersonate-Group alone is refused with 400."""
    with pytest.raises(errors.StatusError) as caught:
        impersonation.impersonate(ALICE, [("impersonate-group", "g")], _authorizer())
    assert caught.value.code == 400
