"""RequestInfo: what a URL and method ask for, parsed once per request.

Mirrors upstream's ``RequestInfoFactory.NewRequestInfo``
(k8s.io/apiserver/pkg/endpoints/request/requestinfo.go), so authorization,
audit and the handlers all read the same verb/resource/namespace/name.
Accepted shapes::

    /api/v1/{resource}[/{name}[/{subresource}]]
    /api/v1/namespaces/{namespace}/{resource}[/{name}[/{subresource}]]
    /apis/{group}/{version}/...                       (same shapes)
    /api/v1/watch/...  /apis/{g}/{v}/watch/...        (legacy watch paths)

Anything else (``/version``, ``/healthz``, ``/apis``, ...) is a non-resource
request. ``/api/v1/namespaces/{name}`` is the namespace itself, and its
``status`` and ``finalize`` subresources stay on the namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from kajitori.machinery import fields, names

_NAMESPACE_SUBRESOURCES = frozenset(("status", "finalize"))
_COLLECTION_VERBS = frozenset(("list", "watch", "deletecollection"))
_VERB_BY_METHOD = {
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "GET": "get",
    "HEAD": "get",
    "DELETE": "delete",
}


# Not frozen, though nothing changes it after parsing: a frozen dataclass
# sets each of its 13 fields through object.__setattr__, which made building
# one cost several microseconds on every request.
@dataclass(slots=True)
class RequestInfo:
    path: str
    verb: str
    is_resource_request: bool = False
    api_prefix: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    parts: tuple[str, ...] = ()
    # The raw selectors of a list, watch or deletecollection, for authorizers
    # (upstream's KEP-4601 "authorize with selectors").
    field_selector: str = ""
    label_selector: str = ""


def parse_query(query_string: bytes) -> dict[str, str]:
    """Query parameters, last value wins (as Go's url.Values.Get takes the first; rare)."""
    if not query_string:
        return {}
    parsed = parse_qs(query_string.decode("latin-1"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def parse_bool(value: str) -> bool:
    """A boolean query parameter that is present, read as upstream's parameter codec does.

    Only ``0`` and ``false`` (any case) are false; every other value is true,
    the empty string (``?watch``) and ``True`` (what Python clients that
    urlencode a bool send) included. An absent parameter is false, or unset
    where the option is a pointer: callers check presence first.
    """
    return value != "0" and value.lower() != "false"


def query_flag(query: dict[str, str], name: str) -> bool | None:
    """``name``'s boolean value, or None when the query does not have it."""
    value = query.get(name)
    return None if value is None else parse_bool(value)


def new_request_info(method: str, path: str, query: dict[str, str]) -> RequestInfo:
    stripped = path.strip("/")
    parts = stripped.split("/") if stripped else []
    count = len(parts)
    # Walked by index, not by popping the list's head: this runs on every request.
    if count < 2:
        return _non_resource(method, path)
    prefix = parts[0]
    if prefix == "api":
        group, at = "", 1
    elif prefix == "apis" and count > 2:
        group, at = parts[1], 2
    else:
        return _non_resource(method, path)
    version = parts[at]
    at += 1
    if at == count:
        return _non_resource(method, path)
    verb = _VERB_BY_METHOD.get(method) or _VERB_BY_METHOD.get(method.upper(), method.lower())
    if parts[at] == "watch":
        at += 1
        verb = "watch"
        if at == count:
            return _non_resource(method, path)
    namespace = ""
    if parts[at] == "namespaces" and count - at > 1:
        namespace = parts[at + 1]
        if count - at > 2 and parts[at + 2] not in _NAMESPACE_SUBRESOURCES:
            at += 2
    rest = tuple(parts[at:])
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    verb = _refine_verb(verb, name, query)
    field_selector = label_selector = ""
    if verb in _COLLECTION_VERBS:
        field_selector = query.get("fieldSelector", "")
        label_selector = query.get("labelSelector", "")
        if verb != "deletecollection":
            name = _name_from_field_selector(field_selector) or name
    # Positional, in field order: keyword arguments cost more on every request.
    return RequestInfo(
        path, verb, True, prefix, group, version, namespace, resource, subresource, name, rest,
        field_selector, label_selector,
    )  # fmt: skip


def _non_resource(method: str, path: str) -> RequestInfo:
    return RequestInfo(path=path, verb=method.lower())


def _name_from_field_selector(text: str) -> str:
    """``metadata.name=x`` in a list or watch names the object, as upstream's RequestInfo.

    So RBAC ``resourceNames`` can grant a list or watch of one object (what an
    informer for a single object asks). A selector that does not parse names
    nothing; the handler refuses it later with the right error.
    """
    if "metadata.name" not in text:
        return ""
    try:
        selector = fields.parse_field_selector(text)
    except fields.SelectorError:
        return ""
    name = selector.requires_exact_match("metadata.name") or ""
    return name if name and not names.is_path_segment_name(name) else ""


def _refine_verb(verb: str, name: str, query: dict[str, str]) -> str:
    if verb == "get" and not name:
        verb = "list"
    if verb == "list" and query_flag(query, "watch"):
        verb = "watch"
    if verb == "delete" and not name:
        verb = "deletecollection"
    return verb
