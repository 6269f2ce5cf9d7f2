"""The oci runtime's real ``ImageProvider``: images from registries through ``kubelet.images``.

What upstream's kuberuntime does before it creates a container
(kuberuntime_container.go ``startContainer`` → image_manager.go
``EnsureImageExists``), over our ``ImageManager``:

1. credentials: the pod's ``spec.imagePullSecrets`` (the ServiceAccount
   admission plugin has already appended its account's), each read through
   the kubelet (``KubeletHooks.get_secret``, as the pod's node: the Node
   authorizer lets it read exactly these), into one keyring; a Secret that
   is missing is skipped, as upstream's ``getPullSecretsForPod`` does;
2. ``ensure_image`` with the container's ``imagePullPolicy``; its events
   (Pulling, Pulled, Failed, BackOff, ErrImageNeverPull) go to the kubelet's
   recorder about the pod, and a failure adds upstream's ``Failed`` event
   ``Error: <reason>``;
3. a ``PullError`` becomes ``ImagePullError`` with the manager's reason and
   message, retried after ``resync`` seconds (upstream's pod worker retries a
   failed sync after 10 s; the manager's own back-off then answers
   ``ImagePullBackOff`` until it expires);
4. the image's rootfs and its config (Entrypoint, Cmd, Env, WorkingDir,
   User), which spec.py applies as upstream (command replaces Entrypoint,
   args replace Cmd).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kajitori.kubelet.images import credentials, puller
from kajitori.kubelet.runtimes import interface
from kajitori.kubelet.runtimes.oci import images

Object = dict[str, Any]

RESYNC_SECONDS = 10.0  # upstream's pod worker back-off period after a failed sync


class StoreImages:
    """``ImageProvider`` over an ``ImageManager``; the kubelet's hooks come later."""

    def __init__(self, manager: puller.ImageManager, *, resync: float = RESYNC_SECONDS) -> None:
        self.manager = manager
        self.resync = resync
        self.hooks: interface.KubeletHooks | None = None

    def set_kubelet_hooks(self, hooks: interface.KubeletHooks) -> None:
        self.hooks = hooks

    async def ensure(
        self, image: str, pull_policy: str, pod: Object, *, field_path: str = ""
    ) -> tuple[Path, Object]:
        keyring = await self._keyring(pod)
        uid = str((pod.get("metadata") or {}).get("uid") or "")

        def record(event_type: str, reason: str, message: str, /) -> None:
            if self.hooks is not None:
                self.hooks.record_event(pod, event_type, reason, message, field_path=field_path)

        policy = pull_policy if pull_policy in ("Always", "IfNotPresent", "Never") else None
        try:
            info = await self.manager.ensure_image(
                image,
                policy or puller.default_pull_policy(image),  # type: ignore[arg-type]
                keyring,
                pod_uid=uid,
                recorder=record,
            )
        except puller.PullError as exc:
            record("Warning", "Failed", f"Error: {exc.reason}")
            raise images.ImagePullError(
                exc.message, reason=exc.reason, retry_after=self.resync
            ) from exc
        return info.rootfs, config_blob(info.config)

    async def _keyring(self, pod: Object) -> credentials.DockerKeyring:
        names = credentials.image_pull_secret_names(pod)
        if not names or self.hooks is None:
            return credentials.DockerKeyring()
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
        secrets = []
        for name in names:
            secret = await self.hooks.get_secret(node, namespace, name)
            if secret is not None:
                secrets.append(secret)
        return credentials.keyring_from_secrets(secrets)


def config_blob(config: puller.ImageConfig) -> Object:
    """The image config as the ``config`` part of a config blob (what spec.ImageConfig reads)."""
    return {
        "config": {
            "Entrypoint": list(config.entrypoint),
            "Cmd": list(config.cmd),
            "Env": list(config.env),
            "WorkingDir": config.working_dir,
            "User": config.user,
        }
    }
