"""The API server's own metrics, served at ``/metrics`` in Prometheus' text format.

Upstream's apiserver exports hundreds of series through component-base;
kajitori keeps the one that says what load the server is under:
``apiserver_request_total``, a counter per verb, dry run, group, version,
resource, subresource, scope, component and response code, labelled as
upstream's ``endpoints/metrics`` labels it (``POST`` for a create, ``LIST``
and ``WATCH`` told apart, ``APPLY`` for server-side apply, ``CONNECT`` for
exec/attach/log/proxy). Benchmarks scrape it to count API requests per pod.

Counting must cost next to nothing, since every request does it: one label
tuple and one dict increment (``RequestCounter.count``); the text is only
built when someone scrapes. Which requests count follows upstream, where the
counter lives in the route handlers: requests that reached a route (resource
handlers, health checks, discovery, ``/version``, ``/metrics``); requests
refused by authentication or authorization, and paths nobody serves, are not
counted. ``/metrics`` itself is a non-resource URL, authorized like any
other (the bootstrap ``system:monitoring`` role grants it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kajitori.server.request_info import RequestInfo

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
COMPONENT = "apiserver"

# Upstream's route verbs (installer.go), by RequestInfo verb.
_ROUTE_VERBS = {
    "create": "POST",
    "update": "PUT",
    "patch": "PATCH",
    "get": "GET",
    "list": "LIST",
    "watch": "WATCH",
    "delete": "DELETE",
    "deletecollection": "DELETECOLLECTION",
}
# Subresources upstream reports as CONNECT (validConnectRequests).
_CONNECT = frozenset(("log", "exec", "proxy", "attach", "portforward"))
_APPLY = "application/apply-patch+yaml"

_LABELS = (
    "verb",
    "dry_run",
    "group",
    "version",
    "resource",
    "subresource",
    "scope",
    "component",
    "code",
)
_REQUEST_TOTAL_HELP = (
    "# HELP apiserver_request_total [STABLE] Counter of apiserver requests broken out for each"
    " verb, dry run value, group, version, resource, scope, component, and HTTP response code.\n"
    "# TYPE apiserver_request_total counter\n"
)

Key = tuple[str, str, str, str, str, str, str, str, int]

# Non-resource paths are client-chosen (``/healthz/<anything>`` answers 200):
# past this many distinct ones, new paths are not counted, so a client cannot
# grow the series without bound. Resource series are bounded by the API.
MAX_NON_RESOURCE_PATHS = 512


class RequestCounter:
    """``apiserver_request_total``: counts kept in one dict keyed by the label values."""

    def __init__(self) -> None:
        self.counts: dict[Key, int] = {}
        self._paths: set[str] = set()

    def count(
        self, info: RequestInfo, code: int, query: Mapping[str, str], content_type: str
    ) -> None:
        """One finished request (``content_type``: the request's, for APPLY)."""
        if info.is_resource_request:
            key = _resource_key(info, code, query, content_type)
        else:
            # Upstream instruments non-resource handlers (health checks) with the
            # path as the subresource and no component.
            if info.path not in self._paths:
                if len(self._paths) >= MAX_NON_RESOURCE_PATHS:
                    return
                self._paths.add(info.path)
            key = (info.verb.upper(), "", "", "", "", info.path, "", "", code)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1

    def render(self) -> bytes:
        """The Prometheus text exposition of every series counted so far."""
        lines = [_REQUEST_TOTAL_HELP]
        for key, value in sorted(self.counts.items(), key=_sort_key):
            lines.append(f"apiserver_request_total{{{_label_text(key)}}} {value}\n")
        return "".join(lines).encode()


def _resource_key(info: RequestInfo, code: int, query: Mapping[str, str], content_type: str) -> Key:
    verb = _ROUTE_VERBS.get(info.verb) or info.verb.upper()
    if info.subresource in _CONNECT:
        verb = "CONNECT"
    elif verb == "PATCH" and content_type == _APPLY:
        verb = "APPLY"
    # Upstream's CleanScope: a named object or a create is "resource".
    if info.name or info.verb == "create":
        scope = "resource"
    else:
        scope = "namespace" if info.namespace else "cluster"
    if verb == "LIST" and scope == "resource":
        verb = "GET"  # a list naming one object (metadata.name selector), upstream's CanonicalVerb
    # Upstream's cleanDryRun: a value other than All is "invalid" (and answered 400).
    dry_run = query.get("dryRun", "") if query else ""
    if dry_run and dry_run != "All":
        dry_run = "invalid"
    return (
        verb,
        dry_run,
        info.api_group,
        info.api_version,
        info.resource,
        info.subresource,
        scope,
        COMPONENT,
        code,
    )


def _sort_key(item: tuple[Key, int]) -> tuple[str, ...]:
    return tuple(str(v) for v in item[0])


# Label names in the order Prometheus' Go client writes them (sorted).
_RENDER_ORDER = sorted(range(len(_LABELS)), key=lambda i: _LABELS[i])


def _label_text(key: Key) -> str:
    return ",".join(f'{_LABELS[i]}="{_escape(str(key[i]))}"' for i in _RENDER_ORDER)


def _escape(value: str) -> str:
    """Prometheus label-value escaping: backslash, double quote and newline."""
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def requests_by_verb_resource(text: str) -> dict[str, float]:
    """``apiserver_request_total`` summed by ``"VERB resource[/subresource]"`` (non-resource: path).

    ``text`` is a scrape of ``/metrics``; benchmarks diff two of them.
    """
    totals: dict[str, float] = {}
    for name, labels, value in parse(text):
        if name != "apiserver_request_total":
            continue
        what = labels.get("resource") or ""
        if labels.get("subresource"):
            what = f"{what}/{labels['subresource']}" if what else labels["subresource"]
        key = f"{labels.get('verb', '')} {what}"
        totals[key] = totals.get(key, 0.0) + value
    return totals


def parse(text: str) -> Iterable[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of each sample in a text exposition (for benchmarks and tests).

    Enough of the format for what ``render`` writes and upstream's servers
    write: comments skipped, quoted label values unescaped.
    """
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, brace, rest = head.partition("{")
        labels = _parse_labels(rest[:-1]) if brace else {}
        yield name, labels, float(value)


def _parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    i = 0
    while i < len(text):
        eq = text.index("=", i)
        name = text[i:eq].strip().lstrip(",").strip()
        j = eq + 2  # past '="'
        chars: list[str] = []
        while text[j] != '"':
            if text[j] == "\\":
                j += 1
                chars.append("\n" if text[j] == "n" else text[j])
            else:
                chars.append(text[j])
            j += 1
        labels[name] = "".join(chars)
        i = j + 1
    return labels
