"""ClusterIP records written before IPAddresses were served become IPAddresses at start.

Earlier kajitori kept ``{"parentRef": ...}`` under ``/registry/ipaddresses/<ip>``; the
``networking.k8s.io/v1 ipaddresses`` resource serves the same keys, so the bootstrap
rewrites such values into the IPAddress objects upstream's allocator stores.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from kajitori.registry import install
from kajitori.registry.core import service_allocator
from kajitori.server import bootstrap
from kajitori.server.apis import APIRegistry
from kajitori.storage.sqlite import SqliteBackend

_OLD = {"parentRef": {"group": "", "resource": "services", "namespace": "web", "name": "front"}}


async def test_old_records_are_served_as_ipaddresses_after_start(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "db.sqlite")
    await backend.start()
    try:
        await backend.create(service_allocator.IP_PREFIX + "10.96.7.7", orjson.dumps(_OLD))
        registry = APIRegistry(install.all_resources(), backend)
        await bootstrap.ensure_initial_objects(registry, api_port=6443)
        store = registry.lookup("networking.k8s.io", "v1", "ipaddresses")
        assert store is not None
        served = await store.get("", "10.96.7.7")
        assert served["kind"] == "IPAddress"
        # Core's group is empty, which Go's omitempty leaves out.
        assert served["spec"]["parentRef"] == {
            "resource": "services",
            "namespace": "web",
            "name": "front",
        }
        labels = served["metadata"]["labels"]
        assert labels["ipaddress.kubernetes.io/managed-by"] == "ipallocator.k8s.io"
        assert labels["ipaddress.kubernetes.io/ip-family"] == "IPv4"
        # Nothing left to upgrade, and an upgraded record is not written again.
        before = (await backend.get(service_allocator.IP_PREFIX + "10.96.7.7"))[1]
        assert await service_allocator.upgrade_legacy_records(backend) == 0
        after = (await backend.get(service_allocator.IP_PREFIX + "10.96.7.7"))[1]
        assert before is not None and after is not None
        assert after.mod_revision == before.mod_revision
    finally:
        await backend.close()
