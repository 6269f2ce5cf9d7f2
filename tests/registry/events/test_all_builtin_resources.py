"""The install list resolves to every built-in resource, each declared once."""

from __future__ import annotations

from kajitori.registry import install


def test_all_resources_returns_every_installed_resource_once() -> None:
    """Every module in the install list imports and declares a distinct RESOURCE."""
    resources = install.all_resources()
    assert len(resources) == len(install.RESOURCE_MODULES)
    keys = {(r.group, r.version, r.plural) for r in resources}
    assert len(keys) == len(resources)
    assert len(resources) >= 33
    assert {
        ("coordination.k8s.io", "leases"),
        ("discovery.k8s.io", "endpointslices"),
        ("events.k8s.io", "events"),
        ("policy", "poddisruptionbudgets"),
        ("storage.k8s.io", "storageclasses"),
        ("networking.k8s.io", "ingresses"),
        ("networking.k8s.io", "ingressclasses"),
        ("networking.k8s.io", "networkpolicies"),
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "clusterroles"),
        ("rbac.authorization.k8s.io", "rolebindings"),
        ("rbac.authorization.k8s.io", "clusterrolebindings"),
    } <= {(g, p) for g, _, p in keys}


def test_short_names_are_unique_across_resources() -> None:
    """No two resources claim the same short name (kubectl would be ambiguous); the versions
    of one resource share its short names, as upstream's discovery lists them in each."""
    claims: dict[str, set[tuple[str, str]]] = {}
    for r in install.all_resources():
        for name in r.short_names:
            claims.setdefault(name, set()).add((r.group, r.plural))
    assert {name: owners for name, owners in claims.items() if len(owners) > 1} == {}
    hpa = {(r.group, r.version) for r in install.all_resources() if "hpa" in r.short_names}
    assert hpa == {("autoscaling", "v1"), ("autoscaling", "v2")}
