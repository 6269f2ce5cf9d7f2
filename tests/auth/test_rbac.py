"""RBAC as upstream: rule matching, subject matching, escalation checks, aggregation, policy."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from kajitori.auth import authorizer, bootstrap_policy, rbac
from kajitori.machinery import errors
from kajitori.registry import install
from kajitori.registry.authorization.authorizer import Attributes
from kajitori.registry.generic.request import ANONYMOUS, RequestContext, UserInfo
from kajitori.registry.generic.store import DeleteOptions, ListOptions
from kajitori.server import bootstrap
from kajitori.server.apis import APIRegistry
from kajitori.storage.sqlite import SqliteBackend

Object = dict[str, Any]
ALICE = UserInfo("alice", ("system:authenticated",))


def _res(verb: str, resource: str, **kw: str) -> Attributes:
    return Attributes(user=ALICE, verb=verb, resource=resource, **kw)


def _path(verb: str, path: str) -> Attributes:
    return Attributes(user=ALICE, verb=verb, resource_request=False, path=path)


def _rule(verbs: str, groups: str = "", resources: str = "", **kw: Any) -> Object:
    rule: Object = {"verbs": verbs.split(), "resources": resources.split()}
    rule["apiGroups"] = [] if groups == "-" else groups.split(",")
    rule.update(kw)
    return rule


@pytest.mark.parametrize(
    ("rule", "attrs", "allowed"),
    [
        pytest.param(_rule("get", "", "pods"), _res("get", "pods"), True, id="exact"),
        pytest.param(_rule("get", "", "pods"), _res("list", "pods"), False, id="other-verb"),
        pytest.param(_rule("*", "", "pods"), _res("delete", "pods"), True, id="verb-star"),
        pytest.param(_rule("get", "apps", "pods"), _res("get", "pods"), False, id="other-group"),
        pytest.param(
            _rule("get", "*", "deployments"),
            _res("get", "deployments", api_group="apps"),
            True,
            id="group-star",
        ),
        pytest.param(_rule("get", "", "*"), _res("get", "secrets"), True, id="resource-star"),
        pytest.param(
            _rule("get", "", "*"),
            _res("get", "pods", subresource="log"),
            True,
            id="resource-star-covers-subresources",
        ),
        pytest.param(
            _rule("get", "", "pods"),
            _res("get", "pods", subresource="log"),
            False,
            id="resource-does-not-cover-subresource",
        ),
        pytest.param(
            _rule("get", "", "pods/log"),
            _res("get", "pods", subresource="log"),
            True,
            id="subresource-exact",
        ),
        pytest.param(
            _rule("get", "", "pods/log"), _res("get", "pods"), False, id="subresource-not-parent"
        ),
        pytest.param(
            _rule("get", "*", "*/scale"),
            _res("get", "deployments", api_group="apps", subresource="scale"),
            True,
            id="star-slash-subresource",
        ),
        pytest.param(
            _rule("get", "*", "*/scale"),
            _res("get", "deployments", api_group="apps", subresource="status"),
            False,
            id="star-slash-other-subresource",
        ),
        pytest.param(
            _rule("get", "", "pods/*"),
            _res("get", "pods", subresource="log"),
            False,
            id="parent-slash-star-is-literal",
        ),
        pytest.param(
            _rule("get", "", "pods", resourceNames=["a"]),
            _res("get", "pods", name="a"),
            True,
            id="resource-name",
        ),
        pytest.param(
            _rule("get", "", "pods", resourceNames=["a"]),
            _res("get", "pods", name="b"),
            False,
            id="other-resource-name",
        ),
        pytest.param(
            _rule("list", "", "pods", resourceNames=["a"]),
            _res("list", "pods"),
            False,
            id="resource-names-deny-unnamed",
        ),
        pytest.param(
            {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
            _path("get", "/healthz"),
            True,
            id="url-exact",
        ),
        pytest.param(
            {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
            _path("get", "/healthz/etcd"),
            False,
            id="url-no-prefix-without-star",
        ),
        pytest.param(
            {"verbs": ["get"], "nonResourceURLs": ["/apis/*"]},
            _path("get", "/apis/apps/v1"),
            True,
            id="url-prefix-star",
        ),
        pytest.param(
            {"verbs": ["get"], "nonResourceURLs": ["*"]},
            _path("get", "/anything"),
            True,
            id="url-star",
        ),
        pytest.param(
            {"verbs": ["get"], "nonResourceURLs": ["/apis/*"]},
            _path("post", "/apis/x"),
            False,
            id="url-other-verb",
        ),
        pytest.param(
            _rule("get", "", "*"), _path("get", "/healthz"), False, id="resource-rule-not-url"
        ),
        pytest.param(
            {"verbs": ["*"], "nonResourceURLs": ["*"]},
            _res("get", "pods"),
            False,
            id="url-rule-not-resource",
        ),
    ],
)
def test_rule_allows_matches_upstream(rule: Object, attrs: Attributes, allowed: bool) -> None:
    """RuleAllows: verbs, groups, resources (with subresource wildcards), names and URLs."""
    assert rbac.rule_allows(attrs, rule) is allowed


def _binding(
    kind: str, name: str, role: tuple[str, str], subjects: list[Object], ns: str = ""
) -> Object:
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": rbac.RBAC_GROUP, "kind": role[0], "name": role[1]},
        "subjects": subjects,
    }


def _index() -> rbac.PolicyIndex:
    index = rbac.PolicyIndex()
    index.replace(
        "clusterroles",
        [
            {"metadata": {"name": "pod-reader"}, "rules": [_rule("get list", "", "pods")]},
            {"metadata": {"name": "node-reader"}, "rules": [_rule("get", "", "nodes")]},
        ],
    )
    index.replace(
        "roles",
        [
            {
                "metadata": {"name": "cm", "namespace": "demo"},
                "rules": [_rule("get", "", "configmaps")],
            }
        ],
    )
    index.replace(
        "clusterrolebindings",
        [
            _binding(
                "ClusterRoleBinding",
                "nodes",
                ("ClusterRole", "node-reader"),
                [{"kind": "Group", "name": "ops"}],
            ),
        ],
    )
    index.replace(
        "rolebindings",
        [
            _binding(
                "RoleBinding",
                "sa-pods",
                ("ClusterRole", "pod-reader"),
                [{"kind": "ServiceAccount", "name": "default"}],
                ns="demo",
            ),
            _binding(
                "RoleBinding",
                "alice-cm",
                ("Role", "cm"),
                [{"kind": "User", "name": "alice"}],
                ns="demo",
            ),
            _binding(
                "RoleBinding",
                "dangling",
                ("Role", "missing"),
                [{"kind": "User", "name": "bob"}],
                ns="demo",
            ),
        ],
    )
    return index


SA = UserInfo(
    "system:serviceaccount:demo:default", ("system:serviceaccounts", "system:serviceaccounts:demo")
)


@pytest.mark.parametrize(
    ("user", "verb", "resource", "namespace", "allowed"),
    [
        pytest.param(SA, "list", "pods", "demo", True, id="sa-subject-defaults-namespace"),
        pytest.param(SA, "list", "pods", "other", False, id="rolebinding-only-in-its-namespace"),
        pytest.param(SA, "list", "pods", "", False, id="rolebinding-not-cluster-wide"),
        pytest.param(ALICE, "get", "configmaps", "demo", True, id="user-role"),
        pytest.param(ALICE, "get", "pods", "demo", False, id="user-not-bound"),
        pytest.param(UserInfo("x", ("ops",)), "get", "nodes", "", True, id="group-subject"),
        pytest.param(UserInfo("x", ("ops",)), "get", "nodes", "demo", True, id="crb-in-namespace"),
        pytest.param(UserInfo("ops"), "get", "nodes", "", False, id="user-named-like-group"),
    ],
)
def test_bindings_apply_to_their_subjects(
    user: UserInfo, verb: str, resource: str, namespace: str, allowed: bool
) -> None:
    """User, Group and ServiceAccount subjects; RoleBindings only in their namespace."""
    authz = rbac.RBACAuthorizer(_index())
    attrs = Attributes(user=user, verb=verb, resource=resource, namespace=namespace)
    assert (authz.authorize(attrs)[0] == "Allow") is allowed


def test_allow_reason_names_binding_role_and_subject() -> None:
    """The reason reads as upstream's: RBAC: allowed by RoleBinding "name/ns" of ... to ..."""
    decision, reason = rbac.RBACAuthorizer(_index()).authorize(
        Attributes(user=ALICE, verb="get", resource="configmaps", namespace="demo")
    )
    assert decision == "Allow"
    assert reason == 'RBAC: allowed by RoleBinding "alice-cm/demo" of Role "cm" to User "alice"'


def test_missing_role_is_reported_not_allowed() -> None:
    """A binding to a missing role grants nothing and says why."""
    decision, reason = rbac.RBACAuthorizer(_index()).authorize(
        Attributes(user=UserInfo("bob"), verb="get", resource="pods", namespace="demo")
    )
    assert (decision, reason) == (
        "NoOpinion",
        'RBAC: role.rbac.authorization.k8s.io "missing" not found',
    )


def test_index_forgets_deleted_and_changed_bindings() -> None:
    """A removed subject or binding stops granting at once."""
    index = _index()
    authz = rbac.RBACAuthorizer(index)
    attrs = Attributes(user=ALICE, verb="get", resource="configmaps", namespace="demo")
    changed = _binding(
        "RoleBinding", "alice-cm", ("Role", "cm"), [{"kind": "User", "name": "carol"}], ns="demo"
    )
    index.apply("rolebindings", "MODIFIED", changed)
    assert authz.authorize(attrs)[0] == "NoOpinion"
    index.apply(
        "rolebindings",
        "MODIFIED",
        _binding(
            "RoleBinding",
            "alice-cm",
            ("Role", "cm"),
            [{"kind": "User", "name": "alice"}],
            ns="demo",
        ),
    )
    assert authz.authorize(attrs)[0] == "Allow"
    index.apply("rolebindings", "DELETED", changed)
    assert authz.authorize(attrs)[0] == "NoOpinion"


def test_privileged_group_short_circuits_the_union() -> None:
    """system:masters is allowed without any binding; others fall through to RBAC."""
    union = authorizer.Union([authorizer.PrivilegedGroups("system:masters"), rbac.RBACAuthorizer()])
    admin = Attributes(user=UserInfo("root", ("system:masters",)), verb="delete", resource="nodes")
    assert union.authorize(admin)[0] == "Allow"
    assert union.authorize(_res("get", "pods"))[0] == "NoOpinion"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param(
            {"resource": "pods", "namespace": "demo"},
            'User "alice" cannot list resource "pods" in API group "" in the namespace "demo"',
            id="namespaced",
        ),
        pytest.param(
            {"resource": "nodes"},
            'User "alice" cannot list resource "nodes" in API group "" at the cluster scope',
            id="cluster",
        ),
        pytest.param(
            {"resource": "pods", "subresource": "log", "namespace": "d"},
            'User "alice" cannot list resource "pods/log" in API group "" in the namespace "d"',
            id="subresource",
        ),
        pytest.param({"path": "/foo"}, 'User "alice" cannot list path "/foo"', id="path"),
        pytest.param(
            {"path": "/foo", "reason": "RBAC: x"},
            'User "alice" cannot list path "/foo": RBAC: x',
            id="with-reason",
        ),
    ],
)
def test_forbidden_message_is_upstreams(kwargs: dict[str, str], expected: str) -> None:
    """The text after "... is forbidden: ", as upstream's ForbiddenStatusError."""
    assert authorizer.forbidden_message(ALICE, "list", **kwargs) == expected


@pytest.mark.parametrize(
    ("owner", "requested", "held"),
    [
        pytest.param(
            [_rule("*", "*", "*")], [_rule("get list", "apps", "deployments")], True, id="star"
        ),
        pytest.param(
            [_rule("get", "", "pods")], [_rule("get list", "", "pods")], False, id="verb-missing"
        ),
        pytest.param(
            [_rule("get", "", "*/scale")],
            [_rule("get", "", "pods/scale")],
            True,
            id="star-subresource",
        ),
        pytest.param(
            [_rule("get", "", "pods", resourceNames=["a"])],
            [_rule("get", "", "pods")],
            False,
            id="named-does-not-cover-all",
        ),
        pytest.param(
            [_rule("get", "", "pods")],
            [_rule("get", "", "pods", resourceNames=["a"])],
            True,
            id="all-covers-named",
        ),
        pytest.param(
            [{"verbs": ["get"], "nonResourceURLs": ["/api/*"]}],
            [{"verbs": ["get"], "nonResourceURLs": ["/api/v1"]}],
            True,
            id="url-prefix",
        ),
    ],
)
def test_covers_matches_upstream(owner: list[Object], requested: list[Object], held: bool) -> None:
    """Covers: every broken-down requested rule must be granted by some owner rule."""
    assert rbac.covers(owner, requested)[0] is held


def test_escalation_message_compacts_and_sorts_missing_rules() -> None:
    """Missing rules are merged per resource, formatted as CompactString, sorted."""
    _, missing = rbac.covers([], [_rule("get list", ",apps", "pods")])
    assert rbac.escalation_message(ALICE, missing) == (
        'user "alice" (groups=["system:authenticated"]) is attempting to grant RBAC '
        "permissions not currently held:\n"
        '{APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}\n'
        '{APIGroups:["apps"], Resources:["pods"], Verbs:["get" "list"]}'
    )


def test_aggregation_collects_rules_by_label_in_name_order() -> None:
    """Selected roles' rules, sorted by role name, duplicates once, the role itself skipped."""
    label = {"rbac.authorization.k8s.io/aggregate-to-x": "true"}
    roles = {
        ("", "x"): {
            "metadata": {"name": "x", "labels": label},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": label}]},
            "rules": [],
        },
        ("", "b"): {"metadata": {"name": "b", "labels": label}, "rules": [_rule("get", "", "b")]},
        ("", "a"): {
            "metadata": {"name": "a", "labels": label},
            "rules": [_rule("get", "", "a"), _rule("get", "", "b")],
        },
        ("", "c"): {"metadata": {"name": "c"}, "rules": [_rule("get", "", "c")]},
    }
    assert list(rbac.aggregation_updates(roles)) == [
        ("x", [_rule("get", "", "a"), _rule("get", "", "b")])
    ]


def _policy_index() -> rbac.PolicyIndex:
    index = rbac.PolicyIndex()
    roles = bootstrap_policy.cluster_roles() + bootstrap_policy.controller_roles()
    index.replace("clusterroles", roles)
    for name, rules in rbac.aggregated_rules(index.objects["clusterroles"]).items():
        index.objects["clusterroles"][("", name)]["rules"] = rules
    index.replace("clusterrolebindings", bootstrap_policy.cluster_role_bindings())
    return index


def test_every_bootstrap_binding_refers_to_a_bootstrap_role() -> None:
    """No dangling roleRefs in the default policy."""
    index = _policy_index()
    for binding in bootstrap_policy.cluster_role_bindings():
        assert index.role_ref_rules(binding["roleRef"], "")
    assert len({b["metadata"]["name"] for b in bootstrap_policy.cluster_role_bindings()}) == len(
        bootstrap_policy.cluster_role_bindings()
    )


KCM = UserInfo("system:kube-controller-manager", ("system:authenticated",))
SCHED = UserInfo("system:kube-scheduler", ("system:authenticated",))
RS_CONTROLLER = UserInfo(
    "system:serviceaccount:kube-system:replicaset-controller",
    ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"),
)


@pytest.mark.parametrize(
    ("user", "attrs", "allowed"),
    [
        pytest.param(
            ANONYMOUS, {"resource_request": False, "path": "/healthz"}, True, id="anon-healthz"
        ),
        pytest.param(
            ANONYMOUS, {"resource_request": False, "path": "/version"}, True, id="anon-version"
        ),
        pytest.param(
            ANONYMOUS, {"resource_request": False, "path": "/api"}, False, id="anon-no-discovery"
        ),
        pytest.param(ANONYMOUS, {"resource": "namespaces"}, False, id="anon-no-resources"),
        pytest.param(
            ALICE, {"resource_request": False, "path": "/apis/apps/v1"}, True, id="user-discovery"
        ),
        pytest.param(ALICE, {"resource": "pods", "namespace": "default"}, False, id="user-no-pods"),
        pytest.param(
            ALICE,
            {
                "verb": "create",
                "api_group": "authorization.k8s.io",
                "resource": "selfsubjectaccessreviews",
            },
            True,
            id="user-basic",
        ),
        pytest.param(
            KCM,
            {"verb": "watch", "api_group": "apps", "resource": "deployments"},
            True,
            id="kcm-watch-all",
        ),
        pytest.param(
            KCM,
            {"verb": "create", "resource": "pods", "namespace": "x"},
            False,
            id="kcm-no-pod-create",
        ),
        pytest.param(
            SCHED,
            {"verb": "create", "resource": "pods", "subresource": "binding", "namespace": "x"},
            True,
            id="sched-bind",
        ),
        pytest.param(
            SCHED,
            {
                "verb": "update",
                "api_group": "coordination.k8s.io",
                "resource": "leases",
                "namespace": "kube-system",
                "name": "kube-scheduler",
            },
            True,
            id="sched-own-lease",
        ),
        pytest.param(
            SCHED,
            {
                "verb": "update",
                "api_group": "coordination.k8s.io",
                "resource": "leases",
                "namespace": "kube-system",
                "name": "other",
            },
            False,
            id="sched-other-lease",
        ),
        pytest.param(
            RS_CONTROLLER,
            {"verb": "create", "resource": "pods", "namespace": "x"},
            True,
            id="rs-creates-pods",
        ),
        pytest.param(
            RS_CONTROLLER, {"verb": "delete", "resource": "nodes"}, False, id="rs-no-nodes"
        ),
    ],
)
def test_bootstrap_policy_grants_what_upstream_grants(
    user: UserInfo, attrs: dict[str, Any], allowed: bool
) -> None:
    """A matrix over the default policy: anonymous, plain users, components, controllers."""
    request = Attributes(user=user, **{"verb": "get", **attrs})
    assert (rbac.RBACAuthorizer(_policy_index()).authorize(request)[0] == "Allow") is allowed


def test_aggregated_view_edit_admin_nest() -> None:
    """admin ⊇ edit ⊇ view after aggregation, and view cannot read secrets."""
    index = _policy_index()
    rules = {n: index.objects["clusterroles"][("", n)]["rules"] for n in ("admin", "edit", "view")}
    assert rbac.covers(rules["admin"], rules["edit"])[0]
    assert rbac.covers(rules["edit"], rules["view"])[0]
    assert not rbac.covers(rules["view"], [_rule("get", "", "secrets")])[0]


# ----- against real stores ----------------------------------------------------


@pytest.fixture
async def served(tmp_path: Path) -> Any:
    """A registry on SQLite with the default policy and a running RBAC authorizer."""
    backend = SqliteBackend(tmp_path / "db.sqlite")
    await backend.start()
    authz = rbac.RBACAuthorizer()
    registry = APIRegistry(install.all_resources(), backend)
    await bootstrap.ensure_initial_objects(registry, api_port=6443)
    authz.start(bootstrap.rbac_stores(registry))
    await asyncio.wait_for(authz.wait_synced(), 10)
    yield registry, authz
    await authz.stop()
    await backend.close()


async def _eventually(check: Any, timeout: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if check():
            return True
        await asyncio.sleep(0.02)
    return check()


async def test_a_new_rolebinding_takes_effect_through_the_watch(served: Any) -> None:
    """Creating then deleting a RoleBinding grants then revokes, without a restart."""
    registry, authz = served
    store = registry.lookup(rbac.RBAC_GROUP, "v1", "rolebindings")
    admin = RequestContext(user=UserInfo("root", ("system:masters",)))
    attrs = Attributes(user=ALICE, verb="list", resource="pods", namespace="default")
    assert authz.authorize(attrs)[0] == "NoOpinion"
    binding = _binding(
        "RoleBinding", "alice-view", ("ClusterRole", "view"), [{"kind": "User", "name": "alice"}]
    )
    binding["apiVersion"] = f"{rbac.RBAC_GROUP}/v1"
    await store.create("default", binding, admin)
    assert await _eventually(lambda: authz.authorize(attrs)[0] == "Allow")
    await store.delete("default", "alice-view", DeleteOptions(), admin)
    assert await _eventually(lambda: authz.authorize(attrs)[0] == "NoOpinion")


async def test_aggregated_role_follows_a_new_labelled_role(served: Any) -> None:
    """A ClusterRole labelled aggregate-to-view shows up in view's stored rules."""
    registry, _ = served
    store = registry.lookup(rbac.RBAC_GROUP, "v1", "clusterroles")
    admin = RequestContext(user=UserInfo("root", ("system:masters",)))
    extra = {
        "apiVersion": f"{rbac.RBAC_GROUP}/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": "widgets",
            "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"},
        },
        "rules": [_rule("get", "example.com", "widgets")],
    }
    await store.create("", extra, admin)

    async def stored_view_rules() -> list[Object]:
        return list((await store.get("", "view")).get("rules") or [])

    deadline = asyncio.get_running_loop().time() + 5
    while _rule("get", "example.com", "widgets") not in await stored_view_rules():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)


async def test_escalation_is_refused_with_upstreams_message(served: Any) -> None:
    """A user who may create roles still cannot grant more than they hold."""
    registry, authz = served
    stores = bootstrap.rbac_stores(registry)
    admin = RequestContext(user=UserInfo("root", ("system:masters",)))
    grant = _binding(
        "RoleBinding", "alice-admin", ("ClusterRole", "admin"), [{"kind": "User", "name": "alice"}]
    )
    grant["apiVersion"] = f"{rbac.RBAC_GROUP}/v1"
    await stores["rolebindings"].create("default", grant, admin)
    attrs = Attributes(
        user=ALICE, verb="create", api_group=rbac.RBAC_GROUP, resource="roles", namespace="default"
    )
    assert await _eventually(lambda: authz.authorize(attrs)[0] == "Allow")
    check = rbac.EscalationCheck(authz)
    role = {
        "metadata": {"name": "nodes", "namespace": "default"},
        "rules": [_rule("get", "", "nodes")],
    }
    with pytest.raises(errors.StatusError) as caught:
        await check.admit(stores["roles"], "CREATE", role, None, RequestContext(user=ALICE))
    assert caught.value.code == 403
    assert caught.value.message == (
        'roles.rbac.authorization.k8s.io "nodes" is forbidden: user "alice" '
        '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not '
        'currently held:\n{APIGroups:[""], Resources:["nodes"], Verbs:["get"]}'
    )
    allowed = {
        "metadata": {"name": "pods", "namespace": "default"},
        "rules": [_rule("get", "", "pods")],
    }
    await check.admit(stores["roles"], "CREATE", allowed, None, RequestContext(user=ALICE))


async def test_reconciling_again_changes_nothing_but_restores_rules(served: Any) -> None:
    """A second start writes nothing, except to put back a default rule someone removed."""
    registry, _ = served
    stores = bootstrap.rbac_stores(registry)
    admin = RequestContext(user=UserInfo("root", ("system:masters",)))
    dns = await stores["clusterroles"].get("", "system:kube-dns")
    dns["rules"] = []
    await stores["clusterroles"].update("", "system:kube-dns", dns, admin)
    before = {
        plural: {
            o["metadata"]["name"]: o["metadata"]["resourceVersion"]
            for o in (await stores[plural].list("", ListOptions())).items
        }
        for plural in ("clusterroles", "clusterrolebindings")
    }
    await bootstrap_policy.reconcile(stores)
    for plural, versions in before.items():
        after = {
            o["metadata"]["name"]: o for o in (await stores[plural].list("", ListOptions())).items
        }
        changed = [n for n, rv in versions.items() if after[n]["metadata"]["resourceVersion"] != rv]
        assert changed == (["system:kube-dns"] if plural == "clusterroles" else [])
    restored = await stores["clusterroles"].get("", "system:kube-dns")
    assert restored["rules"] == [
        {"verbs": ["list", "watch"], "apiGroups": [""], "resources": ["endpoints", "services"]}
    ]


def test_cached_decisions_follow_every_policy_change() -> None:
    """Answers are cached, but a binding granted or taken away counts from the next request."""
    index = rbac.PolicyIndex()
    index.replace(
        "roles",
        [
            {
                "metadata": {"name": "cm", "namespace": "demo"},
                "rules": [_rule("get", "", "configmaps")],
            }
        ],
    )
    authz = rbac.RBACAuthorizer(index)
    attrs = _res("get", "configmaps", namespace="demo", name="x")
    assert authz.authorize(attrs)[0] == "NoOpinion"
    binding = _binding(
        "RoleBinding", "b", ("Role", "cm"), [{"kind": "User", "name": "alice"}], "demo"
    )
    index.apply("rolebindings", "ADDED", binding)
    assert authz.authorize(attrs)[0] == "Allow"
    assert authz.authorize(attrs)[0] == "Allow"
    index.apply("rolebindings", "DELETED", binding)
    assert authz.authorize(attrs)[0] == "NoOpinion"
