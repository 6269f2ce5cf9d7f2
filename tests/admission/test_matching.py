"""The one admission matcher webhooks and ValidatingAdmissionPolicies share, without a server.

Rules (operations, groups, versions, resource/subresource wildcards, scope
with Namespaces cluster-scoped, ``resourceNames``), exclusions, matchPolicy
Exact and Equivalent through every served version of the stored resource,
the namespace selector (the Namespace object's own labels on create and
update, none needed for cluster-scoped requests), the object selector on
the new or the old object, errors surfacing only for requests the rest
selects, the exemption of the admission configuration kinds, and the
request attributes both plugins build (upstream's name and namespace).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from kajitori.admission import matching
from kajitori.admission.webhooks.attributes import (
    GVK,
    GVR,
    SCALE_KIND,
    Attributes,
    Versions,
    attributes_for,
)
from kajitori.machinery import errors
from kajitori.registry import install
from kajitori.registry.generic.request import ANONYMOUS, RequestContext, RequestTarget
from kajitori.registry.resource import ResourceInfo

Object = dict[str, Any]

RESOURCES = install.all_resources(legacy_versions=True)


def _info(group: str, version: str, plural: str) -> ResourceInfo:
    return next(r for r in RESOURCES if (r.group, r.version, r.plural) == (group, version, plural))


def attrs(
    group: str = "",
    version: str = "v1",
    plural: str = "pods",
    *,
    subresource: str = "",
    operation: str = "CREATE",
    namespace: str = "ns",
    name: str = "p",
    obj: Object | None = None,
    old: Object | None = None,
) -> Attributes:
    info = _info(group, version, plural)
    kind = SCALE_KIND if subresource == "scale" else GVK(group, version, info.kind)
    return Attributes(
        operation=operation,
        name=name,
        namespace=namespace,
        resource=GVR(group, version, plural),
        subresource=subresource,
        kind=kind,
        obj=obj if obj is not None else {"metadata": {"name": name}},
        old=old,
        info=info,
        user=ANONYMOUS,
        dry_run=False,
        options=None,
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


class Namespaces:
    """Namespaces by name, each labelled ``team=<name>``; ``gone`` does not exist."""

    def __init__(self) -> None:
        self.read: list[str] = []

    async def get(self, name: str) -> Object | None:
        self.read.append(name)
        if name == "gone":
            raise errors.not_found(errors.GroupResource("", "namespaces"), name)
        return {"metadata": {"name": name, "labels": {"team": name}}}


def matcher(namespaces: Namespaces | None = None) -> matching.Matcher:
    return matching.Matcher(Versions(lambda: RESOURCES), (namespaces or Namespaces()).get)


def select(match: Object, request: Attributes, namespaces: Namespaces | None = None) -> Any:
    criteria = matching.match_resources_criteria(match)
    return asyncio.run(matcher(namespaces).matches(criteria, request))


# ----- rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resources", "subresource", "expected"),
    [
        (["pods"], "", True),
        (["pods"], "status", False),  # a plain resource rule leaves subresources alone
        (["pods/status"], "status", True),
        (["pods/status"], "", False),
        (["pods/*"], "status", True),
        (["pods/log"], "status", False),
        (["*"], "", True),
        (["*"], "status", False),
        (["*/*"], "status", True),
        (["*/status"], "status", True),
        (["*/status"], "", False),
        (["*/scale"], "status", False),
        (["configmaps"], "", False),
    ],
)
def test_resources_and_subresources(resources: list[str], subresource: str, expected: bool) -> None:
    request = attrs(subresource=subresource, operation="UPDATE")
    found = matching.rule_matches(
        rule(resources=resources, operations=["UPDATE"]), request, request.resource
    )
    assert found is expected


def test_operations_groups_and_versions() -> None:
    request = attrs(operation="DELETE")
    assert not matching.rule_matches(rule(), request, request.resource)
    assert matching.rule_matches(rule(operations=["*"]), request, request.resource)
    assert not matching.rule_matches(
        rule(operations=["*"], apiGroups=["apps"]), request, request.resource
    )
    assert matching.rule_matches(
        rule(operations=["*"], apiGroups=["*"], apiVersions=["*"]), request, request.resource
    )
    assert not matching.rule_matches(
        rule(operations=["*"], apiVersions=["v2"]), request, request.resource
    )


def test_scope_treats_namespaces_as_cluster_scoped() -> None:
    pod = attrs()
    node = attrs(plural="nodes", namespace="")
    namespace = attrs(plural="namespaces", namespace="team", operation="UPDATE")
    # Its subresources too (upstream compares the resource, not the subresource).
    finalize = attrs(
        plural="namespaces", namespace="team", operation="UPDATE", subresource="status"
    )
    for request, namespaced in ((pod, True), (node, False), (namespace, False), (finalize, False)):
        resources = [request.resource.resource + ("/*" if request.subresource else "")]
        base = rule(resources=resources, operations=["*"])
        namespaced_rule = {**base, "scope": "Namespaced"}
        cluster_rule = {**base, "scope": "Cluster"}
        assert matching.rule_matches(namespaced_rule, request, request.resource) is namespaced
        assert matching.rule_matches(cluster_rule, request, request.resource) is not namespaced


def test_admission_configuration_kinds_are_exempt() -> None:
    request = attrs()
    assert not matching.is_exempt(request)
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        request.kind = GVK("admissionregistration.k8s.io", "v1", kind)
        assert matching.is_exempt(request)
    request.kind = GVK("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding")
    assert matching.is_exempt(request)


# ----- names, exclusions, selectors -------------------------------------------------------------


def test_resource_names_exclusions_and_selectors() -> None:
    labelled = {"metadata": {"name": "p", "labels": {"app": "web"}}}
    match: Object = {
        "resourceRules": [rule(resourceNames=["p"])],
        "objectSelector": {"matchLabels": {"app": "web"}},
        "namespaceSelector": {"matchLabels": {"team": "ns"}},
    }
    assert select(match, attrs(obj=labelled)) is not None
    other = {"metadata": {"name": "q", "labels": {"app": "web"}}}
    assert select(match, attrs(name="q", obj=other)) is None
    assert select(match, attrs(obj={"metadata": {"name": "p"}})) is None
    # The old object's labels count too (a label removed by an update).
    update = rule(operations=["UPDATE"], resourceNames=["p"])
    changed = attrs("", operation="UPDATE", obj={"metadata": {"name": "p"}}, old=labelled)
    assert select({**match, "resourceRules": [update]}, changed) is not None
    assert select(match, attrs(obj=labelled, namespace="other")) is None
    assert select({**match, "excludeResourceRules": [rule()]}, attrs(obj=labelled)) is None
    # No resourceRules: every resource (a binding's matchResources).
    assert select({"namespaceSelector": {}}, attrs(plural="configmaps")) is not None


def test_objects_without_metadata_match_no_object_selector() -> None:
    request = attrs(operation="CONNECT", subresource="exec")
    request.obj = {"kind": "PodExecOptions", "command": ["ls"]}
    match: Object = {
        "resourceRules": [rule(operations=["CONNECT"], resources=["pods/exec"])],
        "objectSelector": {"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]},
    }
    assert select(match, request) is None
    assert select({**match, "objectSelector": {}}, request) is not None


def test_namespace_selector_reads_the_namespace_or_the_namespace_being_written() -> None:
    seen = Namespaces()
    match: Object = {
        "resourceRules": [rule(resources=["namespaces"], operations=["*"])],
        "namespaceSelector": {"matchLabels": {"team": "a"}},
    }
    created = attrs(plural="namespaces", namespace="", name="a")
    created.obj = {"metadata": {"name": "a", "labels": {"team": "b"}}}
    # A Namespace being created is judged by the labels it is created with.
    assert select(match, created, seen) is None and seen.read == []
    deleted = attrs(plural="namespaces", operation="DELETE", namespace="a", name="a")
    deleted.obj = None
    assert select(match, deleted, seen) is not None and seen.read == ["a"]
    # Cluster-scoped requests other than namespaces pass without a read.
    node = attrs(plural="nodes", namespace="", name="n1")
    assert select({**match, "resourceRules": [rule(resources=["nodes"])]}, node, seen) is not None
    assert seen.read == ["a"]


def test_a_missing_namespace_is_an_error_only_where_the_rest_selects() -> None:
    match: Object = {"resourceRules": [rule()], "namespaceSelector": {"matchLabels": {"team": "x"}}}
    with pytest.raises(errors.StatusError) as raised:
        select(match, attrs(namespace="gone"))
    assert raised.value.code == 404
    assert raised.value.message == 'namespaces "gone" not found'
    assert select(match, attrs(operation="DELETE", namespace="gone")) is None
    # Nor when the object selector leaves the request out (upstream checks both selectors
    # before reporting either's error).
    unselected = {**match, "objectSelector": {"matchLabels": {"app": "web"}}}
    assert select(unselected, attrs(namespace="gone")) is None


def test_a_bad_selector_is_an_internal_error_only_where_the_rest_selects() -> None:
    bad = {"matchExpressions": [{"key": "a", "operator": "Near"}]}
    match: Object = {"resourceRules": [rule()], "objectSelector": bad}
    with pytest.raises(errors.StatusError) as raised:
        select(match, attrs())
    assert (raised.value.code, raised.value.message) == (
        500,
        'Internal error occurred: "Near" is not a valid label selector operator',
    )
    assert select(match, attrs(operation="UPDATE")) is None
    # A namespace selector that leaves the request out wins over the bad object selector.
    other_team = {**match, "namespaceSelector": {"matchLabels": {"team": "x"}}}
    assert select(other_team, attrs()) is None


# ----- matchPolicy ------------------------------------------------------------------------------


def _apps(version: str) -> Object:
    return rule(apiGroups=["apps"], apiVersions=[version], resources=["deployments"])


def test_equivalent_matches_through_any_served_version_of_the_stored_resource() -> None:
    legacy = attrs("apps", "v1beta1", "deployments")
    found = select({"resourceRules": [_apps("v1")]}, legacy)
    assert found is not None
    assert (found.resource, found.kind) == (
        GVR("apps", "v1", "deployments"),
        GVK("apps", "v1", "Deployment"),
    )
    assert found.info is _info("apps", "v1", "deployments")
    # Not only the storage version: an apps/v1 request matches a rule for a legacy version.
    current = attrs("apps", "v1", "deployments")
    extensions = rule(apiGroups=["extensions"], apiVersions=["v1beta1"], resources=["deployments"])
    found = select({"resourceRules": [extensions]}, current)
    assert found is not None
    assert found.kind == GVK("extensions", "v1beta1", "Deployment")
    # As requested first, whatever the order of equivalents.
    found = select({"resourceRules": [_apps("*")]}, legacy)
    assert found is not None and found.resource == legacy.resource
    assert select({"resourceRules": [_apps("v1")], "matchPolicy": "Exact"}, legacy) is None


def test_equivalent_scale_requests_keep_the_scale_kind() -> None:
    legacy = attrs("apps", "v1beta1", "deployments", subresource="scale", operation="UPDATE")
    scale_rule = rule(
        apiGroups=["apps"], apiVersions=["v1"], resources=["deployments/scale"], operations=["*"]
    )
    found = select({"resourceRules": [scale_rule]}, legacy)
    assert found is not None and found.kind == SCALE_KIND
    assert found.resource == GVR("apps", "v1", "deployments")


# ----- the request attributes -------------------------------------------------------------------


def _store(group: str, version: str, plural: str) -> Any:
    return SimpleNamespace(info=_info(group, version, plural))


def test_a_namespace_request_carries_its_own_name_as_namespace() -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    ctx = RequestContext(target=RequestTarget("", "v1", "namespaces"))
    store = _store("", "v1", "namespaces")
    for operation, old in (("CREATE", None), ("UPDATE", namespace)):
        found = attributes_for(store, operation, namespace, old, ctx)
        assert (found.name, found.namespace) == ("team", "team")
    # A cluster-scoped object's namespace is none, whatever its metadata says.
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "namespace": "x"}}
    ctx = RequestContext(target=RequestTarget("", "v1", "nodes"))
    assert attributes_for(_store("", "v1", "nodes"), "CREATE", node, None, ctx).namespace == ""


def test_a_generated_name_is_not_the_requests_name() -> None:
    meta = {"name": "web-x7k2p", "generateName": "web-", "namespace": "default"}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta}
    ctx = RequestContext(target=RequestTarget("", "v1", "pods"))
    store = _store("", "v1", "pods")
    assert attributes_for(store, "CREATE", pod, None, ctx).name == ""
    assert attributes_for(store, "UPDATE", pod, pod, ctx).name == "web-x7k2p"
    named = {**pod, "metadata": {**meta, "name": "web-mine"}}  # not five generated characters
    assert attributes_for(store, "CREATE", named, None, ctx).name == "web-mine"
