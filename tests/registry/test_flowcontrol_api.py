"""flowcontrol.apiserver.k8s.io/v1 over HTTPS, as kubectl and the official client see it.

One API server (no controllers) for the module, its APF ensurer resyncing
every 0.2 s instead of every minute, so that what upstream's server repairs
within a minute is repaired within the test's patience.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from kajitori.registry.flowcontrol import ensurer
from kajitori.testing.cluster import wait_for, wait_until
from kajitori.testing.inprocess import ClusterOptions, InProcessCluster

Object = dict[str, Any]
GROUP = "flowcontrol.apiserver.k8s.io"
AUTO = "apf.kubernetes.io/autoupdate-spec"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCluster]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ensurer, "RESYNC_INTERVAL", 0.2)
        with InProcessCluster(
            tmp_path_factory.mktemp("apf"), ClusterOptions(controllers=False)
        ) as running:
            yield running


@pytest.fixture(scope="module")
def api(cluster: InProcessCluster) -> Iterator[k8s.FlowcontrolApiserverV1Api]:
    with cluster.api_client() as api_client:
        yield k8s.FlowcontrolApiserverV1Api(api_client)


def _raw(call: Callable[..., Any], *args: Any) -> Object:
    """The JSON as the server sent it (no model class in between)."""
    response = call(*args, _preload_content=False)
    data: Object = json.loads(response.data)
    return data


def _fs(api: k8s.FlowcontrolApiserverV1Api, name: str) -> Object:
    return _raw(api.read_flow_schema, name)


def _pl(api: k8s.FlowcontrolApiserverV1Api, name: str) -> Object:
    return _raw(api.read_priority_level_configuration, name)


def _bootstrapped(api: k8s.FlowcontrolApiserverV1Api) -> None:
    """The configuration is written just after ready: wait for its last object."""

    def present() -> bool:
        try:
            _fs(api, "catch-all")
            _pl(api, "exempt")
        except ApiException:
            return False
        return True

    wait_until(present, what="the bootstrap configuration")


def test_discovery_serves_both_resources(cluster: InProcessCluster) -> None:
    out = cluster.kubectl("api-resources", f"--api-group={GROUP}", "-o", "wide").stdout
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("flowschemas", f"{GROUP}/v1", "false", "FlowSchema"),
        ("prioritylevelconfigurations", f"{GROUP}/v1", "false", "PriorityLevelConfiguration"),
    ]


def test_bootstrap_objects_are_upstreams(api: k8s.FlowcontrolApiserverV1Api) -> None:
    """1.37's mandatory and suggested objects, annotated for auto-update."""
    _bootstrapped(api)
    schemas = _raw(api.list_flow_schema)["items"]
    levels = _raw(api.list_priority_level_configuration)["items"]
    names = {fs["metadata"]["name"] for fs in schemas}
    assert names >= {
        "exempt",
        "probes",
        "system-leader-election",
        "system-node-high",
        "system-nodes",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-system-service-accounts",
        "service-accounts",
        "global-default",
        "catch-all",
    }
    # Dropped in 1.34 with Endpoints/ConfigMaps leader election.
    assert not names & {"workload-leader-election", "endpoint-controller"}
    assert {pl["metadata"]["name"] for pl in levels} >= {
        "exempt",
        "catch-all",
        "system",
        "node-high",
        "leader-election",
        "workload-high",
        "workload-low",
        "global-default",
    }
    for obj in (_fs(api, "probes"), _pl(api, "workload-low"), _pl(api, "exempt")):
        assert obj["metadata"]["annotations"] == {AUTO: "true"}
        assert obj["metadata"]["generation"] == 1
    assert _pl(api, "exempt")["spec"] == {
        "type": "Exempt",
        "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0},
    }
    assert _pl(api, "catch-all")["spec"] == {
        "type": "Limited",
        "limited": {
            "nominalConcurrencyShares": 5,
            "limitResponse": {"type": "Reject"},
            "lendablePercent": 0,
        },
    }
    assert _pl(api, "workload-low")["spec"]["limited"] == {
        "nominalConcurrencyShares": 100,
        "limitResponse": {
            "type": "Queue",
            "queuing": {"queues": 128, "handSize": 6, "queueLengthLimit": 50},
        },
        "lendablePercent": 90,
    }
    assert _fs(api, "probes")["spec"] == {
        "priorityLevelConfiguration": {"name": "exempt"},
        "matchingPrecedence": 2,
        "rules": [
            {
                "subjects": [
                    {"kind": "Group", "group": {"name": "system:unauthenticated"}},
                    {"kind": "Group", "group": {"name": "system:authenticated"}},
                ],
                "nonResourceRules": [
                    {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/readyz", "/livez"]}
                ],
            }
        ],
    }
    leader_election = _fs(api, "system-leader-election")["spec"]
    assert leader_election["rules"] == [
        {
            "subjects": [
                {"kind": "User", "user": {"name": "system:kube-controller-manager"}},
                {"kind": "User", "user": {"name": "system:kube-scheduler"}},
                {
                    "kind": "ServiceAccount",
                    "serviceAccount": {"namespace": "kube-system", "name": "*"},
                },
            ],
            "resourceRules": [
                {
                    "verbs": ["get", "create", "update"],
                    "apiGroups": ["coordination.k8s.io"],
                    "resources": ["leases"],
                    "namespaces": ["*"],
                }
            ],
        }
    ]
    assert (leader_election["matchingPrecedence"], leader_election["distinguisherMethod"]) == (
        100,
        {"type": "ByUser"},
    )


def test_kubectl_get_columns_and_order(cluster: InProcessCluster, api: Any) -> None:
    """Upstream's printers: FlowSchemas by matching precedence, then name."""
    _bootstrapped(api)
    wait_until(
        lambda: "?" not in cluster.kubectl("get", "flowschemas", "probes").stdout,
        what="probes' Dangling condition",
    )
    lines = cluster.kubectl("get", "flowschemas").stdout.splitlines()
    assert lines[0].split() == [
        "NAME",
        "PRIORITYLEVEL",
        "MATCHINGPRECEDENCE",
        "DISTINGUISHERMETHOD",
        "AGE",
        "MISSINGPL",
    ]
    names = [line.split()[0] for line in lines[1:]]
    assert names[:3] == ["exempt", "probes", "system-leader-election"]
    assert names.index("kube-controller-manager") < names.index("kube-scheduler")
    assert names[-2:] == ["global-default", "catch-all"]
    exempt = lines[1].split()
    assert exempt[:4] == ["exempt", "exempt", "1", "<none>"] and exempt[5] == "False"

    lines = cluster.kubectl("get", "prioritylevelconfigurations").stdout.splitlines()
    assert lines[0].split() == [
        "NAME",
        "TYPE",
        "NOMINALCONCURRENCYSHARES",
        "QUEUES",
        "HANDSIZE",
        "QUEUELENGTHLIMIT",
        "AGE",
    ]
    rows = {line.split()[0]: line.split()[1:6] for line in lines[1:]}
    assert rows["exempt"] == ["Exempt", "<none>", "<none>", "<none>", "<none>"]
    assert rows["catch-all"] == ["Limited", "5", "<none>", "<none>", "<none>"]
    assert rows["leader-election"] == ["Limited", "10", "16", "4", "50"]


def test_defaults_fill_a_sparse_priority_level_and_flow_schema(
    cluster: InProcessCluster, api: k8s.FlowcontrolApiserverV1Api
) -> None:
    cluster.kubectl(
        "create",
        "-f",
        "-",
        stdin=json.dumps(
            {
                "apiVersion": f"{GROUP}/v1",
                "kind": "PriorityLevelConfiguration",
                "metadata": {"name": "sparse"},
                "spec": {
                    "type": "Limited",
                    "limited": {"limitResponse": {"type": "Queue", "queuing": {}}},
                },
            }
        ),
    )
    level = _pl(api, "sparse")
    assert level["spec"]["limited"] == {
        "nominalConcurrencyShares": 30,
        "limitResponse": {
            "type": "Queue",
            "queuing": {"queues": 64, "handSize": 8, "queueLengthLimit": 50},
        },
        "lendablePercent": 0,
    }
    assert level["metadata"]["generation"] == 1 and level["status"] == {}
    body = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "FlowSchema",
        "metadata": {"name": "sparse"},
        "spec": {"priorityLevelConfiguration": {"name": "sparse"}},
        "status": {"conditions": [{"type": "Made-up", "status": "True"}]},
    }
    created = _raw(api.create_flow_schema, body)
    assert created["spec"]["matchingPrecedence"] == 1000
    assert "conditions" not in created["status"]  # status is the server's on create


def _invalid(api: k8s.FlowcontrolApiserverV1Api, plural: str, body: Object) -> Object:
    """POST ``body`` through the official client's transport, past its own model checks."""
    client = api.api_client
    method, url, headers, payload, _ = client.param_serialize(
        "POST",
        f"/apis/{GROUP}/v1/{plural}",
        header_params={"Content-Type": "application/json", "Accept": "application/json"},
        body=body,
    )
    response = client.call_api(method, url, header_params=headers, body=payload)
    response.read()
    assert response.status == 422
    status: Object = json.loads(response.data)
    return status


def _causes(status: Object) -> list[tuple[str, str, str]]:
    return [(c["reason"], c["field"], c["message"]) for c in status["details"]["causes"]]


def test_flow_schema_validation_answers_upstreams_causes(
    api: k8s.FlowcontrolApiserverV1Api,
) -> None:
    status = _invalid(
        api,
        "flowschemas",
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "FlowSchema",
            "metadata": {"name": "bad"},
            "spec": {
                "priorityLevelConfiguration": {"name": "workload-low"},
                "matchingPrecedence": 10001,
                "distinguisherMethod": {"type": "ByFoo"},
                "rules": [
                    {
                        "subjects": [
                            {"kind": "Robot"},
                            {"kind": "ServiceAccount", "serviceAccount": {"name": "*"}},
                        ],
                        "resourceRules": [
                            {"verbs": ["get", "fly"], "apiGroups": ["*"], "resources": ["pods"]}
                        ],
                        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["/a//b"]}],
                    },
                    {"subjects": [{"kind": "Group", "group": {"name": "g"}}]},
                ],
            },
        },
    )
    assert status["reason"] == "Invalid"
    assert status["details"] == {
        "name": "bad",
        "group": GROUP,
        "kind": "FlowSchema",
        "causes": status["details"]["causes"],
    }
    assert _causes(status) == [
        (
            "FieldValueInvalid",
            "spec.matchingPrecedence",
            "Invalid value: 10001: must not be greater than 10000",
        ),
        (
            "FieldValueNotSupported",
            "spec.distinguisherMethod.type",
            'Unsupported value: {"Type":"ByFoo"}: supported values: "ByNamespace", "ByUser"',
        ),
        (
            "FieldValueNotSupported",
            "spec.rules[0].subjects[0].kind",
            'Unsupported value: "Robot": supported values: "Group", "ServiceAccount", "User"',
        ),
        (
            "FieldValueRequired",
            "spec.rules[0].subjects[1].serviceAccount.namespace",
            "Required value: must specify namespace for service account",
        ),
        (
            "FieldValueNotSupported",
            "spec.rules[0].resourceRules[0].verbs",
            'Unsupported value: ["get","fly"]: supported values: "create", "delete", '
            '"deletecollection", "get", "list", "patch", "proxy", "update", "watch"',
        ),
        (
            "FieldValueRequired",
            "spec.rules[0].resourceRules[0].namespaces",
            "Required value: resource rules that are not cluster scoped must supply at least "
            "one namespace",
        ),
        (
            "FieldValueInvalid",
            "spec.rules[0].nonResourceRules[0].nonResourceURLs[0]",
            'Invalid value: "/a//b": must not contain double slash',
        ),
        (
            "FieldValueRequired",
            "spec.rules[1]",
            "Required value: at least one of resourceRules and nonResourceRules has to be "
            "non-empty",
        ),
    ]
    assert status["message"].startswith(
        f'FlowSchema.{GROUP} "bad" is invalid: [spec.matchingPrecedence: Invalid value: 10001: '
    )


def test_priority_level_validation_answers_upstreams_causes(
    api: k8s.FlowcontrolApiserverV1Api,
) -> None:
    def level(name: str, spec: Object) -> Object:
        return {
            "apiVersion": f"{GROUP}/v1",
            "kind": "PriorityLevelConfiguration",
            "metadata": {"name": name},
            "spec": spec,
        }

    queuing = {"queues": 128, "handSize": 9, "queueLengthLimit": -1}
    status = _invalid(
        api,
        "prioritylevelconfigurations",
        level(
            "deep",
            {
                "type": "Limited",
                "limited": {
                    "nominalConcurrencyShares": 0,
                    "lendablePercent": 101,
                    "limitResponse": {"type": "Queue", "queuing": queuing},
                },
            },
        ),
    )
    assert _causes(status) == [
        (
            "FieldValueInvalid",
            "spec.limited.nominalConcurrencyShares",
            "Invalid value: 0: must be positive",
        ),
        (
            "FieldValueInvalid",
            "spec.limited.limitResponse.queuing.queueLengthLimit",
            "Invalid value: -1: must be positive",
        ),
        (
            "FieldValueInvalid",
            "spec.limited.limitResponse.queuing.handSize",
            "Invalid value: 9: required entropy bits of deckSize 128 and handSize 9 should not "
            "be greater than 60",
        ),
        (
            "FieldValueInvalid",
            "spec.limited.lendablePercent",
            "Invalid value: 101: must be between 0 and 100, inclusive",
        ),
    ]
    status = _invalid(api, "prioritylevelconfigurations", level("odd", {"type": "Weird"}))
    assert _causes(status) == [
        (
            "FieldValueNotSupported",
            "spec.type",
            'Unsupported value: "Weird": supported values: "Exempt", "Limited"',
        )
    ]
    status = _invalid(api, "prioritylevelconfigurations", level("not-exempt", {"type": "Exempt"}))
    assert _causes(status) == [
        (
            "FieldValueInvalid",
            "spec.type",
            "Invalid value: \"Exempt\": type must be 'Exempt' if and only if name is 'exempt'",
        )
    ]


def test_mandatory_specs_are_fixed(api: k8s.FlowcontrolApiserverV1Api) -> None:
    """Only the exempt level's own section may change in a mandatory object."""
    _bootstrapped(api)
    current = _fs(api, "catch-all")
    current["spec"]["matchingPrecedence"] = 9999
    with pytest.raises(ApiException) as caught:
        api.replace_flow_schema("catch-all", current)
    assert caught.value.status == 422
    (cause,) = _causes(json.loads(caught.value.body))
    assert cause[:2] == ("FieldValueInvalid", "spec")
    assert cause[2].endswith(": spec of 'catch-all' must equal the fixed value")
    tuned = _raw(
        api.patch_priority_level_configuration,
        "exempt",
        {"spec": {"exempt": {"nominalConcurrencyShares": 7}}},
    )
    assert tuned["spec"]["exempt"] == {"nominalConcurrencyShares": 7, "lendablePercent": 0}
    with pytest.raises(ApiException) as caught:
        api.patch_priority_level_configuration(
            "exempt", {"spec": {"limited": {"nominalConcurrencyShares": 7}}}
        )
    messages = [c[2] for c in _causes(json.loads(caught.value.body))]
    assert "Forbidden: must be nil if the type is not Limited" in messages
    assert messages[-1].endswith(
        ": spec of 'exempt' except the 'spec.exempt' field must equal the fixed value"
    )


def _restore_sentinel(api: k8s.FlowcontrolApiserverV1Api) -> None:
    """Mark catch-all not to be updated and wait for the ensurer to undo it: one whole pass."""
    api.patch_flow_schema("catch-all", {"metadata": {"annotations": {AUTO: "false"}}})
    wait_until(
        lambda: _fs(api, "catch-all")["metadata"]["annotations"][AUTO] == "true",
        what="catch-all's annotation restored",
    )


def test_ensurer_restores_mandatory_and_respects_suggested_opt_out(
    api: k8s.FlowcontrolApiserverV1Api,
) -> None:
    _bootstrapped(api)
    # A deleted mandatory object comes back, as the bootstrap object.
    uid = _pl(api, "catch-all")["metadata"]["uid"]
    api.delete_priority_level_configuration("catch-all")
    back = wait_for(
        lambda: _recreated(api, "catch-all", uid), what="catch-all priority level recreated"
    )
    assert back["spec"]["limited"]["nominalConcurrencyShares"] == 5
    # A suggested object edited while annotated "true" gets the bootstrap spec back...
    api.patch_priority_level_configuration(
        "workload-high", {"spec": {"limited": {"nominalConcurrencyShares": 1}}}
    )
    restored = wait_for(
        lambda: _when(_pl(api, "workload-high"), lambda o: o["metadata"]["generation"] == 3),
        what="workload-high restored",
    )
    assert restored["spec"]["limited"]["nominalConcurrencyShares"] == 40
    # ...one annotated "false" keeps its operator's spec.
    api.patch_priority_level_configuration(
        "workload-low",
        {
            "metadata": {"annotations": {AUTO: "false"}},
            "spec": {"limited": {"nominalConcurrencyShares": 3}},
        },
    )
    _restore_sentinel(api)
    _restore_sentinel(api)
    kept = _pl(api, "workload-low")
    assert kept["spec"]["limited"]["nominalConcurrencyShares"] == 3
    assert kept["metadata"]["annotations"][AUTO] == "false"
    # Without a readable annotation, an edited (generation > 1) object is the operator's too,
    # and the ensurer records that decision as "false".
    api.patch_flow_schema(
        "service-accounts",
        [
            {"op": "remove", "path": "/metadata/annotations"},
            {"op": "replace", "path": "/spec/matchingPrecedence", "value": 8000},
        ],
    )
    flagged = wait_for(
        lambda: _when(
            _fs(api, "service-accounts"),
            lambda o: (o["metadata"].get("annotations") or {}).get(AUTO) == "false",
        ),
        what="service-accounts annotated false",
    )
    assert flagged["spec"]["matchingPrecedence"] == 8000


def _when(obj: Object, predicate: Callable[[Object], bool]) -> Object | None:
    return obj if predicate(obj) else None


def _recreated(api: k8s.FlowcontrolApiserverV1Api, name: str, old_uid: str) -> Object | None:
    try:
        obj = _pl(api, name)
    except ApiException:
        return None
    return obj if obj["metadata"]["uid"] != old_uid else None


def test_unwanted_auto_updated_objects_are_removed(
    api: k8s.FlowcontrolApiserverV1Api,
) -> None:
    """An object marked auto-update that the bootstrap set does not name is deleted."""
    _bootstrapped(api)
    body = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "FlowSchema",
        "metadata": {"name": "retired", "annotations": {AUTO: "true"}},
        "spec": {"priorityLevelConfiguration": {"name": "global-default"}},
    }
    api.create_flow_schema(body)
    wait_until(lambda: _absent(api, "retired"), what="retired FlowSchema removed")


def _absent(api: k8s.FlowcontrolApiserverV1Api, name: str) -> bool:
    try:
        _fs(api, name)
    except ApiException as exc:
        return exc.status == 404
    return False


def _dangling(api: k8s.FlowcontrolApiserverV1Api, name: str, status: str) -> Object | None:
    obj = _fs(api, name)
    for condition in obj.get("status", {}).get("conditions", []):
        if condition["type"] == "Dangling" and condition["status"] == status:
            condition_found: Object = condition
            return condition_found
    return None


def test_dangling_condition_follows_the_priority_level(
    cluster: InProcessCluster, api: k8s.FlowcontrolApiserverV1Api, tmp_path: Path
) -> None:
    body = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "FlowSchema",
        "metadata": {"name": "orphan"},
        "spec": {
            "priorityLevelConfiguration": {"name": "later"},
            "matchingPrecedence": 5000,
            "rules": [
                {
                    "subjects": [{"kind": "User", "user": {"name": "alice"}}],
                    "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/metrics"]}],
                }
            ],
        },
    }
    api.create_flow_schema(body)
    condition = wait_for(lambda: _dangling(api, "orphan", "True"), what="Dangling True")
    assert (condition["reason"], condition["message"]) == (
        "NotFound",
        'This FlowSchema references the PriorityLevelConfiguration object named "later" '
        "but there is no such object",
    )
    assert cluster.kubectl("get", "flowschema", "orphan").stdout.split()[-1] == "True"
    level = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "PriorityLevelConfiguration",
        "metadata": {"name": "later"},
        "spec": {"type": "Limited", "limited": {"limitResponse": {"type": "Reject"}}},
    }
    api.create_priority_level_configuration(level)
    condition = wait_for(lambda: _dangling(api, "orphan", "False"), what="Dangling False")
    assert (condition["reason"], condition["message"]) == (
        "Found",
        'This FlowSchema references the PriorityLevelConfiguration object named "later" '
        "and it exists",
    )
    assert _fs(api, "orphan")["metadata"]["generation"] == 1  # status writes leave it
    api.delete_priority_level_configuration("later")
    wait_for(lambda: _dangling(api, "orphan", "True"), what="Dangling True again")
