"""apps/v1beta1, apps/v1beta2 and extensions/v1beta1 workloads over the apps/v1 storage.

Upstream served these until 1.16 (extensions/v1beta1 Deployments,
DaemonSets and ReplicaSets, apps/v1beta1 and apps/v1beta2), and manifests
written for them are still pasted from books and study notes. Each old
version is one more ``ResourceInfo`` per kind: the apps/v1 declaration
(strategy, status, table, short names) with the served group and version,
a ``Conversion`` to and from apps/v1 (the old version's defaults, then
apps/v1), the stored resource's keys (``ResourceInfo.storage_prefix``
follows ``Conversion.storage_group``), upstream's deprecation warning, and
upstream's default propagation policy for these versions (Orphan). The
``/scale`` subresource (old versions answered with their own Scale kinds) is
not served. See docs/decisions/0015-legacy-api-versions.md.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

from kajitori.api.apps_v1beta1 import conversion
from kajitori.api.apps_v1beta1 import defaults as v1beta1
from kajitori.api.apps_v1beta2 import defaults as v1beta2
from kajitori.api.extensions_v1beta1 import defaults as extensions
from kajitori.registry import resource
from kajitori.registry.apps import (
    controllerrevisions,
    daemonsets,
    deployments,
    replicasets,
    statefulsets,
)
from kajitori.registry.legacy import schemas

Object = dict[str, Any]
Defaulter = Callable[[Object], None]

REMOVED_IN = "v1.16"

_APPS_V1: Mapping[str, resource.ResourceInfo] = {
    info.plural: info
    for info in (
        deployments.RESOURCE,
        statefulsets.RESOURCE,
        daemonsets.RESOURCE,
        replicasets.RESOURCE,
        controllerrevisions.RESOURCE,
    )
}

# (group, version, deprecated in, {plural: the version's defaults}) in discovery order.
_SERVED: tuple[tuple[str, str, str, Mapping[str, Defaulter]], ...] = (
    (
        "apps",
        "v1beta2",
        "v1.9",
        {
            "deployments": v1beta2.set_defaults_deployment,
            "statefulsets": v1beta2.set_defaults_stateful_set,
            "daemonsets": v1beta2.set_defaults_daemon_set,
            "replicasets": v1beta2.set_defaults_replica_set,
            "controllerrevisions": v1beta2.set_defaults_controller_revision,
        },
    ),
    (
        "apps",
        "v1beta1",
        "v1.9",
        {
            "deployments": v1beta1.set_defaults_deployment,
            "statefulsets": v1beta1.set_defaults_stateful_set,
            "controllerrevisions": v1beta1.set_defaults_controller_revision,
        },
    ),
    (
        "extensions",
        "v1beta1",
        "v1.8",
        {
            "deployments": extensions.set_defaults_deployment,
            "daemonsets": extensions.set_defaults_daemon_set,
            "replicasets": extensions.set_defaults_replica_set,
        },
    ),
)


def deprecation_warning(group: str, version: str, kind: str, deprecated_in: str) -> str:
    """Upstream's deprecated-API warning text for a kind replaced by its apps/v1 namesake."""
    return (
        f"{group}/{version} {kind} is deprecated in {deprecated_in}+, "
        f"unavailable in {REMOVED_IN}+; use apps/v1 {kind}"
    )


def _no_defaults(obj: Object) -> None:
    """A server-side apply configuration is converted as sent (defaults come after)."""


def legacy_resource(
    group: str, version: str, plural: str, *, defaults: Defaulter, deprecated_in: str
) -> resource.ResourceInfo:
    """The apps/v1 ``plural`` served as ``group/version``, converted to and from apps/v1."""
    stored = _APPS_V1[plural]
    api_version = f"{group}/{version}"
    # Only extensions/v1beta1 DaemonSets carry spec.templateGeneration.
    template_generation = group == "extensions" and plural == "daemonsets"
    convert = resource.Conversion(
        storage_group=stored.group,
        storage_version=stored.version,
        to_storage=functools.partial(conversion.upgrade, defaults=defaults),
        from_storage=functools.partial(
            conversion.downgrade,
            api_version=api_version,
            template_generation=template_generation,
        ),
        definitions=functools.partial(schemas.definitions, group, version, stored.kind),
        to_storage_undefaulted=functools.partial(conversion.upgrade, defaults=_no_defaults),
    )
    return dataclasses.replace(
        stored,
        group=group,
        version=version,
        scale=None,
        # Without short names and categories: kubectl would warn on every
        # "kubectl get deploy" that the short name also matches these, and
        # "kubectl get all" would list each object once per version.
        short_names=(),
        categories=(),
        conversion=convert,
        deprecation_warning=deprecation_warning(group, version, stored.kind, deprecated_in),
        default_propagation_policy="Orphan",
    )


def resources() -> tuple[resource.ResourceInfo, ...]:
    """Every old workload version's resources (append after apps/v1: it stays preferred)."""
    return tuple(
        legacy_resource(group, version, plural, defaults=defaulter, deprecated_in=deprecated_in)
        for group, version, deprecated_in, kinds in _SERVED
        for plural, defaulter in kinds.items()
    )
