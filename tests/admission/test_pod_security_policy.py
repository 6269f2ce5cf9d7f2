"""Pod Security levels and versions (no server): which checks run, in what order, from which
version; the aggregated message; namespace labels; and the plugin's decisions on pods,
workloads and namespaces, with their warnings and audit annotations."""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.admission.plugins.pod_security import api
from kajitori.admission.plugins.pod_security.admission import (
    Exemptions,
    PodSecurity,
    significant_pod_update,
)
from kajitori.admission.plugins.pod_security.api import LevelVersion, Version
from kajitori.admission.plugins.pod_security.evaluator import Evaluator
from kajitori.machinery import errors
from kajitori.registry.generic.request import RequestContext, RequestTarget, UserInfo
from kajitori.registry.generic.store import ListResult

Object = dict[str, Any]

EVALUATOR = Evaluator()
GOOD_CONTAINER: Object = {
    "name": "c",
    "image": "busybox",
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}


def lv(text: str) -> LevelVersion:
    level, _, version = text.partition(":")
    return LevelVersion(api.parse_level(level), api.parse_version(version or "latest"))


def reasons(level_version: str, pod_spec: Object, meta: Object | None = None) -> str:
    return EVALUATOR.evaluate(lv(level_version), meta or {}, pod_spec).forbidden_reason()


def with_context(**context: Any) -> Object:
    """A restricted-compliant pod whose one container also sets ``context``."""
    container = {**GOOD_CONTAINER, "securityContext": {**GOOD_CONTAINER["securityContext"]}}
    container["securityContext"].update(context)
    return {"containers": [container]}


PLAIN: Object = {"containers": [{"name": "c", "image": "busybox"}]}
RESTRICTED_REASONS = (
    "allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, "
    "seccompProfile"
)


@pytest.mark.parametrize(
    ("level_version", "pod_spec", "expected"),
    [
        ("privileged:latest", {**PLAIN, "hostNetwork": True}, ""),
        ("baseline:latest", PLAIN, ""),
        ("restricted:latest", PLAIN, RESTRICTED_REASONS),
        ("restricted:v1.99", PLAIN, RESTRICTED_REASONS),
        ("restricted:latest", {"containers": [GOOD_CONTAINER]}, ""),
        # allowPrivilegeEscalation from v1.8; restricted capabilities from v1.22; seccomp v1.19
        ("restricted:v1.7", PLAIN, "runAsNonRoot != true"),
        ("restricted:v1.8", PLAIN, "allowPrivilegeEscalation != false, runAsNonRoot != true"),
        (
            "restricted:v1.19",
            PLAIN,
            "allowPrivilegeEscalation != false, runAsNonRoot != true, seccompProfile",
        ),
        ("restricted:v1.22", PLAIN, RESTRICTED_REASONS),
        # restricted capabilities replace the baseline check from v1.22
        (
            "restricted:v1.21",
            with_context(capabilities={"add": ["SYS_ADMIN"]}),
            "non-default capabilities",
        ),
        (
            "restricted:v1.22",
            with_context(capabilities={"add": ["SYS_ADMIN"]}),
            "unrestricted capabilities",
        ),
        # runAsUser=0 from v1.23
        ("restricted:v1.22", with_context(runAsUser=0), ""),
        ("restricted:v1.23", with_context(runAsUser=0), "runAsUser=0"),
        # restricted volumes replace the hostPath check at every version
        (
            "restricted:v1.0",
            {**PLAIN, "volumes": [{"name": "h", "hostPath": {"path": "/"}}]},
            "restricted volume types, runAsNonRoot != true",
        ),
        (
            "baseline:v1.0",
            {**PLAIN, "volumes": [{"name": "h", "hostPath": {"path": "/"}}]},
            "hostPath volumes",
        ),
        # Windows pods need not set the Linux-only fields from v1.25
        (
            "restricted:v1.24",
            {**PLAIN, "os": {"name": "windows"}, "securityContext": {"runAsNonRoot": True}},
            "allowPrivilegeEscalation != false, unrestricted capabilities, seccompProfile",
        ),
        (
            "restricted:v1.25",
            {**PLAIN, "os": {"name": "windows"}, "securityContext": {"runAsNonRoot": True}},
            "",
        ),
        # SELinux container_engine_t from v1.31
        (
            "baseline:v1.30",
            with_context(seLinuxOptions={"type": "container_engine_t"}),
            "seLinuxOptions",
        ),
        ("baseline:v1.31", with_context(seLinuxOptions={"type": "container_engine_t"}), ""),
        # probe and lifecycle hosts from v1.34
        (
            "baseline:v1.33",
            {
                "containers": [
                    {"name": "c", "readinessProbe": {"tcpSocket": {"port": 1, "host": "h"}}}
                ]
            },
            "",
        ),
        (
            "baseline:v1.34",
            {
                "containers": [
                    {"name": "c", "readinessProbe": {"tcpSocket": {"port": 1, "host": "h"}}}
                ]
            },
            "probe or lifecycle host",
        ),
        # user namespaces relax procMount (baseline), runAsNonRoot and runAsUser from v1.35
        ("baseline:v1.34", {**with_context(procMount="Unmasked"), "hostUsers": False}, "procMount"),
        ("baseline:v1.35", {**with_context(procMount="Unmasked"), "hostUsers": False}, ""),
        (
            "restricted:v1.35",
            {**with_context(procMount="Unmasked"), "hostUsers": False},
            "procMount",
        ),
        ("restricted:v1.34", {**PLAIN, "hostUsers": False}, RESTRICTED_REASONS),
        (
            "restricted:v1.35",
            {**PLAIN, "hostUsers": False},
            "allowPrivilegeEscalation != false, unrestricted capabilities, seccompProfile",
        ),
        (
            "restricted:v1.35",
            {**with_context(runAsUser=0, runAsNonRoot=False), "hostUsers": False},
            "",
        ),
        # the baseline seccomp check reads annotations before v1.19, the field after
        ("baseline:v1.18", PLAIN, ""),
        (
            "baseline:v1.18",
            {**PLAIN, "securityContext": {"seccompProfile": {"type": "Unconfined"}}},
            "",
        ),
        (
            "baseline:v1.19",
            {**PLAIN, "securityContext": {"seccompProfile": {"type": "Unconfined"}}},
            "seccompProfile",
        ),
    ],
)
def test_checks_by_level_and_version(level_version: str, pod_spec: Object, expected: str) -> None:
    assert reasons(level_version, pod_spec) == expected


def test_seccomp_annotations_only_before_v1_19() -> None:
    meta = {"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}}
    assert reasons("baseline:v1.18", PLAIN, meta) == "seccompProfile"
    assert reasons("baseline:v1.19", PLAIN, meta) == ""


@pytest.mark.parametrize(
    ("version", "allowed", "refused"),
    [
        ("v1.26", "net.ipv4.ip_unprivileged_port_start", "net.ipv4.ip_local_reserved_ports"),
        ("v1.27", "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time"),
        ("v1.29", "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem"),
        ("v1.32", "net.ipv4.tcp_wmem", "net.ipv4.tcp_slow_start_after_idle"),
        ("v1.36", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_notsent_lowat"),
        ("v1.37", "net.ipv4.tcp_notsent_lowat", "kernel.msgmax"),
        ("latest", "net.ipv4.tcp_slow_start_after_idle", "net.core.somaxconn"),
    ],
)
def test_safe_sysctls_by_version(version: str, allowed: str, refused: str) -> None:
    def pod(name: str) -> Object:
        return {**PLAIN, "securityContext": {"sysctls": [{"name": name, "value": "1"}]}}

    assert reasons(f"baseline:{version}", pod(allowed)) == ""
    result = EVALUATOR.evaluate(lv(f"baseline:{version}"), {}, pod(refused))
    assert result.forbidden_detail() == f"forbidden sysctls ({refused})"


def test_aggregated_detail_is_upstreams_message() -> None:
    result = EVALUATOR.evaluate(
        lv("restricted:latest"),
        {},
        {"containers": [{"name": "c", "image": "x", "securityContext": {"privileged": True}}]},
    )
    assert result.forbidden_detail() == (
        'privileged (container "c" must not set securityContext.privileged=true), '
        "allowPrivilegeEscalation != false "
        '(container "c" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to '
        '"RuntimeDefault" or "Localhost")'
    )


# ----- namespace labels -------------------------------------------------------------------------


def test_labels_choose_levels_and_versions() -> None:
    policy, errs = api.policy_to_evaluate(
        {
            "pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/enforce-version": "v1.30",
            "pod-security.kubernetes.io/audit": "restricted",
        }
    )
    assert errs == []
    assert str(policy.enforce) == "baseline:v1.30"
    assert str(policy.audit) == "restricted:latest"
    # warn follows a stricter enforce level (and its version) unless set itself
    assert str(policy.warn) == "baseline:v1.30"
    assert api.policy_to_evaluate({}) == (api.DEFAULT_POLICY, [])


def test_warn_follows_enforce_only_when_unset() -> None:
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/warn-version": "v1.20",
    }
    assert str(api.policy_to_evaluate(labels)[0].warn) == "restricted:v1.20"
    labels["pod-security.kubernetes.io/warn"] = "privileged"
    assert str(api.policy_to_evaluate(labels)[0].warn) == "privileged:v1.20"


def test_invalid_labels_fail_closed_for_enforce_and_open_for_audit_and_warn() -> None:
    policy, errs = api.policy_to_evaluate(
        {
            "pod-security.kubernetes.io/enforce": "strict",
            "pod-security.kubernetes.io/enforce-version": "v1.01",
            "pod-security.kubernetes.io/audit": "x",
            "pod-security.kubernetes.io/warn": "y",
            "pod-security.kubernetes.io/warn-version": "2.0",
        }
    )
    assert policy.enforce == LevelVersion("restricted", api.LATEST)
    assert policy.audit.level == policy.warn.level == "privileged"
    assert [str(e) for e in errs] == [
        'metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": '
        "must be one of privileged, baseline, restricted",
        'metadata.labels[pod-security.kubernetes.io/enforce-version]: Invalid value: "v1.01": '
        'must be "latest" or "v1.x"',
        'metadata.labels[pod-security.kubernetes.io/audit]: Invalid value: "x": '
        "must be one of privileged, baseline, restricted",
        'metadata.labels[pod-security.kubernetes.io/warn]: Invalid value: "y": '
        "must be one of privileged, baseline, restricted",
        'metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: "2.0": '
        'must be "latest" or "v1.x"',
    ]


def test_versions_order_and_print() -> None:
    assert str(Version(0)) == "v1.0" and str(api.LATEST) == "latest"
    assert Version(9).older(Version(10)) and Version(10).older(api.LATEST)
    assert not api.LATEST.older(Version(99))
    assert api.parse_version("v1.37") == Version(37)
    with pytest.raises(api.ParseError):
        api.parse_version("v1.")


# ----- the plugin, without a server -------------------------------------------------------------


class FakeStore:
    """The part of a Store the plugin reads: info, gr, get and list."""

    def __init__(self, group: str, plural: str, objects: list[Object] | None = None) -> None:
        self.info = _Info(group, plural)
        self.gr = errors.GroupResource(group, plural)
        self.objects = objects or []

    async def get(self, namespace: str, name: str) -> Object:
        for obj in self.objects:
            if obj["metadata"]["name"] == name:
                return obj
        raise errors.not_found(self.gr, name)

    async def list(self, namespace: str, opts: Any) -> ListResult:
        items = [o for o in self.objects if o["metadata"].get("namespace") == namespace]
        return ListResult(items, resource_version="1")


class _Info:
    def __init__(self, group: str, plural: str) -> None:
        self.group, self.plural = group, plural
        self.storage_group_resource = errors.GroupResource(group, plural)


def namespace(name: str, **labels: str) -> Object:
    return {
        "metadata": {
            "name": name,
            "labels": {
                f"pod-security.kubernetes.io/{k.replace('_', '-')}": v for k, v in labels.items()
            },
        }
    }


def pod(name: str, ns: str = "ns", owner: str | None = None, **spec: Any) -> Object:
    meta: Object = {"name": name, "namespace": ns}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "controller": True, "kind": "ReplicaSet"}]
    return {"metadata": meta, "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def plugin(
    namespaces: list[Object], pods: list[Object] | None = None, **kwargs: Any
) -> PodSecurity:
    stores: dict[str, Any] = {
        "namespaces": FakeStore("", "namespaces", namespaces),
        "pods": FakeStore("", "pods", pods or []),
    }
    return PodSecurity(lambda g, v, r: stores.get(r), **kwargs)


# Typed Any: the plugin's hooks take a Store; these fakes have the parts it reads.
PODS: Any = FakeStore("", "pods")
DEPLOYMENTS: Any = FakeStore("apps", "deployments")
NAMESPACES: Any = FakeStore("", "namespaces")


async def test_enforce_refuses_with_upstreams_message_and_annotations() -> None:
    p = plugin([namespace("ns", enforce="baseline", audit="restricted")])
    ctx = RequestContext()
    with pytest.raises(errors.StatusError) as refused:
        await p.validate(PODS, "CREATE", pod("x", hostPID=True), None, ctx)
    assert refused.value.code == 403
    assert refused.value.message == (
        'pods "x" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostPID=true)'
    )
    assert ctx.warnings == []  # no warnings on a refused request
    assert ctx.audit_annotations["pod-security.kubernetes.io/enforce-policy"] == "baseline:latest"
    assert ctx.audit_annotations["pod-security.kubernetes.io/audit-violations"].startswith(
        'would violate PodSecurity "restricted:latest": host namespaces (hostPID=true), '
        "allowPrivilegeEscalation != false"
    )


async def test_warn_mode_warns_and_admits() -> None:
    p = plugin([namespace("ns", warn="baseline")])
    ctx = RequestContext()
    await p.validate(PODS, "CREATE", pod("x", hostNetwork=True), None, ctx)
    assert ctx.warnings == [
        'would violate PodSecurity "baseline:latest": host namespaces (hostNetwork=true)'
    ]
    assert ctx.audit_annotations == {
        "pod-security.kubernetes.io/enforce-policy": "privileged:latest"
    }


async def test_privileged_namespace_records_the_enforced_policy_only() -> None:
    ctx = RequestContext()
    await plugin([namespace("ns")]).validate(PODS, "CREATE", pod("x", hostPID=True), None, ctx)
    assert ctx.audit_annotations == {
        "pod-security.kubernetes.io/enforce-policy": "privileged:latest"
    }
    assert ctx.warnings == []


async def test_updates_other_than_images_and_ephemeral_containers_are_not_evaluated() -> None:
    p = plugin([namespace("ns", enforce="baseline")])
    old = pod("x", hostPID=True)
    relabelled = {**old, "metadata": {**old["metadata"], "labels": {"a": "b"}}}
    await p.validate(PODS, "UPDATE", relabelled, old, RequestContext())
    new_image = pod("x", hostPID=True)
    new_image["spec"]["containers"][0]["image"] = "nginx"
    with pytest.raises(errors.StatusError):
        await p.validate(PODS, "UPDATE", new_image, old, RequestContext())
    # Subresources that cannot change the checked fields are never evaluated.
    status = RequestContext(target=RequestTarget("", "v1", "pods", "status"))
    await p.validate(PODS, "UPDATE", new_image, old, status)
    # An ephemeral container added through pods/ephemeralcontainers is.
    debug = pod("x")
    debug["spec"]["ephemeralContainers"] = [
        {"name": "dbg", "image": "busybox", "securityContext": {"privileged": True}}
    ]
    ephemeral = RequestContext(target=RequestTarget("", "v1", "pods", "ephemeralcontainers"))
    with pytest.raises(errors.StatusError) as refused:
        await p.validate(PODS, "UPDATE", debug, pod("x"), ephemeral)
    assert 'container "dbg" must not set securityContext.privileged=true' in refused.value.message


def test_significant_pod_updates() -> None:
    old = pod("x")
    assert not significant_pod_update(pod("x", tolerations=[{"operator": "Exists"}]), old)
    more = pod("x")
    more["spec"]["initContainers"] = [{"name": "i", "image": "busybox"}]
    assert significant_pod_update(more, old)
    debug = pod("x")
    debug["spec"]["ephemeralContainers"] = [{"name": "d", "image": "busybox"}]
    assert significant_pod_update(debug, old)
    assert not significant_pod_update(debug, debug)


async def test_workloads_are_warned_and_audited_never_refused() -> None:
    p = plugin([namespace("ns", enforce="restricted")])
    deployment = {
        "metadata": {"name": "d", "namespace": "ns"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}},
    }
    ctx = RequestContext()
    await p.validate(DEPLOYMENTS, "CREATE", deployment, None, ctx)
    assert ctx.warnings == [
        'would violate PodSecurity "restricted:latest": '
        'allowPrivilegeEscalation != false (container "c" must set '
        "securityContext.allowPrivilegeEscalation=false), unrestricted capabilities "
        '(container "c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true '
        '(pod or container "c" must set securityContext.runAsNonRoot=true), seccompProfile '
        '(pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" '
        'or "Localhost")'
    ]
    assert "pod-security.kubernetes.io/enforce-policy" not in ctx.audit_annotations
    # deployments/scale is a subresource: not evaluated.
    scale = RequestContext(target=RequestTarget("apps", "v1", "deployments", "scale"))
    await p.validate(DEPLOYMENTS, "UPDATE", deployment, deployment, scale)
    assert scale.warnings == []


async def test_invalid_namespace_labels_are_refused_on_create_and_changed_update() -> None:
    p = plugin([])
    bad = namespace("n", enforce="strict")
    with pytest.raises(errors.StatusError) as refused:
        await p.validate(NAMESPACES, "CREATE", bad, None, RequestContext())
    assert refused.value.code == 422
    assert refused.value.message == (
        'Namespace "n" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: '
        'Invalid value: "strict": must be one of privileged, baseline, restricted'
    )
    # An update that keeps the same invalid labels is let through (upstream: unchanged errors).
    relabelled = {"metadata": {**bad["metadata"], "annotations": {"a": "b"}}}
    await p.validate(NAMESPACES, "UPDATE", relabelled, bad, RequestContext())


async def test_tightening_enforce_reports_existing_pods() -> None:
    pods = [
        pod("b-web-1", owner="rs1", hostNetwork=True),
        pod("a-web-2", owner="rs1", hostNetwork=True),
        pod("c-web-3", owner="rs1", hostNetwork=True),
        pod("solo", hostPID=True),
        pod("fine"),
        pod("elsewhere", ns="other", hostPID=True),
    ]
    p = plugin([], pods)
    old, new = namespace("ns"), namespace("ns", enforce="baseline")
    ctx = RequestContext()
    await p.validate(NAMESPACES, "UPDATE", new, old, ctx)
    assert ctx.warnings == [
        'existing pods in namespace "ns" violate the new PodSecurity enforce level "baseline:latest"',
        "a-web-2 (and 3 other pods): host namespaces",
    ]
    # Relaxing, or keeping, the level at the same version checks nothing.
    relaxed = RequestContext()
    await p.validate(NAMESPACES, "UPDATE", old, new, relaxed)
    assert relaxed.warnings == []


async def test_namespace_check_limits_pods_one_per_controller_first() -> None:
    pods = [pod(f"rs-{i}", owner="rs1", hostPID=True) for i in range(3)]
    pods.append(pod("other", owner="rs2"))
    p = plugin([], pods)
    p.max_pods_to_check = 2
    ctx = RequestContext()
    await p.validate(
        NAMESPACES, "UPDATE", namespace("ns", enforce="baseline"), namespace("ns"), ctx
    )
    # The first pod of each controller is checked before the second of any.
    assert ctx.warnings == [
        "new PodSecurity enforce level only checked against the first 2 of 4 existing pods",
        'existing pods in namespace "ns" violate the new PodSecurity enforce level "baseline:latest"',
        "rs-0: host namespaces",
    ]


async def test_namespace_check_stops_at_its_time_budget() -> None:
    pods = [pod(f"p{i}", hostPID=True) for i in range(5)]
    p = plugin([], pods)
    p.pod_check_timeout = -1.0  # already past: one pod is checked
    ctx = RequestContext()
    await p.validate(
        NAMESPACES, "UPDATE", namespace("ns", enforce="baseline"), namespace("ns"), ctx
    )
    assert ctx.warnings[0] == (
        "new PodSecurity enforce level only checked against the first 1 of 5 existing pods"
    )
    assert ctx.warnings[2] == "p0: host namespaces"


async def test_exemptions_keep_upstreams_shape() -> None:
    p = plugin(
        [namespace("ns", enforce="restricted"), namespace("free", enforce="restricted")],
        exemptions=Exemptions(
            usernames=frozenset({"admin"}),
            namespaces=frozenset({"free"}),
            runtime_classes=frozenset({"kata"}),
        ),
    )
    user = RequestContext(user=UserInfo("admin"))
    await p.validate(PODS, "CREATE", pod("x", hostPID=True), None, user)
    assert user.audit_annotations == {"pod-security.kubernetes.io/exempt": "user"}
    ns_ctx = RequestContext()
    await p.validate(PODS, "CREATE", pod("x", ns="free", hostPID=True), None, ns_ctx)
    assert ns_ctx.audit_annotations == {"pod-security.kubernetes.io/exempt": "namespace"}
    rc = RequestContext()
    await p.validate(PODS, "CREATE", pod("x", runtimeClassName="kata", hostPID=True), None, rc)
    assert rc.audit_annotations == {"pod-security.kubernetes.io/exempt": "runtimeClass"}
    created = RequestContext()
    await p.validate(NAMESPACES, "CREATE", namespace("free", enforce="restricted"), None, created)
    # Only the modes whose labels are set are named (warn follows enforce unlabelled).
    assert created.warnings == [
        'namespace "free" is exempt from Pod Security, and the policy '
        "(enforce=restricted:latest) will be ignored"
    ]


async def test_missing_namespace_is_an_internal_error_for_pods() -> None:
    with pytest.raises(errors.StatusError) as failed:
        await plugin([]).validate(PODS, "CREATE", pod("x", ns="gone"), None, RequestContext())
    assert failed.value.code == 500
    assert failed.value.message == 'Internal error occurred: failed to lookup namespace "gone"'


@pytest.mark.parametrize(
    ("group", "plural", "body", "warned"),
    [
        (
            "batch",
            "cronjobs",
            {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"hostIPC": True}}}}}},
            True,
        ),
        ("batch", "jobs", {"spec": {"template": {"spec": {"hostIPC": True}}}}, True),
        ("", "podtemplates", {"template": {"spec": {"hostIPC": True}}}, True),
        ("", "replicationcontrollers", {"spec": {"template": {"spec": {"hostIPC": True}}}}, True),
        # A ReplicationController without a template has nothing to check.
        ("", "replicationcontrollers", {"spec": {}}, False),
        ("apps", "statefulsets", {"spec": {"template": {"spec": {"hostIPC": True}}}}, True),
        ("apps", "daemonsets", {"spec": {"template": {"spec": {"hostIPC": True}}}}, True),
        ("apps", "replicasets", {"spec": {"template": {"spec": {"hostIPC": False}}}}, False),
    ],
)
async def test_pod_templates_of_every_workload_kind(
    group: str, plural: str, body: Object, warned: bool
) -> None:
    store: Any = FakeStore(group, plural)
    obj = {"metadata": {"name": "w", "namespace": "ns"}, **body}
    ctx = RequestContext()
    await plugin([namespace("ns", enforce="baseline")]).validate(store, "CREATE", obj, None, ctx)
    expected = ['would violate PodSecurity "baseline:latest": host namespaces (hostIPC=true)']
    assert ctx.warnings == (expected if warned else [])
