"""ComponentStatuses in the API server (pkg/registry/core/componentstatus upstream).

Owns ``v1 componentstatuses`` (short name ``cs``): cluster scope, get and
list only, upstream's deprecation warning, and the ``kubectl get cs``
columns (NAME STATUS MESSAGE ERROR, as ``printComponentStatus``). Nothing is
stored: every read asks ``ComponentHealth`` afresh, as upstream probes each
component's health endpoint per request.

What each component's health is in kajitori (docs/decisions/0081):

* ``scheduler`` and ``controller-manager``: "ok" while it runs in the API
  server's own process (``kajitori up`` registers them with
  ``run_locally``); otherwise its leader-election Lease in kube-system
  (``kube-scheduler``, ``kube-controller-manager``) must have a holder that
  renewed it within ``leaseDurationSeconds``;
* ``etcd-0``: the storage backend answers a read, as upstream's etcd check
  reads a key (kajitori's SQLite store stands where etcd would).
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable, Sequence
from typing import Any

from kajitori.machinery import errors, times
from kajitori.registry import resource
from kajitori.registry.generic import strategy as strategies
from kajitori.registry.generic import table as tables
from kajitori.storage import interface as storage

Object = dict[str, Any]
# (group, version, plural) -> the store serving it (the API registry's lookup).
Lookup = Callable[[str, str, str], Any]

DEPRECATION_WARNING = "v1 ComponentStatus is deprecated in v1.19+"
HEALTHY_MESSAGE = "ok"  # the body of a component's /healthz, which upstream reports
LEASE_NAMESPACE = "kube-system"
# Component name -> the Lease its leader election holds.
ELECTED = {"scheduler": "kube-scheduler", "controller-manager": "kube-controller-manager"}
STORAGE = "etcd-0"
# How long a storage read may take before the check gives up (upstream's probe
# allows 20 s; a read of an absent key answers in a millisecond when healthy).
STORAGE_TIMEOUT = 5.0
_HEALTH_KEY = "/registry/health"


def component_status(name: str, status: str, message: str = "", error: str = "") -> Object:
    """A ComponentStatus with its one ``Healthy`` condition, as upstream encodes it."""
    condition: Object = {"type": "Healthy", "status": status}
    if message:
        condition["message"] = message
    if error:
        condition["error"] = error
    return {
        "kind": "ComponentStatus",
        "apiVersion": "v1",
        "metadata": {"name": name, "creationTimestamp": None},
        "conditions": [condition],
    }


class ComponentHealth:
    """Decides each component's health for one API server (see the module docstring)."""

    def __init__(self, lookup: Lookup, backend: storage.Backend) -> None:
        self.lookup = lookup
        self.backend = backend
        self.local: set[str] = set()

    def run_locally(self, name: str) -> None:
        """``name`` runs in this process from now on (``kajitori up``)."""
        self.local.add(name)

    async def get(self, namespace: str, name: str) -> Object:
        if name == STORAGE:
            return await self._storage()
        lease = ELECTED.get(name)
        if lease is None:
            # Upstream answers an unknown name with a plain error, so a 500.
            raise errors.internal_error(f"Component not found: {name}")
        if name in self.local:
            return component_status(name, "True", HEALTHY_MESSAGE)
        return await self._from_lease(name, lease)

    async def list(self, namespace: str) -> list[Object]:
        names = (*ELECTED, STORAGE)
        return list(await asyncio.gather(*(self.get(namespace, name) for name in names)))

    async def _storage(self) -> Object:
        try:
            await asyncio.wait_for(self.backend.get(_HEALTH_KEY), STORAGE_TIMEOUT)
        except TimeoutError:
            return component_status(
                STORAGE, "Unknown", error=f"storage did not answer within {STORAGE_TIMEOUT:g}s"
            )
        except Exception as exc:  # any failure of the backend is what this reports
            return component_status(STORAGE, "Unknown", error=f"{type(exc).__name__}: {exc}")
        return component_status(STORAGE, "True", HEALTHY_MESSAGE)

    async def _from_lease(self, name: str, lease_name: str) -> Object:
        where = f"{LEASE_NAMESPACE}/{lease_name}"
        store = self.lookup("coordination.k8s.io", "v1", "leases")
        if store is None:
            return component_status(name, "Unknown", error="leases are not served")
        try:
            lease = await store.get(LEASE_NAMESPACE, lease_name)
        except errors.StatusError as exc:
            if exc.code != 404:
                return component_status(name, "Unknown", error=exc.message)
            return component_status(
                name,
                "Unknown",
                error=f"no leader-election Lease {where}: not running, "
                "or running with --leader-elect=false",
            )
        return _lease_health(name, where, lease.get("spec") or {})


def _lease_health(name: str, where: str, spec: Object) -> Object:
    """Healthy while a holder renews the Lease within its duration (by this server's clock)."""
    holder = spec.get("holderIdentity") or ""
    if not holder:
        # A component that stops cleanly releases its Lease.
        return component_status(name, "False", error=f"leader-election Lease {where} has no holder")
    renewed = times.parse_time(spec.get("renewTime"))
    duration = spec.get("leaseDurationSeconds") or 0
    now = datetime.datetime.now(datetime.UTC)
    if renewed is None or renewed.tzinfo is None:
        return component_status(
            name, "Unknown", error=f"leader-election Lease {where} has no renewTime"
        )
    if (now - renewed).total_seconds() > duration:
        return component_status(
            name,
            "False",
            error=f"leader-election Lease {where} held by {holder} was last renewed at "
            f"{spec.get('renewTime')}, more than {duration}s ago",
        )
    return component_status(name, "True", HEALTHY_MESSAGE)


COLUMNS = (
    tables.NAME_COLUMN,
    tables.Column("Status", description="Status of the component conditions"),
    tables.Column("Message", description="Message of the component conditions"),
    tables.Column("Error", description="Error of the component conditions"),
)


def component_status_row(obj: Object, now: datetime.datetime) -> Sequence[tables.Cell]:
    """Upstream's printComponentStatus: the ``Healthy`` condition, "Unknown" without one."""
    status, message, error = "Unknown", "", ""
    for condition in obj.get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "Healthy":
            status = "Healthy" if condition.get("status") == "True" else "Unhealthy"
            message = str(condition.get("message") or "")
            error = str(condition.get("error") or "")
            break
    return [tables.name(obj), status, message, error]


def resource_for(health: ComponentHealth) -> resource.ResourceInfo:
    """``v1 componentstatuses`` answered by ``health``."""
    return resource.ResourceInfo(
        group="",
        version="v1",
        kind="ComponentStatus",
        plural="componentstatuses",
        namespaced=False,
        short_names=("cs",),
        verbs=("get", "list"),
        strategy=strategies.Strategy(),
        virtual_reads=health,
        table=tables.Table(columns=COLUMNS, row=component_status_row),
        deprecation_warning=DEPRECATION_WARNING,
    )
