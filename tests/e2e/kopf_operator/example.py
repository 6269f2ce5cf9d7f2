"""A small but real kopf operator for the ``KopfExample`` resource (kopf's own example).

``running_operator(kubeconfig)`` runs it with ``kopf.operator`` on a thread
with its own event loop, logged in from the given kubeconfig, and yields a
``Seen`` journal of the handler calls for the test to assert on. The
handlers are what an operator author writes:

* ``create_fn`` posts an Event and returns a message, which kopf stores in
  ``status.create_fn``;
* ``update_fn`` records the diff and stores the new ``spec.field``;
* ``flaky_fn`` fails once with a ``TemporaryError``, so kopf keeps its
  retry progress in ``status.kopf`` and comes back after the delay;
* ``delete_fn`` runs while kopf's finalizer holds the object.

Its registry is its own (``kopf.OperatorRegistry``), not kopf's global one,
so several operators can run in one test process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import yaml

GROUP, VERSION, PLURAL = "kopf.dev", "v1", "kopfexamples"

# kopf's examples/crd.yaml, in JSON form.
CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "scope": "Namespaced",
        "group": GROUP,
        "names": {
            "kind": "KopfExample",
            "plural": PLURAL,
            "singular": "kopfexample",
            "shortNames": ["kopfexes", "kopfex", "kexes", "kex"],
        },
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
                "additionalPrinterColumns": [
                    {"name": "Field", "type": "string", "jsonPath": ".spec.field"},
                    {
                        "name": "Message",
                        "type": "string",
                        "jsonPath": ".status.create_fn.message",
                    },
                ],
            }
        ],
    },
}


# kopf's peering.yaml (cluster-wide half): operators announce themselves in a
# ClusterKopfPeering's status and pause while a higher-priority peer is alive.
PEERING_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"clusterkopfpeerings.{GROUP}"},
    "spec": {
        "scope": "Cluster",
        "group": GROUP,
        "names": {
            "kind": "ClusterKopfPeering",
            "plural": "clusterkopfpeerings",
            "singular": "clusterkopfpeering",
        },
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            }
                        },
                    }
                },
            }
        ],
    },
}
DEFAULT_PEERING: dict[str, Any] = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "ClusterKopfPeering",
    "metadata": {"name": "default"},
}


@dataclasses.dataclass(frozen=True)
class Call:
    handler: str
    name: str
    details: Any = None


class Seen:
    """The handler calls so far, appended from the operator's thread."""

    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._lock = threading.Lock()

    def add(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def of(self, handler: str, name: str) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if c.handler == handler and c.name == name]


def build_registry(kubeconfig: Path, seen: Seen) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    resource = (GROUP, VERSION, PLURAL)

    @kopf.on.login(id="login_fn", registry=registry)
    def login_fn(**_: Any) -> kopf.ConnectionInfo:
        return _connection_info(kubeconfig)

    @kopf.on.create(*resource, id="create_fn", registry=registry)
    def create_fn(body: kopf.Body, spec: kopf.Spec, name: str, **_: Any) -> dict[str, Any]:
        seen.add(Call("create", name, dict(spec)))
        kopf.info(body, reason="Greeted", message=f"field={spec.get('field')}")
        return {"message": f"hello {name}"}

    @kopf.on.update(*resource, id="update_fn", registry=registry)
    def update_fn(new: kopf.Body, diff: kopf.Diff, name: str, **_: Any) -> dict[str, Any]:
        seen.add(Call("update", name, [tuple(d) for d in diff]))
        return {"field": new["spec"].get("field")}

    @kopf.on.create(*resource, id="flaky_fn", registry=registry, labels={"flaky": "yes"})
    def flaky_fn(name: str, retry: int, **_: Any) -> dict[str, Any]:
        seen.add(Call("flaky", name, retry))
        if retry == 0:
            raise kopf.TemporaryError("not yet", delay=0.5)
        return {"retries": retry}

    @kopf.on.delete(*resource, id="delete_fn", registry=registry)
    def delete_fn(name: str, **_: Any) -> None:
        seen.add(Call("delete", name))

    return registry


def _connection_info(kubeconfig: Path) -> kopf.ConnectionInfo:
    """The kubeconfig's current context, as kopf's own ``login_with_kubeconfig`` reads it."""
    config = yaml.safe_load(kubeconfig.read_text())
    context = _named(config, "contexts", config["current-context"])["context"]
    cluster = _named(config, "clusters", context["cluster"])["cluster"]
    user = _named(config, "users", context["user"])["user"]
    return kopf.ConnectionInfo(
        server=cluster["server"],
        ca_data=cluster["certificate-authority-data"],
        certificate_data=user["client-certificate-data"],
        private_key_data=user["client-key-data"],
        default_namespace="default",
    )


def _named(config: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    return next(entry for entry in config[section] if entry["name"] == name)


def settings() -> kopf.OperatorSettings:
    operator_settings = kopf.OperatorSettings()
    # Short watch requests, so that a watch-restart path is exercised within a test too.
    operator_settings.watching.server_timeout = 10
    return operator_settings


@contextlib.contextmanager
def running_operator(
    kubeconfig: Path, *, standalone: bool = False, timeout: float = 30.0
) -> Iterator[Seen]:
    """Run the operator cluster-wide on a thread until the block ends.

    Unless ``standalone``, it joins the ``default`` ClusterKopfPeering (when
    that exists), as a production deployment does.
    """
    seen = Seen()
    stop, ready = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def main() -> None:
        try:
            asyncio.run(
                kopf.operator(
                    registry=build_registry(kubeconfig, seen),
                    settings=settings(),
                    standalone=standalone,
                    clusterwide=True,
                    stop_flag=stop,
                    ready_flag=ready,
                )
            )
        except BaseException as exc:
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=main, name="kopf-operator", daemon=True)
    thread.start()
    ready.wait(timeout)
    if failure or not ready.is_set():
        stop.set()
        raise RuntimeError(f"the kopf operator did not start: {failure}")
    try:
        yield seen
    finally:
        stop.set()
        thread.join(timeout)
    if failure:
        raise RuntimeError(f"the kopf operator failed: {failure[0]!r}") from failure[0]
