"""``VolumeManager``: a pod's volumes on the node, and each container's mounts and environment.

The runtime asks ``container_config(pod, container, pod_dir)`` before it
starts a container and bind-mounts what it gets; it never fetches anything
itself. Volumes live under ``<pod_dir>/volumes/<plugin>/<name>``, with
upstream's plugin names (``kubernetes.io~secret`` ...), so removing the pod
directory (after unmounting what is below it) removes them all:

* secret, configMap, downwardAPI, projected: a tmpfs each (secrets never
  touch the disk), filled by the AtomicWriter; ``optional`` objects that do
  not exist give an empty volume; a missing one that is not optional keeps
  the pod in ContainerCreating with upstream's FailedMount message;
* projected ``serviceAccountToken``: a TokenRequest bound to the pod, asked
  again once 80% of its lifetime has passed (upstream's token manager);
* projected ``clusterTrustBundle``: the PEM trust anchors of a bundle by
  name, or of the bundles of a signer matching a label selector
  (``trust_bundles``), refreshed by ``resync`` as the others;
* emptyDir: a directory, or a tmpfs of ``sizeLimit`` for ``medium: Memory``;
* hostPath: the node's path after upstream's ``type`` checks;
* persistentVolumeClaim: the bound PersistentVolume's hostPath or local path
  (the local-path provisioner's volumes), so data outlives the pod.

``resync`` rewrites the API-backed volumes of every pod it set up (a
periodic loop runs it), so a changed Secret appears in running containers
through the ``..data`` swap; subPath mounts keep the file they resolved at
start, as upstream.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import dataclasses
import logging
import os
import random
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kajitori.kubelet.volumes import atomic_writer, downward, env, trust_bundles
from kajitori.kubelet.volumes.errors import ContainerConfigError, VolumeError
from kajitori.kubelet.volumes.source import ObjectSource, Token
from kajitori.machinery import quantity

log = logging.getLogger(__name__)

Object = dict[str, Any]

DEFAULT_MODE = 0o644
DEFAULT_TOKEN_SECONDS = 3600
TOKEN_REFRESH_FRACTION = 0.8  # upstream's token manager renews after 80% of the TTL
DEFAULT_RESYNC_SECONDS = 60.0
API_BACKED = ("secret", "configMap", "downwardAPI", "projected")
PLUGINS = {
    "secret": "kubernetes.io~secret",
    "configMap": "kubernetes.io~configmap",
    "downwardAPI": "kubernetes.io~downward-api",
    "projected": "kubernetes.io~projected",
    "emptyDir": "kubernetes.io~empty-dir",
}
_libc = ctypes.CDLL(None, use_errno=True)


@dataclasses.dataclass(frozen=True, slots=True)
class ContainerConfig:
    """What the runtime needs beyond the image: environment, bind mounts, expanded args."""

    env: list[tuple[str, str]]
    mounts: list[Object]


@dataclasses.dataclass(slots=True)
class _PodVolumes:
    pod: Object
    directory: Path
    paths: dict[str, Path] = dataclasses.field(default_factory=dict)
    read_only: set[str] = dataclasses.field(default_factory=set)  # API data volumes
    tokens: dict[tuple[str, int], tuple[Token, float]] = dataclasses.field(default_factory=dict)


def mount_tmpfs(target: Path, *, size: int | None = None) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        # The rootless runtime (decision 0033) cannot mount here: a plain directory under its
        # 0700 root, so secrets land on disk and sizeLimit is not enforced.
        target.chmod(0o755)
        return
    options = "mode=0755" + (f",size={size}" if size else "")
    if _libc.mount(b"tmpfs", str(target).encode(), b"tmpfs", 0, options.encode()) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount tmpfs on {target}: {os.strerror(errno)}")


def is_mount_point(path: Path) -> bool:
    if os.geteuid() != 0:  # rootless: mount_tmpfs made a plain directory (decision 0033)
        return path.is_dir()
    try:
        return path.stat().st_dev != path.parent.stat().st_dev
    except OSError:
        return False


def _mode(value: Any, default: int) -> int:
    return int(value) & 0o777 if value is not None else default


def _items(
    data: dict[str, bytes], items: list[Object] | None, mode: int, what: str
) -> dict[str, atomic_writer.FileProjection]:
    """Files from a Secret's or ConfigMap's keys: all of them, or ``items`` (key → path, mode)."""
    if not items:
        return {key: atomic_writer.FileProjection(value, mode) for key, value in data.items()}
    files = {}
    for item in items:
        key = item.get("key", "")
        if key not in data:
            raise KeyError(f"{what} references non-existent config key: {key}")
        files[item.get("path") or key] = atomic_writer.FileProjection(
            data[key], _mode(item.get("mode"), mode)
        )
    return files


def _secret_bytes(found: Object) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (found.get("data") or {}).items()}


def _configmap_bytes(found: Object) -> dict[str, bytes]:
    data = {k: str(v).encode() for k, v in (found.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (found.get("binaryData") or {}).items()})
    return data


def check_host_path(path: Path, kind: str) -> None:
    """Upstream's hostPath type checks; ``*OrCreate`` creates what is missing.

    Without a type nothing is checked, and a missing path becomes a
    directory, as containerd does for a bind mount's source.
    """
    if kind in ("", "DirectoryOrCreate") and not path.exists():
        path.mkdir(parents=True, mode=0o755)
    elif kind == "FileOrCreate" and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o644)
    checks = {
        "Directory": (stat.S_ISDIR, "directory"),
        "DirectoryOrCreate": (stat.S_ISDIR, "directory"),
        "File": (stat.S_ISREG, "file"),
        "FileOrCreate": (stat.S_ISREG, "file"),
        "Socket": (stat.S_ISSOCK, "socket"),
        "CharDevice": (stat.S_ISCHR, "character device"),
        "BlockDevice": (stat.S_ISBLK, "block device"),
    }
    if kind not in checks:
        return  # "" (no checks)
    test, noun = checks[kind]
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ValueError(f"hostPath type check failed: {path} is not a {noun}") from None
    if not test(mode):
        raise ValueError(f"hostPath type check failed: {path} is not a {noun}")


class VolumeManager:
    """Sets up and refreshes pods' volumes through an ``ObjectSource``."""

    def __init__(
        self,
        source: ObjectSource,
        *,
        resync_seconds: float = DEFAULT_RESYNC_SECONDS,
        clock: Any = time.time,
        pod_ip: Callable[[str], str] | None = None,
    ) -> None:
        self.source = source
        # The runtime's own record of the pod's address (its sandbox), which the
        # pod object may not show yet when the first container starts.
        self.pod_ip = pod_ip
        self.resync_seconds = resync_seconds
        self.clock = clock
        self._pods: dict[str, _PodVolumes] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._resyncer: asyncio.Task[None] | None = None
        # Orders trust anchors in clusterTrustBundle files: fixed for this kubelet only.
        self.trust_anchor_seed = random.randrange(1 << 63)

    # ----- what the runtime calls ----------------------------------------------

    async def container_config(
        self, pod: Object, container: Object, pod_dir: Path
    ) -> ContainerConfig:
        """Set up the pod's volumes if needed; the container's env and mounts.

        Raises ``VolumeError`` (ContainerCreating) or ``ContainerConfigError``
        (CreateContainerConfigError); either is also reported as an event.
        """
        pod = self._with_ip(pod)
        try:
            volumes = await self.setup(pod, pod_dir)
            builder = env.EnvBuilder(self.source, pod, allocatable=await self._allocatable(pod))
            services = await builder.service_env()
            pairs = await builder.build(container, services)
        except VolumeError as exc:
            await self.source.event(pod, "Warning", "FailedMount", str(exc))
            raise
        except ContainerConfigError as exc:
            await self.source.event(pod, "Warning", "Failed", f"Error: {exc}")
            raise
        for skipped in builder.skipped:
            await self.source.event(
                pod, "Warning", "InvalidEnvironmentVariableNames", skipped.message()
            )
        return ContainerConfig(pairs, self.mounts(volumes, container, dict(pairs)))

    def adopt(self, pod: Object, pod_dir: Path) -> None:
        """Take over the API-backed volumes an earlier kubelet set up (they are resynced again)."""
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        volumes = self._pods.setdefault(uid, _PodVolumes(pod, pod_dir / "volumes"))
        for volume in (pod.get("spec") or {}).get("volumes") or ():
            kind = _kind(volume)
            target = volumes.directory / PLUGINS.get(kind, "-") / volume.get("name", "")
            if kind in API_BACKED and is_mount_point(target):
                volumes.paths[volume["name"]] = target
                volumes.read_only.add(volume["name"])
        with contextlib.suppress(RuntimeError):  # no running loop: the first setup starts it
            self._ensure_resyncer()

    def _with_ip(self, pod: Object) -> Object:
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        ip = self.pod_ip(uid) if self.pod_ip is not None else ""
        status = pod.get("status") or {}
        if not ip or status.get("podIP") == ip:
            return pod
        return {**pod, "status": {**status, "podIP": ip, "podIPs": [{"ip": ip}]}}

    async def setup(self, pod: Object, pod_dir: Path) -> _PodVolumes:
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        lock = self._locks.setdefault(uid, asyncio.Lock())
        async with lock:
            volumes = self._pods.get(uid)
            if volumes is None:
                volumes = _PodVolumes(pod, pod_dir / "volumes")
            volumes.pod = pod
            for volume in (pod.get("spec") or {}).get("volumes") or ():
                if volume.get("name") not in volumes.paths:
                    await self._setup_volume(volumes, volume)
            self._pods[uid] = volumes
        self._ensure_resyncer()
        return volumes

    def mounts(
        self, volumes: _PodVolumes, container: Object, environment: dict[str, str]
    ) -> list[Object]:
        """OCI bind mounts for the container's ``volumeMounts``."""
        found = []
        for mount in container.get("volumeMounts") or ():
            name = mount.get("name", "")
            root = volumes.paths.get(name)
            if root is None:
                raise ContainerConfigError(f"cannot find volume {name!r} to mount into container")
            source = root
            sub = mount.get("subPath") or ""
            if mount.get("subPathExpr"):
                sub = env.expand(mount["subPathExpr"], environment.get)
            if sub:
                source = self._sub_path(root, sub, create=name not in volumes.read_only)
            read_only = bool(mount.get("readOnly")) or name in volumes.read_only
            found.append(
                {
                    "destination": mount.get("mountPath", ""),
                    "type": "bind",
                    "source": str(source),
                    "options": ["rbind", "rprivate", "ro" if read_only else "rw"],
                }
            )
        return found

    @staticmethod
    def _sub_path(root: Path, sub: str, *, create: bool) -> Path:
        """The real path of ``sub`` in ``root``; it may not lead out of the volume."""
        try:
            atomic_writer.validate_path(sub)
        except ValueError as exc:
            raise ContainerConfigError(f"invalid subPath {sub!r}: {exc}") from None
        candidate = root / sub
        if create and not candidate.exists() and not candidate.is_symlink():
            candidate.mkdir(parents=True, mode=0o755)
        real = Path(os.path.realpath(candidate))
        base = os.path.realpath(root)
        if real != Path(base) and not str(real).startswith(base + "/"):
            raise ContainerConfigError(f"subpath {sub!r} not within volume path {root}")
        return real

    async def resync(self) -> None:
        """Rewrite every pod's API-backed volumes; forget pods whose directory is gone."""
        for uid, volumes in list(self._pods.items()):
            if not volumes.directory.parent.exists():
                self._pods.pop(uid, None)
                self._locks.pop(uid, None)
                continue
            for volume in (volumes.pod.get("spec") or {}).get("volumes") or ():
                if volume.get("name") in volumes.paths and _kind(volume) in API_BACKED:
                    try:
                        await self._write_api_volume(volumes, volume)
                    except (VolumeError, OSError) as exc:
                        log.info("pod %s: volume %s not refreshed: %s", uid, volume["name"], exc)

    async def aclose(self) -> None:
        if self._resyncer is not None:
            self._resyncer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resyncer
            self._resyncer = None

    def _ensure_resyncer(self) -> None:
        if self._resyncer is None or self._resyncer.done():
            self._resyncer = asyncio.ensure_future(self._resync_loop())

    async def _resync_loop(self) -> None:
        while self._pods:
            await asyncio.sleep(self.resync_seconds)
            try:
                await self.resync()
            except Exception:
                log.exception("volume resync failed")

    # ----- setting volumes up --------------------------------------------------

    async def _allocatable(self, pod: Object) -> Object | None:
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            return None
        node = await self.source.get_node(node_name)
        return ((node or {}).get("status") or {}).get("allocatable")

    async def _setup_volume(self, volumes: _PodVolumes, volume: Object) -> None:
        name = volume.get("name", "")
        kind = _kind(volume)
        if kind in API_BACKED:
            target = volumes.directory / PLUGINS[kind] / name
            if not is_mount_point(target):
                mount_tmpfs(target)
            await self._write_api_volume(volumes, volume)
            volumes.read_only.add(name)
            volumes.paths[name] = target
        elif kind == "emptyDir":
            volumes.paths[name] = self._empty_dir(volumes, name, volume["emptyDir"] or {})
        elif kind == "hostPath":
            path = Path(volume["hostPath"].get("path", ""))
            try:
                check_host_path(path, volume["hostPath"].get("type") or "")
            except (ValueError, OSError) as exc:
                raise VolumeError(name, str(exc)) from None
            volumes.paths[name] = path
        elif kind == "persistentVolumeClaim":
            volumes.paths[name] = await self._claim(volumes.pod, name, volume[kind])
        else:
            raise VolumeError(name, f"volume type {kind} is not supported by this kubelet")

    def _empty_dir(self, volumes: _PodVolumes, name: str, source: Object) -> Path:
        target = volumes.directory / PLUGINS["emptyDir"] / name
        if source.get("medium") == "Memory":
            if not is_mount_point(target):
                limit = source.get("sizeLimit")
                size = quantity.parse_quantity(str(limit)).value() if limit else None
                mount_tmpfs(target, size=size)
        else:
            target.mkdir(parents=True, exist_ok=True)
        os.chmod(target, 0o777)  # upstream: emptyDir is world-writable
        return target

    async def _claim(self, pod: Object, name: str, source: Object) -> Path:
        namespace = _namespace(pod)
        claim_name = source.get("claimName", "")
        claim = await self.source.get_pvc(namespace, claim_name)
        if claim is None:
            raise VolumeError(name, f'persistentvolumeclaim "{claim_name}" not found')
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if not volume_name or (claim.get("status") or {}).get("phase") != "Bound":
            raise VolumeError(name, f'persistentvolumeclaim "{claim_name}" is not bound')
        pv = await self.source.get_pv(volume_name)
        if pv is None:
            raise VolumeError(name, f'persistentvolume "{volume_name}" not found')
        spec = pv.get("spec") or {}
        if "hostPath" in spec:
            path = Path(spec["hostPath"].get("path", ""))
            try:
                check_host_path(path, spec["hostPath"].get("type") or "DirectoryOrCreate")
            except (ValueError, OSError) as exc:
                raise VolumeError(name, str(exc)) from None
            return path
        if "local" in spec:
            path = Path(spec["local"].get("path", ""))
            if not path.is_dir():
                raise VolumeError(name, f"path {path} does not exist")
            return path
        raise VolumeError(name, f"persistentvolume {volume_name} is not a hostPath or local volume")

    async def _write_api_volume(self, volumes: _PodVolumes, volume: Object) -> None:
        name = volume["name"]
        kind = _kind(volume)
        payload = await self._payload(volumes, name, kind, volume[kind] or {})
        target = volumes.directory / PLUGINS[kind] / name
        if not is_mount_point(target):
            return  # the pod was removed while we fetched: do not create its directory again
        try:
            atomic_writer.write(target, payload)
        except ValueError as exc:
            raise VolumeError(name, str(exc)) from None

    async def _payload(
        self, volumes: _PodVolumes, name: str, kind: str, source: Object
    ) -> dict[str, atomic_writer.FileProjection]:
        pod = volumes.pod
        mode = _mode(source.get("defaultMode"), DEFAULT_MODE)
        if kind == "secret":
            return await self._secret(pod, name, source, mode, source.get("secretName", ""))
        if kind == "configMap":
            return await self._configmap(pod, name, source, mode)
        if kind == "downwardAPI":
            return self._downward(pod, name, source, mode)
        files: dict[str, atomic_writer.FileProjection] = {}
        for index, projection in enumerate(source.get("sources") or ()):
            if "secret" in projection:
                part = projection["secret"]
                files.update(await self._secret(pod, name, part, mode, part.get("name", "")))
            elif "configMap" in projection:
                files.update(await self._configmap(pod, name, projection["configMap"], mode))
            elif "downwardAPI" in projection:
                files.update(self._downward(pod, name, projection["downwardAPI"], mode))
            elif "serviceAccountToken" in projection:
                part = projection["serviceAccountToken"]
                token = await self._token(volumes, name, index, part)
                files[part.get("path", "token")] = atomic_writer.FileProjection(
                    token.encode(), mode
                )
            elif "clusterTrustBundle" in projection:
                part = projection["clusterTrustBundle"] or {}
                pem = await trust_bundles.trust_anchors(
                    self.source, name, part, self.trust_anchor_seed
                )
                # Upstream writes the file with the volume's defaultMode, even when empty.
                files[part.get("path", "")] = atomic_writer.FileProjection(pem, mode)
        return files

    async def _secret(
        self, pod: Object, name: str, source: Object, mode: int, secret_name: str
    ) -> dict[str, atomic_writer.FileProjection]:
        found = await self.source.get_secret(_namespace(pod), secret_name)
        return _keyed_files(name, source, mode, "secret", secret_name, found, _secret_bytes)

    async def _configmap(
        self, pod: Object, name: str, source: Object, mode: int
    ) -> dict[str, atomic_writer.FileProjection]:
        cm_name = source.get("name", "")
        found = await self.source.get_configmap(_namespace(pod), cm_name)
        return _keyed_files(name, source, mode, "configmap", cm_name, found, _configmap_bytes)

    @staticmethod
    def _downward(
        pod: Object, name: str, source: Object, mode: int
    ) -> dict[str, atomic_writer.FileProjection]:
        files = {}
        for item in source.get("items") or ():
            try:
                if "fieldRef" in item:
                    value = downward.field_value(pod, item["fieldRef"].get("fieldPath", ""))
                else:
                    ref = item.get("resourceFieldRef") or {}
                    container = downward.container_named(pod, ref.get("containerName", ""))
                    if container is None:
                        raise ValueError(f"cannot find container {ref.get('containerName')!r}")
                    value = downward.resource_value(ref, container)
            except ValueError as exc:
                raise VolumeError(name, str(exc)) from None
            files[item.get("path", "")] = atomic_writer.FileProjection(
                value.encode(), _mode(item.get("mode"), mode)
            )
        return files

    async def _token(self, volumes: _PodVolumes, name: str, index: int, part: Object) -> str:
        """A cached token, asked for again once 80% of its lifetime has passed."""
        now = self.clock()
        cached = volumes.tokens.get((name, index))
        if cached is not None:
            token, issued = cached
            if now < issued + TOKEN_REFRESH_FRACTION * (token.expires_at - issued):
                return token.token
        pod = volumes.pod
        spec = pod.get("spec") or {}
        audience = part.get("audience")
        try:
            token = await self.source.create_token(
                _namespace(pod),
                spec.get("serviceAccountName") or "default",
                audiences=[audience] if audience else [],
                expiration_seconds=int(part.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS),
                pod=pod,
            )
        except Exception as exc:
            if cached is not None and cached[0].expires_at > now:
                return cached[0].token  # keep the old one while it is valid
            raise VolumeError(name, f"failed to fetch token: {exc}") from None
        volumes.tokens[(name, index)] = (token, now)
        return token.token


def _kind(volume: Object) -> str:
    for key in volume:
        if key != "name":
            return key
    return ""


def _namespace(pod: Object) -> str:
    return (pod.get("metadata") or {}).get("namespace") or "default"


def _keyed_files(
    volume: str,
    source: Object,
    mode: int,
    kind: str,
    object_name: str,
    found: Object | None,
    to_bytes: Callable[[Object], dict[str, bytes]],
) -> dict[str, atomic_writer.FileProjection]:
    """A Secret's or ConfigMap's files; nothing when it (or a key) is missing but optional."""
    if found is None:
        if source.get("optional"):
            return {}
        raise VolumeError(volume, f'{kind} "{object_name}" not found')
    try:
        return _items(to_bytes(found), source.get("items"), mode, kind)
    except KeyError as exc:
        if source.get("optional"):
            return {}
        raise VolumeError(volume, str(exc.args[0])) from None
