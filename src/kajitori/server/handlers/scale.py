"""The ``/scale`` subresource: an ``autoscaling/v1 Scale`` view of a workload.

Reading renders spec.replicas, status.replicas and the label selector as a
string; writing changes only ``spec.replicas`` of the parent object through
the store's guaranteed update, so the parent's own validation still runs
(upstream: pkg/registry/apps/deployment/storage ScaleREST).
"""

from __future__ import annotations

from typing import Any

from kajitori.machinery import errors
from kajitori.registry.resource import ScaleSubresource
from kajitori.server import negotiation
from kajitori.server.handlers.scope import RequestScope

Object = dict[str, Any]


def _spec(scope: RequestScope) -> ScaleSubresource:
    spec = scope.store.info.scale
    if spec is None:
        raise errors.not_found(scope.store.gr, scope.info.name)
    return spec


async def get(scope: RequestScope) -> None:
    spec = _spec(scope)
    obj = await scope.store.get(scope.namespace, scope.info.name)
    await scope.respond(200, spec.scale_of(obj))


async def update(scope: RequestScope) -> None:
    body = await scope.request.body()
    scale = negotiation.decode_body(body, scope.request.header("content-type"))
    if not isinstance(scale, dict) or scale.get("kind") != "Scale":
        raise errors.bad_request("the body of the request must be an autoscaling/v1 Scale")
    await apply_scale(scope, scale)


async def apply_scale(scope: RequestScope, scale: Object) -> None:
    spec = _spec(scope)
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise errors.invalid(
            errors.GroupKind("autoscaling", "Scale"),
            scope.info.name,
            [_replicas_error(replicas)],
        )
    precondition = (scale.get("metadata") or {}).get("resourceVersion", "")

    async def set_replicas(current: Object) -> Object:
        node = current
        for key in spec.spec_replicas[:-1]:
            node = node.setdefault(key, {})
        node[spec.spec_replicas[-1]] = replicas
        return current

    obj, _ = await scope.store.guaranteed_update(
        scope.namespace, scope.info.name, set_replicas, scope.ctx, precondition_rv=precondition
    )
    await scope.respond(200, spec.scale_of(obj))


def _replicas_error(value: Any) -> Any:
    from kajitori.machinery import field

    return field.invalid("spec.replicas", value, "must be greater than or equal to 0")
