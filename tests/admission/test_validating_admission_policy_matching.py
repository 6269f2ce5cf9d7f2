"""Rule matching of ValidatingAdmissionPolicies without a server (upstream's rules.Matcher).

Operations, groups, versions, resource/subresource wildcards (``*`` matches
no subresource, ``*/*`` every one, ``pods/*`` and ``*/status``), scopes
(a Namespace is cluster-scoped), ``resourceNames``, exclusions, the object
selector on the new or the old object, and a missing namespace surfacing only
when the rules would match.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kajitori.admission.policy import matching
from kajitori.machinery import errors

Object = dict[str, Any]


def request(
    operation: str = "CREATE",
    resource: str = "pods",
    subresource: str = "",
    namespace: str = "ns",
    name: str = "p",
    obj: Object | None = None,
    old: Object | None = None,
    group: str = "",
) -> matching.Request:
    target = matching.Resource(group, "v1", resource, subresource)
    return matching.Request(
        operation=operation,
        target=target,
        stored=target,
        kind=(group, "v1", "Pod"),
        namespace=namespace,
        name=name,
        obj=obj if obj is not None else {"metadata": {"name": name}},
        old=old,
    )


def rule(**overrides: Any) -> Object:
    base: Object = {
        "operations": ["CREATE"],
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "resources": ["pods"],
        "scope": "*",
    }
    base.update(overrides)
    return base


async def _labels(name: str) -> dict[str, str]:
    if name == "gone":
        raise errors.not_found(errors.GroupResource("", "namespaces"), name)
    return {"team": name}


def matches(match: Object, req: matching.Request) -> bool:
    found, _ = asyncio.run(matching.matches(match, req, _labels))
    return found


@pytest.mark.parametrize(
    ("resources", "subresource", "expected"),
    [
        (["pods"], "", True),
        (["pods"], "status", False),
        (["*"], "", True),
        (["*"], "status", False),
        (["*/*"], "status", True),
        (["pods/*"], "status", True),
        (["*/status"], "status", True),
        (["*/status"], "", False),
        (["pods/log"], "status", False),
    ],
)
def test_resources_and_subresources(resources: list[str], subresource: str, expected: bool) -> None:
    req = request(subresource=subresource)
    assert matching.rule_matches(rule(resources=resources), req, req.target) is expected


def test_operations_groups_versions_and_scope() -> None:
    req = request()
    assert matching.rule_matches(rule(operations=["*"]), req, req.target)
    assert not matching.rule_matches(rule(operations=["UPDATE"]), req, req.target)
    assert not matching.rule_matches(rule(apiGroups=["apps"]), req, req.target)
    assert matching.rule_matches(rule(apiVersions=["*"]), req, req.target)
    assert not matching.rule_matches(rule(scope="Cluster"), req, req.target)
    cluster_scoped = request(resource="nodes", namespace="")
    assert matching.rule_matches(
        rule(resources=["nodes"], scope="Cluster"), cluster_scoped, cluster_scoped.target
    )
    # A Namespace is cluster-scoped, though its own name is its namespace.
    ns = request(operation="UPDATE", resource="namespaces", namespace="a", name="a")
    namespaces = rule(operations=["UPDATE"], resources=["namespaces"])
    assert matching.rule_matches({**namespaces, "scope": "Cluster"}, ns, ns.target)
    assert not matching.rule_matches({**namespaces, "scope": "Namespaced"}, ns, ns.target)


def test_resource_names_exclusions_and_selectors() -> None:
    labelled = {"metadata": {"name": "p", "labels": {"app": "web"}}}
    match: Object = {
        "resourceRules": [rule(resourceNames=["p"])],
        "objectSelector": {"matchLabels": {"app": "web"}},
        "namespaceSelector": {"matchLabels": {"team": "ns"}},
    }
    assert matches(match, request(obj=labelled))
    assert not matches(
        match, request(name="q", obj={"metadata": {"name": "q", "labels": {"app": "web"}}})
    )
    assert not matches(match, request(obj={"metadata": {"name": "p"}}))
    # The old object's labels count too (a label removed by an update).
    update = rule(operations=["UPDATE"], resourceNames=["p"])
    assert matches(
        {**match, "resourceRules": [update]},
        request("UPDATE", obj={"metadata": {"name": "p"}}, old=labelled),
    )
    assert not matches(match, request(obj=labelled, namespace="other"))
    assert not matches({**match, "excludeResourceRules": [rule()]}, request(obj=labelled))


def test_missing_namespace_is_an_error_only_where_rules_match() -> None:
    match: Object = {"resourceRules": [rule()], "namespaceSelector": {"matchLabels": {"team": "x"}}}
    with pytest.raises(errors.StatusError) as raised:
        matches(match, request(namespace="gone"))
    assert raised.value.code == 404
    assert not matches(match, request(operation="DELETE", namespace="gone"))
