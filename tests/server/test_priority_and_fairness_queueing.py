"""APF's classification and queueing, driven through the filter's ASGI interface.

Without a server: the bootstrap configuration (upstream's objects) decides
where requests of well-known users go; a configuration of the test's own
(one seat, queues of the test's shape) shows queueing in turn per flow, a
full queue's and a waiting limit's 429s, cancellation, a ``Reject`` level,
exempt requests, and the Retry-After that grows under repeated rejection.
Handlers are coroutines that hold their seat until the test lets them go.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kajitori.api.flowcontrol_v1 import bootstrap
from kajitori.registry.generic import initialization
from kajitori.registry.generic.request import UserInfo
from kajitori.server.flowcontrol import classify, debug
from kajitori.server.flowcontrol.filter import PriorityAndFairness
from kajitori.server.flowcontrol.queueset import DroppedRequests
from kajitori.server.request_info import RequestInfo, new_request_info

Object = dict[str, Any]
AUTHENTICATED = "system:authenticated"
MASTERS = UserInfo("admin", ("system:masters", AUTHENTICATED))


def _info(method: str, path: str) -> RequestInfo:
    return new_request_info(method, path, {})


BOOTSTRAP = classify.digest(
    bootstrap.mandatory_flow_schemas() + bootstrap.suggested_flow_schemas(),
    bootstrap.mandatory_priority_levels() + bootstrap.suggested_priority_levels(),
)


@pytest.mark.parametrize(
    ("user", "method", "path", "schema", "level", "flow"),
    [
        (MASTERS, "DELETE", "/api/v1/namespaces/x", "exempt", "exempt", ""),
        (UserInfo("system:anonymous", ("system:unauthenticated",)), "GET", "/readyz",
         "probes", "exempt", ""),
        (UserInfo("bob", (AUTHENTICATED,)), "GET", "/livez/etcd",
         "global-default", "global-default", "bob"),
        (UserInfo("system:node:n1", ("system:nodes", AUTHENTICATED)), "GET",
         "/api/v1/nodes/n1", "system-node-high", "node-high", "system:node:n1"),
        (UserInfo("system:node:n1", ("system:nodes", AUTHENTICATED)), "GET",
         "/api/v1/namespaces/a/configmaps/c", "system-nodes", "system", "system:node:n1"),
        (UserInfo("system:kube-scheduler", (AUTHENTICATED,)), "PUT",
         "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler",
         "system-leader-election", "leader-election", "system:kube-scheduler"),
        (UserInfo("system:serviceaccount:kube-system:job-controller", (AUTHENTICATED,)),
         "GET", "/apis/batch/v1/namespaces/ns1/jobs", "kube-system-service-accounts",
         "workload-high", "ns1"),
        (UserInfo("system:serviceaccount:default:x", ("system:serviceaccounts", AUTHENTICATED)), "GET",
         "/api/v1/namespaces/default/pods", "service-accounts", "workload-low",
         "system:serviceaccount:default:x"),
        (UserInfo("nobody", ()), "GET", "/api/v1/pods", "catch-all", "catch-all", "nobody"),
    ],
)  # fmt: skip
def test_bootstrap_configuration_routes_well_known_users(
    user: UserInfo, method: str, path: str, schema: str, level: str, flow: str
) -> None:
    info = _info(method, path)
    found = classify.classify(BOOTSTRAP, user, info)
    assert (found.name, found.level, classify.flow_distinguisher(found, user, info)) == (
        schema,
        level,
        flow,
    )


def test_nominal_limits_share_600_seats_by_shares() -> None:
    limits = {name: spec.limit for name, spec in BOOTSTRAP.levels.items()}
    # ceil(600 × shares / 245), shares as upstream's bootstrap levels.
    assert limits == {
        "exempt": 0, "system": 74, "node-high": 98, "leader-election": 25,
        "workload-high": 98, "workload-low": 245, "global-default": 49, "catch-all": 13,
    }  # fmt: skip


def _schema(name: str, level: str, precedence: int, *rules: Object, method: str = "") -> Object:
    spec: Object = {
        "priorityLevelConfiguration": {"name": level},
        "matchingPrecedence": precedence,
        "rules": list(rules),
    }
    if method:
        spec["distinguisherMethod"] = {"type": method}
    return {"metadata": {"name": name, "uid": f"uid-{name}"}, "spec": spec}


def _rule(subjects: list[Object], **rules: Any) -> Object:
    return {"subjects": subjects, **rules}


def test_subjects_and_rules_match_as_upstreams() -> None:
    everything = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "namespaces": ["*"]}
    config = classify.digest(
        [
            _schema("sa-any", "exempt", 10, _rule(
                [{"kind": "ServiceAccount", "serviceAccount": {"namespace": "ci", "name": "*"}}],
                resourceRules=[everything])),
            _schema("status", "exempt", 20, _rule(
                [{"kind": "Group", "group": {"name": "*"}}],
                resourceRules=[{"verbs": ["update"], "apiGroups": [""],
                                "resources": ["pods/status"], "namespaces": ["*"]}])),
            _schema("cluster", "exempt", 30, _rule(
                [{"kind": "User", "user": {"name": "*"}}],
                resourceRules=[{**everything, "namespaces": [], "clusterScope": True}])),
            _schema("urls", "exempt", 40, _rule(
                [{"kind": "User", "user": {"name": "*"}}],
                nonResourceRules=[{"verbs": ["get"], "nonResourceURLs": ["/metrics/*"]}])),
        ],
        [],
    )  # fmt: skip
    someone = UserInfo("someone", (AUTHENTICATED,))

    def name(user: UserInfo, method: str, path: str) -> str:
        return classify.classify(config, user, _info(method, path)).name

    pods = "/api/v1/namespaces/a/pods"
    assert name(UserInfo("system:serviceaccount:ci:a"), "GET", pods) == "sa-any"
    assert name(UserInfo("system:serviceaccount:cix:a"), "GET", pods) == "catch-all"
    assert name(UserInfo("system:serviceaccount:ci:a"), "GET", "/api/v1/nodes") == "cluster"
    assert name(someone, "PUT", "/api/v1/namespaces/a/pods/p/status") == "status"
    # A namespaced request needs a namespace rule; a cluster-scoped one needs clusterScope.
    assert name(someone, "PUT", "/api/v1/namespaces/a/pods/p") == "catch-all"
    assert name(someone, "GET", "/api/v1/nodes") == "cluster"
    assert name(someone, "GET", "/metrics/slis") == "urls"
    assert (
        name(someone, "GET", "/metrics") == "catch-all"
    )  # "/metrics/*" is a prefix of "/metrics/"
    # A FlowSchema naming a level that does not exist is ignored (dangling).
    dangling = classify.digest([_schema("first", "missing", 1, _rule(
        [{"kind": "User", "user": {"name": "*"}}], nonResourceRules=[
            {"verbs": ["*"], "nonResourceURLs": ["*"]}]))], [])  # fmt: skip
    assert classify.classify(dangling, someone, _info("GET", "/version")).name == "catch-all"


def test_shuffle_sharding_deals_distinct_queues_from_the_flow_hash() -> None:
    hands = set()
    for flow in ("alice", "bob", "carol", "dave"):
        hand = classify.deal(classify.flow_hash("schema", flow), 64, 8)
        assert len(set(hand)) == 8 and all(0 <= card < 64 for card in hand)
        assert hand == classify.deal(classify.flow_hash("schema", flow), 64, 8)
        hands.add(tuple(hand))
    assert len(hands) == 4
    assert sorted(classify.deal(12345, 4, 4)) == [0, 1, 2, 3]


def test_retry_after_doubles_under_rejections_and_comes_back() -> None:
    dropped = DroppedRequests()
    for _ in range(3):
        dropped.record(100.2)
    assert dropped.retry_after == 1
    dropped.record(101.0)  # the second ends with 3 rejections in the last 1 s
    assert dropped.retry_after == 2
    dropped.record(110.0)  # quiet since
    assert dropped.retry_after == 1


def test_dump_alignment_is_gos_tabwriter() -> None:
    table = debug._table([["a", "bb", "c"], ["ccccccccc", "d", "e"]])
    assert table == b"a,         bb,     c\nccccccccc, d,      e\n"


# ----- the filter -----------------------------------------------------------------------

ONE_SEAT = "one-seat"
USER_A = UserInfo("alice", (AUTHENTICATED,))
USER_B = UserInfo("bob", (AUTHENTICATED,))


def _level(name: str, shares: int, response: Object) -> Object:
    limited = {"nominalConcurrencyShares": shares, "limitResponse": response}
    spec = {"type": "Limited", "limited": limited}
    return {"metadata": {"name": name, "uid": f"uid-{name}"}, "spec": spec}


def _filter(response: Object, wait_limit: float = 5.0) -> PriorityAndFairness:
    """alice and bob → a level of 1 seat (599 more shares elsewhere); masters exempt."""
    flow_control = PriorityAndFairness(lambda *_: None, wait_limit=wait_limit)
    flow_control.use(
        [
            *bootstrap.mandatory_flow_schemas(),
            _schema(ONE_SEAT, ONE_SEAT, 100, _rule(
                [{"kind": "Group", "group": {"name": AUTHENTICATED}}],
                resourceRules=[{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                                "namespaces": ["*"]}]), method="ByUser"),
        ],
        [*bootstrap.mandatory_priority_levels(), _level(ONE_SEAT, 1, response),
         _level("ballast", 594, {"type": "Reject"})],
    )  # fmt: skip
    assert flow_control.levels[ONE_SEAT].spec.limit == 1
    return flow_control


class Calls:
    """Requests through the filter: each handler holds its seat until ``release``."""

    def __init__(self, flow_control: PriorityAndFairness) -> None:
        self.flow_control = flow_control
        self.started: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.answers: dict[str, Object] = {}

    def request(self, name: str, user: UserInfo) -> asyncio.Task[None]:
        gate = self.gates[name] = asyncio.Event()
        info = _info("GET", f"/api/v1/namespaces/ns/configmaps/{name}")

        async def handler(send: Any) -> None:
            self.started.append(name)
            await gate.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})

        async def send(message: Object) -> None:
            if message["type"] == "http.response.start":
                self.answers[name] = message

        return asyncio.ensure_future(self.flow_control.serve(info, user, handler, send))

    def release(self, name: str) -> None:
        self.gates[name].set()

    def status(self, name: str) -> int:
        return int(self.answers[name]["status"])

    def headers(self, name: str) -> dict[bytes, bytes]:
        return dict(self.answers[name]["headers"])


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


QUEUES = {"type": "Queue", "queuing": {"queues": 8, "handSize": 2, "queueLengthLimit": 2}}


async def test_queued_flows_are_served_in_turn() -> None:
    # One queue per flow (hand of 1; alice's and bob's are queues 10 and 2 of 16).
    calls = Calls(_filter({"type": "Queue", "queuing": {"queues": 16, "handSize": 1}}))
    tasks = [calls.request("a1", USER_A)]
    await _settle()
    tasks += [calls.request(n, USER_A) for n in ("a2", "a3")]
    await _settle()
    tasks.append(calls.request("b1", USER_B))
    await _settle()
    assert calls.started == ["a1"]
    level = calls.flow_control.levels[ONE_SEAT]
    assert (level.executing, level.waiting) == (1, 3)
    for name in ("a1", "a2", "b1", "a3"):
        calls.release(name)
        await _settle()
    await asyncio.gather(*tasks)
    # bob's one request did not wait behind alice's second queued one.
    assert calls.started in (["a1", "a2", "b1", "a3"], ["a1", "b1", "a2", "a3"])
    assert calls.headers("b1")[b"x-kubernetes-pf-prioritylevel-uid"] == b"uid-one-seat"
    assert calls.headers("b1")[b"x-kubernetes-pf-flowschema-uid"] == b"uid-one-seat"
    stats = calls.flow_control.stats[(ONE_SEAT, ONE_SEAT)]
    assert (stats.dispatched, stats.executing, stats.waiting) == (4, 0, 0)


async def test_a_full_hand_of_queues_rejects_and_masters_pass() -> None:
    calls = Calls(_filter(QUEUES))
    tasks = [calls.request(f"a{i}", USER_A) for i in range(5)]  # 1 running + 2 × 2 queued
    await _settle()
    refused = calls.request("a5", USER_A)
    await refused
    assert calls.status("a5") == 429
    assert calls.headers("a5")[b"retry-after"] == b"1"
    assert calls.flow_control.stats[(ONE_SEAT, ONE_SEAT)].rejected == {"queue-full": 1}
    exempt = calls.request("admin", MASTERS)
    calls.release("admin")
    await exempt
    assert calls.status("admin") == 200
    for i in range(5):
        calls.release(f"a{i}")
    await asyncio.gather(*tasks)
    assert [calls.status(f"a{i}") for i in range(5)] == [200] * 5
    dump = calls.flow_control.dump("/debug/api_priority_and_fairness/dump_priority_levels", {})
    assert dump is not None
    row = next(r for r in dump.decode().splitlines() if r.startswith("one-seat,"))
    assert [c.strip() for c in row.split(",")] == [
        "one-seat", "0", "true", "false", "0", "0", "5", "1", "0", "0"]  # fmt: skip


async def test_waiting_too_long_or_giving_up_leaves_the_queue() -> None:
    calls = Calls(_filter(QUEUES, wait_limit=0.05))
    held = calls.request("a0", USER_A)
    await _settle()
    late = calls.request("a1", USER_A)
    await late
    assert calls.status("a1") == 429
    gone = calls.request("b0", USER_B)
    await _settle()
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    level = calls.flow_control.levels[ONE_SEAT]
    assert (level.waiting, level.timed_out, level.cancelled) == (0, 1, 1)
    calls.release("a0")
    await held
    assert (level.executing, calls.flow_control.stats[(ONE_SEAT, ONE_SEAT)].rejected) == (
        0, {"time-out": 1, "cancelled": 1})  # fmt: skip


async def test_a_reject_level_never_queues() -> None:
    calls = Calls(_filter({"type": "Reject"}))
    held = calls.request("a0", USER_A)
    await _settle()
    await calls.request("b0", USER_B)
    assert calls.status("b0") == 429
    assert calls.flow_control.stats[(ONE_SEAT, ONE_SEAT)].rejected == {"concurrency-limit": 1}
    queues = calls.flow_control.dump("/x/dump_queues", {})
    assert queues is not None and b"one-seat," not in queues
    calls.release("a0")
    await held
    assert calls.status("a0") == 200


async def test_a_watch_frees_its_seat_when_the_store_says_it_is_initialized() -> None:
    flow_control = _filter(QUEUES)
    level = flow_control.levels[ONE_SEAT]
    seen: list[int] = []
    done = asyncio.Event()

    async def handler(send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        seen.append(level.executing)
        # What Store.watch_batches does once the initial events are out, from a task the
        # handler started (the context, and so the signal, is inherited).
        await asyncio.ensure_future(_signal())
        seen.append(level.executing)
        await done.wait()

    async def _signal() -> None:
        initialization.watch_initialized()

    async def send(message: Object) -> None:
        pass

    info = new_request_info("GET", "/api/v1/namespaces/ns/configmaps", {"watch": "true"})
    watch = asyncio.ensure_future(flow_control.serve(info, USER_A, handler, send))
    await _settle()
    assert seen == [1, 0]  # held while initializing, free while the watch goes on
    initialization.watch_initialized()  # outside the request: nothing to do
    done.set()
    await watch
    assert (level.executing, flow_control.stats[(ONE_SEAT, ONE_SEAT)].executing) == (0, 0)


def test_a_new_configuration_drops_memoized_classifications() -> None:
    flow_control = _filter(QUEUES)
    info = _info("GET", "/api/v1/namespaces/ns/configmaps")
    assert flow_control.classify(USER_A, info).schema.name == ONE_SEAT
    flow_control.use(bootstrap.mandatory_flow_schemas(), bootstrap.mandatory_priority_levels())
    route = flow_control.classify(USER_A, info)
    assert (route.schema.name, route.level.spec.name) == ("catch-all", "catch-all")
    assert route.headers == [
        (b"x-kubernetes-pf-prioritylevel-uid", b""),  # imagined objects have no UID
        (b"x-kubernetes-pf-flowschema-uid", b""),
    ]
