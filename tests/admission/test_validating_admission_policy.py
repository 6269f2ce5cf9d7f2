"""ValidatingAdmissionPolicy enforcement, as upstream 1.37 enforces it.

Against one in-process cluster over HTTPS, with the real kubectl and the
official ``kubernetes`` client, following the upstream documentation's
examples: the replicas limit on Deployments (kubectl's printed denial, the
422 Status with its cause, nothing stored), params from a ConfigMap and
from a custom resource (by name and by selector, parameterNotFoundAction,
failurePolicy Ignore vs Fail with a missing param or paramKind), the
namespace and object selectors, Warn and Audit actions, messageExpression
and reason, variables, matchConditions, UPDATE and DELETE with
``oldObject``, the ``request`` and ``authorizer`` variables, evaluation
errors, and the exemption of the policy kinds themselves.

Every policy here is bound to a namespace of its test (by label) or to one
resource of it, so tests sharing the module's cluster do not see each
other's policies.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

Object = dict[str, Any]
GV = "admissionregistration.k8s.io/v1"


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def api_client(cluster: InProcessCluster) -> Iterator[client.ApiClient]:
    api = cluster.api_client()
    yield api
    api.close()


@pytest.fixture
def ns(cluster: InProcessCluster, api_client: client.ApiClient) -> Iterator[str]:
    """A fresh namespace labelled ``environment=<its name>`` (the policies' selector)."""
    name = f"vap-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api_client)
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"environment": name}))
    )
    yield name


def apply(cluster: InProcessCluster, *objects: Object) -> None:
    body = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(body))


def policy(name: str, validations: list[Object], **spec: Any) -> Object:
    rules = spec.pop(
        "rules",
        [
            {
                "apiGroups": ["apps"],
                "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["deployments"],
            }
        ],
    )
    body: Object = {
        "apiVersion": GV,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {"matchConstraints": {"resourceRules": rules}, "validations": validations, **spec},
    }
    return body


def binding(name: str, policy_name: str, ns: str | None, **spec: Any) -> Object:
    body: Object = {
        "apiVersion": GV,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": policy_name, "validationActions": ["Deny"], **spec},
    }
    if ns is not None:
        body["spec"]["matchResources"] = {"namespaceSelector": {"matchLabels": {"environment": ns}}}
    return body


def deployment(name: str, replicas: int, **labels: str) -> Object:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
            },
        },
    }


def create_raw(api_client: client.ApiClient, ns: str, body: Object) -> tuple[int, Object, Any]:
    """POST ``body`` (a Deployment or ConfigMap) and return (status, JSON body, headers)."""
    plural = {"Deployment": "deployments", "ConfigMap": "configmaps"}[body["kind"]]
    prefix = "/apis/apps/v1" if body["kind"] == "Deployment" else "/api/v1"
    method, url, headers, data, _ = api_client.param_serialize(
        "POST",
        f"{prefix}/namespaces/{ns}/{plural}",
        header_params={"Content-Type": "application/json", "Accept": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api_client.call_api(method, url, headers, data)
    response.read()
    return response.status, json.loads(response.data or b"{}"), response.getheaders()


def kubectl_create(cluster: InProcessCluster, ns: str, body: Object) -> Any:
    return cluster.kubectl("create", "-n", ns, "-f", "-", stdin=json.dumps(body), check=False)


def uid() -> str:
    return uuid.uuid4().hex[:6]


# ----- the replicas limit (upstream's first example) ------------------------------------


def test_replicas_limit_denies_as_upstream_prints_it(
    cluster: InProcessCluster, api_client: client.ApiClient, ns: str
) -> None:
    p, b = f"demo-policy-{uid()}.example.com", f"demo-binding-{uid()}.example.com"
    apply(
        cluster,
        policy(p, [{"expression": "object.spec.replicas <= 5"}]),
        binding(b, p, ns),
    )
    denied = kubectl_create(cluster, ns, deployment("nginx", 6))
    assert denied.returncode == 1
    assert denied.stderr.strip() == (
        f"The deployments \"nginx\" is invalid: : ValidatingAdmissionPolicy '{p}' with binding "
        f"'{b}' denied request: failed expression: object.spec.replicas <= 5"
    )
    status, body, _ = create_raw(api_client, ns, deployment("nginx", 7))
    cause = (
        f"ValidatingAdmissionPolicy '{p}' with binding '{b}' denied request: "
        "failed expression: object.spec.replicas <= 5"
    )
    message = f'deployments.apps "nginx" is forbidden: {cause}'
    assert status == 422
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Invalid",
        "details": {
            "name": "nginx",
            "group": "apps",
            "kind": "deployments",
            "causes": [{"message": cause}],
        },
        "code": 422,
    }
    apps = client.AppsV1Api(api_client)
    assert apps.list_namespaced_deployment(ns).items == []  # storage unchanged
    kubectl_create(cluster, ns, deployment("nginx", 5)).check_returncode()
    # An update past the limit is refused too; the stored object keeps 5 replicas.
    patched = cluster.kubectl(
        "patch", "-n", ns, "deployment/nginx", "-p", '{"spec":{"replicas":9}}', check=False
    )
    assert patched.returncode == 1
    assert "failed expression: object.spec.replicas <= 5" in patched.stderr
    assert apps.read_namespaced_deployment("nginx", ns).spec.replicas == 5
    # deployments/scale is another resource: a rule for "deployments" does not match it.
    cluster.kubectl("scale", "-n", ns, "deployment/nginx", "--replicas=9")
    assert apps.read_namespaced_deployment("nginx", ns).spec.replicas == 9


def test_binding_without_its_policy_and_other_namespaces_are_not_affected(
    cluster: InProcessCluster, api_client: client.ApiClient, ns: str
) -> None:
    p = f"later-{uid()}"
    # A binding whose policy does not exist yet does nothing.
    apply(cluster, binding(f"b-{p}", p, ns))
    assert create_raw(api_client, ns, deployment("early", 50))[0] == 201
    apply(cluster, policy(p, [{"expression": "object.spec.replicas <= 5"}]))
    assert create_raw(api_client, ns, deployment("late", 50))[0] == 422
    # The namespace selector keeps the policy out of other namespaces.
    assert create_raw(api_client, "default", deployment(f"elsewhere-{uid()}", 50))[0] == 201


# ----- params ------------------------------------------------------------------------------


def test_params_from_a_config_map(
    cluster: InProcessCluster, api_client: client.ApiClient, ns: str
) -> None:
    p = f"max-replicas-{uid()}"
    limits = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "limits", "namespace": ns},
        "data": {"maxReplicas": "3"},
    }
    validation = {
        "expression": "object.spec.replicas <= int(params.data.maxReplicas)",
        "messageExpression": "'object.spec.replicas must be no greater than ' + "
        "string(params.data.maxReplicas)",
        "reason": "Forbidden",
    }
    ref = {"name": "limits", "namespace": ns, "parameterNotFoundAction": "Deny"}
    apply(
        cluster,
        limits,
        policy(p, [validation], paramKind={"apiVersion": "v1", "kind": "ConfigMap"}),
        binding(f"b-{p}", p, ns, paramRef=ref),
    )
    status, body, _ = create_raw(api_client, ns, deployment("four", 4))
    assert (status, body["reason"]) == (403, "Forbidden")
    assert body["message"].endswith(
        f"with binding 'b-{p}' denied request: object.spec.replicas must be no greater than 3"
    )
    assert create_raw(api_client, ns, deployment("three", 3))[0] == 201
    # The param gone: Deny means every request is refused with upstream's message.
    cluster.kubectl("delete", "configmap", "-n", ns, "limits")
    status, body, _ = create_raw(api_client, ns, deployment("two", 2))
    assert status == 422
    assert body["message"] == (
        f"deployments.apps \"two\" is forbidden: ValidatingAdmissionPolicy '{p}' with binding "
        f"'b-{p}' denied request: failed to configure binding: no params found for policy "
        "binding with `Deny` parameterNotFoundAction"
    )
    # Allow instead: nothing to evaluate, the request is admitted.
    ref["parameterNotFoundAction"] = "Allow"
    apply(cluster, binding(f"b-{p}", p, ns, paramRef=ref))
    assert create_raw(api_client, ns, deployment("two", 2))[0] == 201


def test_params_by_selector_evaluate_once_per_param(
    cluster: InProcessCluster, api_client: client.ApiClient, ns: str
) -> None:
    p = f"selected-{uid()}"
    maps = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"limit-{n}", "namespace": ns, "labels": {"limit": "yes"}},
            "data": {"max": str(n)},
        }
        for n in (4, 8)
    ]
    validation = {
        "expression": "object.spec.replicas <= int(params.data.max)",
        "messageExpression": "'over ' + params.data.max",
    }
    ref = {"selector": {"matchLabels": {"limit": "yes"}}, "parameterNotFoundAction": "Deny"}
    apply(
        cluster,
        *maps,
        policy(p, [validation], paramKind={"apiVersion": "v1", "kind": "ConfigMap"}),
        binding(f"b-{p}", p, ns, paramRef=ref, validationActions=["Warn"]),
    )
    # Warn: admitted, one warning per failing param.
    status, _, headers = create_raw(api_client, ns, deployment("six", 6))
    assert status == 201
    warnings = [v for k, v in headers.items() if k.lower() == "warning"]
    assert warnings == [
        f"299 - \"Validation failed for ValidatingAdmissionPolicy '{p}' with binding 'b-{p}': "
        'over 4"'
    ]
    status, _, headers = create_raw(api_client, ns, deployment("nine", 9))
    joined = ",".join(v for k, v in headers.items() if k.lower() == "warning")
    assert "over 4" in joined and "over 8" in joined


def test_params_from_a_custom_resource_and_a_missing_param_kind(
    cluster: InProcessCluster, api_client: client.ApiClient, ns: str
) -> None:
    group = f"rules{uid()}.example.com"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"replicalimits.{group}"},
        "spec": {
            "group": group,
            "scope": "Cluster",
            "names": {
                "plural": "replicalimits",
                "singular": "replicalimit",
                "kind": "ReplicaLimit",
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"maxReplicas": {"type": "integer"}},
                        }
                    },
                }
            ],
        },
    }
    p = f"crd-params-{uid()}"
    kind = {"apiVersion": f"{group}/v1", "kind": "ReplicaLimit"}
    validation = {"expression": "object.spec.replicas <= params.maxReplicas"}
    ref = {"name": "demo", "parameterNotFoundAction": "Deny"}
    # Before the CRD exists, the policy's paramKind names nothing: Fail denies.
    apply(cluster, policy(p, [validation], paramKind=kind), binding(f"b-{p}", p, ns, paramRef=ref))
    status, body, _ = create_raw(api_client, ns, deployment("before", 1))
    assert status == 422
    assert body["message"] == (
        f"deployments.apps \"before\" is forbidden: ValidatingAdmissionPolicy '{p}' denied "
        f"request: failed to configure policy: failed to find resource referenced by paramKind: "
        f"'{group}/v1, Kind=ReplicaLimit'"
    )
    # ... and Ignore admits.
    apply(cluster, policy(p, [validation], paramKind=kind, failurePolicy="Ignore"))
    assert create_raw(api_client, ns, deployment("ignored", 1))[0] == 201
    apply(cluster, policy(p, [validation], paramKind=kind), crd)
    cluster.kubectl("wait", "--for=condition=Established", f"crd/replicalimits.{group}")
    apply(cluster, {**kind, "metadata": {"name": "demo"}, "maxReplicas": 2})
    assert create_raw(api_client, ns, deployment("two", 2))[0] == 201
    status, body, _ = create_raw(api_client, ns, deployment("three", 3))
    assert status == 422
    assert body["message"].endswith("failed expression: object.spec.replicas <= params.maxReplicas")


# ----- actions, selectors, expressions ---------------------------------------------------


def test_warn_and_audit_admit_with_a_warning(cluster: InProcessCluster, ns: str) -> None:
    p = f"warned-{uid()}"
    apply(
        cluster,
        policy(p, [{"expression": "object.spec.replicas <= 5", "message": "too many replicas"}]),
        binding(f"b-{p}", p, ns, validationActions=["Warn", "Audit"]),
    )
    created = kubectl_create(cluster, ns, deployment("many", 10))
    assert created.returncode == 0, created.stderr
    assert created.stderr.strip() == (
        f"Warning: Validation failed for ValidatingAdmissionPolicy '{p}' with binding "
        f"'b-{p}': too many replicas"
    )
    assert cluster.kubectl("get", "-n", ns, "deployment", "many", "-o", "name").stdout.strip()


def test_object_selector_and_exclude_rules(
    cluster: InProcessCluster, api_client: client.ApiClient, ns: str
) -> None:
    p = f"selected-objects-{uid()}"
    body = binding(f"b-{p}", p, ns)
    body["spec"]["matchResources"]["objectSelector"] = {"matchLabels": {"checked": "yes"}}
    apply(cluster, policy(p, [{"expression": "object.spec.replicas <= 1"}]), body)
    assert create_raw(api_client, ns, deployment("free", 3))[0] == 201
    assert create_raw(api_client, ns, deployment("checked", 3, checked="yes"))[0] == 422
    # Excluding deployments in the policy turns it off.
    excluded = policy(p, [{"expression": "object.spec.replicas <= 1"}])
    excluded["spec"]["matchConstraints"]["excludeResourceRules"] = [
        {
            "apiGroups": ["apps"],
            "apiVersions": ["*"],
            "operations": ["*"],
            "resources": ["deployments"],
        }
    ]
    apply(cluster, excluded)
    assert create_raw(api_client, ns, deployment("checked", 3, checked="yes"))[0] == 201


CONFIG_MAP_RULES = [
    {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "operations": ["CREATE", "UPDATE", "DELETE"],
        "resources": ["configmaps"],
    }
]


def config_map(ns: str, name: str, data: dict[str, str], **labels: str) -> Object:
    meta: Object = {"name": name, "namespace": ns}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def test_variables_match_conditions_and_message_expression(
    cluster: InProcessCluster, api_client: client.ApiClient, ns: str
) -> None:
    p = f"composed-{uid()}"
    spec = {
        "rules": CONFIG_MAP_RULES,
        "variables": [
            {"name": "data", "expression": "has(object.data) ? object.data : {}"},
            {
                "name": "color",
                "expression": "'color' in variables.data ? variables.data.color : ''",
            },
        ],
        "matchConditions": [
            {"name": "not-exempt", "expression": "!object.metadata.name.startsWith('exempt-')"}
        ],
    }
    validation = {
        "expression": "variables.color in ['red', 'blue']",
        "messageExpression": "'color ' + variables.color + ' of ' + request.name + ' is not allowed'",
    }
    apply(
        cluster,
        policy(p, [validation], rules=spec.pop("rules"), **spec),
        binding(f"b-{p}", p, ns),
    )
    status, body, _ = create_raw(api_client, ns, config_map(ns, "paint", {"color": "green"}))
    assert status == 422
    assert body["message"] == (
        f"configmaps \"paint\" is forbidden: ValidatingAdmissionPolicy '{p}' with binding "
        f"'b-{p}' denied request: color green of paint is not allowed"
    )
    # With generateName the request carries no name (request.name is absent, so the message
    # expression fails and the default message is used); the refusal names the generated one.
    generated = config_map(ns, "", {"color": "green"})
    generated["metadata"] = {"generateName": "paint-", "namespace": ns}
    status, body, _ = create_raw(api_client, ns, generated)
    assert status == 422
    assert re.fullmatch(
        r'configmaps "paint-[a-z0-9]{5}" is forbidden: .* denied request: '
        r"failed expression: variables\.color in \['red', 'blue'\]",
        body["message"],
    )
    assert create_raw(api_client, ns, config_map(ns, "paint", {"color": "red"}))[0] == 201
    assert create_raw(api_client, ns, config_map(ns, "exempt-x", {"color": "green"}))[0] == 201


def test_update_and_delete_see_old_object(
    cluster: InProcessCluster, api_client: client.ApiClient, ns: str
) -> None:
    p = f"immutable-{uid()}"
    validations = [
        {
            "expression": "request.operation != 'UPDATE' || object.data.v == oldObject.data.v",
            "message": "v is immutable",
        },
        {
            "expression": "request.operation != 'DELETE' || (object == null && "
            "!('protected' in oldObject.metadata.labels))",
            "message": "protected",
            "reason": "Forbidden",
        },
    ]
    apply(cluster, policy(p, validations, rules=CONFIG_MAP_RULES), binding(f"b-{p}", p, ns))
    apply(cluster, config_map(ns, "keep", {"v": "1"}, protected="true"))
    core = client.CoreV1Api(api_client)
    with pytest.raises(client.ApiException) as refused:
        core.patch_namespaced_config_map("keep", ns, {"data": {"v": "2"}})
    assert refused.value.status == 422
    assert json.loads(refused.value.body)["message"].endswith("denied request: v is immutable")
    deleted = cluster.kubectl("delete", "configmap", "-n", ns, "keep", check=False)
    assert deleted.returncode == 1
    assert deleted.stderr.strip() == (
        f'Error from server (Forbidden): configmaps "keep" is forbidden: ValidatingAdmissionPolicy '
        f"'{p}' with binding 'b-{p}' denied request: protected"
    )
    assert core.read_namespaced_config_map("keep", ns).data == {"v": "1"}
    apply(cluster, config_map(ns, "loose", {"v": "1"}, plain="yes"))
    cluster.kubectl("delete", "configmap", "-n", ns, "loose")


def test_request_authorizer_and_namespace_object(
    cluster: InProcessCluster, api_client: client.ApiClient, ns: str
) -> None:
    p = f"who-{uid()}"
    validations = [
        {"expression": "'system:masters' in request.userInfo.groups"},
        {
            "expression": "authorizer.group('').resource('secrets').namespace('x').check('list').allowed()"
        },
        {
            "expression": "!authorizer.serviceAccount('default', 'nobody').group('')"
            ".resource('secrets').check('list').allowed()"
        },
        {"expression": "authorizer.requestResource.check('create').allowed()"},
        {"expression": "namespaceObject.metadata.labels.environment == request.namespace"},
        {
            "expression": "request.kind.kind == 'ConfigMap' && request.resource.resource == 'configmaps'"
        },
        {"expression": "object.data.x == 'y'", "message": "x must be y"},
    ]
    apply(cluster, policy(p, validations, rules=CONFIG_MAP_RULES), binding(f"b-{p}", p, ns))
    status, body, _ = create_raw(api_client, ns, config_map(ns, "who", {"x": "z"}))
    assert (status, body["message"].rsplit(": ", 1)[-1]) == (422, "x must be y")
    assert create_raw(api_client, ns, config_map(ns, "who", {"x": "y"}))[0] == 201


def test_evaluation_errors_follow_the_failure_policy(
    cluster: InProcessCluster, api_client: client.ApiClient, ns: str
) -> None:
    p = f"broken-{uid()}"
    validation = {"expression": "object.data.missing == 'x'"}
    apply(cluster, policy(p, [validation], rules=CONFIG_MAP_RULES), binding(f"b-{p}", p, ns))
    status, body, _ = create_raw(api_client, ns, config_map(ns, "a", {"present": "1"}))
    assert status == 422
    assert body["message"] == (
        f"configmaps \"a\" is forbidden: ValidatingAdmissionPolicy '{p}' with binding "
        f"'b-{p}' denied request: expression 'object.data.missing == 'x'' resulted in error: "
        "no such key: missing"
    )
    apply(cluster, policy(p, [validation], rules=CONFIG_MAP_RULES, failurePolicy="Ignore"))
    assert create_raw(api_client, ns, config_map(ns, "a", {"present": "1"}))[0] == 201


def test_policy_kinds_are_exempt(cluster: InProcessCluster) -> None:
    p = f"everything-{uid()}"
    rules = [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]}]
    apply(
        cluster,
        policy(p, [{"expression": "false"}], rules=rules),
        binding(f"b-{p}", p, None, matchResources={"resourceRules": CONFIG_MAP_RULES}),
    )
    try:
        # Policy and binding writes pass, though the policy denies everything it matches.
        apply(cluster, policy(p, [{"expression": "false", "message": "no"}], rules=rules))
        refused = cluster.kubectl("create", "configmap", f"c-{uid()}", "-n", "default", check=False)
        assert "denied request: no" in refused.stderr
    finally:
        cluster.kubectl("delete", "validatingadmissionpolicybinding", f"b-{p}")
        cluster.kubectl("delete", "validatingadmissionpolicy", p)


def test_match_policy_equivalent_and_exact(
    cluster: InProcessCluster, api_client: client.ApiClient, ns: str
) -> None:
    p = f"versions-{uid()}"
    apply(
        cluster, policy(p, [{"expression": "object.spec.replicas <= 1"}]), binding(f"b-{p}", p, ns)
    )
    legacy = deployment("legacy", 3)
    legacy["apiVersion"] = "extensions/v1beta1"
    method, url, headers, data, _ = api_client.param_serialize(
        "POST",
        f"/apis/extensions/v1beta1/namespaces/{ns}/deployments",
        header_params={"Content-Type": "application/json", "Accept": "application/json"},
        body=legacy,
        auth_settings=["BearerToken"],
    )
    # Equivalent (the default): a rule for apps/v1 matches the same resource in another version.
    response = api_client.call_api(method, url, headers, data)
    response.read()
    assert response.status == 422
    assert json.loads(response.data)["message"].startswith(
        'deployments.extensions "legacy" is forbidden: ValidatingAdmissionPolicy'
    )
    exact = policy(p, [{"expression": "object.spec.replicas <= 1"}])
    exact["spec"]["matchConstraints"]["matchPolicy"] = "Exact"
    apply(cluster, exact)
    response = api_client.call_api(method, url, headers, data)
    response.read()
    assert response.status == 201


def test_expressions_see_the_object_in_the_version_the_rule_matched(
    cluster: InProcessCluster, api_client: client.ApiClient, ns: str
) -> None:
    """Upstream converts the request's objects to the kind a policy matched before evaluating."""
    p = f"converted-{uid()}"
    legacy_rules = [
        {
            "apiGroups": ["extensions"],
            "apiVersions": ["v1beta1"],
            "operations": ["CREATE"],
            "resources": ["deployments"],
        }
    ]
    validations = [
        {
            "expression": "request.requestKind.group == 'apps' && request.kind.group == "
            "'extensions' && request.resource.group == 'extensions' && "
            "object.apiVersion == 'extensions/v1beta1'",
            "message": "not seen as extensions/v1beta1",
        },
        {"expression": "object.spec.replicas <= 1", "message": "too many"},
    ]
    apply(cluster, policy(p, validations, rules=legacy_rules), binding(f"b-{p}", p, ns))
    # An apps/v1 request matches the extensions/v1beta1 rule (matchPolicy Equivalent).
    status, body, _ = create_raw(api_client, ns, deployment("many", 3))
    assert (status, body["message"].rsplit(": ", 1)[-1]) == (422, "too many")
    assert create_raw(api_client, ns, deployment("one", 1))[0] == 201


def test_a_scale_request_is_evaluated_as_a_scale(cluster: InProcessCluster, ns: str) -> None:
    p = f"scale-{uid()}"
    scale_rules = [
        {
            "apiGroups": ["apps"],
            "apiVersions": ["v1"],
            "operations": ["UPDATE"],
            "resources": ["deployments/scale"],
        }
    ]
    validations = [
        {
            "expression": "request.kind.kind == 'Scale' && object.kind == 'Scale' && "
            "oldObject.kind == 'Scale' && request.subResource == 'scale'",
            "message": "not a Scale",
        },
        {"expression": "object.spec.replicas <= 3", "message": "at most 3"},
    ]
    apply(cluster, policy(p, validations, rules=scale_rules), binding(f"b-{p}", p, ns))
    kubectl_create(cluster, ns, deployment("web", 1)).check_returncode()
    cluster.kubectl("scale", "-n", ns, "deployment/web", "--replicas=2")
    refused = cluster.kubectl("scale", "-n", ns, "deployment/web", "--replicas=5", check=False)
    assert refused.returncode == 1
    assert refused.stderr.rstrip().endswith("denied request: at most 3")


def test_a_namespace_create_has_its_own_name_as_request_namespace(
    cluster: InProcessCluster, ns: str
) -> None:
    """Upstream's create handler sets a new Namespace's name as the request's namespace."""
    p = f"namespaces-{uid()}"
    rules = [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE"],
            "resources": ["namespaces"],
        }
    ]
    validations = [{"expression": "false", "messageExpression": "'namespace=' + request.namespace"}]
    apply(cluster, policy(p, validations, rules=rules), binding(f"b-{p}", p, ns))
    # The binding selects namespaces labelled environment=<ns>: a new one judged by its own labels.
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": f"{ns}-child", "labels": {"environment": ns}},
    }
    refused = cluster.kubectl("create", "-f", "-", stdin=json.dumps(body), check=False)
    assert refused.returncode == 1
    assert refused.stderr.rstrip().endswith(f"denied request: namespace={ns}-child")


def test_webhook_configurations_are_policed(cluster: InProcessCluster) -> None:
    """Upstream's policy plugin skips only the policy kinds, not the webhook configurations."""
    p, name = f"hooks-{uid()}", f"guarded-{uid()}"
    rules = [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "apiVersions": ["v1"],
            "operations": ["CREATE"],
            "resources": ["validatingwebhookconfigurations"],
            "resourceNames": [name],
        }
    ]
    apply(
        cluster,
        policy(p, [{"expression": "false", "message": "no webhooks here"}], rules=rules),
        binding(f"b-{p}", p, None),
    )
    try:
        body = {
            "apiVersion": GV,
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
        }
        refused = cluster.kubectl("create", "-f", "-", stdin=json.dumps(body), check=False)
        assert refused.returncode == 1
        assert refused.stderr.rstrip().endswith(
            f"ValidatingAdmissionPolicy '{p}' with binding 'b-{p}' denied request: no webhooks here"
        )
    finally:
        cluster.kubectl("delete", "validatingadmissionpolicybinding", f"b-{p}")
        cluster.kubectl("delete", "validatingadmissionpolicy", p)
