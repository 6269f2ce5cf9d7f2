"""MutatingAdmissionPolicy enforcement, as upstream 1.37 applies it.

Against one in-process cluster over HTTPS, with the real kubectl and the
official ``kubernetes`` client: an ApplyConfiguration that adds a label and
a JSONPatch that sets a field, seen on the created objects (and on updates,
and in a dry run's answer without anything stored); params from a
ConfigMap; matchConditions; failurePolicy Fail (upstream's 403 Status) and
Ignore on an expression error; a dyn result refused up front; the refusal of an
apply configuration that sets an atomic list; a failed JSON patch ``test``
leaving the object alone; reinvocation (IfNeeded runs again after a later
policy changed the object, Never does not); and a ``pods/eviction`` CREATE,
whose Eviction a policy turns into a dry run.

Each policy is bound to the test's own namespace (by label), so tests
sharing the module's cluster do not see each other's policies.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

Object = dict[str, Any]
GV = "admissionregistration.k8s.io/v1"
CONFIGMAPS = [
    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
     "resources": ["configmaps"]},
]  # fmt: skip


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def api_client(cluster: InProcessCluster) -> Iterator[client.ApiClient]:
    api = cluster.api_client()
    yield api
    api.close()


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def ns(core: client.CoreV1Api) -> str:
    """A fresh namespace labelled ``environment=<its name>`` (the bindings' selector)."""
    name = f"map-{uuid.uuid4().hex[:8]}"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"environment": name}))
    )
    return name


def apply(cluster: InProcessCluster, *objects: Object) -> None:
    body = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(body))


def apply_configuration(expression: str) -> Object:
    return {"patchType": "ApplyConfiguration", "applyConfiguration": {"expression": expression}}


def json_patch(expression: str) -> Object:
    return {"patchType": "JSONPatch", "jsonPatch": {"expression": expression}}


def policy(name: str, mutations: list[Object], **spec: Any) -> Object:
    body: Object = {
        "matchConstraints": {"resourceRules": spec.pop("rules", CONFIGMAPS)},
        "mutations": mutations,
        "reinvocationPolicy": spec.pop("reinvocationPolicy", "Never"),
        **spec,
    }
    return {
        "apiVersion": GV,
        "kind": "MutatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": body,
    }


def binding(name: str, policy_name: str, ns: str, **spec: Any) -> Object:
    match = {"namespaceSelector": {"matchLabels": {"environment": ns}}}
    return {
        "apiVersion": GV,
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": policy_name, "matchResources": match, **spec},
    }


def bound(cluster: InProcessCluster, ns: str, mutations: list[Object], **spec: Any) -> str:
    """A policy with ``mutations`` bound to ``ns``; its name."""
    name = f"{ns}-{uuid.uuid4().hex[:4]}"
    ref = spec.pop("paramRef", None)
    extra = {"paramRef": ref} if ref else {}
    apply(cluster, policy(name, mutations, **spec), binding(name, name, ns, **extra))
    return name


def configmap(name: str, **labels: str) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"},
    }


def create_raw(
    api_client: client.ApiClient, ns: str, body: Object, query: str = ""
) -> tuple[int, Object]:
    method, url, headers, data, _ = api_client.param_serialize(
        "POST",
        f"/api/v1/namespaces/{ns}/configmaps{query}",
        header_params={"Content-Type": "application/json", "Accept": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api_client.call_api(method, url, headers, data)
    response.read()
    return response.status, json.loads(response.data or b"{}")


ADD_LABEL = apply_configuration('Object{metadata: Object.metadata{labels: {"mutated": "yes"}}}')


def test_apply_configuration_adds_a_label(
    cluster: InProcessCluster, core: client.CoreV1Api, ns: str
) -> None:
    bound(cluster, ns, [ADD_LABEL])
    cluster.kubectl("create", "configmap", "-n", ns, "plain", "--from-literal=a=b")
    assert core.read_namespaced_config_map("plain", ns).metadata.labels == {"mutated": "yes"}
    # Labels the client set are kept: the configuration merges into the map.
    cluster.kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(configmap("kept", team="x")))
    assert core.read_namespaced_config_map("kept", ns).metadata.labels == {
        "team": "x",
        "mutated": "yes",
    }
    # An update that drops the label gets it back.
    core.patch_namespaced_config_map("kept", ns, {"metadata": {"labels": {"mutated": None}}})
    assert core.read_namespaced_config_map("kept", ns).metadata.labels["mutated"] == "yes"
    # Other namespaces are not bound.
    other = f"other-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_config_map("default", client.V1ConfigMap(metadata={"name": other}))
    assert core.read_namespaced_config_map(other, "default").metadata.labels is None


def test_json_patch_sets_a_field_and_a_failed_test_changes_nothing(
    cluster: InProcessCluster, core: client.CoreV1Api, ns: str
) -> None:
    bound(
        cluster,
        ns,
        [
            json_patch(
                '[JSONPatch{op: "add", path: "/data/size", value: string(size(object.data))}]'
            ),
            json_patch(
                '[JSONPatch{op: "test", path: "/data/size", value: "99"},'
                ' JSONPatch{op: "add", path: "/data/never", value: "x"}]'
            ),
            json_patch(
                '[JSONPatch{op: "add", path: "/metadata/annotations", value: {}},'
                ' JSONPatch{op: "add", path: "/metadata/annotations/" + '
                'jsonpatch.escapeKey("example.com/owner"), value: request.userInfo.username}]'
            ),
        ],
    )
    created = core.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata={"name": "sized"}, data={"a": "1", "b": "2"})
    )
    assert created.data == {"a": "1", "b": "2", "size": "2"}
    assert created.metadata.annotations == {"example.com/owner": "kubernetes-admin"}
    assert core.read_namespaced_config_map("sized", ns).data["size"] == "2"


def test_dry_run_shows_the_mutation_and_stores_nothing(
    cluster: InProcessCluster, api_client: client.ApiClient, core: client.CoreV1Api, ns: str
) -> None:
    bound(cluster, ns, [ADD_LABEL])
    status, body = create_raw(api_client, ns, configmap("dry"), "?dryRun=All")
    assert status == 201
    assert body["metadata"]["labels"] == {"mutated": "yes"}
    assert core.list_namespaced_config_map(ns).items == []
    out = cluster.kubectl(
        "create", "configmap", "-n", ns, "dry2", "--dry-run=server", "-o", "json"
    ).stdout
    assert json.loads(out)["metadata"]["labels"] == {"mutated": "yes"}


def test_params_and_match_conditions(
    cluster: InProcessCluster, core: client.CoreV1Api, ns: str
) -> None:
    settings = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": ns, "labels": {"role": "params"}},
        "data": {"tier": "gold"},
    }
    apply(cluster, settings)
    bound(
        cluster,
        ns,
        [apply_configuration("Object{metadata: Object.metadata{labels: {'tier': params.data.tier}}}")],
        paramKind={"apiVersion": "v1", "kind": "ConfigMap"},
        paramRef={"name": "settings", "parameterNotFoundAction": "Deny"},
        matchConditions=[
            {"name": "not-params", "expression": "!has(object.metadata.labels) || "
             "!('role' in object.metadata.labels)"},
        ],
    )  # fmt: skip
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata={"name": "app"}))
    assert core.read_namespaced_config_map("app", ns).metadata.labels == {"tier": "gold"}
    # The match condition skips objects labelled with a role (the params themselves).
    assert core.read_namespaced_config_map("settings", ns).metadata.labels == {"role": "params"}
    core.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata={"name": "worker", "labels": {"role": "w"}})
    )
    assert core.read_namespaced_config_map("worker", ns).metadata.labels == {"role": "w"}


def test_failure_policy_fail_and_ignore(
    cluster: InProcessCluster, api_client: client.ApiClient, core: client.CoreV1Api, ns: str
) -> None:
    broken = apply_configuration("Object{metadata: Object.metadata{labels: {'x': object.nope}}}")
    name = bound(cluster, ns, [broken, ADD_LABEL])
    status, body = create_raw(api_client, ns, configmap("refused"))
    message = (
        f"policy '{name}' with binding '{name}' denied request: expression "
        "'Object{metadata: Object.metadata{labels: {'x': object.nope}}}' resulted in error: "
        "no such key: nope"
    )
    assert status == 403
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Invalid",
        "details": {"name": "refused", "kind": "configmaps", "causes": [{"message": message}]},
        "code": 403,
    }
    assert core.list_namespaced_config_map(ns).items == []
    # kubectl prints the same.
    out = cluster.kubectl("create", "configmap", "-n", ns, "refused", check=False)
    assert out.returncode == 1 and message in out.stderr
    # Ignore: the failing mutation is dropped, the next one still applies.
    apply(cluster, policy(name, [broken, ADD_LABEL], failurePolicy="Ignore"))
    assert create_raw(api_client, ns, configmap("admitted"))[0] == 201
    assert core.read_namespaced_config_map("admitted", ns).metadata.labels == {"mutated": "yes"}
    # A paramKind nothing serves is the policy's configuration error (no binding named).
    missing = {"apiVersion": "example.com/v1", "kind": "Nope"}
    apply(cluster, policy(name, [ADD_LABEL], paramKind=missing))
    status, body = create_raw(api_client, ns, configmap("unconfigured"))
    assert (status, body["reason"]) == (403, "Forbidden")
    assert body["message"] == (
        f'policy "{name}" denied request: failed to configure policy: failed to find resource '
        "referenced by paramKind: 'example.com/v1, Kind=Nope'"
    )
    # It refuses requests whatever its bindings select (upstream checks it first): remove it.
    cluster.kubectl("delete", "mutatingadmissionpolicy", name)
    assert create_raw(api_client, ns, configmap("unconfigured"))[0] == 201


def test_wrong_result_types_and_atomic_fields_are_refused(
    cluster: InProcessCluster, api_client: client.ApiClient, core: client.CoreV1Api, ns: str
) -> None:
    # A result whose type is dyn is refused when the policy is written, as upstream's checker does.
    status, body = _post_policy(
        api_client,
        policy(
            f"{ns}-dyn",
            [json_patch("variables.patch")],
            variables=[{"name": "patch", "expression": "object.data"}],
        ),
    )
    assert (status, body["details"]["causes"]) == (
        422,
        [
            {
                "reason": "FieldValueInvalid",
                "message": 'Invalid value: "variables.patch": must evaluate to list(JSONPatch) '
                "but got dyn",
                "field": "spec.mutations[0].jsonPatch.expression",
            }
        ],
    )
    # Pods' container args are an atomic list: an apply configuration may not set them.
    pod_rules = [{**CONFIGMAPS[0], "resources": ["pods"]}]
    atomic = apply_configuration(
        "Object{spec: Object.spec{containers: [Object.spec.containers{name: 'c', args: ['x']}]}}"
    )
    name = bound(cluster, ns, [atomic], rules=pod_rules)
    core.create_namespaced_service_account(
        ns, client.V1ServiceAccount(metadata={"name": "default"})
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    out = cluster.kubectl("create", "-n", ns, "-f", "-", stdin=json.dumps(pod), check=False)
    assert out.returncode == 1
    assert (
        f"policy '{name}' with binding '{name}' denied request: error applying patch: invalid "
        'ApplyConfiguration: may not mutate atomic arrays, maps or structs: .spec.containers[name="c"].args'
    ) in out.stderr


def test_reinvocation_if_needed_runs_again_never_does_not(
    cluster: InProcessCluster, core: client.CoreV1Api, ns: str
) -> None:
    # Policies run in name order: "a-..." first, then "b-...", which adds the label "a-..." reads.
    seen = "Object{metadata: Object.metadata{annotations: {'seen-b': " \
        "has(object.metadata.labels) && 'b' in object.metadata.labels ? 'yes' : 'no'}}}"  # fmt: skip
    add_b = apply_configuration("Object{metadata: Object.metadata{labels: {'b': 'set'}}}")
    for policy_name, reinvocation in (("a-again", "IfNeeded"), ("a-once", "Never")):
        sub = f"{ns}-{policy_name}"
        apply(
            cluster,
            policy(f"a-{sub}", [apply_configuration(seen)], reinvocationPolicy=reinvocation),
            policy(f"b-{sub}", [add_b]),
            binding(f"a-{sub}", f"a-{sub}", ns, matchResources=_named(policy_name, ns)),
            binding(f"b-{sub}", f"b-{sub}", ns, matchResources=_named(policy_name, ns)),
        )
        core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata={"name": policy_name}))
    again = core.read_namespaced_config_map("a-again", ns).metadata
    once = core.read_namespaced_config_map("a-once", ns).metadata
    assert (again.labels, again.annotations) == ({"b": "set"}, {"seen-b": "yes"})
    assert (once.labels, once.annotations) == ({"b": "set"}, {"seen-b": "no"})


def _post_policy(api_client: client.ApiClient, body: Object) -> tuple[int, Object]:
    method, url, headers, data, _ = api_client.param_serialize(
        "POST",
        f"/apis/{GV}/mutatingadmissionpolicies",
        header_params={"Content-Type": "application/json", "Accept": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api_client.call_api(method, url, headers, data)
    response.read()
    return response.status, json.loads(response.data or b"{}")


def _named(name: str, ns: str) -> Object:
    """Match resources for one ConfigMap of ``ns``."""
    rule = {**CONFIGMAPS[0], "resourceNames": [name]}
    return {
        "namespaceSelector": {"matchLabels": {"environment": ns}},
        "resourceRules": [rule],
    }


def test_an_eviction_is_mutated_before_the_pod_is_deleted(
    cluster: InProcessCluster, core: client.CoreV1Api, ns: str
) -> None:
    # pods/eviction is a CREATE of a policy/v1 Eviction: a policy can make it a dry run.
    rules = [{**CONFIGMAPS[0], "operations": ["CREATE"], "resources": ["pods/eviction"]}]
    dry = json_patch('[JSONPatch{op: "add", path: "/deleteOptions", value: {"dryRun": ["All"]}}]')
    bound(cluster, ns, [dry], rules=rules)
    core.create_namespaced_service_account(
        ns, client.V1ServiceAccount(metadata={"name": "default"})
    )
    pod = client.V1Pod(
        metadata={"name": "kept"},
        spec={"containers": [{"name": "c", "image": "busybox"}]},
    )
    core.create_namespaced_pod(ns, pod)
    core.create_namespaced_pod_eviction(
        "kept", ns, client.V1Eviction(metadata={"name": "kept", "namespace": ns})
    )
    assert core.read_namespaced_pod("kept", ns).metadata.deletion_timestamp is None
