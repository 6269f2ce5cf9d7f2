"""What the oci runtime needs from an image store: a rootfs and an image config.

The image store (pulls, layers, credentials) lives elsewhere; the runtime
only asks an ``ImageProvider`` for the unpacked root filesystem of an image
and its config, and overlays a writable layer per container on top. The
rootfs is shared by every container of that image and must never be
written to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

Object = dict[str, Any]


class ImagePullError(Exception):
    """The image could not be made available; the container waits with ``reason``.

    ``reason`` is the waiting reason (``ErrImagePull``, ``ImagePullBackOff``,
    ``ErrImageNeverPull``, ``InvalidImageName``); empty when the provider
    keeps no back-off of its own, and the runtime then says ``ErrImagePull``
    for the first failure and ``ImagePullBackOff`` after. ``retry_after``
    (seconds) is when to try again; ``None`` lets the runtime's back-off decide.
    """

    def __init__(self, message: str, *, reason: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after


class ImageProvider(Protocol):
    async def ensure(
        self, image: str, pull_policy: str, pod: Object, *, field_path: str = ""
    ) -> tuple[Path, Object]:
        """The image's unpacked rootfs and its config blob, pulling it per ``pull_policy``.

        ``pod`` is there for credentials (imagePullSecrets, service account);
        ``field_path`` is the container's, for the pull events' fieldPath.
        Raises ``ImagePullError`` with upstream's message when it cannot.
        """
        ...
