"""Validating and mutating webhook configurations served as upstream 1.37 serves them.

Against one in-process cluster over HTTPS, with the real kubectl and the
official ``kubernetes`` client: discovery (``kubectl api-resources``), create,
get, list and apply, the defaults a client reads back, ``kubectl get``'s
NAME WEBHOOKS AGE, generation (1 on create, +1 only when ``webhooks``
changes), updates that must carry a resourceVersion, and upstream's 422s
(message and causes) for the webhook rules. The rule-by-rule messages and
the update ratchets are checked without a server in
``test_webhook_configurations_validation.py``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

Object = dict[str, Any]
GROUP_VERSION = "admissionregistration.k8s.io/v1"
MUTATING = "MutatingWebhookConfiguration"
VALIDATING = "ValidatingWebhookConfiguration"


@pytest.fixture(scope="module")
def api(kajitori_module_cluster: InProcessCluster) -> Iterator[client.AdmissionregistrationV1Api]:
    api_client = kajitori_module_cluster.api_client()
    yield client.AdmissionregistrationV1Api(api_client)
    api_client.close()


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


def webhook(name: str = "check.example.com", **overrides: Any) -> Object:
    hook: Object = {
        "name": name,
        "clientConfig": {"service": {"namespace": "default", "name": "hooks"}},
        "rules": [
            {
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
            }
        ],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    }
    hook.update(overrides)
    return hook


def configuration(kind: str, name: str, *hooks: Object) -> Object:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": kind,
        "metadata": {"name": name},
        "webhooks": list(hooks) or [webhook()],
    }


def mutating_model(body: Object) -> client.V1MutatingWebhookConfiguration:
    model = client.V1MutatingWebhookConfiguration.from_dict(body)
    assert model is not None
    return model


def validating_model(body: Object) -> client.V1ValidatingWebhookConfiguration:
    model = client.V1ValidatingWebhookConfiguration.from_dict(body)
    assert model is not None
    return model


def create(api: client.AdmissionregistrationV1Api, body: Object) -> Object:
    """Create through the official client's typed call; the stored object as a dict."""
    if body["kind"] == MUTATING:
        made: Any = api.create_mutating_webhook_configuration(mutating_model(body))
    else:
        made = api.create_validating_webhook_configuration(validating_model(body))
    return as_dict(api, made)


def read(api: client.AdmissionregistrationV1Api, kind: str, name: str) -> Object:
    if kind == MUTATING:
        return as_dict(api, api.read_mutating_webhook_configuration(name))
    return as_dict(api, api.read_validating_webhook_configuration(name))


def as_dict(api: client.AdmissionregistrationV1Api, model: Any) -> Object:
    serialized: Object = api.api_client.sanitize_for_serialization(model)
    return serialized


def post_raw(api: client.AdmissionregistrationV1Api, body: Object) -> tuple[int, Object]:
    """POST ``body`` past the client's own checks (it refuses what the server must judge)."""
    plural = body["kind"].lower() + "s"
    method, url, headers, data, _ = api.api_client.param_serialize(
        "POST",
        f"/apis/{GROUP_VERSION}/{plural}",
        header_params={"Content-Type": "application/json", "Accept": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.api_client.call_api(method, url, headers, data)
    response.read()
    answer: Object = json.loads(response.data or b"{}")
    return response.status, answer


def status_of(exc: client.ApiException) -> Object:
    body: Object = json.loads(exc.body or "{}")
    assert body["kind"] == "Status" and body["code"] == exc.status
    return body


def test_api_resources_lists_both_kinds_as_upstream(cluster: InProcessCluster) -> None:
    out = cluster.kubectl(
        "api-resources", "--api-group=admissionregistration.k8s.io", "-o", "wide"
    ).stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:] if line.strip()}
    verbs = "create,delete,deletecollection,get,list,patch,update,watch"
    assert rows["validatingwebhookconfigurations"] == [
        "validatingwebhookconfigurations",
        GROUP_VERSION,
        "false",
        VALIDATING,
        verbs,
        "api-extensions",
    ]
    assert rows["mutatingwebhookconfigurations"][1:4] == [
        GROUP_VERSION,
        "false",
        MUTATING,
    ]
    assert rows["mutatingwebhookconfigurations"][-1] == "api-extensions"


def test_create_fills_upstream_defaults(api: client.AdmissionregistrationV1Api) -> None:
    created = create(api, configuration(MUTATING, "defaults"))
    hook = created["webhooks"][0]
    assert created["metadata"]["generation"] == 1
    assert {k: hook[k] for k in hook if k not in ("name", "rules", "clientConfig")} == {
        "admissionReviewVersions": ["v1"],
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "namespaceSelector": {},
        "objectSelector": {},
        "reinvocationPolicy": "Never",
        "sideEffects": "None",
        "timeoutSeconds": 10,
    }
    assert hook["rules"][0]["scope"] == "*"
    assert hook["clientConfig"]["service"]["port"] == 443
    # A validating webhook has no reinvocation policy.
    validating = create(api, configuration(VALIDATING, "defaults"))
    assert "reinvocationPolicy" not in validating["webhooks"][0]
    assert validating["webhooks"][0]["timeoutSeconds"] == 10


def test_kubectl_get_shows_webhook_count(cluster: InProcessCluster) -> None:
    body = configuration(
        VALIDATING,
        "counted",
        webhook("a.example.com"),
        webhook("b.example.com"),
    )
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(body))
    out = cluster.kubectl("get", "validatingwebhookconfiguration", "counted").stdout.split("\n")
    assert out[0].split() == ["NAME", "WEBHOOKS", "AGE"]
    assert out[1].split()[:2] == ["counted", "2"]
    listed = cluster.kubectl("get", "validatingwebhookconfigurations", "-o", "name").stdout
    assert "validatingwebhookconfiguration.admissionregistration.k8s.io/counted" in listed


def test_generation_counts_webhook_changes_only(
    cluster: InProcessCluster, api: client.AdmissionregistrationV1Api
) -> None:
    body = configuration(MUTATING, "generations")
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(body))
    labelled = copy.deepcopy(body)
    labelled["metadata"]["labels"] = {"team": "a"}
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(labelled))
    assert read(api, MUTATING, "generations")["metadata"]["generation"] == 1
    changed = copy.deepcopy(labelled)
    changed["webhooks"][0]["timeoutSeconds"] = 5
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(changed))
    stored = read(api, MUTATING, "generations")
    assert (stored["metadata"]["generation"], stored["webhooks"][0]["timeoutSeconds"]) == (2, 5)
    # Re-sending what is stored (defaults included) changes nothing.
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(changed))
    assert read(api, MUTATING, "generations")["metadata"]["generation"] == 2


def test_update_needs_a_resource_version(api: client.AdmissionregistrationV1Api) -> None:
    create(api, configuration(VALIDATING, "unconditional"))
    body = configuration(VALIDATING, "unconditional")
    with pytest.raises(client.ApiException) as caught:
        api.replace_validating_webhook_configuration("unconditional", validating_model(body))
    status = status_of(caught.value)
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: 0: must be specified for an update",
            "field": "metadata.resourceVersion",
        }
    ]
    stored = read(api, VALIDATING, "unconditional")
    body["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"]
    body["webhooks"][0]["failurePolicy"] = "Ignore"
    replaced = as_dict(
        api,
        api.replace_validating_webhook_configuration("unconditional", validating_model(body)),
    )
    assert (replaced["webhooks"][0]["failurePolicy"], replaced["metadata"]["generation"]) == (
        "Ignore",
        2,
    )


def test_invalid_create_answers_upstreams_422(api: client.AdmissionregistrationV1Api) -> None:
    hook = webhook(
        "short.name",
        sideEffects="Some",
        timeoutSeconds=31,
        clientConfig={"url": "http://user@example.com/x?q=1#frag"},
        admissionReviewVersions=["v2"],
    )
    hook["rules"][0]["operations"] = ["CREATE", "*"]
    with pytest.raises(client.ApiException) as caught:
        create(api, configuration(VALIDATING, "broken", hook, webhook("short.name")))
    status = status_of(caught.value)
    assert caught.value.status == 422 and status["reason"] == "Invalid"
    url_form = "; desired format: https://host[/path]"
    assert [(c["field"], c["message"]) for c in status["details"]["causes"]] == [
        (
            "webhooks[0].name",
            'Invalid value: "short.name": should be a domain with at least three segments '
            "separated by dots",
        ),
        (
            "webhooks[0].rules[0].operations",
            'Invalid value: ["CREATE","*"]: if \'*\' is present, must not specify other operations',
        ),
        (
            "webhooks[0].sideEffects",
            'Unsupported value: "Some": supported values: "None", "NoneOnDryRun"',
        ),
        (
            "webhooks[0].timeoutSeconds",
            "Invalid value: 31: the timeout value must be between 1 and 30 seconds",
        ),
        (
            "webhooks[0].clientConfig.url",
            f"Invalid value: \"http\": 'https' is the only allowed URL scheme{url_form}",
        ),
        (
            "webhooks[0].clientConfig.url",
            'Invalid value: "user": user information is not permitted in the URL',
        ),
        (
            "webhooks[0].clientConfig.url",
            'Invalid value: "frag": fragments are not permitted in the URL',
        ),
        (
            "webhooks[0].clientConfig.url",
            'Invalid value: "q=1": query parameters are not permitted in the URL',
        ),
        (
            "webhooks[0].admissionReviewVersions",
            'Invalid value: ["v2"]: must include at least one of v1, v1beta1',
        ),
        (
            "webhooks[1].name",
            'Invalid value: "short.name": should be a domain with at least three segments '
            "separated by dots",
        ),
        ("webhooks[1].name", 'Duplicate value: "short.name"'),
    ]
    assert status["message"].startswith(
        'ValidatingWebhookConfiguration.admissionregistration.k8s.io "broken" is invalid: ['
        'webhooks[0].name: Invalid value: "short.name"'
    )


def test_mutating_rules_and_missing_fields(api: client.AdmissionregistrationV1Api) -> None:
    hook = webhook(reinvocationPolicy="Always", clientConfig={})
    del hook["sideEffects"]
    del hook["admissionReviewVersions"]
    hook["matchConditions"] = [
        {"name": "bad name!", "expression": "object.metadata.name == "},
        {"name": "ok", "expression": "nope.x == 1"},
    ]
    code, status = post_raw(api, configuration(MUTATING, "broken", hook))
    assert (code, status["reason"]) == (422, "Invalid")
    causes = [(c["field"], c["message"]) for c in status["details"]["causes"]]
    fields = [f for f, _ in causes]
    assert fields == [
        "webhooks[0].sideEffects",
        "webhooks[0].reinvocationPolicy",
        "webhooks[0].clientConfig",
        "webhooks[0].matchConditions[0].expression",
        "webhooks[0].matchConditions[0].name",
        "webhooks[0].matchConditions[1].expression",
        "webhooks[0].admissionReviewVersions",
    ]
    assert causes[0][1] == "Required value: must specify one of None, NoneOnDryRun"
    assert causes[1][1] == 'Unsupported value: "Always": supported values: "IfNeeded", "Never"'
    assert causes[2][1] == "Required value: exactly one of url or service is required"
    assert causes[3][1].startswith(
        'Invalid value: "object.metadata.name ==": compilation failed: ERROR: <input>:1:'
    )
    assert "Syntax error" in causes[3][1]
    assert causes[5][1] == (
        'Invalid value: "nope.x == 1": compilation failed: ERROR: <input>:1:1: '
        "undeclared reference to 'nope' (in container '')\n | nope.x == 1\n | ^"
    )
    assert causes[6][1] == "Required value: must specify one of v1, v1beta1"


def test_bad_ca_bundle_is_a_decode_error(api: client.AdmissionregistrationV1Api) -> None:
    hook = webhook(clientConfig={"url": "https://example.com/hook", "caBundle": "!!"})
    code, status = post_raw(api, configuration(VALIDATING, "bad-ca", hook))
    assert (code, status["reason"]) == (400, "BadRequest")
    assert status["message"] == (
        'ValidatingWebhookConfiguration in version "v1" cannot be handled as a '
        "ValidatingWebhookConfiguration: illegal base64 data at input byte 0"
    )


def test_update_is_validated(api: client.AdmissionregistrationV1Api) -> None:
    create(api, configuration(MUTATING, "updated"))
    patch = [{"op": "replace", "path": "/webhooks/0/rules/0/scope", "value": "Global"}]
    with pytest.raises(client.ApiException) as caught:
        api.patch_mutating_webhook_configuration("updated", patch)
    causes = status_of(caught.value)["details"]["causes"]
    assert causes == [
        {
            "reason": "FieldValueNotSupported",
            "message": 'Unsupported value: "Global": supported values: "*", "Cluster", '
            '"Namespaced"',
            "field": "webhooks[0].rules[0].scope",
        }
    ]
    stored = read(api, MUTATING, "updated")
    assert stored["webhooks"][0]["rules"][0]["scope"] == "*"
    assert stored["metadata"]["generation"] == 1


def get_raw(api: client.AdmissionregistrationV1Api, path: str, accept: str) -> Object:
    method, url, headers, _, _ = api.api_client.param_serialize(
        "GET", path, header_params={"Accept": accept}, auth_settings=["BearerToken"]
    )
    response = api.api_client.call_api(method, url, headers)
    response.read()
    assert response.status == 200
    answer: Object = json.loads(response.data or b"{}")
    return answer


def test_server_table_has_upstreams_columns(api: client.AdmissionregistrationV1Api) -> None:
    create(api, configuration(VALIDATING, "tabled", webhook("a.example.com"), webhook()))
    table = get_raw(
        api,
        f"/apis/{GROUP_VERSION}/validatingwebhookconfigurations/tabled",
        "application/json;as=Table;v=v1;g=meta.k8s.io",
    )
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [
        ("Name", "string"),
        ("Webhooks", "integer"),
        ("Age", "string"),
    ]
    assert table["columnDefinitions"][1]["description"] == (
        "Webhooks indicates the number of webhooks registered in this configuration"
    )
    assert table["rows"][0]["cells"][:2] == ["tabled", 2]


def test_apply_merges_webhooks_by_name(cluster: InProcessCluster) -> None:
    """Client-side apply patches one webhook of two (merge key ``name``); server-side apply
    owns the list as a map keyed by name too."""
    first, second = webhook("a.example.com"), webhook("b.example.com")
    body = configuration(MUTATING, "merged", first, second)
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(body))
    second["failurePolicy"] = "Ignore"
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(body))
    out = cluster.kubectl("get", "mutatingwebhookconfiguration", "merged", "-o", "json").stdout
    stored = json.loads(out)
    assert [(h["name"], h["failurePolicy"]) for h in stored["webhooks"]] == [
        ("a.example.com", "Fail"),
        ("b.example.com", "Ignore"),
    ]
    assert stored["metadata"]["generation"] == 2

    ssa = configuration(MUTATING, "server-side", webhook("a.example.com"))
    cluster.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(ssa))
    ssa["webhooks"][0]["timeoutSeconds"] = 4
    cluster.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(ssa))
    shown = cluster.kubectl(
        "get", "mutatingwebhookconfiguration", "server-side", "-o", "json", "--show-managed-fields"
    )
    applied = json.loads(shown.stdout)
    assert applied["webhooks"][0]["timeoutSeconds"] == 4
    assert applied["webhooks"][0]["reinvocationPolicy"] == "Never"
    assert applied["metadata"]["generation"] == 2
    managers = {(m["manager"], m["operation"]) for m in applied["metadata"]["managedFields"]}
    assert managers == {("kubectl", "Apply")}


def test_list_watch_and_delete_collection(api: client.AdmissionregistrationV1Api) -> None:
    labelled = configuration(VALIDATING, "doomed")
    labelled["metadata"]["labels"] = {"purpose": "doomed"}
    created = create(api, labelled)
    listed = api.list_validating_webhook_configuration(label_selector="purpose=doomed")
    assert [item.metadata.name for item in listed.items if item.metadata] == ["doomed"]
    api.delete_collection_validating_webhook_configuration(label_selector="purpose=doomed")
    # The raw response (the client would otherwise wait for a list body).
    watch: Any = api.list_validating_webhook_configuration(
        label_selector="purpose=doomed",
        watch=True,
        resource_version=created["metadata"]["resourceVersion"],
        timeout_seconds=5,
        _preload_content=False,
    )
    first = json.loads(watch.readline())
    watch.close()
    assert (first["type"], first["object"]["metadata"]["name"]) == ("DELETED", "doomed")
    remaining = api.list_validating_webhook_configuration(label_selector="purpose=doomed")
    assert remaining.items == []
