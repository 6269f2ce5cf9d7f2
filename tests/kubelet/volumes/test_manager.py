"""The volume manager on the node's filesystem: projections, tokens, hostPath, claims, subPath.

Secret-like volumes are tmpfs mounts, so these tests need root (CI runs as root).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.kubelet.volumes.fakes import DictSource, configmap, secret

from kajitori.kubelet.runtimes.oci import mounts
from kajitori.kubelet.volumes import manager
from kajitori.kubelet.volumes.errors import ContainerConfigError, VolumeError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="tmpfs volumes need root")

Object = dict[str, Any]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pod_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "pod"
    directory.mkdir()
    yield directory
    mounts.unmount_all(directory)


def pod(volumes: list[Object], **container: Any) -> Object:
    return {
        "metadata": {"name": "p", "namespace": "default", "uid": "u-1", "labels": {"app": "x"}},
        "spec": {
            "serviceAccountName": "sa",
            "containers": [{"name": "c", **container}],
            "volumes": volumes,
        },
    }


def read(volume: Path) -> dict[str, str]:
    """The files a container sees: through the top-level links, not the ``..`` entries."""
    found = {}
    for directory, subdirs, files in os.walk(volume, followlinks=True):
        subdirs[:] = [d for d in subdirs if not d.startswith("..")]
        for name in files:
            path = Path(directory, name)
            found[str(path.relative_to(volume))] = path.read_text()
    return found


async def test_projected_token_configmap_and_downward_api_with_refresh(pod_dir: Path) -> None:
    """The kube-api-access shape; the token is asked again after 80% of its lifetime."""
    clock = Clock()
    root = configmap("root", {"ca.crt": "CA1"})
    source = DictSource({("ConfigMap", "default", "root"): root}, clock=clock)
    volumes = manager.VolumeManager(source, clock=clock)
    projected = {
        "name": "api",
        "projected": {
            "defaultMode": 0o644,
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
                {"configMap": {"name": "root", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}},
                            {"path": "meta/labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                        ]
                    }
                },
            ],
        },
    }
    api_pod = pod([projected], volumeMounts=[{"name": "api", "mountPath": "/sa"}])
    config = await volumes.container_config(api_pod, api_pod["spec"]["containers"][0], pod_dir)
    target = pod_dir / "volumes/kubernetes.io~projected/api"
    assert manager.is_mount_point(target)
    assert read(target) == {
        "token": "token-1",
        "ca.crt": "CA1",
        "namespace": "default",
        "meta/labels": 'app="x"',
    }
    assert config.mounts == [
        {
            "destination": "/sa",
            "type": "bind",
            "source": str(target),
            "options": ["rbind", "rprivate", "ro"],
        }
    ]
    clock.now += 0.79 * 3600
    await volumes.resync()
    assert read(target)["token"] == "token-1"
    clock.now += 0.02 * 3600
    source.objects[("ConfigMap", "default", "root")] = configmap("root", {"ca.crt": "CA2"})
    await volumes.resync()
    assert (read(target)["token"], read(target)["ca.crt"]) == ("token-2", "CA2")
    await volumes.aclose()


async def test_configmap_items_modes_and_optional(pod_dir: Path) -> None:
    source = DictSource({("ConfigMap", "default", "cfg"): configmap("cfg", {"a": "1", "b": "2"})})
    volumes = manager.VolumeManager(source)
    wanted = [
        {
            "name": "some",
            "configMap": {"name": "cfg", "items": [{"key": "b", "path": "x/b.txt", "mode": 0o600}]},
        },
        {"name": "maybe", "configMap": {"name": "absent", "optional": True}},
    ]
    await volumes.setup(pod(wanted), pod_dir)
    some = pod_dir / "volumes/kubernetes.io~configmap/some"
    assert read(some) == {"x/b.txt": "2"}
    assert (some / "x/b.txt").stat().st_mode & 0o777 == 0o600
    assert read(pod_dir / "volumes/kubernetes.io~configmap/maybe") == {}
    await volumes.aclose()


async def test_a_missing_secret_is_failed_mount_with_an_event(pod_dir: Path) -> None:
    source = DictSource({})
    volumes = manager.VolumeManager(source)
    broken = pod([{"name": "x", "secret": {"secretName": "y"}}])
    with pytest.raises(VolumeError) as caught:
        await volumes.container_config(broken, {}, pod_dir)
    message = 'MountVolume.SetUp failed for volume "x" : secret "y" not found'
    assert str(caught.value) == message and caught.value.reason == "ContainerCreating"
    assert source.events == [("Warning", "FailedMount", message)]
    source.objects[("Secret", "default", "y")] = secret("y", {"k": "v"})
    await volumes.setup(broken, pod_dir)  # set up once it exists
    assert read(pod_dir / "volumes/kubernetes.io~secret/x") == {"k": "v"}
    await volumes.aclose()


async def test_host_path_types(pod_dir: Path, tmp_path: Path) -> None:
    volumes = manager.VolumeManager(DictSource({}))
    made = tmp_path / "made/deep"
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(tmp_path / "s.sock"))
    good = [
        {"name": "a", "hostPath": {"path": str(made), "type": "DirectoryOrCreate"}},
        {"name": "b", "hostPath": {"path": str(tmp_path / "f"), "type": "FileOrCreate"}},
        {"name": "c", "hostPath": {"path": str(tmp_path / "s.sock"), "type": "Socket"}},
    ]
    await volumes.setup(pod(good), pod_dir)
    assert made.is_dir() and (tmp_path / "f").is_file()
    listening.close()
    for kind, path, noun in [
        ("Directory", tmp_path / "nope", "directory"),
        ("File", made, "file"),
        ("Socket", tmp_path / "f", "socket"),
    ]:
        bad = pod([{"name": "h", "hostPath": {"path": str(path), "type": kind}}])
        bad["metadata"]["uid"] = f"u-{kind}"
        with pytest.raises(
            VolumeError, match=f"hostPath type check failed: {path} is not a {noun}"
        ):
            await volumes.setup(bad, pod_dir)
    await volumes.aclose()


async def test_claims_bound_to_local_path_volumes_and_sub_paths(
    pod_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "pvc-1_default_data"
    claim = {"spec": {"volumeName": "pv-1"}, "status": {"phase": "Bound"}}
    pv = {"spec": {"hostPath": {"path": str(data), "type": "DirectoryOrCreate"}}}
    source = DictSource(
        {
            ("PersistentVolumeClaim", "default", "data"): claim,
            ("PersistentVolumeClaim", "default", "pending"): {"spec": {}, "status": {}},
            ("PersistentVolume", "", "pv-1"): pv,
        }
    )
    volumes = manager.VolumeManager(source)
    container = {
        "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "volumeMounts": [
            {"name": "d", "mountPath": "/data", "subPathExpr": "logs/$(POD)"},
            {"name": "d", "mountPath": "/ro", "readOnly": True},
        ],
    }
    spec_pod = pod([{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}], **container)
    config = await volumes.container_config(spec_pod, container, pod_dir)
    assert [(m["source"], m["options"][-1]) for m in config.mounts] == [
        (str(data / "logs/p"), "rw"),
        (str(data), "ro"),
    ]
    assert (data / "logs/p").is_dir()

    os.symlink("/etc", data / "escape")
    sneaky = {"volumeMounts": [{"name": "d", "mountPath": "/x", "subPath": "escape"}]}
    with pytest.raises(ContainerConfigError, match="not within volume path"):
        await volumes.container_config(spec_pod, sneaky, pod_dir)

    waiting = pod([{"name": "w", "persistentVolumeClaim": {"claimName": "pending"}}])
    waiting["metadata"]["uid"] = "u-2"
    with pytest.raises(VolumeError, match='persistentvolumeclaim "pending" is not bound'):
        await volumes.setup(waiting, pod_dir / "other")
    await volumes.aclose()


async def test_pod_ip_comes_from_the_runtime_when_the_pod_does_not_show_it_yet(
    pod_dir: Path,
) -> None:
    volumes = manager.VolumeManager(DictSource({}), pod_ip=lambda uid: f"10.1.2.3-{uid}")
    container = {
        "env": [
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
        ]
    }
    config = await volumes.container_config(pod([]), container, pod_dir)
    assert dict(config.env) == {"IP": "10.1.2.3-u-1", "IPS": "10.1.2.3-u-1"}
    await volumes.aclose()
