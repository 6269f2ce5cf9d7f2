"""etcd's batched GETs: concurrent gets share one read-only Txn of ranges.

A get issued after a write was acknowledged (through another client) reads
that write or a newer one; missing keys and keys with odd bytes in a batch
do not spoil the others' answers.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from kajitori.storage import etcd
from kajitori.testing import etcd_server

needs_etcd = pytest.mark.skipif(
    not etcd_server.etcd_available(), reason="no etcd binary (apt-get install etcd-server)"
)


@pytest.mark.etcd
@needs_etcd
async def test_gets_racing_another_clients_writes_see_every_acknowledged_write(
    etcd_endpoint: str,
) -> None:
    """A batched get issued after a write was acknowledged (through another client) reads
    that write or a newer one, never an older one; the other keys of its batch too."""
    prefix = f"/test-{uuid.uuid4().hex}"
    reader = etcd.EtcdBackend(etcd_endpoint, prefix=prefix)
    writer = etcd.EtcdBackend(etcd_endpoint, prefix=prefix)
    await reader.start()
    await writer.start()
    try:
        keys = [f"/cm/{i}" for i in range(8)]
        acknowledged = {key: await writer.create(key, b"0") for key in keys}

        async def write(key: str) -> None:
            for n in range(1, 15):
                revision = await writer.update(key, b"%d" % n, expected_revision=acknowledged[key])
                acknowledged[key] = revision

        async def read(key: str) -> None:
            for _ in range(40):
                floor = dict(acknowledged)  # every write acknowledged before the get
                _, kv = await reader.get(key)
                assert kv is not None and kv.mod_revision >= floor[key]
                await asyncio.sleep(0)

        await asyncio.gather(*(write(k) for k in keys), *(read(k) for k in keys * 3))
        finals = await asyncio.gather(*(reader.get(key) for key in keys))
        assert [kv.value for _, kv in finals if kv] == [b"14"] * len(keys)
    finally:
        await reader.close()
        await writer.close()


@pytest.mark.etcd
@needs_etcd
async def test_a_batch_answers_present_keys_beside_missing_and_odd_ones(etcd_endpoint: str) -> None:
    """Missing keys and keys with unusual bytes in one batch do not spoil the others."""
    backend = etcd.EtcdBackend(etcd_endpoint, prefix=f"/test-{uuid.uuid4().hex}")
    await backend.start()
    try:
        odd = "/cm/ü-\u0000-" + "x" * 300
        revisions = {key: await backend.create(key, key.encode()) for key in ["/cm/a", odd]}
        asked = ["/cm/a", "/cm/missing", odd, "/cm/a"]
        answers = await asyncio.gather(*(backend.get(key) for key in asked))
        found = [kv.value if kv else None for _, kv in answers]
        assert found == [b"/cm/a", None, odd.encode(), b"/cm/a"]
        assert answers[2][1] is not None and answers[2][1].mod_revision == revisions[odd]
    finally:
        await backend.close()
