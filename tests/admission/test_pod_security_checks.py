"""The Pod Security Standards' checks, one table per control (no server).

Each row is a pod (metadata and spec in wire form) and the reason and detail
upstream's check prints for it (policy/check_*_test.go's expectations), or
None for a pod the check allows.
"""

from __future__ import annotations

from typing import Any

import pytest

from kajitori.admission.plugins.pod_security import checks
from kajitori.admission.plugins.pod_security.checks import CheckFn, CheckResult

Object = dict[str, Any]


def c(name: str, **security_context: Any) -> Object:
    """A container named ``name`` with ``securityContext`` fields (none: no securityContext)."""
    container: Object = {"name": name, "image": "busybox"}
    if security_context:
        container["securityContext"] = security_context
    return container


def spec(*containers: Object, **fields: Any) -> Object:
    return {"containers": list(containers), **fields}


Row = tuple[str, CheckFn, Object, Object, tuple[str, str] | None]


def rows() -> list[Row]:
    no_meta: Object = {}
    return [
        # ----- privileged
        (
            "privileged: unset or false",
            checks.privileged_1_0,
            no_meta,
            spec(c("a"), c("b", privileged=False)),
            None,
        ),
        (
            "privileged: two containers",
            checks.privileged_1_0,
            no_meta,
            spec(c("a"), c("d", privileged=True), c("e", privileged=True)),
            ("privileged", 'containers "d", "e" must not set securityContext.privileged=true'),
        ),
        (
            "privileged: an init container",
            checks.privileged_1_0,
            no_meta,
            {"initContainers": [c("i", privileged=True)], "containers": [c("a")]},
            ("privileged", 'container "i" must not set securityContext.privileged=true'),
        ),
        (
            "privileged: an ephemeral container",
            checks.privileged_1_0,
            no_meta,
            {"containers": [c("a")], "ephemeralContainers": [c("dbg", privileged=True)]},
            ("privileged", 'container "dbg" must not set securityContext.privileged=true'),
        ),
        # ----- host namespaces
        (
            "host namespaces: false",
            checks.host_namespaces_1_0,
            no_meta,
            spec(c("a"), hostNetwork=False),
            None,
        ),
        (
            "host namespaces: all three",
            checks.host_namespaces_1_0,
            no_meta,
            spec(c("a"), hostIPC=True, hostNetwork=True, hostPID=True),
            ("host namespaces", "hostNetwork=true, hostPID=true, hostIPC=true"),
        ),
        # ----- hostPath volumes
        (
            "hostPath: two volumes",
            checks.host_path_volumes_1_0,
            no_meta,
            spec(
                c("x"),
                volumes=[
                    {"name": "a", "hostPath": {"path": "/"}},
                    {"name": "e", "emptyDir": {}},
                    {"name": "b", "hostPath": {"path": "/x"}},
                ],
            ),
            ("hostPath volumes", 'volumes "a", "b"'),
        ),
        (
            "hostPath: one volume",
            checks.host_path_volumes_1_0,
            no_meta,
            spec(c("x"), volumes=[{"name": "a", "hostPath": {"path": "/"}}]),
            ("hostPath volumes", 'volume "a"'),
        ),
        # ----- host ports
        (
            "hostPort: 0 is unset",
            checks.host_ports_1_0,
            no_meta,
            spec({"name": "a", "ports": [{"containerPort": 80, "hostPort": 0}]}),
            None,
        ),
        (
            "hostPort: one",
            checks.host_ports_1_0,
            no_meta,
            spec(
                {"name": "a", "ports": [{"containerPort": 80}]},
                {"name": "b", "ports": [{"containerPort": 80, "hostPort": 20}]},
            ),
            ("hostPort", 'container "b" uses hostPort 20'),
        ),
        (
            "hostPort: several",
            checks.host_ports_1_0,
            no_meta,
            spec(
                {
                    "name": "b",
                    "ports": [
                        {"containerPort": 1, "hostPort": 20},
                        {"containerPort": 2, "hostPort": 10},
                    ],
                },
                {"name": "c", "ports": [{"containerPort": 3, "hostPort": 30}]},
            ),
            ("hostPort", 'containers "b", "c" use hostPorts 10, 20, 30'),
        ),
        # ----- baseline capabilities
        (
            "capabilities: default set",
            checks.capabilities_baseline_1_0,
            no_meta,
            spec(c("a", capabilities={"add": ["CHOWN", "NET_BIND_SERVICE", "SYS_CHROOT"]})),
            None,
        ),
        (
            "capabilities: non-default",
            checks.capabilities_baseline_1_0,
            no_meta,
            spec(
                c("a", capabilities={"add": ["FOO", "BAR"]}),
                c("b", capabilities={"add": ["BAZ"]}),
                c("ok", capabilities={"add": ["KILL"], "drop": ["ALL"]}),
            ),
            (
                "non-default capabilities",
                'containers "a", "b" must not include "BAR", "BAZ", "FOO" in '
                "securityContext.capabilities.add",
            ),
        ),
        # ----- AppArmor
        (
            "apparmor: allowed",
            checks.app_armor_profile_1_0,
            {
                "annotations": {
                    "container.apparmor.security.beta.kubernetes.io/a": "runtime/default",
                    "container.apparmor.security.beta.kubernetes.io/b": "localhost/x",
                    "other": "unconfined",
                }
            },
            spec(
                c("a", appArmorProfile={"type": "Localhost", "localhostProfile": "p"}),
                securityContext={"appArmorProfile": {"type": "RuntimeDefault"}},
            ),
            None,
        ),
        (
            "apparmor: unconfined pod",
            checks.app_armor_profile_1_0,
            no_meta,
            spec(c("a"), securityContext={"appArmorProfile": {"type": "Unconfined"}}),
            (
                "forbidden AppArmor profile",
                'pod must not set AppArmor profile type to "Unconfined"',
            ),
        ),
        (
            "apparmor: unconfined container",
            checks.app_armor_profile_1_0,
            no_meta,
            spec(c("foo", appArmorProfile={"type": "Unconfined"})),
            (
                "forbidden AppArmor profile",
                'container "foo" must not set AppArmor profile type to "Unconfined"',
            ),
        ),
        (
            "apparmor: annotations",
            checks.app_armor_profile_1_0,
            {
                "annotations": {
                    "container.apparmor.security.beta.kubernetes.io/": "bogus",
                    "container.apparmor.security.beta.kubernetes.io/a": "",
                    "container.apparmor.security.beta.kubernetes.io/b": "runtime/default",
                    "container.apparmor.security.beta.kubernetes.io/c": "localhost/",
                    "container.apparmor.security.beta.kubernetes.io/d": "localhost/foo",
                    "container.apparmor.security.beta.kubernetes.io/e": "unconfined",
                    "container.apparmor.security.beta.kubernetes.io/f": "unknown",
                }
            },
            spec(),
            (
                "forbidden AppArmor profiles",
                "annotations must not set AppArmor profile type to "
                '"container.apparmor.security.beta.kubernetes.io/="bogus"", '
                '"container.apparmor.security.beta.kubernetes.io/e="unconfined"", '
                '"container.apparmor.security.beta.kubernetes.io/f="unknown""',
            ),
        ),
        (
            "apparmor: pod, containers and an annotation",
            checks.app_armor_profile_1_0,
            {"annotations": {"container.apparmor.security.beta.kubernetes.io/a": "unconfined"}},
            spec(
                c("a", appArmorProfile={"type": "Unconfined"}),
                securityContext={"appArmorProfile": {"type": "Unconfined"}},
            ),
            (
                "forbidden AppArmor profiles",
                'pod and container "a" and annotation must not set AppArmor profile type to '
                '"Unconfined", "container.apparmor.security.beta.kubernetes.io/a="unconfined""',
            ),
        ),
        # ----- SELinux
        (
            "selinux: allowed",
            checks.se_linux_options_1_31,
            no_meta,
            spec(
                c("a", seLinuxOptions={"type": "container_engine_t", "level": "s0"}),
                securityContext={"seLinuxOptions": {"type": "container_t"}},
            ),
            None,
        ),
        (
            "selinux: container_engine_t before 1.31",
            checks.se_linux_options_1_0,
            no_meta,
            spec(c("d", seLinuxOptions={"type": "container_engine_t"})),
            (
                "seLinuxOptions",
                'container "d" set forbidden securityContext.seLinuxOptions: type "container_engine_t"',
            ),
        ),
        (
            "selinux: pod and containers",
            checks.se_linux_options_1_31,
            no_meta,
            spec(
                c("a", seLinuxOptions={"type": "container_t"}),
                c("e", seLinuxOptions={"type": "bar"}),
                c("f", seLinuxOptions={"user": "bar"}),
                c("g", seLinuxOptions={"role": "baz"}),
                securityContext={"seLinuxOptions": {"type": "foo", "user": "bar", "role": "baz"}},
            ),
            (
                "seLinuxOptions",
                'pod and containers "e", "f", "g" set forbidden securityContext.seLinuxOptions: '
                'types "bar", "foo"; user may not be set; role may not be set',
            ),
        ),
        (
            "selinux: bad user only",
            checks.se_linux_options_1_31,
            no_meta,
            spec(c("a"), securityContext={"seLinuxOptions": {"user": "bar"}}),
            (
                "seLinuxOptions",
                "pod set forbidden securityContext.seLinuxOptions: user may not be set",
            ),
        ),
        # ----- /proc mount
        (
            "procMount: Default",
            checks.proc_mount_1_0,
            no_meta,
            spec(c("a", procMount="Default")),
            None,
        ),
        (
            "procMount: unmasked",
            checks.proc_mount_1_0,
            no_meta,
            spec(c("a"), c("d", procMount="Unmasked"), c("e", procMount="other")),
            (
                "procMount",
                'containers "d", "e" must not set securityContext.procMount to "Unmasked", "other"',
            ),
        ),
        (
            "procMount 1.35 baseline: user namespace",
            checks.proc_mount_1_35_baseline,
            no_meta,
            spec(c("d", procMount="Unmasked"), hostUsers=False),
            None,
        ),
        (
            "procMount 1.35 baseline: host users",
            checks.proc_mount_1_35_baseline,
            no_meta,
            spec(c("d", procMount="Unmasked"), hostUsers=True),
            ("procMount", 'container "d" must not set securityContext.procMount to "Unmasked"'),
        ),
        # ----- seccomp, baseline
        (
            "seccomp baseline 1.0: annotations",
            checks.seccomp_profile_baseline_1_0,
            {
                "annotations": {
                    "seccomp.security.alpha.kubernetes.io/pod": "unconfined",
                    "container.seccomp.security.alpha.kubernetes.io/a": "unconfined",
                    "container.seccomp.security.alpha.kubernetes.io/b": "unknown",
                    "container.seccomp.security.alpha.kubernetes.io/c": "docker/default",
                    "container.seccomp.security.alpha.kubernetes.io/zz": "unconfined",
                }
            },
            spec(c("a"), c("b"), c("c")),
            (
                "seccompProfile",
                'forbidden annotations container.seccomp.security.alpha.kubernetes.io/a="unconfined", '
                'container.seccomp.security.alpha.kubernetes.io/b="unknown", '
                'seccomp.security.alpha.kubernetes.io/pod="unconfined"',
            ),
        ),
        (
            "seccomp baseline 1.19: unset is fine",
            checks.seccomp_profile_baseline_1_19,
            no_meta,
            spec(c("a")),
            None,
        ),
        (
            "seccomp baseline 1.19: unconfined",
            checks.seccomp_profile_baseline_1_19,
            no_meta,
            spec(
                c("a"),
                c("c", seccompProfile={"type": "Unconfined"}),
                c("d", seccompProfile={"type": "Unconfined"}),
                securityContext={"seccompProfile": {"type": "Unconfined"}},
            ),
            (
                "seccompProfile",
                'pod and containers "c", "d" must not set securityContext.seccompProfile.type to '
                '"Unconfined"',
            ),
        ),
        # ----- sysctls
        (
            "sysctls: safe",
            checks._sysctls(checks._SYSCTLS_1_0),
            no_meta,
            spec(
                c("a"),
                securityContext={"sysctls": [{"name": "kernel.shm_rmid_forced", "value": "0"}]},
            ),
            None,
        ),
        (
            "sysctls: forbidden",
            checks._sysctls(checks._SYSCTLS_1_37),
            no_meta,
            spec(
                c("a"),
                securityContext={
                    "sysctls": [
                        {"name": "a", "value": "1"},
                        {"name": "net.ipv4.tcp_syncookies", "value": "1"},
                        {"name": "b", "value": "1"},
                    ]
                },
            ),
            ("forbidden sysctls", "a, b"),
        ),
        # ----- hostProcess
        (
            "hostProcess: false",
            checks.windows_host_process_1_0,
            no_meta,
            spec(c("a", windowsOptions={"hostProcess": False})),
            None,
        ),
        (
            "hostProcess: pod and containers",
            checks.windows_host_process_1_0,
            no_meta,
            spec(
                c("a"),
                c("e", windowsOptions={"hostProcess": True}),
                c("f", windowsOptions={"hostProcess": True}),
                securityContext={"windowsOptions": {"hostProcess": True}},
            ),
            (
                "hostProcess",
                'pod and containers "e", "f" must not set securityContext.windowsOptions.hostProcess=true',
            ),
        ),
        # ----- probe and lifecycle hosts
        (
            "probe host: unset",
            checks.host_probes_and_host_lifecycle_1_34,
            no_meta,
            spec({"name": "a", "livenessProbe": {"httpGet": {"port": 80, "host": ""}}}),
            None,
        ),
        (
            "probe host: several",
            checks.host_probes_and_host_lifecycle_1_34,
            no_meta,
            spec(
                {
                    "name": "a",
                    "livenessProbe": {"httpGet": {"port": 80, "host": "127.0.0.1"}},
                    "readinessProbe": {"tcpSocket": {"port": 80, "host": "localhost"}},
                    "lifecycle": {"preStop": {"httpGet": {"port": 80, "host": "::1"}}},
                }
            ),
            (
                "probe or lifecycle host",
                'container "a" uses probe or lifecycle hosts "127.0.0.1", "::1", "localhost"',
            ),
        ),
        (
            "probe host: two containers",
            checks.host_probes_and_host_lifecycle_1_34,
            no_meta,
            spec(
                {"name": "invalid2", "startupProbe": {"httpGet": {"port": 1, "host": "b.com"}}},
                {
                    "name": "invalid1",
                    "lifecycle": {"postStart": {"tcpSocket": {"port": 1, "host": "a.com"}}},
                },
            ),
            (
                "probe or lifecycle host",
                'containers "invalid1", "invalid2" use probe or lifecycle hosts "a.com", "b.com"',
            ),
        ),
        # ----- allowPrivilegeEscalation
        (
            "allowPrivilegeEscalation: false",
            checks.allow_privilege_escalation_1_8,
            no_meta,
            spec(c("a", allowPrivilegeEscalation=False)),
            None,
        ),
        (
            "allowPrivilegeEscalation: unset or true",
            checks.allow_privilege_escalation_1_8,
            no_meta,
            spec(c("a"), c("b", allowPrivilegeEscalation=True), c("c", privileged=False)),
            (
                "allowPrivilegeEscalation != false",
                'containers "a", "b", "c" must set securityContext.allowPrivilegeEscalation=false',
            ),
        ),
        (
            "allowPrivilegeEscalation 1.25: windows",
            checks.allow_privilege_escalation_1_25,
            no_meta,
            spec(c("a"), os={"name": "windows"}),
            None,
        ),
        (
            "allowPrivilegeEscalation 1.8: windows too",
            checks.allow_privilege_escalation_1_8,
            no_meta,
            spec(c("a"), os={"name": "windows"}),
            (
                "allowPrivilegeEscalation != false",
                'container "a" must set securityContext.allowPrivilegeEscalation=false',
            ),
        ),
        # ----- restricted capabilities
        (
            "capabilities restricted: drop ALL, add NET_BIND_SERVICE",
            checks.capabilities_restricted_1_22,
            no_meta,
            spec(c("a", capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})),
            None,
        ),
        (
            "capabilities restricted: several",
            checks.capabilities_restricted_1_22,
            no_meta,
            spec(
                c("a", capabilities={"add": ["FOO", "BAR"]}),
                c("b", capabilities={"add": ["BAZ"]}),
                c("c", capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "CHOWN"]}),
            ),
            (
                "unrestricted capabilities",
                'containers "a", "b" must set securityContext.capabilities.drop=["ALL"]; '
                'containers "a", "b", "c" must not include "BAR", "BAZ", "CHOWN", "FOO" in '
                "securityContext.capabilities.add",
            ),
        ),
        (
            "capabilities restricted 1.25: windows",
            checks.capabilities_restricted_1_25,
            no_meta,
            spec(c("a"), os={"name": "windows"}),
            None,
        ),
        (
            "capabilities restricted 1.25: linux",
            checks.capabilities_restricted_1_25,
            no_meta,
            spec(c("a"), os={"name": "linux"}),
            (
                "unrestricted capabilities",
                'container "a" must set securityContext.capabilities.drop=["ALL"]',
            ),
        ),
        # ----- restricted volumes
        (
            "volumes: every allowed type",
            checks.restricted_volumes_1_0,
            no_meta,
            spec(
                c("a"),
                volumes=[
                    {"name": f"a{i}", key: {}}
                    for i, key in enumerate(
                        (
                            "emptyDir",
                            "secret",
                            "persistentVolumeClaim",
                            "downwardAPI",
                            "configMap",
                            "projected",
                            "csi",
                            "ephemeral",
                            "image",
                        )
                    )
                ],
            ),
            None,
        ),
        (
            "volumes: every restricted type and an unknown one",
            checks.restricted_volumes_1_0,
            no_meta,
            spec(
                c("a"),
                volumes=[
                    {"name": "a1", "emptyDir": {}},
                    *(
                        {"name": f"b{i}", key: {}}
                        for i, key in enumerate(
                            (
                                "hostPath",
                                "gcePersistentDisk",
                                "awsElasticBlockStore",
                                "gitRepo",
                                "nfs",
                                "iscsi",
                                "glusterfs",
                                "rbd",
                                "flexVolume",
                                "cinder",
                                "cephfs",
                                "flocker",
                                "fc",
                                "azureFile",
                                "vsphereVolume",
                                "quobyte",
                                "azureDisk",
                                "photonPersistentDisk",
                                "portworxVolume",
                                "scaleIO",
                                "storageos",
                            ),
                            start=1,
                        )
                    ),
                    {"name": "c1"},
                ],
            ),
            (
                "restricted volume types",
                'volumes "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9", "b10", "b11", "b12", '
                '"b13", "b14", "b15", "b16", "b17", "b18", "b19", "b20", "b21", "c1" use restricted '
                'volume types "awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", '
                '"fc", "flexVolume", "flocker", "gcePersistentDisk", "gitRepo", "glusterfs", '
                '"hostPath", "iscsi", "nfs", "photonPersistentDisk", "portworxVolume", "quobyte", '
                '"rbd", "scaleIO", "storageos", "unknown", "vsphereVolume"',
            ),
        ),
        (
            "volumes: one",
            checks.restricted_volumes_1_0,
            no_meta,
            spec(c("a"), volumes=[{"name": "h", "hostPath": {"path": "/"}}]),
            ("restricted volume types", 'volume "h" uses restricted volume type "hostPath"'),
        ),
        # ----- runAsNonRoot
        (
            "runAsNonRoot: pod true",
            checks.run_as_non_root_1_0,
            no_meta,
            spec(c("a"), securityContext={"runAsNonRoot": True}),
            None,
        ),
        (
            "runAsNonRoot: nothing set",
            checks.run_as_non_root_1_0,
            no_meta,
            spec(c("a")),
            (
                "runAsNonRoot != true",
                'pod or container "a" must set securityContext.runAsNonRoot=true',
            ),
        ),
        (
            "runAsNonRoot: pod false",
            checks.run_as_non_root_1_0,
            no_meta,
            spec(c("a", runAsNonRoot=True), securityContext={"runAsNonRoot": False}),
            ("runAsNonRoot != true", "pod must not set securityContext.runAsNonRoot=false"),
        ),
        (
            "runAsNonRoot: containers false",
            checks.run_as_non_root_1_0,
            no_meta,
            spec(
                c("a"),
                c("c", runAsNonRoot=False),
                c("d", runAsNonRoot=False),
                securityContext={"runAsNonRoot": True},
            ),
            (
                "runAsNonRoot != true",
                'containers "c", "d" must not set securityContext.runAsNonRoot=false',
            ),
        ),
        (
            "runAsNonRoot: containers fall through",
            checks.run_as_non_root_1_0,
            no_meta,
            spec(c("a"), c("b"), c("c", runAsNonRoot=True)),
            (
                "runAsNonRoot != true",
                'pod or containers "a", "b" must set securityContext.runAsNonRoot=true',
            ),
        ),
        (
            "runAsNonRoot 1.35: user namespace",
            checks.run_as_non_root_1_35,
            no_meta,
            spec(c("a"), hostUsers=False),
            None,
        ),
        (
            "runAsNonRoot 1.0: user namespace not relaxed",
            checks.run_as_non_root_1_0,
            no_meta,
            spec(c("a"), hostUsers=False),
            (
                "runAsNonRoot != true",
                'pod or container "a" must set securityContext.runAsNonRoot=true',
            ),
        ),
        # ----- runAsUser
        (
            "runAsUser: non-zero or unset",
            checks.run_as_user_1_23,
            no_meta,
            spec(c("a", runAsUser=1000), c("b"), securityContext={"runAsUser": 1}),
            None,
        ),
        (
            "runAsUser: pod 0",
            checks.run_as_user_1_23,
            no_meta,
            spec(c("a"), securityContext={"runAsUser": 0}),
            ("runAsUser=0", "pod must not set runAsUser=0"),
        ),
        (
            "runAsUser: containers 0",
            checks.run_as_user_1_23,
            no_meta,
            spec(c("a", runAsUser=1), c("c", runAsUser=0), c("d", runAsUser=0)),
            ("runAsUser=0", 'containers "c", "d" must not set runAsUser=0'),
        ),
        (
            "runAsUser 1.35: user namespace",
            checks.run_as_user_1_35,
            no_meta,
            spec(c("a", runAsUser=0), hostUsers=False),
            None,
        ),
        # ----- seccomp, restricted
        (
            "seccomp restricted: pod RuntimeDefault",
            checks.seccomp_profile_restricted_1_19,
            no_meta,
            spec(c("a"), securityContext={"seccompProfile": {"type": "RuntimeDefault"}}),
            None,
        ),
        (
            "seccomp restricted: every container Localhost",
            checks.seccomp_profile_restricted_1_19,
            no_meta,
            spec(c("a", seccompProfile={"type": "Localhost", "localhostProfile": "p"})),
            None,
        ),
        (
            "seccomp restricted: nothing set",
            checks.seccomp_profile_restricted_1_19,
            no_meta,
            spec(c("a")),
            (
                "seccompProfile",
                'pod or container "a" must set securityContext.seccompProfile.type to '
                '"RuntimeDefault" or "Localhost"',
            ),
        ),
        (
            "seccomp restricted: pod unconfined",
            checks.seccomp_profile_restricted_1_19,
            no_meta,
            spec(
                c("a", seccompProfile={"type": "RuntimeDefault"}),
                securityContext={"seccompProfile": {"type": "Unconfined"}},
            ),
            (
                "seccompProfile",
                'pod must not set securityContext.seccompProfile.type to "Unconfined"',
            ),
        ),
        (
            "seccomp restricted: containers fall through",
            checks.seccomp_profile_restricted_1_19,
            no_meta,
            spec(c("a"), c("b"), c("c", seccompProfile={"type": "RuntimeDefault"})),
            (
                "seccompProfile",
                'pod or containers "a", "b" must set securityContext.seccompProfile.type to '
                '"RuntimeDefault" or "Localhost"',
            ),
        ),
        (
            "seccomp restricted 1.25: windows",
            checks.seccomp_profile_restricted_1_25,
            no_meta,
            spec(c("a"), os={"name": "windows"}),
            None,
        ),
    ]


@pytest.mark.parametrize(
    ("check", "meta", "pod_spec", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in rows()],
)
def test_check(
    check: CheckFn, meta: Object, pod_spec: Object, expected: tuple[str, str] | None
) -> None:
    result = check(meta, pod_spec)
    if expected is None:
        assert result == CheckResult(True)
    else:
        assert (result.allowed, result.reason, result.detail) == (False, *expected)


def test_go_quote_escapes_as_go_does() -> None:
    assert checks.go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert checks.go_quote("tab\there\x01") == '"tab\\there\\x01"'
    assert checks.go_quote("é<&>") == '"é<&>"'


def test_every_check_id_is_unique_and_versions_increase() -> None:
    ids = [check.id for check in checks.CHECKS]
    assert len(ids) == len(set(ids)) == 19
    for check in checks.CHECKS:
        minimums = [v.minimum for v in check.versions]
        assert minimums == sorted(set(minimums)), check.id
