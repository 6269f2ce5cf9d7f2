"""MutatingAdmissionPolicies and their bindings served as upstream 1.37 serves them.

Against one in-process cluster over HTTPS, with the real kubectl and the
official ``kubernetes`` client: discovery (``kubectl api-resources``), the
defaults a client reads back (``failurePolicy``, match resources; no
default for ``reinvocationPolicy``), generation, updates that must carry a
resourceVersion, ``kubectl get``'s columns (NAME MUTATIONS PARAMKIND AGE;
NAME POLICYNAME PARAMREF AGE), and upstream's 422s (messages and field
paths: patch types and their members, expressions that do not compile or
yield the wrong type, DELETE in the rules, a missing reinvocationPolicy).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

Object = dict[str, Any]
GV = "admissionregistration.k8s.io/v1"
RULE = {
    "apiGroups": ["apps"],
    "apiVersions": ["v1"],
    "operations": ["CREATE", "UPDATE"],
    "resources": ["deployments"],
}
APPLY = {
    "patchType": "ApplyConfiguration",
    "applyConfiguration": {
        "expression": 'Object{metadata: Object.metadata{labels: {"mutated": "yes"}}}'
    },
}
PLURALS = {
    "MutatingAdmissionPolicy": "mutatingadmissionpolicies",
    "MutatingAdmissionPolicyBinding": "mutatingadmissionpolicybindings",
}


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def api(cluster: InProcessCluster) -> Iterator[client.AdmissionregistrationV1Api]:
    api_client = cluster.api_client()
    yield client.AdmissionregistrationV1Api(api_client)
    api_client.close()


def policy(name: str, **spec: Any) -> Object:
    body: Object = {
        "matchConstraints": {"resourceRules": [RULE]},
        "mutations": [APPLY],
        "reinvocationPolicy": "Never",
    }
    body.update(spec)
    return {
        "apiVersion": GV,
        "kind": "MutatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": body,
    }


def binding(name: str, **spec: Any) -> Object:
    body: Object = {"policyName": "p", **spec}
    return {
        "apiVersion": GV,
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": body,
    }


def post(
    api: client.AdmissionregistrationV1Api, body: Object, method: str = "POST"
) -> tuple[int, Object]:
    """Send ``body`` past the client's own checks; (status, JSON answer)."""
    url = f"/apis/{GV}/{PLURALS[body['kind']]}"
    if method == "PUT":
        url += "/" + body["metadata"]["name"]
    method, url, headers, data, _ = api.api_client.param_serialize(
        method,
        url,
        header_params={"Content-Type": "application/json", "Accept": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.api_client.call_api(method, url, headers, data)
    response.read()
    answer: Object = json.loads(response.data or b"{}")
    return response.status, answer


def causes(answer: Object) -> list[tuple[str, str]]:
    return [(c["field"], c["message"]) for c in answer["details"]["causes"]]


def test_api_resources_list_both_kinds(cluster: InProcessCluster) -> None:
    out = cluster.kubectl(
        "api-resources", "--api-group=admissionregistration.k8s.io", "-o", "wide"
    ).stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:] if line.strip()}
    verbs = "create,delete,deletecollection,get,list,patch,update,watch"
    assert rows["mutatingadmissionpolicies"] == [
        "mutatingadmissionpolicies", GV, "false", "MutatingAdmissionPolicy", verbs, "api-extensions",
    ]  # fmt: skip
    assert rows["mutatingadmissionpolicybindings"] == [
        "mutatingadmissionpolicybindings", GV, "false", "MutatingAdmissionPolicyBinding",
        verbs, "api-extensions",
    ]  # fmt: skip


def test_defaults_and_generation(api: client.AdmissionregistrationV1Api) -> None:
    created = api.create_mutating_admission_policy(
        client.V1MutatingAdmissionPolicy.from_dict(policy("defaults"))
    )
    spec = api.api_client.sanitize_for_serialization(created)["spec"]
    assert created.metadata.generation == 1
    assert spec["failurePolicy"] == "Fail"
    assert spec["reinvocationPolicy"] == "Never"
    assert spec["matchConstraints"] == {
        "matchPolicy": "Equivalent",
        "namespaceSelector": {},
        "objectSelector": {},
        "resourceRules": [{**RULE, "scope": "*"}],
    }
    api.patch_mutating_admission_policy("defaults", {"spec": {"failurePolicy": "Ignore"}})
    api.patch_mutating_admission_policy("defaults", {"metadata": {"labels": {"a": "b"}}})
    after = api.read_mutating_admission_policy("defaults")
    assert (after.metadata.generation, after.spec.failure_policy) == (2, "Ignore")
    made = api.create_mutating_admission_policy_binding(
        client.V1MutatingAdmissionPolicyBinding.from_dict(
            binding("defaults", matchResources={"resourceRules": [RULE]})
        )
    )
    assert made.metadata.generation == 1
    assert made.spec.match_resources.match_policy == "Equivalent"
    assert made.spec.match_resources.resource_rules[0].scope == "*"
    status, answer = post(api, policy("defaults", failurePolicy="Fail"), "PUT")
    assert status == 422
    assert causes(answer) == [
        ("metadata.resourceVersion", "Invalid value: 0: must be specified for an update")
    ]
    api.delete_mutating_admission_policy("defaults")
    api.delete_mutating_admission_policy_binding("defaults")
    names = [p.metadata.name for p in api.list_mutating_admission_policy().items]
    assert "defaults" not in names
    with pytest.raises(client.ApiException) as gone:
        api.read_mutating_admission_policy_binding("defaults")
    assert gone.value.status == 404


def test_kubectl_get_columns(cluster: InProcessCluster) -> None:
    items = [
        policy("cols-plain"),
        policy(
            "cols-params",
            paramKind={"apiVersion": "v1", "kind": "ConfigMap"},
            mutations=[APPLY, APPLY],
        ),
        binding("cols-none", policyName="cols-plain"),
        binding(
            "cols-ns",
            paramRef={"name": "limits", "namespace": "team", "parameterNotFoundAction": "Allow"},
        ),
    ]
    cluster.kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    )
    out = cluster.kubectl("get", "mutatingadmissionpolicies", "cols-plain", "cols-params").stdout
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["NAME", "MUTATIONS", "PARAMKIND", "AGE"]
    assert rows[1][:3] == ["cols-plain", "1", "<unset>"]
    assert rows[2][:3] == ["cols-params", "2", "v1/ConfigMap"]
    out = cluster.kubectl("get", "mutatingadmissionpolicybindings", "cols-none", "cols-ns").stdout
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["NAME", "POLICYNAME", "PARAMREF", "AGE"]
    assert rows[1][:3] == ["cols-none", "cols-plain", "<unset>"]
    assert rows[2][:3] == ["cols-ns", "p", "team/limits"]


def test_policy_validation(api: client.AdmissionregistrationV1Api) -> None:
    body = policy("bad")
    body["spec"] = {
        "matchConstraints": {
            "resourceRules": [{**RULE, "operations": ["CREATE", "DELETE"]}],
        },
        "mutations": [
            {"patchType": "Merge"},
            {"patchType": "JSONPatch"},
            {"patchType": "ApplyConfiguration", "applyConfiguration": {"expression": " "}},
            {
                "patchType": "JSONPatch",
                "jsonPatch": {"expression": "object.spec.replicas > 1"},
                "applyConfiguration": {"expression": "Object{}"},
            },
            {"patchType": "ApplyConfiguration", "applyConfiguration": {"expression": "'x'"}},
            {"patchType": "ApplyConfiguration", "applyConfiguration": {"expression": "Object{"}},
            {"patchType": "ApplyConfiguration", "applyConfiguration": {"expression": "nope.x"}},
        ],
    }
    status, answer = post(api, body)
    assert status == 422
    found = causes(answer)
    base = "spec.mutations"
    assert found[0] == (
        "spec.matchConstraints.resourceRules.operations",
        'Unsupported value: "DELETE": supported values: "*", "CONNECT", "CREATE", "UPDATE"',
    )
    assert found[1] == (
        f"{base}[0].patchType",
        'Unsupported value: "Merge": supported values: "ApplyConfiguration", "JSONPatch"',
    )
    assert found[2] == (
        f"{base}[1].jsonPatch",
        "Required value: must be specified when patchType is JSONPatch",
    )
    assert found[3] == (f"{base}[2].applyConfiguration.expression", "Required value")
    assert found[4] == (
        f"{base}[3].jsonPatch.expression",
        'Invalid value: "object.spec.replicas > 1": must evaluate to list(JSONPatch) but got bool',
    )
    assert found[5] == (
        f"{base}[3].applyConfiguration",
        'Invalid value: "{applyConfiguration}": must not be specified when patchType is JSONPatch',
    )
    assert found[6] == (
        f"{base}[4].applyConfiguration.expression",
        "Invalid value: \"'x'\": must evaluate to Object but got string",
    )
    assert found[7][0] == f"{base}[5].applyConfiguration.expression"
    assert found[7][1].startswith('Invalid value: "Object{": compilation failed: ERROR: <input>')
    assert found[8][0] == f"{base}[6].applyConfiguration.expression"
    assert "undeclared reference to 'nope'" in found[8][1]
    assert found[9] == ("spec.reinvocationPolicy", "Required value")
    assert len(found) == 10
    # No mutations at all, and an unknown reinvocation policy.
    body["spec"] = {
        "matchConstraints": {"resourceRules": [RULE]},
        "reinvocationPolicy": "Always",
    }
    status, answer = post(api, body)
    assert (status, causes(answer)) == (
        422,
        [
            ("spec.mutations", "Required value: mutations must contain at least one item"),
            (
                "spec.reinvocationPolicy",
                'Unsupported value: "Always": supported values: "Never", "IfNeeded"',
            ),
        ],
    )
    # No matchConstraints; then constraints without resource rules.
    body["spec"] = {"mutations": [APPLY], "reinvocationPolicy": "IfNeeded"}
    assert causes(post(api, body)[1]) == [("spec.matchConstraints", "Required value")]
    body["spec"]["matchConstraints"] = {}
    assert causes(post(api, body)[1]) == [("spec.matchConstraints.resourceRules", "Required value")]


def test_expressions_see_params_and_variables_only_when_declared(
    api: client.AdmissionregistrationV1Api,
) -> None:
    uses = {
        "patchType": "JSONPatch",
        "jsonPatch": {
            "expression": '[JSONPatch{op: "add", path: "/metadata/labels/" + '
            'jsonpatch.escapeKey("a/b"), value: params.data.x + variables.suffix}]'
        },
    }
    variables = [{"name": "suffix", "expression": "'-x'"}]
    status, answer = post(api, policy("no-params", mutations=[uses], variables=variables))
    assert status == 422
    [(path, message)] = causes(answer)
    assert path == "spec.mutations[0].jsonPatch.expression"
    assert "undeclared reference to 'params'" in message
    ok = policy(
        "with-params",
        mutations=[uses],
        variables=variables,
        paramKind={"apiVersion": "v1", "kind": "ConfigMap"},
    )
    assert post(api, ok)[0] == 201


def test_binding_validation(api: client.AdmissionregistrationV1Api) -> None:
    body = binding(
        "bad-binding",
        policyName="",
        paramRef={"name": "x", "selector": {}},
        matchResources={"resourceRules": [{**RULE, "operations": ["DELETE"]}]},
    )
    status, answer = post(api, body)
    assert status == 422
    assert causes(answer) == [
        ("spec.policyName", "Required value"),
        ("spec.paramRef.name", "Forbidden: name and selector are mutually exclusive"),
        ("spec.paramRef.selector", "Forbidden: name and selector are mutually exclusive"),
        ("spec.paramRef.parameterNotFoundAction", "Required value"),
        (
            "spec.matchResources.resourceRules.operations",
            'Unsupported value: "DELETE": supported values: "*", "CONNECT", "CREATE", "UPDATE"',
        ),
    ]
