"""Content negotiation: which encoding a client sends and which it wants back.

Request bodies may be JSON or YAML (and the patch types, which the patch
handler reads). Responses are JSON unless the client prefers YAML, and may be
transformed into a ``meta.k8s.io`` ``Table`` or ``PartialObjectMetadata``
when the Accept header asks with ``as=...`` (what kubectl's get does).
Request bodies may also be Kubernetes protobuf, which client-go's typed
clientsets (kubectl create, kubectl auth, ...) send by default; see
``api.protobuf``. Responses are never protobuf or CBOR: a client that offers
JSON too gets JSON, as client-go always does; one that offers nothing we speak
gets 406.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml

from kajitori.api import protobuf
from kajitori.api.core_v1.validation import secrets as secrets_validation
from kajitori.machinery import errors

try:
    _YamlLoader: Any = yaml.CSafeLoader
    _YamlDumper: Any = yaml.CSafeDumper
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _YamlLoader = yaml.SafeLoader
    _YamlDumper = yaml.SafeDumper

JSON = "application/json"
YAML = "application/yaml"


@dataclass(frozen=True, slots=True)
class MediaType:
    """One entry of an Accept header, e.g. ``application/json;as=Table;g=meta.k8s.io;v=v1``."""

    type: str
    params: tuple[tuple[str, str], ...] = ()
    # "" for the object itself, or "Table", "PartialObjectMetadata", ... (the
    # ``as`` parameter): read several times per request, so found once here.
    transform: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "transform", self.param("as"))

    def param(self, name: str) -> str:
        for key, value in self.params:
            if key == name:
                return value
        return ""


def parse_media_types(header: str) -> list[MediaType]:
    out: list[MediaType] = []
    for item in header.split(","):
        pieces = [p.strip() for p in item.split(";")]
        if not pieces[0]:
            continue
        params = []
        for piece in pieces[1:]:
            key, _, value = piece.partition("=")
            params.append((key.strip().lower(), value.strip()))
        out.append(MediaType(pieces[0].lower(), tuple(params)))
    return out


_JSON_LIKE = {"application/json", "application/*", "*/*", "application/json-patch+json"}
_TRANSFORMS = {
    "Table",
    "PartialObjectMetadata",
    "PartialObjectMetadataList",
    "APIGroupDiscoveryList",
}


def choose_response_type(accept: str, *, allowed_transforms: frozenset[str]) -> MediaType:
    """The first acceptable media type in the client's order, or 406."""
    # Clients send the same few Accept headers on every request: parse each once.
    return _choose_response_type(accept, allowed_transforms)


@functools.lru_cache(maxsize=256)
def _choose_response_type(accept: str, allowed_transforms: frozenset[str]) -> MediaType:
    if not accept:
        return MediaType(JSON)
    for media in parse_media_types(accept):
        if media.type in _JSON_LIKE or media.type == YAML:
            if media.transform and media.transform not in allowed_transforms:
                continue
            if media.transform and media.transform not in _TRANSFORMS:
                continue
            base = YAML if media.type == YAML else JSON
            return MediaType(base, media.params)
    raise errors.not_acceptable(
        "only the following media types are accepted: application/json, application/yaml"
    )


def encode(body: Any, media: MediaType) -> tuple[bytes, str]:
    """(bytes, Content-Type) for a response body."""
    if media.type == YAML:
        return dump_yaml(body).encode(), YAML
    content_type = JSON
    if media.transform:
        params = ";".join(f"{k}={v}" for k, v in media.params if k in ("as", "g", "v"))
        content_type = f"{JSON};{params}"
    return orjson.dumps(body), content_type


def dump_yaml(body: Any) -> str:
    text: str = yaml.dump(body, Dumper=_YamlDumper, default_flow_style=False, sort_keys=False)
    return text


@functools.lru_cache(maxsize=64)
def _body_media(content_type: str) -> tuple[str, bool]:
    # Clients send the same few Content-Types: each is read once.
    media = content_type.split(";")[0].strip().lower()
    return media, protobuf.is_protobuf(media)


def decode_body(data: bytes, content_type: str) -> Any:
    """Parse a request body as JSON or YAML by its Content-Type; 400 on bad data."""
    media, is_protobuf = _body_media(content_type)
    if is_protobuf:
        try:
            return protobuf.decode(data)
        except ValueError as exc:
            raise errors.bad_request(str(exc)) from None
    if media in ("", "application/json", "*/*"):
        return _decode_json(data)
    if media in ("application/yaml", "application/x-yaml", "text/yaml"):
        return decode_yaml(data)
    raise errors.unsupported_media_type(media)


def _decode_json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(
            f"couldn't get version/kind; json parse error: {_json_error_text(data, exc)}"
        ) from None


def _json_error_text(data: bytes, exc: orjson.JSONDecodeError) -> str:
    """Go's encoding/json syntax error for ``data`` where it has one (what clients see upstream)."""
    go_error = secrets_validation.go_json_object_error(data)
    if go_error is not None and not go_error.startswith("json: cannot unmarshal"):
        return go_error
    return f"{exc.msg} at line {exc.lineno} column {exc.colno}"


def decode_yaml(data: bytes) -> Any:
    if data.lstrip()[:1] == b"{":
        # JSON is YAML, and what kubectl and most clients send as YAML is JSON:
        # orjson reads it ~50x faster than the YAML parser; anything it refuses
        # (YAML flow style, comments) still goes to the YAML parser below.
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    try:
        return yaml.load(data, Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise errors.bad_request(f"error converting YAML to JSON: yaml: {where}{problem}") from None
