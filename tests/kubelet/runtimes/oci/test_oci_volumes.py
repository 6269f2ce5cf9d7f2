"""Volumes and environment in real containers: secrets as env and files, updates, emptyDir, errors."""

from __future__ import annotations

import pytest
from tests.kubelet.runtimes.oci.helpers import REASON, Harness, make_pod, sh, wait_for
from tests.kubelet.volumes.fakes import DictSource, secret

pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

KEEP_RUNNING = "while true; do sleep 0.05; done"


def source(**secrets: dict[str, str]) -> DictSource:
    return DictSource(
        {("Secret", "default", name): secret(name, data) for name, data in secrets.items()}
    )


async def exec_out(oci: Harness, uid: str, container: str, script: str) -> str:
    code, out, err = await oci.runtime.exec(uid, container, ["sh", "-c", script])
    assert code == 0, err
    return out.decode()


async def test_a_secret_as_env_and_files_and_its_update_reaches_the_running_pod(
    oci: Harness,
) -> None:
    """env from secretKeyRef, files under mountPath (read-only), then the ..data swap on resync."""
    objects = source(db={"password": "one", "user": "admin"})
    oci.runtime.set_object_source(objects)
    container = sh(
        "c",
        KEEP_RUNNING,
        env=[
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "DSN", "value": "u:$(PW)"},
        ],
        volumeMounts=[
            {"name": "creds", "mountPath": "/etc/creds"},
            {"name": "creds", "mountPath": "/etc/pw", "subPath": "password"},
        ],
    )
    pod = make_pod(
        [container],
        volumes=[{"name": "creds", "secret": {"secretName": "db", "defaultMode": 0o400}}],
    )
    uid = oci.start(pod)
    try:
        await oci.wait_state(uid, "c", "running")
        got = await exec_out(oci, uid, "c", "echo $PW $DSN; ls /etc/creds; cat /etc/creds/password")
        assert got.split() == ["one", "u:one", "password", "user", "one"]
        mode = await exec_out(oci, uid, "c", "stat -L -c %a /etc/creds/password")
        assert mode.strip() == "400"
        code, _, err = await oci.runtime.exec(uid, "c", ["sh", "-c", "echo x > /etc/creds/new"])
        assert code != 0 and b"Read-only file system" in err

        objects.objects[("Secret", "default", "db")] = secret("db", {"password": "two"})
        await oci.runtime.volumes.resync()
        got = await exec_out(
            oci, uid, "c", "ls /etc/creds; cat /etc/creds/password; echo; cat /etc/pw"
        )
        assert got.split() == ["password", "two", "one"]  # the subPath mount keeps its file
    finally:
        await oci.runtime.volumes.aclose()


async def test_two_containers_share_an_empty_dir(oci: Harness) -> None:
    oci.runtime.set_object_source(source())
    mount = [{"name": "scratch", "mountPath": "/scratch"}]
    writer = sh("writer", "echo hello > /scratch/msg; " + KEEP_RUNNING, volumeMounts=mount)
    reader = sh("reader", KEEP_RUNNING, volumeMounts=mount)
    memory = {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}
    reader["volumeMounts"] = [*mount, {"name": "mem", "mountPath": "/mem"}]
    uid = oci.start(
        make_pod([writer, reader], volumes=[{"name": "scratch", "emptyDir": {}}, memory])
    )
    try:
        await oci.wait_state(uid, "reader", "running")

        async def message() -> str:
            code, out, _ = await oci.runtime.exec(uid, "reader", ["cat", "/scratch/msg"])
            return out.decode() if code == 0 else ""

        found = ""
        for _ in range(200):
            found = await message()
            if found:
                break
        assert found == "hello\n"
        df = await exec_out(oci, uid, "reader", "grep ' /mem ' /proc/mounts")
        assert df.startswith("tmpfs /mem tmpfs") and "size=1024k" in df
    finally:
        await oci.runtime.volumes.aclose()


async def test_a_missing_key_is_create_container_config_error_and_a_missing_secret_waits(
    oci: Harness,
) -> None:
    objects = source(db={"user": "admin"})
    oci.runtime.set_object_source(objects)
    env = [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]
    uid = oci.start(make_pod([sh("c", "true", env=env)]))
    other = oci.start(
        make_pod(
            [sh("c", "true", volumeMounts=[{"name": "v", "mountPath": "/v"}])],
            name="vol",
            volumes=[{"name": "v", "secret": {"secretName": "absent"}}],
        )
    )
    try:
        waiting = await wait_for(
            lambda: (
                oci.container(uid, "c").reason == "CreateContainerConfigError"
                and oci.container(uid, "c")
            ),
            what="CreateContainerConfigError",
        )
        assert waiting.message == "couldn't find key password in Secret default/db"
        mounting = await wait_for(
            lambda: (
                "MountVolume" in oci.container(other, "c").message and oci.container(other, "c")
            ),
            what="FailedMount",
        )
        assert mounting.reason == "ContainerCreating"
        assert mounting.message == (
            'MountVolume.SetUp failed for volume "v" : secret "absent" not found'
        )
        assert ("Warning", "FailedMount", mounting.message) in objects.events

        objects.objects[("Secret", "default", "db")] = secret("db", {"password": "late"})
        done = await oci.wait_state(uid, "c", "terminated")
        assert done.termination is not None and done.termination.exit_code == 0
    finally:
        await oci.runtime.volumes.aclose()


async def test_a_new_runtime_keeps_updating_the_volumes_of_running_pods(oci: Harness) -> None:
    objects = source(db={"password": "one"})
    oci.runtime.set_object_source(objects)
    mounts = [{"name": "creds", "mountPath": "/etc/creds"}]
    volumes = [{"name": "creds", "secret": {"secretName": "db"}}]
    uid = oci.start(make_pod([sh("c", KEEP_RUNNING, volumeMounts=mounts)], volumes=volumes))
    await oci.wait_state(uid, "c", "running")
    await oci.runtime.volumes.aclose()
    await oci.runtime.aclose()
    oci.runtime = oci.new_runtime()
    oci.runtime.set_object_source(objects)
    try:
        objects.objects[("Secret", "default", "db")] = secret("db", {"password": "two"})
        await oci.runtime.volumes.resync()
        assert await exec_out(oci, uid, "c", "cat /etc/creds/password") == "two"
    finally:
        await oci.runtime.volumes.aclose()
