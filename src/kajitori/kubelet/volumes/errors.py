"""Why a container cannot be started yet, with the waiting reason upstream shows."""

from __future__ import annotations


class PodConfigError(Exception):
    """Base: ``reason`` is the container's waiting reason, ``str(self)`` its message."""

    reason = "CreateContainerConfigError"


class ContainerConfigError(PodConfigError):
    """A missing Secret, ConfigMap or key for the environment (CreateContainerConfigError)."""


class VolumeError(PodConfigError):
    """A volume that cannot be set up yet: the pod stays in ContainerCreating (FailedMount)."""

    reason = "ContainerCreating"

    def __init__(self, volume: str, message: str) -> None:
        super().__init__(f'MountVolume.SetUp failed for volume "{volume}" : {message}')
        self.volume = volume
