"""Benchmark: server-side apply and CR validation, each against its floor in the same run.

Run ``python -m bench.apply`` (about 70 s; ``--seconds`` sets each cell,
``--quick`` makes every cell one second).
It starts ``python -m kajitori up`` as a separate process pinned to core 0
(``bench.common.ServerProcess``) and drives it over HTTPS keep-alive from
this process on core 1 (``bench.loadgen``), as ``bench.api`` does. Each of
``--objects`` Deployments has 50 containers (each with a port, an env
variable and resource requests). Two cells per concurrency, in the same
run on the same objects:

* ``apply``: ``PATCH`` with ``application/apply-patch+yaml``
  (``fieldManager=bench&force=true``: the update cells' writer owns the
  annotation in between, as a controller would force) of the whole
  Deployment, changing one annotation
  each time, so every request is a real write: merge by the schema,
  ownership of ~450 fields, managedFields re-encoded;
* ``update``: ``PUT`` of the same Deployment (no resourceVersion: Deployments
  allow unconditional updates) with the same change, which records the
  writer's Update entry in managedFields (manager from the User-Agent).

The Deployments are paused and only their own annotation changes, so the
deployment controller running in the same server has no rollout to do.

The ratio apply/update is the cost of server-side apply over the ordinary
write path. The same two cells run on a custom resource (``cr_apply``,
``cr_update``: a Gadget whose 50 entries are an associative list, see
``bench.customresources``). Two more cells measure CR validation:
``create_validated`` POSTs objects of a CRD with 200 typed fields and 10 CEL
rules, ``create_freeform`` the same bodies under an empty
preserve-unknown-fields schema (the floor). It prints a table and writes
``bench/results/apply-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from bench import common, loadgen
from bench import customresources as crs

CONCURRENCY = (1, 16)
CONTAINERS = 50
NAMESPACE = "bench-apply"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
# A User-Agent, so the plain updates are tracked (manager "bench") like any client's.
JSON_HEADERS = (
    ("content-type", "application/json"),
    ("accept", "application/json"),
    ("user-agent", "bench/1.0"),
)
APPLY_HEADERS = (
    ("content-type", "application/apply-patch+yaml"),
    ("accept", "application/json"),
    ("user-agent", "bench/1.0"),
)


def deployment(name: str, revision: int) -> dict[str, Any]:
    """A paused Deployment with 50 containers; ``revision`` is an annotation on it.

    Only the Deployment's own metadata changes, so the deployment controller
    in the same server process has no rollout to make for each write.
    """
    containers = [
        {
            "name": f"c{i}",
            "image": f"registry.example/app-{i}:1.0",
            "ports": [{"containerPort": 8000 + i, "name": f"p{i}"}],
            "env": [{"name": "INDEX", "value": str(i)}],
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
        }
        for i in range(CONTAINERS)
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "labels": {"app": name},
            "annotations": {"bench/revision": str(revision)},
        },
        "spec": {
            "paused": True,
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": containers},
            },
        },
    }


def _path(name: str) -> str:
    return f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}"


def applies(objects: int, offset: int) -> loadgen.RequestFactory:
    """Apply object ``i % objects`` with revision ``offset + i`` (always a change)."""

    def make(i: int) -> loadgen.Request:
        name = f"d{i % objects}"
        body = orjson.dumps(deployment(name, offset + i))
        return ("PATCH", _path(name) + "?fieldManager=bench&force=true", APPLY_HEADERS, body)

    return make


def updates(objects: int, offset: int) -> loadgen.RequestFactory:
    """PUT object ``i % objects`` with revision ``offset + i``."""

    def make(i: int) -> loadgen.Request:
        name = f"d{i % objects}"
        body = orjson.dumps(deployment(name, offset + i))
        return ("PUT", _path(name), JSON_HEADERS, body)

    return make


async def _setup(server: common.ServerProcess, context: Any, objects: int) -> None:
    namespace = orjson.dumps(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    )
    done = await loadgen.run(
        host="127.0.0.1", port=server.port, ssl_context=context, connections=1, total_requests=1,
        make_request=loadgen.constant("POST", "/api/v1/namespaces", namespace),
    )  # fmt: skip
    if done.statuses.get(201) != 1:
        raise RuntimeError(f"creating namespace: {dict(done.statuses)}")
    created = await loadgen.run(
        host="127.0.0.1", port=server.port, ssl_context=context, connections=1,
        total_requests=objects, make_request=applies(objects, 0),
    )  # fmt: skip
    if created.statuses.get(201) != objects:
        raise RuntimeError(f"creating deployments by apply: {dict(created.statuses)}")
    await _install_crds(server, context)
    gadgets = await loadgen.run(
        host="127.0.0.1", port=server.port, ssl_context=context, connections=1,
        total_requests=objects, make_request=crs.gadget_applies(NAMESPACE, objects, 0),
    )  # fmt: skip
    if gadgets.statuses.get(201) != objects:
        raise RuntimeError(f"creating gadgets by apply: {dict(gadgets.statuses)}")


async def _install_crds(server: common.ServerProcess, context: Any) -> None:
    """Create the benchmark's CRDs and wait until each serves its custom resources."""
    for crd in crs.crds():
        body = orjson.dumps(crd)
        done = await loadgen.run(
            host="127.0.0.1", port=server.port, ssl_context=context, connections=1,
            total_requests=1, make_request=loadgen.constant(
                "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body),
        )  # fmt: skip
        if done.statuses.get(201) != 1:
            raise RuntimeError(f"creating CRD {crd['metadata']['name']}: {dict(done.statuses)}")
        path = crs.list_path(NAMESPACE, crd["spec"]["names"]["plural"])
        for _ in range(200):
            probe = await loadgen.run(
                host="127.0.0.1", port=server.port, ssl_context=context, connections=1,
                total_requests=1, make_request=loadgen.constant("GET", path),
            )  # fmt: skip
            if probe.statuses.get(200) == 1:
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"CRD {crd['metadata']['name']} was not served in time")


def _cells(objects: int, offset: int) -> list[tuple[str, loadgen.RequestFactory]]:
    """Every cell of one concurrency, each floor beside the operation it is compared with."""
    return [
        ("apply", applies(objects, offset)),
        ("update", updates(objects, offset + 100_000)),
        ("cr_apply", crs.gadget_applies(NAMESPACE, objects, offset + 200_000)),
        ("cr_update", crs.gadget_updates(NAMESPACE, objects, offset + 300_000)),
        ("create_validated", crs.creates(NAMESPACE, "checkeds", "Checked", f"v{offset}")),
        ("create_freeform", crs.creates(NAMESPACE, "freeforms", "Freeform", f"f{offset}")),
    ]


async def run(seconds: float, objects: int, workdir: Path) -> dict[str, Any]:
    common.pin(common.CLIENT_CORE)
    server = common.ServerProcess(workdir / "server")
    server.start()
    rows: dict[str, list[dict[str, Any]]] = {}
    try:
        context = common.client_ssl_context(server.data_dir)
        await _setup(server, context, objects)
        offset = 1_000
        for concurrency in CONCURRENCY:
            offset += 1_000_000
            for operation, factory in _cells(objects, offset):
                row = await common.measure(
                    server, context, concurrency=concurrency, seconds=seconds,
                    make_request=factory, warmup=2,
                )  # fmt: skip
                rows.setdefault(operation, []).append(row)
                _progress(f"{operation} c={concurrency}: {row['rps']:.0f}/s {row['statuses']}")
    finally:
        server.stop()
    return {
        "benchmark": "apply",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": common.machine(),
        "plan": {
            "seconds": seconds,
            "objects": objects,
            "containers": CONTAINERS,
            "cr_entries": crs.ENTRIES,
            "validated_fields": crs.FIELDS,
            "validated_rules": len(crs.RULES),
            "concurrency": list(CONCURRENCY),
        },
        "operations": rows,
        "ratios": ratios(rows),
    }


RATIOS = (
    ("apply_vs_update", "apply", "update"),
    ("cr_apply_vs_update", "cr_apply", "cr_update"),
    ("validated_vs_freeform_create", "create_validated", "create_freeform"),
)


def ratios(rows: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """Each operation's requests/s over its floor's, per concurrency (below 1: slower)."""
    found: dict[str, float] = {}
    for name, operation, floor in RATIOS:
        for a, b in zip(rows[operation], rows[floor], strict=True):
            found[f"{name}_c{a['concurrency']}"] = round(a["rps"] / max(b["rps"], 1e-9), 3)
    return found


def print_report(report: dict[str, Any]) -> None:
    print(
        f"server-side apply vs update ({CONTAINERS}-container Deployment, {crs.ENTRIES}-entry CR);"
        f" CR creates with {crs.FIELDS} fields and {len(crs.RULES)} CEL rules vs an empty schema"
    )
    print(f"{'operation':<18}{'c':>4}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'cpu us/req':>12}")
    for operation, rows in report["operations"].items():
        for row in rows:
            print(
                f"{operation:<18}{row['concurrency']:>4}{row['rps']:>10.1f}{row['p50_ms']:>10.2f}"
                f"{row['p99_ms']:>10.2f}{row['server_cpu_us_per_request']:>12.0f}"
            )
    for name, value in report["ratios"].items():
        print(f"{name}: {value}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each cell")
    parser.add_argument("--quick", action="store_true", help="one-second cells, 4 objects")
    parser.add_argument("--objects", type=int, default=16, help="Deployments written in turn")
    parser.add_argument(
        "--output", type=Path, help="JSON path (default bench/results/apply-<ts>.json)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.objects = min(args.seconds, 1.0), min(args.objects, 4)
    with tempfile.TemporaryDirectory(prefix="kajitori-bench-apply-") as directory:
        report = asyncio.run(run(args.seconds, args.objects, Path(directory)))
    print_report(report)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = args.output or RESULTS_DIR / f"apply-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {path}")


def _progress(message: str) -> None:
    print(f"[bench.apply] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
