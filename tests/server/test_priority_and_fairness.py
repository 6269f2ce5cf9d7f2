"""API Priority and Fairness over HTTPS, as a 1.37 kube-apiserver applies it.

One in-process cluster (no controllers), the official ``kubernetes``
client and the real kubectl. The bootstrap configuration classifies the
admin (``system:masters``) as ``exempt``; every answer names the matched
FlowSchema's and priority level's UIDs in ``X-Kubernetes-PF-*`` headers
(kubectl ``--v=8`` prints them), 403s and watches included. A FlowSchema
of the test routes the user ``apf-user`` (impersonated by the admin, bound
to cluster-admin) to a level of one seat, made so by a "ballast" level with
many shares; a validating webhook that sleeps holds that seat. Then a second
request waits in the single queue, a third finds it full and gets upstream's
429 (plain text, ``Retry-After``), the admin is served at once, the debug
dumps show the waiting request, and the ``apiserver_flowcontrol_*`` series
count it all. A ``Reject`` level answers 429 without queueing; a watch gives
its seat back once its initial events are out.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from tests.admission.webhook_server import WebhookServer, slow

from kajitori.server import metrics
from kajitori.testing.inprocess import InProcessCluster

pytestmark = pytest.mark.kajitori(controllers=False)

Object = dict[str, Any]
NS = "apf-test"
USER = "apf-user"
LEVEL = "apf-one-seat"
SCHEMA = "apf-test"
FS_HEADER = "X-Kubernetes-PF-FlowSchema-UID"
PL_HEADER = "X-Kubernetes-PF-PriorityLevel-UID"
HOLD_SECONDS = 2.0


def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll ``check`` until it returns something truthy; its last value, else AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {value!r}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster(kajitori_module_cluster: InProcessCluster) -> InProcessCluster:
    return kajitori_module_cluster


@pytest.fixture(scope="module")
def api(cluster: InProcessCluster) -> Iterator[client.ApiClient]:
    with cluster.api_client() as api_client:
        yield api_client


@pytest.fixture(scope="module")
def flowcontrol(api: client.ApiClient) -> client.FlowcontrolApiserverV1Api:
    return client.FlowcontrolApiserverV1Api(api)


def as_user(cluster: InProcessCluster) -> client.ApiClient:
    api_client = cluster.api_client()
    api_client.set_default_header("Impersonate-User", USER)
    return api_client


def raw(
    api: client.ApiClient,
    path: str,
    method: str = "GET",
    body: Any = None,
    query: list[tuple[str, str]] | None = None,
) -> Any:
    """The response of one request (status, headers, ``read()``), errors included."""
    _, url, headers, data, _ = api.param_serialize(
        method,
        path,
        query_params=query,
        header_params={"Accept": "application/json", "Content-Type": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    return api.call_api(method, url, headers, data, _request_timeout=30)


def uids(flowcontrol: client.FlowcontrolApiserverV1Api, schema: str, level: str) -> tuple[str, str]:
    """The UIDs of a FlowSchema and a priority level, as stored."""
    found = flowcontrol.read_flow_schema(schema).metadata
    level_meta = flowcontrol.read_priority_level_configuration(level).metadata
    assert found is not None and level_meta is not None
    return str(found.uid), str(level_meta.uid)


def pf_headers(response: Any) -> tuple[str | None, str | None]:
    headers = response.headers
    return headers.get(FS_HEADER), headers.get(PL_HEADER)


@pytest.fixture(scope="module")
def bootstrapped(
    api: client.ApiClient, flowcontrol: client.FlowcontrolApiserverV1Api
) -> tuple[str, str]:
    """The exempt objects' UIDs, once the server classifies with the stored objects."""

    def ready() -> tuple[str, str] | None:
        try:
            expected = uids(flowcontrol, "exempt", "exempt")
        except ApiException:
            return None
        return expected if pf_headers(raw(api, "/api/v1/namespaces")) == expected else None

    result: tuple[str, str] = wait_for(ready)
    return result


def test_answers_name_the_matched_objects_uids(
    cluster: InProcessCluster,
    api: client.ApiClient,
    flowcontrol: client.FlowcontrolApiserverV1Api,
    bootstrapped: tuple[str, str],
) -> None:
    """Admin: exempt; kubectl --v=8 shows both headers; a 403 and a watch are classified too."""
    response = raw(api, "/version")
    assert pf_headers(response) == bootstrapped
    out = cluster.kubectl("get", "namespaces", "--v=8").stderr
    # kubectl prints response headers in Go's canonical spelling.
    assert f"X-Kubernetes-Pf-Flowschema-Uid: {bootstrapped[0]}" in out
    assert f"X-Kubernetes-Pf-Prioritylevel-Uid: {bootstrapped[1]}" in out
    # Classified before authorization: a user RBAC refuses is still told where it went
    # (an authenticated user without a more specific schema lands in global-default).
    with as_user(cluster) as user:
        user.set_default_header("Impersonate-User", "apf-nobody")
        denied = raw(user, "/api/v1/secrets")
    assert denied.status == 403
    assert pf_headers(denied) == uids(flowcontrol, "global-default", "global-default")
    watch = raw(api, "/api/v1/namespaces", query=[("watch", "true"), ("timeoutSeconds", "1")])
    assert watch.status == 200 and pf_headers(watch) == bootstrapped
    watch.response.release_conn()


def test_debug_dumps_list_levels_for_masters_only(
    cluster: InProcessCluster, api: client.ApiClient, bootstrapped: tuple[str, str]
) -> None:
    response = raw(api, "/debug/api_priority_and_fairness/dump_priority_levels")
    assert response.status == 200
    lines = response.read().decode().splitlines()
    assert lines[0].split() == [
        "PriorityLevelName,",
        "ActiveQueues,",
        "IsIdle,",
        "IsQuiescing,",
        "WaitingRequests,",
        "ExecutingRequests,",
        "DispatchedRequests,",
        "RejectedRequests,",
        "TimedoutRequests,",
        "CancelledRequests",
    ]
    names = [line.split(",")[0] for line in lines[1:]]
    for level in ("catch-all", "exempt", "global-default", "system", "workload-low"):
        assert level in names
    # This dump itself is executing in exempt.
    exempt = next(line for line in lines if line.startswith("exempt,"))
    assert [cell.strip() for cell in exempt.split(",")][5] == "1"
    queues = raw(api, "/debug/api_priority_and_fairness/dump_queues").read().decode()
    assert queues.startswith("PriorityLevelName, Index,")
    assert len([q for q in queues.splitlines() if q.startswith("workload-low,")]) == 128
    with as_user(cluster) as user:
        user.set_default_header("Impersonate-User", "apf-nobody")
        assert raw(user, "/debug/api_priority_and_fairness/dump_requests").status == 403


def _level(name: str, shares: int, response: Object) -> Object:
    return {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "PriorityLevelConfiguration",
        "metadata": {"name": name},
        "spec": {
            "type": "Limited",
            "limited": {"nominalConcurrencyShares": shares, "limitResponse": response},
        },
    }


QUEUE_OF_ONE = {"type": "Queue", "queuing": {"queues": 1, "handSize": 1, "queueLengthLimit": 1}}


@pytest.fixture(scope="module")
def one_seat(
    cluster: InProcessCluster,
    api: client.ApiClient,
    flowcontrol: client.FlowcontrolApiserverV1Api,
    bootstrapped: tuple[str, str],
) -> Iterator[WebhookServer]:
    """``apf-user`` → a level of 1 seat and one queue of 1; configmap creates in NS sleep."""
    cluster.kubectl("create", "namespace", NS)
    cluster.kubectl("create", "clusterrolebinding", "apf-user-admin", "--clusterrole=cluster-admin",
                    f"--user={USER}")  # fmt: skip
    # ceil(600 × 1 / (1 + 2000 + bootstrap shares)) = 1 seat.
    flowcontrol.create_priority_level_configuration(_level("apf-ballast", 2000, {"type": "Reject"}))
    flowcontrol.create_priority_level_configuration(_level(LEVEL, 1, QUEUE_OF_ONE))
    flowcontrol.create_flow_schema(
        {
            "metadata": {"name": SCHEMA},
            "spec": {
                "priorityLevelConfiguration": {"name": LEVEL},
                "matchingPrecedence": 500,
                "distinguisherMethod": {"type": "ByUser"},
                "rules": [
                    {
                        "subjects": [{"kind": "User", "user": {"name": USER}}],
                        "resourceRules": [
                            {
                                "verbs": ["*"],
                                "apiGroups": ["*"],
                                "resources": ["*"],
                                "namespaces": ["*"],
                                "clusterScope": True,
                            }
                        ],
                    }
                ],
            },
        }
    )
    with WebhookServer() as hook:
        hook.answers["/slow"] = slow(HOLD_SECONDS)
        client.AdmissionregistrationV1Api(api).create_validating_webhook_configuration(
            {
                "metadata": {"name": "apf-slow"},
                "webhooks": [
                    {
                        "name": "slow.apf.example.com",
                        "clientConfig": {"url": hook.url("/slow"), "caBundle": hook.ca_bundle},
                        "rules": [
                            {
                                "apiGroups": [""],
                                "apiVersions": ["v1"],
                                "resources": ["configmaps"],
                                "operations": ["CREATE"],
                            }
                        ],
                        "sideEffects": "None",
                        "admissionReviewVersions": ["v1"],
                        "timeoutSeconds": 10,
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NS}},
                    }
                ],
            }
        )
        expected = uids(flowcontrol, SCHEMA, LEVEL)
        with as_user(cluster) as user:
            wait_for(
                lambda: pf_headers(raw(user, f"/api/v1/namespaces/{NS}/configmaps")) == expected
            )
        yield hook
        client.AdmissionregistrationV1Api(api).delete_validating_webhook_configuration("apf-slow")


def create_configmap(cluster: InProcessCluster, name: str) -> Any:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
    with as_user(cluster) as user:
        started = time.monotonic()
        response = raw(user, f"/api/v1/namespaces/{NS}/configmaps", "POST", body)
        response.elapsed_seconds = time.monotonic() - started
        return response


def dump(api: client.ApiClient, name: str, query: str = "") -> str:
    text: str = raw(api, f"/debug/api_priority_and_fairness/{name}{query}").read().decode()
    return text


def level_row(api: client.ApiClient, level: str) -> list[str]:
    for line in dump(api, "dump_priority_levels").splitlines():
        if line.startswith(level + ","):
            return [cell.strip() for cell in line.split(",")]
    raise AssertionError(f"no row for {level}")


def test_full_level_queues_then_rejects_and_exempt_never_waits(
    cluster: InProcessCluster,
    api: client.ApiClient,
    flowcontrol: client.FlowcontrolApiserverV1Api,
    one_seat: WebhookServer,
) -> None:
    expected = uids(flowcontrol, SCHEMA, LEVEL)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        first = pool.submit(create_configmap, cluster, "first")
        wait_for(lambda: level_row(api, LEVEL)[5] == "1")  # executing (in the webhook)
        second = pool.submit(create_configmap, cluster, "second")
        wait_for(lambda: level_row(api, LEVEL)[4] == "1")  # waiting in the only queue
        # The queue is full: the third is refused at once, as upstream's http.Error.
        third = create_configmap(cluster, "third")
        assert third.status == 429
        assert third.elapsed_seconds < HOLD_SECONDS / 2
        assert third.read() == b"Too many requests, please try again later.\n"
        assert third.headers["Retry-After"] == "1"
        assert third.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert pf_headers(third) == expected
        # Exempt requests are never held up by a full level.
        started = time.monotonic()
        assert raw(api, f"/api/v1/namespaces/{NS}/configmaps").status == 200
        assert time.monotonic() - started < HOLD_SECONDS / 2
        requests = dump(api, "dump_requests", "?includeRequestDetails=1").splitlines()
        assert requests[0].split()[:5] == [
            "PriorityLevelName,", "FlowSchemaName,", "QueueIndex,", "RequestIndexInQueue,",
            "FlowDistingsher,",
        ]  # fmt: skip
        cells = [cell.strip() for cell in requests[1].split(",")]
        assert cells[:5] == [LEVEL, SCHEMA, "0", "0", USER]
        assert cells[9:12] == [USER, "create", f"/api/v1/namespaces/{NS}/configmaps"]
        assert first.result().status == 201
        done = second.result()
        assert done.status == 201 and pf_headers(done) == expected
        assert done.elapsed_seconds >= HOLD_SECONDS  # it waited for the first
    row = level_row(api, LEVEL)
    assert row[4:9] == ["0", "0", row[6], "1", "0"] and int(row[6]) >= 2
    text = raw(api, "/metrics").read().decode()
    found = {
        (name, tuple(sorted(labels.items()))): value for name, labels, value in metrics.parse(text)
    }
    labels = {"flow_schema": SCHEMA, "priority_level": LEVEL}
    rejected = ("apiserver_flowcontrol_rejected_requests_total",
                tuple(sorted({**labels, "reason": "queue-full"}.items())))  # fmt: skip
    assert found[rejected] == 1
    dispatched = ("apiserver_flowcontrol_dispatched_requests_total", tuple(sorted(labels.items())))
    assert found[dispatched] >= 2
    level_seats = ("apiserver_flowcontrol_nominal_limit_seats", (("priority_level", LEVEL),))
    assert found[level_seats] == 1
    assert found[("apiserver_request_total", tuple(sorted({
        "verb": "POST", "dry_run": "", "group": "", "version": "v1", "resource": "configmaps",
        "subresource": "", "scope": "resource", "component": "apiserver", "code": "429",
    }.items())))] == 1  # fmt: skip


def test_a_watch_holds_its_seat_only_for_its_initial_events(
    cluster: InProcessCluster, api: client.ApiClient, one_seat: WebhookServer
) -> None:
    with as_user(cluster) as user:
        watch = raw(user, f"/api/v1/namespaces/{NS}/configmaps", query=[
            ("watch", "true"), ("sendInitialEvents", "true"), ("allowWatchBookmarks", "true"),
            ("resourceVersionMatch", "NotOlderThan")])  # fmt: skip
        try:
            assert watch.status == 200
            first_line = json.loads(watch.response.readline())
            assert first_line["type"] in ("ADDED", "BOOKMARK")
            # The watch is still open, yet the one seat is free again.
            wait_for(lambda: level_row(api, LEVEL)[5] == "0", timeout=5)
            started = time.monotonic()
            assert raw(user, f"/api/v1/namespaces/{NS}/configmaps").status == 200
            assert time.monotonic() - started < 1
        finally:
            watch.response.release_conn()


def test_a_reject_level_refuses_at_once(
    cluster: InProcessCluster,
    api: client.ApiClient,
    flowcontrol: client.FlowcontrolApiserverV1Api,
    one_seat: WebhookServer,
) -> None:
    flowcontrol.patch_priority_level_configuration(
        LEVEL,
        [{"op": "replace", "path": "/spec/limited/limitResponse", "value": {"type": "Reject"}}],
    )
    wait_for(lambda: level_row(api, LEVEL)[1] == "0" and "apf-one-seat," not in dump(
        api, "dump_queues"))  # fmt: skip
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(create_configmap, cluster, "held")
        wait_for(lambda: level_row(api, LEVEL)[5] == "1")
        refused = create_configmap(cluster, "refused")
        assert refused.status == 429
        assert refused.elapsed_seconds < HOLD_SECONDS / 2
        assert first.result().status == 201
    text = raw(api, "/metrics").read().decode()
    assert (
        'apiserver_flowcontrol_rejected_requests_total{flow_schema="apf-test",'
        'priority_level="apf-one-seat",reason="concurrency-limit"} 1'
    ) in text
