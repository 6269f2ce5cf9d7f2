"""The read path's shortcuts give the slow path's answers (decision 0063).

Each shortcut on a GET or LIST (the URL walked by index, the Accept header
read without decoding every header, the default request context, list items
joined from their JSON bytes) is compared here with the plain computation it
replaces, over many random or tabled inputs.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import cast

import orjson
import pytest

from kajitori.client import rest
from kajitori.machinery import labels
from kajitori.registry.core import configmaps
from kajitori.registry.generic.request import RequestContext
from kajitori.registry.generic.store import ListOptions, Store
from kajitori.server import asgi, negotiation
from kajitori.server.handlers import resources
from kajitori.server.handlers.scope import RequestScope, new_context
from kajitori.server.request_info import (
    _NAMESPACE_SUBRESOURCES,
    RequestInfo,
    _name_from_field_selector,
    _refine_verb,
    new_request_info,
)

CTX = RequestContext()

# ----- the URL ------------------------------------------------------------------

_SEGMENTS = (
    "api", "apis", "v1", "apps", "v1beta1", "namespaces", "ns", "watch", "pods", "configmaps",
    "deployments", "status", "finalize", "scale", "log", "x", "",
)  # fmt: skip
_QUERIES: tuple[dict[str, str], ...] = (
    {},
    {"watch": "true"},
    {"watch": "1"},
    {"fieldSelector": "metadata.name=one"},
    {"fieldSelector": "metadata.name=one", "labelSelector": "a=b"},
    {"labelSelector": "a in (b)"},
)


def _reference_request_info(method: str, path: str, query: dict[str, str]) -> RequestInfo:
    """Upstream's RequestInfoFactory as plainly as it reads: the parts list consumed from its head."""
    stripped = path.strip("/")
    parts = stripped.split("/") if stripped else []
    plain = RequestInfo(path=path, verb=method.lower())
    if len(parts) < 2 or parts[0] not in ("api", "apis"):
        return plain
    prefix = parts.pop(0)
    group = ""
    if prefix == "apis":
        if len(parts) < 2:
            return plain
        group = parts.pop(0)
    version = parts.pop(0)
    if not parts:
        return plain
    verbs = {"POST": "create", "PUT": "update", "PATCH": "patch", "GET": "get", "HEAD": "get"}
    verb = {**verbs, "DELETE": "delete"}.get(method.upper(), method.lower())
    if parts[0] == "watch":
        parts.pop(0)
        verb = "watch"
        if not parts:
            return plain
    namespace = ""
    if parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
            parts = parts[2:]
    name = parts[1] if len(parts) > 1 else ""
    verb = _refine_verb(verb, name, query)
    field_selector = label_selector = ""
    if verb in ("list", "watch", "deletecollection"):
        field_selector = query.get("fieldSelector", "")
        label_selector = query.get("labelSelector", "")
        if verb != "deletecollection":
            name = _name_from_field_selector(field_selector) or name
    return RequestInfo(
        path=path,
        verb=verb,
        is_resource_request=True,
        api_prefix=prefix,
        api_group=group,
        api_version=version,
        namespace=namespace,
        resource=parts[0],
        subresource=parts[2] if len(parts) > 2 else "",
        name=name,
        parts=tuple(parts),
        field_selector=field_selector,
        label_selector=label_selector,
    )


def test_request_info_matches_the_plain_walk_on_random_urls() -> None:
    rng = random.Random(63)
    methods = ("GET", "get", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
    for _ in range(20000):
        segments = [rng.choice(_SEGMENTS) for _ in range(rng.randint(0, 8))]
        if segments and rng.random() < 0.7:
            segments[0] = rng.choice(("api", "apis"))
        path = "/" + "/".join(segments) + ("/" if rng.random() < 0.1 else "")
        method = rng.choice(methods)
        query = rng.choice(_QUERIES)
        assert new_request_info(method, path, query) == _reference_request_info(
            method, path, query
        ), (method, path, query)


# ----- the Accept header and the request context ----------------------------------


def _request(headers: list[tuple[bytes, bytes]]) -> asgi.Request:
    async def receive() -> asgi.Message:
        return {"type": "http.request", "body": b""}

    return asgi.Request({"type": "http", "headers": headers}, receive)


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"host", b"h"), (b"content-type", b"application/json")],
        [(b"accept", b"application/json")],
        [(b"host", b"h"), (b"accept", b"application/json;as=Table;g=meta.k8s.io;v=v1")],
        [(b"accept", b"application/yaml"), (b"user-agent", b"x"), (b"accept", b"*/*")],
        [(b"accept", b"")],
        [(b"accept", b""), (b"accept", b"")],
        [(b"accept", b""), (b"accept", b"application/json")],
        [(b"Accept", b"application/yaml")],  # names arrive lowercased; others are not Accept
    ],
)
def test_accept_is_the_header_as_the_request_decodes_it(headers: list[tuple[bytes, bytes]]) -> None:
    # Read from the raw headers, then from the decoded dict: the same value.
    decoded = _request(headers)
    decoded.headers  # noqa: B018  (builds the dict)
    assert _request(headers).header("accept") == decoded.header("accept")
    assert _request(headers).header("accept", "x") == decoded.header("accept", "x")


def test_an_empty_query_gets_the_context_of_a_query_without_options() -> None:
    user = object()
    assert new_context({}, user) == new_context({"pretty": "true"}, user)
    assert new_context({}, user).user is user


# ----- list items from their JSON bytes ---------------------------------------------


@pytest.fixture
def store(sqlite_store: Callable[..., Store]) -> Store:
    return sqlite_store(configmaps.RESOURCE, watch_cache=None)


def _scope(store: Store) -> RequestScope:
    media = negotiation.MediaType(negotiation.JSON)
    return RequestScope(None, None, None, {}, store, RequestContext(), media)  # type: ignore[arg-type]


async def _both(store: Store, opts: ListOptions) -> tuple[bytes, bytes]:
    """(the list as the decoding path renders it, the list joined from item bytes)."""
    scope = _scope(store)
    plain = await store.list("default", opts)
    meta: dict[str, object] = {"resourceVersion": plain.resource_version}
    if plain.continue_token:
        meta["continue"] = plain.continue_token
    if plain.remaining_item_count is not None:
        meta["remainingItemCount"] = plain.remaining_item_count
    slow = orjson.dumps(resources.render_list(scope, plain.items, meta))
    fast = await store.list("default", opts, as_json=True)
    assert (fast.resource_version, fast.continue_token) == (
        plain.resource_version,
        plain.continue_token,
    )
    return slow, resources.json_list(scope, cast("list[bytes]", fast.items), meta)


async def test_a_list_from_item_bytes_is_the_decoded_lists_text(store: Store) -> None:
    rng = random.Random(630)
    names = [f"cm-{i}" for i in range(12)]
    for name in names:
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
        await store.create("default", {**obj, "data": {"k": name}}, CTX)
    # Objects stored without kind or apiVersion (older writers): a list shows
    # them with both appended, a get without; neither may see the other's bytes.
    for name, value in (("bare-1", {"metadata": {"name": "bare-1"}}),
                        ("bare-2", {"kind": "ConfigMap", "metadata": {"name": "bare-2"}})):  # fmt: skip
        await store.backend.create(store.key("default", name), orjson.dumps(value))
        names.append(name)
    for round_ in range(30):
        action = rng.random()
        name = rng.choice(names)
        if action < 0.3:
            await store.get_json("default", name)  # fills the shared bytes
        elif action < 0.5 and not name.startswith("bare"):
            current = await store.get("default", name)
            current["data"] = {"k": f"{name}-{round_}"}
            await store.update("default", name, current, CTX)
        for opts in (ListOptions(), ListOptions(limit=5)):
            slow, fast = await _both(store, opts)
            assert fast == slow
            while opts.limit and orjson.loads(slow)["metadata"].get("continue"):
                opts = ListOptions(
                    limit=5, continue_token=orjson.loads(slow)["metadata"]["continue"]
                )
                slow, fast = await _both(store, opts)
                assert fast == slow
    bare = orjson.loads(await store.get_json("default", "bare-1"))
    assert "kind" not in bare  # a get shows the object as stored


async def test_a_list_with_selectors_is_not_taken_from_bytes(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.list(
            "default", ListOptions(label_selector=labels.parse_selector("a=b")), as_json=True
        )


async def test_lists_over_http_agree_with_gets_and_tables(admin: rest.Client) -> None:
    for i in range(3):
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"l{i}"}}
        await admin.create(rest.CONFIGMAPS, body, namespace="default")
    await admin.get(rest.CONFIGMAPS, "l1", namespace="default")
    as_json = await admin.request("GET", "/api/v1/namespaces/default/configmaps")
    names = [item["metadata"]["name"] for item in as_json["items"]]
    assert names == ["l0", "l1", "l2"]
    assert all(
        item["kind"] == "ConfigMap" and item["apiVersion"] == "v1" for item in as_json["items"]
    )
    one = await admin.get(rest.CONFIGMAPS, "l1", namespace="default")
    assert as_json["items"][1] == one
    table = await admin.request(
        "GET",
        "/api/v1/namespaces/default/configmaps",
        accept="application/json;as=Table;g=meta.k8s.io;v=v1",
    )
    assert table["kind"] == "Table"
    assert [row["cells"][0] for row in table["rows"]] == ["l0", "l1", "l2"]
