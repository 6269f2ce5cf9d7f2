"""``serviceaccounts/{name}/token``: TokenRequest (upstream: pkg/registry/core/serviceaccount/storage/token.go).

A create on the subresource answers a signed token for the ServiceAccount,
never stores anything. Steps, as upstream's handler and TokenREST take them:

1. the body is decoded as a ``TokenRequest`` (``expirationSeconds`` defaults
   to 3600) and mutating admission runs on it (a CREATE of
   ``authentication.k8s.io/v1 TokenRequest``, subresource ``token``);
2. a ``metadata.name`` other than the ServiceAccount's is invalid; the
   ServiceAccount must exist (404 otherwise);
3. the TokenRequest gets its defaults (audiences: the API server's own; name,
   namespace, creationTimestamp), is validated (``expirationSeconds`` at least
   10 minutes and at most 2^32 seconds), then validating admission runs;
4. a ``boundObjectRef`` must name a Pod or Secret (v1) that exists in the
   namespace, with the given uid if one is given (409 otherwise);
5. the token is signed for ``spec.audiences`` and returned in
   ``status.token`` with ``status.expirationTimestamp``.

Signing lives in ``kajitori.auth`` (above this layer), so the composition
root passes a ``Signer`` in; other objects are read through ``get_object``.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from kajitori.machinery import errors, field, times

Object = dict[str, Any]
ObjectGetter = Callable[[str, str, str], Awaitable[Object | None]]

GROUP = "authentication.k8s.io"
DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 10 * 60
MAX_EXPIRATION_SECONDS = 1 << 32
_BINDABLE = {"Pod": "pods", "Secret": "secrets"}


class Signer(Protocol):
    def __call__(
        self,
        namespace: str,
        name: str,
        uid: str,
        *,
        audiences: Sequence[str],
        expiration_seconds: int,
        bound: tuple[str, str, str] | None,
    ) -> tuple[str, int]:
        """A token for the account (bound to (kind, name, uid) if given) and its expiry."""


def token_request_handler(
    sign: Signer, *, get_object: ObjectGetter, api_audiences: Sequence[str]
) -> Callable[[Any, str, str, Object, Any], Awaitable[Object]]:
    """The ``subresource_create`` handler for ``serviceaccounts/token``."""

    async def create(store: Any, namespace: str, name: str, body: Object, ctx: Any) -> Object:
        request = _decoded_request(body, namespace)
        await store.admission.admit_subresource(store, "CREATE", name, namespace, request, ctx)
        _check_name(request, name)
        account = await store.get(namespace, name)
        spec = _completed(request, name, api_audiences)
        problems = validate_token_request(spec)
        if problems:
            raise errors.invalid(errors.GroupKind(GROUP, "TokenRequest"), "", problems)
        await store.admission.validate_subresource(store, "CREATE", name, namespace, request, ctx)
        bound = await _bound_object(spec.get("boundObjectRef"), namespace, name, get_object)
        token, expires = sign(
            namespace,
            name,
            account["metadata"].get("uid", ""),
            audiences=spec["audiences"],
            expiration_seconds=spec["expirationSeconds"],
            bound=bound,
        )
        request["status"] = {"token": token, "expirationTimestamp": times.rfc3339(expires)}
        return request

    return create


def _decoded_request(body: Object, namespace: str) -> Object:
    """The body as upstream's decoder hands it on: a defaulted TokenRequest in the URL's namespace."""
    request = copy.deepcopy(body)
    if request.get("kind", "TokenRequest") != "TokenRequest":
        raise errors.bad_request(
            f'{request.get("kind")} in version "v1" cannot be handled as a TokenRequest'
        )
    request["kind"], request["apiVersion"] = "TokenRequest", f"{GROUP}/v1"
    meta = request.get("metadata")
    if not isinstance(meta, dict):
        meta = request["metadata"] = {}
    meta.setdefault("namespace", namespace)
    spec = request.get("spec")
    if not isinstance(spec, dict):
        spec = request["spec"] = {}
    if spec.get("expirationSeconds") is None:
        spec["expirationSeconds"] = DEFAULT_EXPIRATION_SECONDS
    return request


def _check_name(request: Object, name: str) -> None:
    """A name in the body must be the ServiceAccount's (upstream's TokenREST)."""
    given = request["metadata"].get("name")
    if given and given != name:
        problem = field.invalid(
            "metadata.name", given, "must match the service account name if specified"
        )
        raise errors.invalid(errors.GroupKind(GROUP, "TokenRequest"), name, [problem])


def _completed(request: Object, name: str, api_audiences: Sequence[str]) -> Object:
    """Upstream's defaults before validation: audiences, name, creationTimestamp, no status."""
    spec: Object = request["spec"]
    spec["audiences"] = list(spec.get("audiences") or api_audiences)
    meta = request["metadata"]
    meta["name"] = meta.get("name") or name
    meta["creationTimestamp"] = times.now_rfc3339()
    request.pop("status", None)
    return spec


def validate_token_request(spec: Object) -> list[field.FieldError]:
    """Upstream's ValidateTokenRequest."""
    seconds = spec.get("expirationSeconds")
    path = "spec.expirationSeconds"
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        return [field.invalid(path, seconds, "must be an integer")]
    if seconds < MIN_EXPIRATION_SECONDS:
        return [field.invalid(path, seconds, "may not specify a duration less than 10 minutes")]
    if seconds > MAX_EXPIRATION_SECONDS:
        return [field.invalid(path, seconds, "may not specify a duration larger than 2^32 seconds")]
    return []


async def _bound_object(
    ref: Any, namespace: str, account: str, get_object: ObjectGetter
) -> tuple[str, str, str] | None:
    if not ref:
        return None
    kind, api_version = ref.get("kind", ""), ref.get("apiVersion", "")
    plural = _BINDABLE.get(kind)
    if plural is None or api_version not in ("v1", ""):
        gvk = f"{api_version}, Kind={kind}" if api_version else f", Kind={kind}"
        raise errors.bad_request(
            f'cannot bind token for serviceaccount "{account}" to object of kind "{gvk}"'
        )
    name = ref.get("name", "")
    obj = await get_object(plural, namespace, name)
    if obj is None:
        raise errors.not_found(errors.GroupResource("", plural), name)
    uid = obj["metadata"].get("uid", "")
    if ref.get("uid") and ref["uid"] != uid:
        raise errors.conflict(
            errors.GroupResource("", kind),
            name,
            f"the UID in the bound object reference ({ref['uid']}) does not match the UID in "
            "record. The object might have been deleted and then recreated",
        )
    return kind, name, uid
