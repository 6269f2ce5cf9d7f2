"""LimitRanger through an in-process API server: defaults on create, bounds with upstream's words."""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.admission.plugins import limit_ranger
from kajitori.client import rest

Object = dict[str, Any]
NS = "default"


# Pods need ``default/default`` (admission) and no controller makes it here.
pytestmark = pytest.mark.usefixtures("module_namespace")


def _limit_range(*items: Object, name: str = "limits") -> Object:
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": name},
        "spec": {"limits": list(items)},
    }


def _pod(name: str, *, resources: Object | None = None, init: Object | None = None) -> Object:
    container: Object = {"name": "nginx", "image": "nginx"}
    if resources is not None:
        container["resources"] = resources
    spec: Object = {"containers": [container]}
    if init is not None:
        spec["initContainers"] = [{"name": "setup", "image": "busybox", "resources": init}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def _refusal(client: rest.Client, resource: rest.Resource, body: Object) -> rest.ApiError:
    with pytest.raises(rest.ApiError) as caught:
        await client.create(resource, body, namespace=NS)
    assert caught.value.code == 403
    return caught.value


async def _names(client: rest.Client, resource: rest.Resource) -> list[str]:
    listed = await client.list(resource, namespace=NS)
    return [item["metadata"]["name"] for item in listed["items"]]


async def test_defaults_fill_missing_requests_and_limits_and_annotate(
    admin: rest.Client,
) -> None:
    """Containers and init containers get the range's defaults only where they say nothing."""
    item = {
        "type": "Container",
        "default": {"cpu": "500m", "memory": "256Mi"},
        "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
    }
    await admin.create(rest.LIMITRANGES, _limit_range(item), namespace=NS)
    pod = await admin.create(
        rest.PODS,
        _pod("web", resources={"requests": {"cpu": "200m"}}, init={"limits": {"cpu": "300m"}}),
        namespace=NS,
    )
    app = pod["spec"]["containers"][0]["resources"]
    assert app == {
        "requests": {"cpu": "200m", "memory": "128Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    }
    setup = pod["spec"]["initContainers"][0]["resources"]
    # Defaulting copied the init container's cpu limit into its request first.
    assert setup == {
        "requests": {"cpu": "300m", "memory": "128Mi"},
        "limits": {"cpu": "300m", "memory": "256Mi"},
    }
    assert pod["metadata"]["annotations"][limit_ranger.ANNOTATION] == (
        "LimitRanger plugin set: memory request for container nginx; "
        "cpu, memory limit for container nginx; "
        "memory request for init container setup; memory limit for init container setup"
    )


async def test_a_pod_needing_nothing_is_not_annotated(admin: rest.Client) -> None:
    """Without a LimitRange, or when every value is given, the pod is stored as sent."""
    pod = await admin.create(rest.PODS, _pod("plain"), namespace=NS)
    assert limit_ranger.ANNOTATION not in (pod["metadata"].get("annotations") or {})
    assert (
        "resources" not in pod["spec"]["containers"][0]
        or not pod["spec"]["containers"][0]["resources"]
    )


@pytest.mark.parametrize(
    ("item", "resources", "message"),
    [
        pytest.param(
            {"type": "Container", "max": {"cpu": "1"}},
            {"limits": {"cpu": "2"}},
            "maximum cpu usage per Container is 1, but limit is 2",
            id="container-max-limit",
        ),
        pytest.param(
            {"type": "Container", "min": {"memory": "64Mi"}, "max": {"memory": "1Gi"}},
            {"requests": {"memory": "32Mi"}, "limits": {"memory": "64Mi"}},
            "minimum memory usage per Container is 64Mi, but request is 32Mi",
            id="container-min-request",
        ),
        pytest.param(
            {"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}},
            {"requests": {"cpu": "100m"}, "limits": {"cpu": "500m"}},
            "cpu max limit to request ratio per Container is 2, but provided ratio is 5.000000",
            id="container-ratio",
        ),
        pytest.param(
            {"type": "Pod", "max": {"cpu": "1"}},
            {"requests": {"cpu": "1"}},
            "maximum cpu usage per Pod is 1.  No limit is specified",
            id="pod-max-without-limit",
        ),
        pytest.param(
            {"type": "Pod", "max": {"cpu": "1", "memory": "1Gi"}},
            {"limits": {"cpu": "2", "memory": "2Gi"}},
            "[maximum cpu usage per Pod is 1, but limit is 2, "
            "maximum memory usage per Pod is 1Gi, but limit is 2Gi]",
            id="pod-two-problems",
        ),
    ],
)
async def test_pods_outside_the_bounds_are_forbidden_and_not_stored(
    admin: rest.Client, item: Object, resources: Object, message: str
) -> None:
    """Min, max and ratio of Container and Pod items refuse the pod with upstream's text."""
    await admin.create(rest.LIMITRANGES, _limit_range(item), namespace=NS)
    refusal = await _refusal(admin, rest.PODS, _pod("x", resources=resources))
    assert refusal.message == f'pods "x" is forbidden: {message}'
    assert await _names(admin, rest.PODS) == []


async def test_pod_bounds_count_init_containers_as_the_kubelet_runs_them(
    admin: rest.Client,
) -> None:
    """A Pod max applies to max(sum of app containers, largest init container)."""
    await admin.create(
        rest.LIMITRANGES, _limit_range({"type": "Pod", "max": {"cpu": "1"}}), namespace=NS
    )
    ok = _pod("fits", resources={"limits": {"cpu": "600m"}}, init={"limits": {"cpu": "1"}})
    await admin.create(rest.PODS, ok, namespace=NS)
    big = _pod("big", resources={"limits": {"cpu": "600m"}}, init={"limits": {"cpu": "1500m"}})
    refusal = await _refusal(admin, rest.PODS, big)
    assert refusal.message == (
        'pods "big" is forbidden: maximum cpu usage per Pod is 1, but limit is 1500m'
    )
    assert await _names(admin, rest.PODS) == ["fits"]


async def test_defaults_are_checked_against_the_bounds(admin: rest.Client) -> None:
    """A default the range itself gives passes; a second range's max still binds it."""
    await admin.create(
        rest.LIMITRANGES,
        _limit_range({"type": "Container", "default": {"cpu": "2"}, "max": {"cpu": "4"}}),
        namespace=NS,
    )
    await admin.create(
        rest.LIMITRANGES,
        _limit_range({"type": "Container", "max": {"cpu": "1"}}, name="strict"),
        namespace=NS,
    )
    refusal = await _refusal(admin, rest.PODS, _pod("defaulted"))
    assert refusal.message == (
        'pods "defaulted" is forbidden: maximum cpu usage per Container is 1, but limit is 2'
    )


def _claim(name: str, storage: str) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": storage}},
        },
    }


async def test_claims_outside_the_storage_bounds_are_forbidden(admin: rest.Client) -> None:
    """PersistentVolumeClaim items bound the requested storage; claims are never defaulted."""
    item = {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "5Gi"}}
    await admin.create(rest.LIMITRANGES, _limit_range(item), namespace=NS)
    small = await _refusal(admin, rest.PERSISTENTVOLUMECLAIMS, _claim("small", "500Mi"))
    assert small.message == (
        'persistentvolumeclaims "small" is forbidden: '
        "minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"
    )
    big = await _refusal(admin, rest.PERSISTENTVOLUMECLAIMS, _claim("big", "10Gi"))
    assert big.message == (
        'persistentvolumeclaims "big" is forbidden: '
        "maximum storage usage per PersistentVolumeClaim is 5Gi, but request is 10Gi"
    )
    await admin.create(rest.PERSISTENTVOLUMECLAIMS, _claim("ok", "2Gi"), namespace=NS)
    assert await _names(admin, rest.PERSISTENTVOLUMECLAIMS) == ["ok"]
