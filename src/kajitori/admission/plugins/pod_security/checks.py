"""The Pod Security Standards' checks, one per control, each by the version it applies from.

Owns what upstream's policy/check_*.go decide: for a pod's metadata and
spec (wire form, defaults applied), whether the control allows it and, if
not, the forbidden reason and detail in upstream's exact words. ``CHECKS``
lists every check with its level and the policy versions at which its
rule changed; ``evaluator.py`` turns that into the checks of each
level and version.

Wire-form nuances: a missing field and a JSON null are Go's nil; booleans
and numbers are compared as Go compares them after decoding (``false`` and
0 are the zero values).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from kajitori.admission.plugins.pod_security.api import BASELINE, RESTRICTED, Level

Object = dict[str, Any]


class CheckResult(NamedTuple):
    allowed: bool
    reason: str = ""
    detail: str = ""


ALLOWED = CheckResult(True)
CheckFn = Callable[[Object, Object], CheckResult]


@dataclass(frozen=True, slots=True)
class VersionedCheck:
    """A check's rule from policy version ``v1.<minimum>`` on; ``overrides`` names baseline checks
    this (restricted) rule replaces at those versions."""

    minimum: int
    check: CheckFn
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    level: Level
    versions: tuple[VersionedCheck, ...]


# ----- helpers --------------------------------------------------------------------------------


def _dict(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def containers(spec: Object) -> Iterator[Object]:
    """Init containers, containers, then ephemeral containers (upstream's visitContainers)."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in _list(spec.get(key)):
            if isinstance(container, dict):
                yield container


def _name(container: Object) -> str:
    return str(container.get("name") or "")


def _security_context(obj: Object) -> Object | None:
    context = obj.get("securityContext")
    return context if isinstance(context, dict) else None


def go_quote(text: str) -> str:
    """``text`` as Go's ``%q`` prints it."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not char.isprintable() and code > 0x7F:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_GO_ESCAPES["\v"] = "\\v"


def join_quote(items: Iterable[str]) -> str:
    """``"a", "b"`` (upstream's joinQuote: plain double quotes, no escaping)."""
    items = list(items)
    return '"' + '", "'.join(items) + '"' if items else ""


def pluralize(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def _containers_phrase(names: list[str]) -> str:
    return f"{pluralize('container', 'containers', len(names))} {join_quote(names)}"


def _user_namespace_pod(spec: Object) -> bool:
    """``hostUsers: false``: the pod runs in its own user namespace."""
    return spec.get("hostUsers") is False


def _windows_pod(spec: Object) -> bool:
    return _dict(spec.get("os")).get("name") == "windows"


# ----- baseline -------------------------------------------------------------------------------

_APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
_APPARMOR_TYPES = frozenset(("RuntimeDefault", "Localhost"))


def _apparmor_annotation_allowed(value: str) -> bool:
    return value == "" or value == "runtime/default" or value.startswith("localhost/")


def app_armor_profile_1_0(meta: Object, spec: Object) -> CheckResult:
    setters: list[str] = []
    bad_values: set[str] = set()
    pod_profile = _dict(_security_context(spec)).get("appArmorProfile")
    if isinstance(pod_profile, dict):
        kind = str(pod_profile.get("type") or "")
        if kind not in _APPARMOR_TYPES:
            setters.append("pod")
            bad_values.add(kind)
    bad_containers: list[str] = []
    for container in containers(spec):
        profile = _dict(_security_context(container)).get("appArmorProfile")
        if isinstance(profile, dict):
            kind = str(profile.get("type") or "")
            if kind not in _APPARMOR_TYPES:
                bad_containers.append(_name(container))
                bad_values.add(kind)
    if bad_containers:
        setters.append(_containers_phrase(bad_containers))
    values = sorted(bad_values)
    annotations = sorted(
        f"{key}={go_quote(str(value))}"
        for key, value in _dict(meta.get("annotations")).items()
        if key.startswith(_APPARMOR_ANNOTATION_PREFIX)
        and not _apparmor_annotation_allowed(str(value))
    )
    if annotations:
        values.extend(annotations)
        setters.append(pluralize("annotation", "annotations", len(annotations)))
    if not setters:
        return ALLOWED
    return CheckResult(
        False,
        pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", len(values)),
        f"{' and '.join(setters)} must not set AppArmor profile type to {join_quote(values)}",
    )


_DEFAULT_CAPABILITIES = frozenset(
    (
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    )
)


def _capabilities(container: Object) -> Object | None:
    caps = _dict(_security_context(container)).get("capabilities")
    return caps if isinstance(caps, dict) else None


def capabilities_baseline_1_0(meta: Object, spec: Object) -> CheckResult:
    bad_containers: list[str] = []
    added: set[str] = set()
    for container in containers(spec):
        caps = _capabilities(container)
        if caps is None:
            continue
        extra = [str(c) for c in _list(caps.get("add")) if str(c) not in _DEFAULT_CAPABILITIES]
        if extra:
            added.update(extra)
            bad_containers.append(_name(container))
    if not bad_containers:
        return ALLOWED
    return CheckResult(
        False,
        "non-default capabilities",
        f"{_containers_phrase(bad_containers)} must not include {join_quote(sorted(added))} "
        "in securityContext.capabilities.add",
    )


def host_namespaces_1_0(meta: Object, spec: Object) -> CheckResult:
    shared = [
        f"{key}=true" for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key) is True
    ]
    if not shared:
        return ALLOWED
    return CheckResult(False, "host namespaces", ", ".join(shared))


def host_path_volumes_1_0(meta: Object, spec: Object) -> CheckResult:
    names = [
        str(v.get("name") or "")
        for v in _list(spec.get("volumes"))
        if isinstance(v, dict) and v.get("hostPath") is not None
    ]
    if not names:
        return ALLOWED
    return CheckResult(
        False,
        "hostPath volumes",
        f"{pluralize('volume', 'volumes', len(names))} {join_quote(names)}",
    )


def host_ports_1_0(meta: Object, spec: Object) -> CheckResult:
    bad_containers: list[str] = []
    ports: set[str] = set()
    for container in containers(spec):
        used = [
            str(p.get("hostPort"))
            for p in _list(container.get("ports"))
            if isinstance(p, dict) and p.get("hostPort") not in (None, 0)
        ]
        if used:
            ports.update(used)
            bad_containers.append(_name(container))
    if not bad_containers:
        return ALLOWED
    count = len(bad_containers)
    return CheckResult(
        False,
        "hostPort",
        f"{_containers_phrase(bad_containers)} {pluralize('uses', 'use', count)} "
        f"{pluralize('hostPort', 'hostPorts', len(ports))} {', '.join(sorted(ports))}",
    )


def _handler_hosts(handler: Any) -> list[str]:
    handler = _dict(handler)
    hosts = []
    for action in ("httpGet", "tcpSocket"):
        host = _dict(handler.get(action)).get("host")
        if host:
            hosts.append(str(host))
    return hosts


def host_probes_and_host_lifecycle_1_34(meta: Object, spec: Object) -> CheckResult:
    bad_containers: set[str] = set()
    hosts: set[str] = set()
    for container in containers(spec):
        lifecycle = _dict(container.get("lifecycle"))
        handlers = [container.get(p) for p in ("livenessProbe", "readinessProbe", "startupProbe")]
        handlers += [lifecycle.get("postStart"), lifecycle.get("preStop")]
        for handler in handlers:
            found = _handler_hosts(handler)
            if found:
                bad_containers.add(_name(container))
                hosts.update(found)
    if not bad_containers:
        return ALLOWED
    count = len(bad_containers)
    return CheckResult(
        False,
        "probe or lifecycle host",
        f"{_containers_phrase(sorted(bad_containers))} {pluralize('uses', 'use', count)} "
        f"{pluralize('probe or lifecycle host', 'probe or lifecycle hosts', len(hosts))} "
        f"{join_quote(sorted(hosts))}",
    )


def privileged_1_0(meta: Object, spec: Object) -> CheckResult:
    bad = [
        _name(c) for c in containers(spec) if _dict(_security_context(c)).get("privileged") is True
    ]
    if not bad:
        return ALLOWED
    return CheckResult(
        False,
        "privileged",
        f"{_containers_phrase(bad)} must not set securityContext.privileged=true",
    )


def proc_mount_1_0(meta: Object, spec: Object) -> CheckResult:
    bad: list[str] = []
    kinds: set[str] = set()
    for container in containers(spec):
        mount = _dict(_security_context(container)).get("procMount")
        if mount is not None and mount != "Default":
            bad.append(_name(container))
            kinds.add(str(mount))
    if not bad:
        return ALLOWED
    return CheckResult(
        False,
        "procMount",
        f"{_containers_phrase(bad)} must not set securityContext.procMount to "
        f"{join_quote(sorted(kinds))}",
    )


def proc_mount_1_35_baseline(meta: Object, spec: Object) -> CheckResult:
    if _user_namespace_pod(spec):
        return ALLOWED
    return proc_mount_1_0(meta, spec)


_SELINUX_TYPES_1_0 = frozenset(("", "container_t", "container_init_t", "container_kvm_t"))
_SELINUX_TYPES_1_31 = _SELINUX_TYPES_1_0 | {"container_engine_t"}


def _se_linux_options(spec: Object, allowed_types: frozenset[str]) -> CheckResult:
    bad_types: set[str] = set()
    set_user = set_role = False

    def valid(options: Object) -> bool:
        nonlocal set_user, set_role
        ok = True
        kind = str(options.get("type") or "")
        if kind not in allowed_types:
            ok = False
            bad_types.add(kind)
        if options.get("user"):
            ok, set_user = False, True
        if options.get("role"):
            ok, set_role = False, True
        return ok

    setters: list[str] = []
    pod_options = _dict(_security_context(spec)).get("seLinuxOptions")
    if isinstance(pod_options, dict) and not valid(pod_options):
        setters.append("pod")
    bad_containers = []
    for container in containers(spec):
        options = _dict(_security_context(container)).get("seLinuxOptions")
        if isinstance(options, dict) and not valid(options):
            bad_containers.append(_name(container))
    if bad_containers:
        setters.append(_containers_phrase(bad_containers))
    if not setters:
        return ALLOWED
    problems = []
    if bad_types:
        types = sorted(bad_types)
        problems.append(f"{pluralize('type', 'types', len(types))} {join_quote(types)}")
    if set_user:
        problems.append("user may not be set")
    if set_role:
        problems.append("role may not be set")
    return CheckResult(
        False,
        "seLinuxOptions",
        f"{' and '.join(setters)} set forbidden securityContext.seLinuxOptions: "
        f"{'; '.join(problems)}",
    )


def se_linux_options_1_0(meta: Object, spec: Object) -> CheckResult:
    return _se_linux_options(spec, _SELINUX_TYPES_1_0)


def se_linux_options_1_31(meta: Object, spec: Object) -> CheckResult:
    return _se_linux_options(spec, _SELINUX_TYPES_1_31)


_SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
_SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
_SECCOMP_TYPES = frozenset(("RuntimeDefault", "Localhost"))


def _seccomp_annotation_allowed(value: str) -> bool:
    return value in ("runtime/default", "docker/default") or value.startswith("localhost/")


def seccomp_profile_baseline_1_0(meta: Object, spec: Object) -> CheckResult:
    annotations = _dict(meta.get("annotations"))
    keys = [_SECCOMP_POD_ANNOTATION]
    keys += [_SECCOMP_CONTAINER_ANNOTATION_PREFIX + _name(c) for c in containers(spec)]
    forbidden = {
        f"{key}={go_quote(str(annotations[key]))}"
        for key in keys
        if key in annotations and not _seccomp_annotation_allowed(str(annotations[key]))
    }
    if not forbidden:
        return ALLOWED
    return CheckResult(
        False,
        "seccompProfile",
        f"forbidden {pluralize('annotation', 'annotations', len(forbidden))} "
        f"{', '.join(sorted(forbidden))}",
    )


def _seccomp_type(obj: Object) -> str | None:
    """The ``securityContext.seccompProfile.type`` ``obj`` sets ("" if set without a type)."""
    profile = _dict(_security_context(obj)).get("seccompProfile")
    if not isinstance(profile, dict):
        return None
    return str(profile.get("type") or "")


def _explicitly_bad_seccomp(spec: Object) -> tuple[list[str], set[str], bool, list[str]]:
    """(setters with bad types, bad types, whether the pod sets a good type, unset containers)."""
    setters: list[str] = []
    bad_values: set[str] = set()
    pod_type = _seccomp_type(spec)
    pod_set = False
    if pod_type is not None:
        if pod_type in _SECCOMP_TYPES:
            pod_set = True
        else:
            setters.append("pod")
            bad_values.add(pod_type)
    bad_containers: list[str] = []
    unset: list[str] = []
    for container in containers(spec):
        kind = _seccomp_type(container)
        if kind is None:
            unset.append(_name(container))
        elif kind not in _SECCOMP_TYPES:
            bad_containers.append(_name(container))
            bad_values.add(kind)
    if bad_containers:
        setters.append(_containers_phrase(bad_containers))
    return setters, bad_values, pod_set, unset


def _bad_seccomp_result(setters: list[str], bad_values: set[str]) -> CheckResult:
    return CheckResult(
        False,
        "seccompProfile",
        f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to "
        f"{join_quote(sorted(bad_values))}",
    )


def seccomp_profile_baseline_1_19(meta: Object, spec: Object) -> CheckResult:
    setters, bad_values, _, _ = _explicitly_bad_seccomp(spec)
    return _bad_seccomp_result(setters, bad_values) if setters else ALLOWED


_SYSCTLS_1_0 = frozenset(
    (
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    )
)
_SYSCTLS_1_27 = _SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
_SYSCTLS_1_29 = _SYSCTLS_1_27 | {
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
_SYSCTLS_1_32 = _SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}
_SYSCTLS_1_37 = _SYSCTLS_1_32 | {
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
}


def _sysctls(allowed: frozenset[str]) -> CheckFn:
    def check(meta: Object, spec: Object) -> CheckResult:
        names = [
            str(s.get("name") or "")
            for s in _list(_dict(_security_context(spec)).get("sysctls"))
            if isinstance(s, dict)
        ]
        forbidden = [n for n in names if n not in allowed]
        if not forbidden:
            return ALLOWED
        return CheckResult(False, "forbidden sysctls", ", ".join(forbidden))

    return check


def _host_process(obj: Object) -> bool:
    return _dict(_dict(_security_context(obj)).get("windowsOptions")).get("hostProcess") is True


def windows_host_process_1_0(meta: Object, spec: Object) -> CheckResult:
    setters = ["pod"] if _host_process(spec) else []
    bad = [_name(c) for c in containers(spec) if _host_process(c)]
    if bad:
        setters.append(_containers_phrase(bad))
    if not setters:
        return ALLOWED
    return CheckResult(
        False,
        "hostProcess",
        f"{' and '.join(setters)} must not set securityContext.windowsOptions.hostProcess=true",
    )


# ----- restricted -----------------------------------------------------------------------------


def allow_privilege_escalation_1_8(meta: Object, spec: Object) -> CheckResult:
    bad = [
        _name(c)
        for c in containers(spec)
        if _dict(_security_context(c)).get("allowPrivilegeEscalation") is not False
    ]
    if not bad:
        return ALLOWED
    return CheckResult(
        False,
        "allowPrivilegeEscalation != false",
        f"{_containers_phrase(bad)} must set securityContext.allowPrivilegeEscalation=false",
    )


def allow_privilege_escalation_1_25(meta: Object, spec: Object) -> CheckResult:
    # A Windows pod cannot set the field (validation refuses it), so it is not required.
    if _windows_pod(spec):
        return ALLOWED
    return allow_privilege_escalation_1_8(meta, spec)


def capabilities_restricted_1_22(meta: Object, spec: Object) -> CheckResult:
    missing_drop_all: list[str] = []
    adding: list[str] = []
    forbidden: set[str] = set()
    for container in containers(spec):
        caps = _capabilities(container)
        if caps is None:
            missing_drop_all.append(_name(container))
            continue
        if "ALL" not in [str(c) for c in _list(caps.get("drop"))]:
            missing_drop_all.append(_name(container))
        extra = [str(c) for c in _list(caps.get("add")) if str(c) != "NET_BIND_SERVICE"]
        if extra:
            forbidden.update(extra)
            adding.append(_name(container))
    details = []
    if missing_drop_all:
        details.append(
            f'{_containers_phrase(missing_drop_all)} must set securityContext.capabilities.drop=["ALL"]'
        )
    if adding:
        details.append(
            f"{_containers_phrase(adding)} must not include {join_quote(sorted(forbidden))} "
            "in securityContext.capabilities.add"
        )
    if not details:
        return ALLOWED
    return CheckResult(False, "unrestricted capabilities", "; ".join(details))


def capabilities_restricted_1_25(meta: Object, spec: Object) -> CheckResult:
    if _windows_pod(spec):
        return ALLOWED
    return capabilities_restricted_1_22(meta, spec)


_ALLOWED_VOLUME_SOURCES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
)
# In upstream's order: a volume is named by the first of these it sets.
_RESTRICTED_VOLUME_SOURCES = (
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
)


def restricted_volumes_1_0(meta: Object, spec: Object) -> CheckResult:
    bad: list[str] = []
    kinds: set[str] = set()
    for volume in _list(spec.get("volumes")):
        if not isinstance(volume, dict):
            continue
        if any(volume.get(key) is not None for key in _ALLOWED_VOLUME_SOURCES):
            continue
        bad.append(str(volume.get("name") or ""))
        kind = next((k for k in _RESTRICTED_VOLUME_SOURCES if volume.get(k) is not None), None)
        kinds.add(kind or "unknown")
    if not bad:
        return ALLOWED
    count = len(bad)
    return CheckResult(
        False,
        "restricted volume types",
        f"{pluralize('volume', 'volumes', count)} {join_quote(bad)} "
        f"{pluralize('uses', 'use', count)} "
        f"{pluralize('restricted volume type', 'restricted volume types', len(kinds))} "
        f"{join_quote(sorted(kinds))}",
    )


def run_as_non_root_1_0(meta: Object, spec: Object) -> CheckResult:
    setters: list[str] = []
    pod_non_root = False
    pod_value = _dict(_security_context(spec)).get("runAsNonRoot")
    if pod_value is not None:
        if pod_value is False:
            setters.append("pod")
        else:
            pod_non_root = True
    bad: list[str] = []
    unset: list[str] = []
    for container in containers(spec):
        value = _dict(_security_context(container)).get("runAsNonRoot")
        if value is None:
            if not pod_non_root:
                unset.append(_name(container))
        elif value is False:
            bad.append(_name(container))
    if bad:
        setters.append(_containers_phrase(bad))
    if setters:
        return CheckResult(
            False,
            "runAsNonRoot != true",
            f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false",
        )
    if unset:
        return CheckResult(
            False,
            "runAsNonRoot != true",
            f"pod or {_containers_phrase(unset)} must set securityContext.runAsNonRoot=true",
        )
    return ALLOWED


def run_as_non_root_1_35(meta: Object, spec: Object) -> CheckResult:
    if _user_namespace_pod(spec):
        return ALLOWED
    return run_as_non_root_1_0(meta, spec)


def _runs_as_root(obj: Object) -> bool:
    value = _dict(_security_context(obj)).get("runAsUser")
    return value is not None and not isinstance(value, bool) and value == 0


def run_as_user_1_23(meta: Object, spec: Object) -> CheckResult:
    setters = ["pod"] if _runs_as_root(spec) else []
    bad = [_name(c) for c in containers(spec) if _runs_as_root(c)]
    if bad:
        setters.append(_containers_phrase(bad))
    if not setters:
        return ALLOWED
    return CheckResult(False, "runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0")


def run_as_user_1_35(meta: Object, spec: Object) -> CheckResult:
    if _user_namespace_pod(spec):
        return ALLOWED
    return run_as_user_1_23(meta, spec)


def seccomp_profile_restricted_1_19(meta: Object, spec: Object) -> CheckResult:
    setters, bad_values, pod_set, unset = _explicitly_bad_seccomp(spec)
    if setters:
        return _bad_seccomp_result(setters, bad_values)
    if unset and not pod_set:
        return CheckResult(
            False,
            "seccompProfile",
            f"pod or {_containers_phrase(unset)} must set securityContext.seccompProfile.type "
            'to "RuntimeDefault" or "Localhost"',
        )
    return ALLOWED


def seccomp_profile_restricted_1_25(meta: Object, spec: Object) -> CheckResult:
    if _windows_pod(spec):
        return ALLOWED
    return seccomp_profile_restricted_1_19(meta, spec)


# ----- the registry ---------------------------------------------------------------------------


def _check(id_: str, level: Level, *versions: VersionedCheck) -> Check:
    return Check(id_, level, versions)


V = VersionedCheck

CHECKS: tuple[Check, ...] = (
    _check("appArmorProfile", BASELINE, V(0, app_armor_profile_1_0)),
    _check("capabilities_baseline", BASELINE, V(0, capabilities_baseline_1_0)),
    _check("hostNamespaces", BASELINE, V(0, host_namespaces_1_0)),
    _check("hostPathVolumes", BASELINE, V(0, host_path_volumes_1_0)),
    _check("hostPorts", BASELINE, V(0, host_ports_1_0)),
    _check("hostProbesAndHostLifecycle", BASELINE, V(34, host_probes_and_host_lifecycle_1_34)),
    _check("privileged", BASELINE, V(0, privileged_1_0)),
    _check("procMount", BASELINE, V(0, proc_mount_1_0), V(35, proc_mount_1_35_baseline)),
    _check("seLinuxOptions", BASELINE, V(0, se_linux_options_1_0), V(31, se_linux_options_1_31)),
    _check(
        "seccompProfile_baseline",
        BASELINE,
        V(0, seccomp_profile_baseline_1_0),
        V(19, seccomp_profile_baseline_1_19),
    ),
    _check(
        "sysctls",
        BASELINE,
        V(0, _sysctls(_SYSCTLS_1_0)),
        V(27, _sysctls(_SYSCTLS_1_27)),
        V(29, _sysctls(_SYSCTLS_1_29)),
        V(32, _sysctls(_SYSCTLS_1_32)),
        V(37, _sysctls(_SYSCTLS_1_37)),
    ),
    _check("windowsHostProcess", BASELINE, V(0, windows_host_process_1_0)),
    _check(
        "allowPrivilegeEscalation",
        RESTRICTED,
        V(8, allow_privilege_escalation_1_8),
        V(25, allow_privilege_escalation_1_25),
    ),
    _check(
        "capabilities_restricted",
        RESTRICTED,
        V(22, capabilities_restricted_1_22, ("capabilities_baseline",)),
        V(25, capabilities_restricted_1_25, ("capabilities_baseline",)),
    ),
    _check("procMount_restricted", RESTRICTED, V(35, proc_mount_1_0, ("procMount",))),
    _check("restrictedVolumes", RESTRICTED, V(0, restricted_volumes_1_0, ("hostPathVolumes",))),
    _check("runAsNonRoot", RESTRICTED, V(0, run_as_non_root_1_0), V(35, run_as_non_root_1_35)),
    _check("runAsUser", RESTRICTED, V(23, run_as_user_1_23), V(35, run_as_user_1_35)),
    _check(
        "seccompProfile_restricted",
        RESTRICTED,
        V(19, seccomp_profile_restricted_1_19, ("seccompProfile_baseline",)),
        V(25, seccomp_profile_restricted_1_25, ("seccompProfile_baseline",)),
    ),
)
