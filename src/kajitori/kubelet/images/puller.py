"""The kubelet's image manager: pull policy, pulls, back-off, events, image facts.

Upstream: pkg/kubelet/images/image_manager.go (``EnsureImageExists``) and
pkg/kubelet/kuberuntime/kuberuntime_image.go (``PullImage``: credentials tried
in order), with containerd's pull (resolve, fetch, unpack) done here by
``registry`` and ``store``.

``ensure_image(image, pull_policy, credentials)`` decides as upstream:

- an image that does not parse: ``InvalidImageName``, ``Failed to apply
  default image tag "<image>": couldn't parse image name "<image>": ...``;
- ``Never`` without the image: ``ErrImageNeverPull``, ``Container image
  "<image>" is not present with pull policy of Never``;
- ``IfNotPresent`` (or ``Never``) with the image: event ``Pulled``,
  ``Container image "<image>" already present on machine``;
- otherwise pull, unless the (pod, image) pair is backing off: then
  ``ImagePullBackOff``, ``Back-off pulling image "<image>"``, to which the
  status message adds the last failure (``: ErrImagePull: <message>``, as
  kubelet does since 1.32). A failed pull is ``ErrImagePull`` with containerd's
  message, and starts or doubles the back-off (10 s, then up to 300 s).

Concurrent pulls of one image with the same credentials share one pull. The
events go to ``recorder(type, reason, message)``, which the kubelet turns into
Events through the API.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from kajitori.kubelet.images import credentials as creds
from kajitori.kubelet.images import manifest, registry, store, unpack
from kajitori.kubelet.images import reference as references

PullPolicy = Literal["Always", "IfNotPresent", "Never"]
ERR_IMAGE_PULL = "ErrImagePull"
ERR_IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"
ERR_INVALID_IMAGE_NAME = "InvalidImageName"
INITIAL_BACK_OFF = 10.0  # kubelet's backOffPeriod
MAX_BACK_OFF = 300.0  # kubelet's MaxImageBackOff


class EventRecorder(Protocol):
    """Called with ("Normal"|"Warning", reason, message) for each event kubelet would record."""

    def __call__(self, event_type: str, reason: str, message: str, /) -> None: ...


class PullError(Exception):
    """Why a container's image is not there: ``reason`` is the waiting reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclasses.dataclass(frozen=True, slots=True)
class ImageConfig:
    """What a container runtime takes from the image config (its ``config`` object)."""

    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    stop_signal: str = ""
    labels: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> ImageConfig:
        config = document.get("config") or {}
        return cls(
            env=tuple(config.get("Env") or ()),
            entrypoint=tuple(config.get("Entrypoint") or ()),
            cmd=tuple(config.get("Cmd") or ()),
            working_dir=config.get("WorkingDir") or "",
            user=config.get("User") or "",
            stop_signal=config.get("StopSignal") or "",
            labels=dict(config.get("Labels") or {}),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class ImageInfo:
    """A present image: where its rootfs is and how to run it."""

    reference: str  # normalised: docker.io/library/busybox:latest
    image_id: str  # the config digest (containerd's image id)
    repo_digest: str  # docker.io/library/busybox@sha256:<manifest digest>
    rootfs: Path  # read-only to containers: each gets an overlay on top
    config: ImageConfig
    size: int


class Backoff:
    """client-go's flowcontrol.Backoff: per-key exponential delays on an injectable clock."""

    def __init__(
        self,
        initial: float = INITIAL_BACK_OFF,
        maximum: float = MAX_BACK_OFF,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.initial, self.maximum, self.clock = initial, maximum, clock
        self._entries: dict[str, tuple[float, float]] = {}  # key → (delay, last update)

    def next(self, key: str) -> None:
        """Record a failure now: the first (or after a long quiet) waits ``initial``, then x2."""
        now = self.clock()
        delay, last = self._entries.get(key, (0.0, 0.0))
        if key not in self._entries or now - last > 2 * self.maximum:
            delay = self.initial
        else:
            delay = min(delay * 2, self.maximum)
        self._entries[key] = (delay, now)

    def in_back_off_since_update(self, key: str) -> bool:
        entry = self._entries.get(key)
        return entry is not None and self.clock() - entry[1] < entry[0]

    def gc(self) -> None:
        now = self.clock()
        for key in [k for k, (_, last) in self._entries.items() if now - last > 2 * self.maximum]:
            del self._entries[key]


class ImageManager:
    """Pulls and keeps images for every pod of one node."""

    def __init__(
        self,
        image_store: store.ImageStore,
        client: registry.RegistryClient,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = image_store
        self.client = client
        self.backoff = backoff or Backoff(clock=clock)
        self._clock = clock
        self._in_flight: dict[tuple[str, tuple[creds.AuthConfig, ...]], asyncio.Task[Any]] = {}
        self._last_error: dict[str, str] = {}

    async def ensure_image(
        self,
        image: str,
        pull_policy: PullPolicy = "IfNotPresent",
        credentials: creds.DockerKeyring | Sequence[creds.AuthConfig] = (),
        *,
        pod_uid: str = "",
        recorder: EventRecorder | None = None,
    ) -> ImageInfo:
        """The image ``image`` names, pulling it as ``pull_policy`` says; raises ``PullError``."""
        record = recorder if recorder is not None else _discard
        try:
            ref = references.parse(image)
        except references.InvalidReference as exc:
            message = (
                f'Failed to apply default image tag "{image}": '
                f'couldn\'t parse image name "{image}": {exc}'
            )
            record("Warning", "InspectFailed", message)
            raise PullError(ERR_INVALID_IMAGE_NAME, message) from exc
        present = await asyncio.to_thread(self.store.lookup, str(ref))
        if present is not None and pull_policy != "Always":
            record("Normal", "Pulled", f'Container image "{image}" already present on machine')
            return await self._info(ref, present)
        if pull_policy == "Never":
            message = f'Container image "{image}" is not present with pull policy of Never'
            record("Warning", ERR_IMAGE_NEVER_PULL, message)
            raise PullError(ERR_IMAGE_NEVER_PULL, message)
        auths = _candidates(credentials, ref)
        return await self._pull_with_back_off(image, ref, auths, pod_uid, record)

    async def gc(self, in_use: set[str], *, bytes_to_free: int | None = None) -> store.GCResult:
        """Remove unused images (references or image ids in ``in_use`` stay)."""
        return await asyncio.to_thread(self.store.gc, in_use, bytes_to_free=bytes_to_free)

    async def _pull_with_back_off(
        self,
        image: str,
        ref: references.Reference,
        auths: list[creds.AuthConfig],
        pod_uid: str,
        record: EventRecorder,
    ) -> ImageInfo:
        key = f"{pod_uid}_{image}"
        if self.backoff.in_back_off_since_update(key):
            message = f'Back-off pulling image "{image}"'
            record("Normal", "BackOff", message)
            if key in self._last_error:
                message = f"{message}: {self._last_error[key]}"
            raise PullError(ERR_IMAGE_PULL_BACK_OFF, message)
        self._last_error.pop(key, None)
        record("Normal", "Pulling", f'Pulling image "{image}"')
        started = self._clock()
        try:
            found, pull_seconds = await self._shared_pull(ref, auths)
        except PullError as exc:
            record("Warning", "Failed", f'Failed to pull image "{image}": {exc.message}')
            self.backoff.next(key)
            self._last_error[key] = f"{exc.reason}: {exc.message}"
            raise
        waited = self._clock() - started
        record(
            "Normal",
            "Pulled",
            f'Successfully pulled image "{image}" in {go_duration(pull_seconds)} '
            f"({go_duration(waited)} including waiting). Image size: {found.size} bytes.",
        )
        self.backoff.gc()
        return await self._info(ref, found)

    async def _shared_pull(
        self, ref: references.Reference, auths: list[creds.AuthConfig]
    ) -> tuple[store.ImageRecord, float]:
        """One pull per (image, credentials) at a time; later callers wait for it."""
        key = (str(ref), tuple(auths))
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._pull(ref, auths))
            self._in_flight[key] = task
            task.add_done_callback(lambda _: self._in_flight.pop(key, None))
        result: tuple[store.ImageRecord, float] = await asyncio.shield(task)
        return result

    async def _pull(
        self, ref: references.Reference, auths: list[creds.AuthConfig]
    ) -> tuple[store.ImageRecord, float]:
        """Try each credential in order (anonymous when none); aggregate the failures."""
        started = self._clock()
        errors: list[str] = []
        anonymous: list[creds.AuthConfig | None] = [None]
        for auth in auths or anonymous:
            try:
                found = await self._pull_once(ref, auth)
            except PullError as exc:
                if exc.message not in errors:
                    errors.append(exc.message)
                continue
            return found, self._clock() - started
        message = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        raise PullError(ERR_IMAGE_PULL, message)

    async def _pull_once(
        self, ref: references.Reference, auth: creds.AuthConfig | None
    ) -> store.ImageRecord:
        prefix = f'failed to pull and unpack image "{ref}"'
        session = self.client.session(ref, auth)
        try:
            resolved = await session.resolve()
        except registry.RegistryError as exc:
            raise PullError(
                ERR_IMAGE_PULL, f'{prefix}: failed to resolve reference "{ref}": {exc}'
            ) from exc
        try:
            await self._fetch(session, resolved)
            await asyncio.to_thread(self.store.unpack, resolved.manifest_digest)
        except registry.RegistryError as exc:
            raise PullError(ERR_IMAGE_PULL, f"{prefix}: failed to copy: {exc}") from exc
        except store.DigestMismatch as exc:
            raise PullError(
                ERR_IMAGE_PULL, f"{prefix}: failed to copy: {exc}: failed precondition"
            ) from exc
        except (unpack.UnpackError, manifest.ManifestError) as exc:
            raise PullError(ERR_IMAGE_PULL, f"{prefix}: {exc}") from exc
        except OSError as exc:  # the node's disk: full, read-only, permissions
            raise PullError(ERR_IMAGE_PULL, f"{prefix}: {exc}") from exc
        return await asyncio.to_thread(
            self.store.record,
            str(ref),
            resolved.manifest_digest,
            index_digest=resolved.index_digest,
        )

    async def _fetch(
        self, session: registry.RepositorySession, resolved: registry.Resolved
    ) -> None:
        """Fetch config and layers the store lacks, then keep the manifest (and index)."""
        document = resolved.manifest
        for descriptor in [document["config"], *document["layers"]]:
            digest = descriptor["digest"]
            if self.store.has_blob(digest):
                continue
            size = descriptor.get("size")
            await session.fetch_blob(
                descriptor,
                lambda d=digest, s=size: self.store.blob_writer(d, s),  # type: ignore[misc]
            )
        self.store.put_blob(resolved.manifest_bytes)
        if resolved.index_bytes is not None:
            self.store.put_blob(resolved.index_bytes)

    async def _info(self, ref: references.Reference, found: store.ImageRecord) -> ImageInfo:
        config = await asyncio.to_thread(self.store.read_json, found.image_id)
        await asyncio.to_thread(self.store.touch, found.image_id)
        return ImageInfo(
            reference=str(ref),
            image_id=found.image_id,
            repo_digest=ref.with_digest(found.manifest_digest),
            rootfs=found.rootfs,
            config=ImageConfig.from_document(config),
            size=found.size,
        )


def default_pull_policy(image: str) -> PullPolicy:
    """The API's default: Always for ``:latest`` or no tag, IfNotPresent otherwise."""
    try:
        ref = references.parse(image)
    except references.InvalidReference:
        return "IfNotPresent"
    return "Always" if ref.digest is None and ref.tag == "latest" else "IfNotPresent"


def go_duration(seconds: float) -> str:
    """Go's Duration.String() after Truncate(time.Millisecond): ``1.234s``, ``512ms``, ``1m2s``."""
    millis = int(seconds * 1000)
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    minutes, millis = divmod(millis, 60_000)
    hours, minutes = divmod(minutes, 60)
    secs = f"{millis // 1000}.{millis % 1000:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{secs}"
    return f"{minutes}m{secs}" if minutes else secs


def _candidates(
    credentials: creds.DockerKeyring | Sequence[creds.AuthConfig], ref: references.Reference
) -> list[creds.AuthConfig]:
    if isinstance(credentials, creds.DockerKeyring):
        return credentials.lookup(ref.name)
    return list(credentials)


def _discard(event_type: str, reason: str, message: str, /) -> None:
    del event_type, reason, message
