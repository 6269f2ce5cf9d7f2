"""Boolean query parameters read as upstream's parameter codec reads them.

Only an absent parameter, ``0`` and ``false`` (any case) are false: ``?watch=True``
(what kubernetes-asyncio sends, urlencoding a Python bool) and a bare ``?watch``
are true. Each case goes over HTTPS to a real API server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from kajitori.client import kubeconfig
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.server.request_info import parse_bool, query_flag

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("1", True),
        ("", True),
        ("yes", True),
        ("false", False),
        ("False", False),
        ("FALSE", False),
        ("0", False),
    ],
)
def test_a_present_value_is_true_unless_false_or_zero(value: str, expected: bool) -> None:
    assert parse_bool(value) is expected
    assert query_flag({"watch": value}, "watch") is expected


def test_an_absent_parameter_is_unset() -> None:
    assert query_flag({}, "watch") is None


@pytest.fixture
async def http(apiserver: APIServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    config = kubeconfig.load_kubeconfig(apiserver.config.kubeconfig_path)
    async with httpx.AsyncClient(base_url=config.server, verify=config.ssl_context()) as client:
        created = await client.post(
            CONFIGMAPS,
            json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flag"}},
        )
        assert created.status_code == 201
        yield client


@pytest.mark.parametrize("query", ["watch=True", "watch", "watch=1", "watch=true"])
async def test_a_true_watch_parameter_streams_events(http: httpx.AsyncClient, query: str) -> None:
    response = await http.get(f"{CONFIGMAPS}?{query}&timeoutSeconds=1")
    assert response.status_code == 200
    events = [orjson.loads(line) for line in response.content.splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "flag")]


@pytest.mark.parametrize("query", ["watch=False", "watch=0", "watch=false"])
async def test_a_false_watch_parameter_lists(http: httpx.AsyncClient, query: str) -> None:
    response = await http.get(f"{CONFIGMAPS}?{query}")
    assert response.status_code == 200
    assert response.json()["kind"] == "ConfigMapList"


async def test_send_initial_events_given_bare_is_true_and_needs_not_older_than(
    http: httpx.AsyncClient,
) -> None:
    """A bare ``sendInitialEvents`` asks for them, so it needs resourceVersionMatch."""
    response = await http.get(f"{CONFIGMAPS}?watch=True&sendInitialEvents")
    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["field"] == "resourceVersionMatch"


async def test_bookmarks_allowed_with_a_capitalised_true(http: httpx.AsyncClient) -> None:
    """``allowWatchBookmarks=True`` asks for the initial-events-end bookmark too."""
    response = await http.get(
        f"{CONFIGMAPS}?watch=True&allowWatchBookmarks=True&sendInitialEvents=True"
        "&resourceVersionMatch=NotOlderThan&timeoutSeconds=1"
    )
    assert response.status_code == 200
    types = [orjson.loads(line)["type"] for line in response.content.splitlines()]
    assert types[:2] == ["ADDED", "BOOKMARK"]


async def test_force_true_takes_over_an_apply_conflict(http: httpx.AsyncClient) -> None:
    url = f"{CONFIGMAPS}/flag"
    headers = {"Content-Type": "application/apply-patch+yaml"}
    body = orjson.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flag"}, "data": {"a": "1"}}
    )
    first = await http.patch(f"{url}?fieldManager=one", content=body, headers=headers)
    assert first.status_code == 200
    other = body.replace(b'"1"', b'"2"')
    conflict = await http.patch(f"{url}?fieldManager=two", content=other, headers=headers)
    assert conflict.status_code == 409
    forced = await http.patch(f"{url}?fieldManager=two&force=True", content=other, headers=headers)
    assert forced.status_code == 200
    assert forced.json()["data"] == {"a": "2"}


async def test_orphan_dependents_true_in_the_query_orphans(http: httpx.AsyncClient) -> None:
    """``orphanDependents=True`` adds the orphan finalizer before the owner goes."""
    response = await http.request(
        "DELETE",
        f"{CONFIGMAPS}/flag?orphanDependents=True",
        content=orjson.dumps({"preconditions": {}}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200
    assert "orphan" in (response.json()["metadata"].get("finalizers") or [])


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "resourceVersionMatch=NotOlderThan",
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless "
            "resourceVersion is provided",
        ),
        (
            "resourceVersion=0&resourceVersionMatch=Exact",
            'resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden for '
            'resourceVersion "0"',
        ),
        (
            "resourceVersion=1&resourceVersionMatch=Newest",
            'resourceVersionMatch: Unsupported value: "Newest": supported values: "Exact", '
            '"NotOlderThan", ""',
        ),
        (
            "sendInitialEvents=false",
            "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list",
        ),
        (
            "watch=1&resourceVersionMatch=NotOlderThan",
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless "
            "sendInitialEvents is provided",
        ),
    ],
)
async def test_list_options_break_one_rule_422(
    http: httpx.AsyncClient, query: str, message: str
) -> None:
    """ValidateListOptions' rules, each answered as upstream's Invalid ListOptions."""
    response = await http.get(f"{CONFIGMAPS}?{query}")
    assert response.status_code == 422
    status = response.json()
    assert status["reason"] == "Invalid"
    assert status["details"]["kind"] == "ListOptions"
    assert status["details"]["group"] == "meta.k8s.io"
    assert status["message"] == f'ListOptions.meta.k8s.io "" is invalid: {message}'


async def test_every_broken_list_option_is_in_one_answer(http: httpx.AsyncClient) -> None:
    response = await http.get(
        f"{CONFIGMAPS}?watch=1&sendInitialEvents=1&resourceVersionMatch=Exact"
    )
    assert response.status_code == 422
    assert [c["message"] for c in response.json()["details"]["causes"]] == [
        "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        'Unsupported value: "Exact": supported values: "NotOlderThan"',
    ]


async def test_a_watch_list_without_resource_version_streams(http: httpx.AsyncClient) -> None:
    """client-go's WatchList request: no resourceVersion, initial events, then the bookmark."""
    response = await http.get(
        f"{CONFIGMAPS}?watch=true&allowWatchBookmarks=true&sendInitialEvents=true"
        "&resourceVersionMatch=NotOlderThan&timeoutSeconds=1"
    )
    assert response.status_code == 200
    events = [orjson.loads(line) for line in response.content.splitlines()]
    assert events[0]["object"]["metadata"]["name"] == "flag"
    end = events[1]["object"]["metadata"]["annotations"]
    assert end == {"k8s.io/initial-events-end": "true"}


@pytest.mark.parametrize("resource_version", ["", "0"])
async def test_a_watch_from_now_or_any_ends_its_initial_events_with_a_bookmark(
    http: httpx.AsyncClient, resource_version: str
) -> None:
    """SetListOptionsDefaults (WatchList on): such a watch is a watch-list when bookmarks are
    allowed, so its initial ADDED events end with the initial-events-end bookmark."""
    response = await http.get(
        f"{CONFIGMAPS}?watch=1&allowWatchBookmarks=1&resourceVersion={resource_version}"
        "&timeoutSeconds=1"
    )
    assert response.status_code == 200
    events = [orjson.loads(line) for line in response.content.splitlines()]
    assert [e["type"] for e in events[:2]] == ["ADDED", "BOOKMARK"]
    end = events[1]["object"]["metadata"]
    assert end["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_without_allowed_bookmarks_no_initial_events_end_bookmark(
    http: httpx.AsyncClient,
) -> None:
    """upstream's isListWatchRequest: the end bookmark needs allowWatchBookmarks as well."""
    response = await http.get(
        f"{CONFIGMAPS}?watch=1&sendInitialEvents=1&resourceVersionMatch=NotOlderThan"
        "&timeoutSeconds=1"
    )
    assert response.status_code == 200
    assert [orjson.loads(line)["type"] for line in response.content.splitlines()] == ["ADDED"]


async def test_a_watch_from_a_given_version_is_not_defaulted(http: httpx.AsyncClient) -> None:
    """Only "now" and "any" are defaulted: from a version, only later changes come."""
    listed = (await http.get(CONFIGMAPS)).json()["metadata"]["resourceVersion"]
    response = await http.get(
        f"{CONFIGMAPS}?watch=1&allowWatchBookmarks=1&resourceVersion={listed}&timeoutSeconds=1"
    )
    assert response.status_code == 200
    assert response.content == b""
