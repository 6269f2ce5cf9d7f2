"""ValidatingAdmissionPolicies and their bindings served as upstream 1.37 serves them.

Against one in-process cluster over HTTPS, with the real kubectl and the
official ``kubernetes`` client: discovery (``kubectl api-resources``),
the defaults a client reads back, generation and the ``/status``
subresource, updates that must carry a resourceVersion, ``kubectl get``'s
columns (NAME VALIDATIONS PARAMKIND AGE; NAME POLICYNAME PARAMREF AGE),
and upstream's 422s for policies and bindings (messages and field paths,
including the CEL checks: undeclared variables, result types, variables).
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


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def api(cluster: InProcessCluster) -> Iterator[client.AdmissionregistrationV1Api]:
    api_client = cluster.api_client()
    yield client.AdmissionregistrationV1Api(api_client)
    api_client.close()


def policy(name: str, **spec: Any) -> Object:
    body: Object = {"matchConstraints": {"resourceRules": [RULE]}}
    body["validations"] = [{"expression": "object.spec.replicas <= 5"}]
    body.update(spec)
    return {
        "apiVersion": GV,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": body,
    }


def binding(name: str, **spec: Any) -> Object:
    body: Object = {"policyName": "p", "validationActions": ["Deny"], **spec}
    return {
        "apiVersion": GV,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": body,
    }


PLURALS = {
    "ValidatingAdmissionPolicy": "validatingadmissionpolicies",
    "ValidatingAdmissionPolicyBinding": "validatingadmissionpolicybindings",
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


def as_dict(api: client.AdmissionregistrationV1Api, model: Any) -> Object:
    serialized: Object = api.api_client.sanitize_for_serialization(model)
    return serialized


def test_api_resources_list_both_kinds(cluster: InProcessCluster) -> None:
    out = cluster.kubectl(
        "api-resources", "--api-group=admissionregistration.k8s.io", "-o", "wide"
    ).stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:] if line.strip()}
    verbs = "create,delete,deletecollection,get,list,patch,update,watch"
    assert rows["validatingadmissionpolicies"] == [
        "validatingadmissionpolicies", GV, "false", "ValidatingAdmissionPolicy", verbs, "api-extensions",
    ]  # fmt: skip
    assert rows["validatingadmissionpolicybindings"] == [
        "validatingadmissionpolicybindings", GV, "false", "ValidatingAdmissionPolicyBinding",
        verbs, "api-extensions",
    ]  # fmt: skip


def test_defaults_generation_and_status(api: client.AdmissionregistrationV1Api) -> None:
    created = as_dict(
        api,
        api.create_validating_admission_policy(
            client.V1ValidatingAdmissionPolicy.from_dict(
                {**policy("defaults"), "status": {"observedGeneration": 7}}
            )
        ),
    )
    spec = created["spec"]
    assert created["metadata"]["generation"] == 1
    assert created.get("status") in (None, {})  # a client may not set status on create
    assert spec["failurePolicy"] == "Fail"
    assert spec["matchConstraints"] == {
        "matchPolicy": "Equivalent",
        "namespaceSelector": {},
        "objectSelector": {},
        "resourceRules": [{**RULE, "scope": "*"}],
    }
    # Status is written through /status only, and does not bump generation.
    status = {"observedGeneration": 1, "typeChecking": {"expressionWarnings": []}}
    api.patch_validating_admission_policy_status("defaults", {"status": status})
    after = as_dict(api, api.read_validating_admission_policy("defaults"))
    assert after["status"]["observedGeneration"] == 1
    assert after["metadata"]["generation"] == 1
    # A spec change bumps generation and keeps the status; a label change does not.
    api.patch_validating_admission_policy("defaults", {"spec": {"failurePolicy": "Ignore"}})
    api.patch_validating_admission_policy("defaults", {"metadata": {"labels": {"a": "b"}}})
    after = as_dict(api, api.read_validating_admission_policy("defaults"))
    assert after["metadata"]["generation"] == 2
    assert after["status"]["observedGeneration"] == 1
    # The binding's match resources take the same defaults.
    made = as_dict(
        api,
        api.create_validating_admission_policy_binding(
            client.V1ValidatingAdmissionPolicyBinding.from_dict(
                binding("defaults", matchResources={"resourceRules": [RULE]})
            )
        ),
    )
    assert made["metadata"]["generation"] == 1
    assert made["spec"]["matchResources"]["matchPolicy"] == "Equivalent"
    assert made["spec"]["matchResources"]["resourceRules"][0]["scope"] == "*"


def test_update_needs_a_resource_version(api: client.AdmissionregistrationV1Api) -> None:
    api.create_validating_admission_policy(
        client.V1ValidatingAdmissionPolicy.from_dict(policy("rv"))
    )
    status, answer = post(api, policy("rv", failurePolicy="Ignore"), "PUT")
    assert status == 422
    assert causes(answer) == [
        ("metadata.resourceVersion", "Invalid value: 0: must be specified for an update")
    ]
    assert api.read_validating_admission_policy("rv").spec.failure_policy == "Fail"


def test_kubectl_get_columns(cluster: InProcessCluster) -> None:
    items = [
        policy("cols-plain"),
        policy("cols-params", paramKind={"apiVersion": "v1", "kind": "ConfigMap"}),
        binding("cols-none", policyName="cols-plain"),
        binding("cols-named", paramRef={"name": "limits", "parameterNotFoundAction": "Deny"}),
        binding(
            "cols-ns",
            paramRef={"name": "limits", "namespace": "team", "parameterNotFoundAction": "Allow"},
        ),
        binding(
            "cols-selected",
            paramRef={
                "selector": {
                    "matchLabels": {"b": "2", "a": "1"},
                    "matchExpressions": [{"key": "k", "operator": "In", "values": ["x", "y"]}],
                },
                "parameterNotFoundAction": "Deny",
            },
        ),
    ]
    cluster.kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    )
    out = cluster.kubectl("get", "validatingadmissionpolicies", "cols-plain", "cols-params").stdout
    lines = [line.split() for line in out.splitlines()]
    assert lines[0] == ["NAME", "VALIDATIONS", "PARAMKIND", "AGE"]
    assert [row[:3] for row in lines[1:]] == [
        ["cols-plain", "1", "<unset>"],
        ["cols-params", "1", "v1/ConfigMap"],
    ]
    names = ["cols-none", "cols-named", "cols-ns", "cols-selected"]
    out = cluster.kubectl("get", "validatingadmissionpolicybindings", *names).stdout
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "POLICYNAME", "PARAMREF", "AGE"]
    assert [line.split()[:3] for line in lines[1:4]] == [
        ["cols-none", "cols-plain", "<unset>"],
        ["cols-named", "p", "*/limits"],
        ["cols-ns", "p", "team/limits"],
    ]
    assert (
        "&LabelSelector{MatchLabels:map[string]string{a: 1,b: 2,},MatchExpressions:"
        "[]LabelSelectorRequirement{LabelSelectorRequirement{Key:k,Operator:In,Values:[x y],},},}"
    ) in lines[4]


def test_policy_validation_messages(api: client.AdmissionregistrationV1Api) -> None:
    body = policy("bad", failurePolicy="Sometimes")
    del body["spec"]["matchConstraints"]
    del body["spec"]["validations"]
    status, answer = post(api, body)
    assert status == 422
    assert causes(answer) == [
        (
            "spec.failurePolicy",
            'Unsupported value: "Sometimes": supported values: "Fail", "Ignore"',
        ),
        ("spec.matchConstraints", "Required value"),
        (
            "spec.validations",
            "Required value: validations or auditAnnotations must contain at least one item",
        ),
        (
            "spec.auditAnnotations",
            "Required value: validations or auditAnnotations must contain at least one item",
        ),
    ]
    assert answer["message"].startswith(
        'ValidatingAdmissionPolicy.admissionregistration.k8s.io "bad" is invalid: ['
    )


def test_expression_checks(api: client.AdmissionregistrationV1Api) -> None:
    body = policy(
        "cel",
        matchConstraints={"resourceRules": [{**RULE, "operations": []}]},
        variables=[
            {"name": "1x", "expression": "object.metadata"},
            {"name": "ok", "expression": "variables.later"},
        ],
        validations=[
            {"expression": "object.spec.replicas"},
            {"expression": "params.max > 1"},
            {
                "expression": "true",
                "messageExpression": "object.metadata.name",
                "reason": "Unauthorized",
            },
            {"expression": "true", "message": "two\nlines"},
        ],
        auditAnnotations=[{"key": "k", "valueExpression": "1"}],
    )
    status, answer = post(api, body)
    assert status == 422
    assert causes(answer) == [
        ("spec.matchConstraints.resourceRules[0].operations", "Required value"),
        ("spec.variables[0].name", 'Invalid value: "1x": name is not a valid CEL identifier'),
        (
            "spec.variables[1].expression",
            'Invalid value: "variables.later": compilation failed: ERROR: <input>:1:10: '
            "undefined field 'later'\n | variables.later\n | .........^",
        ),
        (
            "spec.validations[0].expression",
            'Invalid value: "object.spec.replicas": must evaluate to bool but got dyn',
        ),
        (
            "spec.validations[1].expression",
            'Invalid value: "params.max > 1": compilation failed: ERROR: <input>:1:1: undeclared '
            "reference to 'params' (in container '')\n | params.max > 1\n | ^",
        ),
        (
            "spec.validations[2].messageExpression",
            'Invalid value: "object.metadata.name": must evaluate to string but got dyn',
        ),
        (
            "spec.validations[2].reason",
            'Unsupported value: "Unauthorized": supported values: "Forbidden", "Invalid", '
            '"RequestEntityTooLarge"',
        ),
        (
            "spec.validations[3].message",
            'Invalid value: "two\\nlines": message must not contain line breaks',
        ),
        (
            "spec.auditAnnotations[0].valueExpression",
            'Invalid value: "1": must evaluate to one of [string null_type] but got int',
        ),
    ]
    # With a paramKind, params is declared; variables declared earlier are known with their types.
    fine = policy(
        "cel-ok",
        paramKind={"apiVersion": "v1", "kind": "ConfigMap"},
        variables=[{"name": "big", "expression": "object.spec.replicas > 3"}],
        validations=[
            {"expression": "variables.big", "messageExpression": "'max ' + params.data.max"},
            {"expression": "authorizer.requestResource.check('get').allowed()"},
        ],
    )
    assert post(api, fine)[0] == 201


def test_binding_validation_messages(api: client.AdmissionregistrationV1Api) -> None:
    body = binding(
        "bad-binding",
        policyName="",
        validationActions=["Deny", "Warn", "Deny", "Log"],
        paramRef={"name": "x", "selector": {}},
        matchResources={"resourceRules": [{**RULE, "apiGroups": []}]},
    )
    status, answer = post(api, body)
    assert status == 422
    assert causes(answer) == [
        ("spec.policyName", "Required value"),
        ("spec.paramRef.name", "Forbidden: name and selector are mutually exclusive"),
        ("spec.paramRef.selector", "Forbidden: name and selector are mutually exclusive"),
        ("spec.paramRef.parameterNotFoundAction", "Required value"),
        ("spec.matchResouces.resourceRules[0].apiGroups", "Required value"),
        ("spec.validationActions[2]", 'Duplicate value: "Deny"'),
        (
            "spec.validationActions[3]",
            'Unsupported value: "Log": supported values: "Audit", "Deny", "Warn"',
        ),
        (
            "spec.validationActions",
            'Invalid value: []admissionregistration.ValidationAction{"Deny", "Warn", "Deny", "Log"}: '
            "must not contain both Deny and Warn (repeating the same validation failure "
            "information in the API response and headers serves no purpose)",
        ),
    ]
    status, answer = post(
        api,
        binding("no-actions", validationActions=[], paramRef={"parameterNotFoundAction": "Deny"}),
    )
    assert causes(answer) == [
        ("spec.paramRef", "Required value: one of name or selector must be specified"),
        ("spec.validationActions", "Required value: at least one validation action is required"),
    ]
