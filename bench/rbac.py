"""Benchmark: requests authorized by RBAC among 1,000 roles against system:masters.

Run ``python -m bench.rbac`` (about 30 s; ``--seconds`` sets each cell,
``--roles`` the number of Roles and RoleBindings). It starts
``python -m kajitori up`` pinned to core 0 (``bench.common.ServerProcess``)
and drives it from core 1 over HTTPS keep-alive (``bench.loadgen``), as
``bench.api`` does.

Setup: ``--roles`` Roles, each with a RoleBinding to its own user, spread
over 10 namespaces (the bench namespace among them), plus as many
ClusterRoles and ClusterRoleBindings as a tenth of that, so the policy
holds thousands of rules; then one Role granting ``get``/``list`` on
ConfigMaps in the bench namespace, bound to user ``bench-reader`` (a client
certificate issued from the cluster CA, no groups but
``system:authenticated``). Cells, in the same run, for the same requests
(a point GET of a ConfigMap, and a LIST of 50): as ``kubernetes-admin``
(``system:masters``, decided before RBAC is asked) and as ``bench-reader``
(decided by RBAC). Each cell runs ``--rounds`` times, alternating the two
users, and reports each user's median round. The ratio reader/admin is the
cost of RBAC with a large policy; the target is at least 0.9.

It prints a table and writes ``bench/results/rbac-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import ssl
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from bench import common, loadgen
from kajitori.auth import pki

CONCURRENCY = (1, 16)
NAMESPACE = "bench-rbac"
NAMESPACES = 10
CONFIGMAPS = 50
READER = "bench-reader"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
RBAC = "/apis/rbac.authorization.k8s.io/v1"


def _namespaces() -> list[str]:
    return [NAMESPACE] + [f"{NAMESPACE}-{i}" for i in range(1, NAMESPACES)]


def _role(name: str, namespace: str, index: int) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace},
        "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
            {
                "apiGroups": ["apps"],
                "resources": ["deployments", "deployments/scale"],
                "verbs": ["get", "update"],
                "resourceNames": [f"app-{index}"],
            },
        ],
    }


def _binding(kind: str, name: str, namespace: str, role_kind: str, user: str) -> dict[str, Any]:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }


def setup_requests(roles: int) -> Iterator[tuple[str, bytes]]:
    """(path, body) of every object to create before measuring, in order."""
    for namespace in _namespaces():
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        yield "/api/v1/namespaces", orjson.dumps(body)
    spaces = _namespaces()
    for i in range(roles):
        namespace = spaces[i % len(spaces)]
        name = f"filler-{i}"
        yield f"{RBAC}/namespaces/{namespace}/roles", orjson.dumps(_role(name, namespace, i))
        binding = _binding("RoleBinding", name, namespace, "Role", f"user-{i}")
        yield f"{RBAC}/namespaces/{namespace}/rolebindings", orjson.dumps(binding)
    for i in range(roles // 10):
        name = f"filler-cluster-{i}"
        role = {**_role(name, "", i), "kind": "ClusterRole", "metadata": {"name": name}}
        yield f"{RBAC}/clusterroles", orjson.dumps(role)
        binding = _binding("ClusterRoleBinding", name, "", "ClusterRole", f"cluster-user-{i}")
        yield f"{RBAC}/clusterrolebindings", orjson.dumps(binding)
    reader = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "configmap-reader", "namespace": NAMESPACE},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
    }
    yield f"{RBAC}/namespaces/{NAMESPACE}/roles", orjson.dumps(reader)
    binding = _binding("RoleBinding", "configmap-reader", NAMESPACE, "Role", READER)
    yield f"{RBAC}/namespaces/{NAMESPACE}/rolebindings", orjson.dumps(binding)
    for i in range(CONFIGMAPS):
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}"}}
        yield f"/api/v1/namespaces/{NAMESPACE}/configmaps", orjson.dumps(body)


async def _setup(server: common.ServerProcess, context: ssl.SSLContext, roles: int) -> int:
    requests = list(setup_requests(roles))
    done = await loadgen.run(
        host="127.0.0.1", port=server.port, ssl_context=context, connections=1,
        total_requests=len(requests),
        make_request=lambda i: ("POST", requests[i][0], _JSON, requests[i][1]),
    )  # fmt: skip
    if done.statuses.get(201) != len(requests):
        raise RuntimeError(f"setup: {dict(done.statuses)}")
    return len(requests)


_JSON = (("content-type", "application/json"), ("accept", "application/json"))


def reader_context(data_dir: Path) -> ssl.SSLContext:
    """A client TLS context presenting a fresh certificate for ``bench-reader``."""
    directory = data_dir / "pki"
    ca = pki.load_cert_and_key(directory / "ca.crt", directory / "ca.key")
    credentials = pki.issue_client_cert(ca, user=READER, groups=())
    cert_path, key_path = data_dir / "reader.crt", data_dir / "reader.key"
    cert_path.write_bytes(credentials.cert_pem)
    key_path.write_bytes(credentials.key_pem)
    context = ssl.create_default_context(cafile=str(directory / "ca.crt"))
    context.load_cert_chain(str(cert_path), str(key_path))
    return context


def _get(i: int) -> loadgen.Request:
    return ("GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps/cm-{i % CONFIGMAPS}", _JSON, b"")


def _list(_: int) -> loadgen.Request:
    return ("GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps", _JSON, b"")


def _median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median rate, with every round's rate beside it."""
    ordered = sorted(rows, key=lambda row: row["rps"])
    return {**ordered[len(ordered) // 2], "rounds_rps": [round(r["rps"], 1) for r in rows]}


async def run(seconds: float, roles: int, workdir: Path, rounds: int = 3) -> dict[str, Any]:
    common.pin(common.CLIENT_CORE)
    server = common.ServerProcess(workdir / "server")
    server.start()
    rows: list[dict[str, Any]] = []
    try:
        admin = common.client_ssl_context(server.data_dir)
        created = await _setup(server, admin, roles)
        _progress(f"created {created} objects")
        reader = reader_context(server.data_dir)
        for operation, factory in (("get", _get), ("list", _list)):
            for concurrency in CONCURRENCY:
                cells: dict[str, list[dict[str, Any]]] = {"admin": [], "reader": []}
                # Alternate the two users round after round and keep each one's median:
                # drift on a shared machine then favours neither.
                for _ in range(rounds):
                    for user, context in (("admin", admin), ("reader", reader)):
                        row = await common.measure(
                            server, context, concurrency=concurrency, seconds=seconds,
                            make_request=factory, warmup=5,
                        )  # fmt: skip
                        if set(row["statuses"]) != {200}:
                            raise RuntimeError(f"{user} {operation}: {row['statuses']}")
                        cells[user].append(row)
                for user, measured in cells.items():
                    row = _median_row(measured)
                    rows.append({"operation": operation, "user": user, **row})
                    _progress(f"{operation} {user} c={concurrency}: {row['rps']:.0f}/s")
    finally:
        server.stop()
    return {
        "benchmark": "rbac",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": common.machine(),
        "plan": {"seconds": seconds, "roles": roles, "namespaces": NAMESPACES, "rounds": rounds},
        "rows": rows,
        "ratios": ratios(rows),
        "target": 0.9,
    }


def ratios(rows: list[dict[str, Any]]) -> dict[str, float]:
    """reader req/s over admin req/s for each operation and concurrency."""
    by_cell = {(r["operation"], r["concurrency"], r["user"]): r["rps"] for r in rows}
    return {
        f"reader_vs_admin_{operation}_c{concurrency}": round(
            by_cell[(operation, concurrency, "reader")]
            / max(by_cell[(operation, concurrency, "admin")], 1e-9),
            3,
        )
        for (operation, concurrency, user) in by_cell
        if user == "admin"
    }


def print_report(report: dict[str, Any]) -> None:
    roles = report["plan"]["roles"]
    print(f"RBAC with {roles} Roles + RoleBindings (+{roles // 10} cluster-wide) vs system:masters")
    print(
        f"{'operation':<10}{'user':<8}{'c':>4}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}"
        f"{'cpu us/req':>12}"
    )
    for row in report["rows"]:
        print(
            f"{row['operation']:<10}{row['user']:<8}{row['concurrency']:>4}{row['rps']:>10.1f}"
            f"{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}{row['server_cpu_us_per_request']:>12.0f}"
        )
    for name, value in report["ratios"].items():
        verdict = "ok" if value >= report["target"] else "below target"
        print(f"{name}: {value} (target {report['target']}: {verdict})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each cell")
    parser.add_argument("--roles", type=int, default=1000, help="Roles and RoleBindings present")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per cell")
    parser.add_argument(
        "--output", type=Path, help="JSON path (default bench/results/rbac-<ts>.json)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kajitori-bench-rbac-") as directory:
        report = asyncio.run(run(args.seconds, args.roles, Path(directory), args.rounds))
    print_report(report)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = args.output or RESULTS_DIR / f"rbac-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {path}")


def _progress(message: str) -> None:
    print(f"[bench.rbac] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
