"""config.json from a pod's container: upstream's command, env, user, capability and resource rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kajitori.kubelet.runtimes.oci import spec

Object = dict[str, Any]
IMAGE = spec.ImageConfig(entrypoint=("/entry",), cmd=("default",), env=("A=image", "B=image"))


@pytest.mark.parametrize(
    ("container", "argv"),
    [
        pytest.param({}, ["/entry", "default"], id="image-entrypoint-and-cmd"),
        pytest.param({"args": ["x"]}, ["/entry", "x"], id="args-replace-cmd"),
        pytest.param({"command": ["/bin/sh"]}, ["/bin/sh"], id="command-drops-cmd"),
        pytest.param({"command": ["/bin/sh"], "args": ["-c"]}, ["/bin/sh", "-c"], id="both"),
    ],
)
def test_command_line_follows_upstreams_entrypoint_rules(
    container: Object, argv: list[str]
) -> None:
    """command replaces Entrypoint and drops Cmd; args alone replaces Cmd."""
    assert spec.command_line(container, IMAGE) == argv


def test_container_env_overrides_the_images_and_value_from_is_left_out() -> None:
    """Image env first, container values win, valueFrom is not the runtime's to resolve."""
    container = {
        "env": [
            {"name": "B", "value": "container"},
            {"name": "C", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        ]
    }
    env = spec.environment(container, IMAGE, hostname="web-0")
    assert "A=image" in env and "B=container" in env and "HOSTNAME=web-0" in env
    assert not any(e.startswith("C=") for e in env)


@pytest.mark.parametrize(
    ("pod_sc", "sc", "user"),
    [
        pytest.param({}, {}, (7, 8, []), id="image-user"),
        pytest.param({"runAsUser": 1000}, {}, (1000, 0, []), id="pod-user-root-group"),
        pytest.param(
            {"runAsUser": 1000}, {"runAsUser": 5, "runAsGroup": 6}, (5, 6, []), id="container-wins"
        ),
        pytest.param(
            {"supplementalGroups": [3, 4], "fsGroup": 9}, {}, (7, 8, [3, 4, 9]), id="groups"
        ),
    ],
)
def test_user_comes_from_security_contexts_over_the_image(
    pod_sc: Object, sc: Object, user: tuple[int, int, list[int]]
) -> None:
    """Container securityContext over the pod's over the image's User."""
    pod = {"spec": {"securityContext": pod_sc}}
    assert spec.user_of(pod, {"securityContext": sc}, image_uid=7, image_gid=8) == user


def test_resources_map_to_memory_limit_cpu_quota_and_shares() -> None:
    """limits.memory in bytes; limits.cpu 500m → 50 ms per 100 ms; requests.cpu 250m → 256 shares."""
    container = {
        "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}, "requests": {"cpu": "250m"}}
    }
    assert spec.resources(container) == {
        "memory": {"limit": 64 * 2**20},
        "cpu": {"shares": 256, "quota": 50_000, "period": 100_000},
    }


def test_privileged_gets_every_capability_and_no_masked_paths(tmp_path: Path) -> None:
    """privileged: all capabilities, writable /sys, every device, nothing masked."""
    sandbox = spec.Sandbox(tmp_path / "net", tmp_path / "ipc", tmp_path / "uts", "/kajitori/podx")
    document = spec.container_spec(
        {"metadata": {"name": "p"}},
        {"name": "c", "securityContext": {"privileged": True}},
        IMAGE,
        rootfs=tmp_path,
        sandbox=sandbox,
        container_id="x",
        user=(0, 0, []),
    )
    assert set(document["process"]["capabilities"]["bounding"]) == set(spec.ALL_CAPABILITIES)
    assert "maskedPaths" not in document["linux"]
    assert document["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert document["linux"]["cgroupsPath"] == "/kajitori/podx/x"


def test_image_user_names_are_looked_up_in_the_images_own_files(tmp_path: Path) -> None:
    """A name resolves through the rootfs's /etc/passwd and /etc/group; an unknown one is an error."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("app:x:1001:1002::/home/app:/bin/sh\n")
    (tmp_path / "etc/group").write_text("staff:x:50:\n")
    assert spec.lookup_user(tmp_path, "app") == (1001, 1002)
    assert spec.lookup_user(tmp_path, "app:staff") == (1001, 50)
    assert spec.lookup_user(tmp_path, "42") == (42, 0)
    with pytest.raises(ValueError, match="unable to find user ghost"):
        spec.lookup_user(tmp_path, "ghost")
