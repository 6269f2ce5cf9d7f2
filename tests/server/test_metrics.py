"""/metrics: apiserver_request_total counted per answered request, labelled as upstream's."""

from __future__ import annotations

import pytest

from kajitori.client import rest
from kajitori.server import metrics

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "counted"}}


async def scrape(admin: rest.Client) -> tuple[str, str]:
    response = await admin.http.get("/metrics")
    assert response.status_code == 200
    return response.headers["content-type"], response.text


def series(text: str, **labels: str) -> float:
    """The sum of apiserver_request_total over series carrying ``labels``."""
    return sum(
        value
        for name, found, value in metrics.parse(text)
        if name == "apiserver_request_total" and labels.items() <= found.items()
    )


async def test_counts_resource_requests_by_upstream_labels(admin: rest.Client) -> None:
    """POST/GET/LIST/APPLY/dry-run/404 each land in their own series; refusals are not counted."""
    await admin.create(rest.CONFIGMAPS, CM, namespace="default")
    await admin.get(rest.CONFIGMAPS, "counted", namespace="default")
    await admin.get(rest.CONFIGMAPS, "counted", namespace="default")
    await admin.list(rest.CONFIGMAPS, namespace="default")
    await admin.list(rest.CONFIGMAPS)
    with pytest.raises(rest.ApiError):
        await admin.get(rest.CONFIGMAPS, "missing", namespace="default")
    await admin.request(
        "POST", "/api/v1/namespaces/default/configmaps", body={**CM, "metadata": {"name": "d"}},
        params={"dryRun": "All"},
    )  # fmt: skip
    await admin.request(
        "PATCH", "/api/v1/namespaces/default/configmaps/counted", body={**CM, "data": {"a": "b"}},
        params={"fieldManager": "test"}, content_type="application/apply-patch+yaml",
    )  # fmt: skip
    # A path nobody serves is not counted (upstream counts in route handlers).
    assert (await admin.http.get("/apis/nothing.example/v1/things")).status_code == 404

    content_type, text = await scrape(admin)
    assert content_type == metrics.CONTENT_TYPE
    assert "# TYPE apiserver_request_total counter" in text
    common = {"group": "", "version": "v1", "resource": "configmaps", "component": "apiserver"}
    assert series(text, verb="POST", scope="resource", code="201", dry_run="", **common) == 1
    assert series(text, verb="POST", code="201", dry_run="All", **common) == 1
    assert series(text, verb="GET", scope="resource", code="200", **common) == 2
    assert series(text, verb="GET", scope="resource", code="404", **common) == 1
    assert series(text, verb="LIST", scope="namespace", code="200", **common) == 1
    assert series(text, verb="LIST", scope="cluster", code="200", **common) == 1
    assert series(text, verb="APPLY", scope="resource", code="200", **common) == 1
    assert series(text, resource="things") == 0
    # Labels are written sorted by name, as Prometheus' Go client writes them.
    line = next(x for x in text.splitlines() if 'verb="APPLY"' in x)
    assert line.startswith('apiserver_request_total{code="200",component="apiserver",dry_run=""')


async def test_non_resource_routes_count_under_their_path(admin: rest.Client) -> None:
    """Health checks are counted with the path as subresource and no component (upstream's healthz)."""
    assert (await admin.http.get("/healthz")).status_code == 200
    _, text = await scrape(admin)
    assert series(text, verb="GET", subresource="/healthz", component="", code="200") == 1
    # The scrape itself is counted once it has been answered.
    _, again = await scrape(admin)
    assert series(again, subresource="/metrics", code="200") == 1


def test_label_values_are_escaped_and_parse_back() -> None:
    """A quote, backslash or newline in a value survives render → parse."""
    from kajitori.server.request_info import new_request_info

    counter = metrics.RequestCounter()
    counter.count(new_request_info("GET", '/odd"\\\npath', {}), 200, {}, "")
    (name, labels, value), *_ = list(metrics.parse(counter.render().decode()))
    assert (name, labels["subresource"], value) == ("apiserver_request_total", '/odd"\\\npath', 1)


def test_client_chosen_labels_stay_bounded() -> None:
    """Unknown dryRun values are "invalid" and new non-resource paths stop at the cap."""
    from kajitori.server.request_info import new_request_info

    counter = metrics.RequestCounter()
    create = new_request_info("POST", "/api/v1/namespaces/a/configmaps", {})
    counter.count(create, 400, {"dryRun": "whatever"}, "")
    for i in range(metrics.MAX_NON_RESOURCE_PATHS + 50):
        counter.count(new_request_info("GET", f"/healthz/x{i}", {}), 200, {}, "")
    text = counter.render().decode()
    assert series(text, verb="POST", dry_run="invalid", code="400") == 1
    assert len(counter.counts) == metrics.MAX_NON_RESOURCE_PATHS + 1
