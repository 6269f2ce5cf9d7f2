"""The ``kajitori`` command line.

``kajitori up`` starts a whole cluster in this process (today: the API
server on embedded SQLite) and prints how to point kubectl at it.
``kajitori apiserver`` runs just the API server, e.g. on shared etcd.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path

DEFAULT_DATA_DIR = Path(os.environ.get("KAJITORI_DATA_DIR", Path.home() / ".kajitori"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kajitori", description="Kubernetes, written in Python.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("up", "start a cluster in this process"),
        ("apiserver", "run only the API server"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument(
            "--data-dir",
            type=Path,
            default=DEFAULT_DATA_DIR,
            help="where state, certificates and the kubeconfig live (default: %(default)s)",
        )
        cmd.add_argument(
            "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
        )
        cmd.add_argument("--port", type=int, default=6443, help="HTTPS port (default: %(default)s)")
        cmd.add_argument(
            "--storage",
            choices=("sqlite", "etcd"),
            default="sqlite",
            help="storage backend (default: %(default)s)",
        )
        cmd.add_argument(
            "--etcd-endpoint", default="", help="etcd client address host:port, with --storage etcd"
        )
        cmd.add_argument(
            "--etcd-prefix", default="", help="key prefix inside etcd, to share one etcd"
        )
        cmd.add_argument(
            "-v", "--verbose", action="store_true", help="log requests and debug detail"
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command in ("up", "apiserver"):
        return asyncio.run(_serve(args))
    return 2


async def _serve(args: argparse.Namespace) -> int:
    from kajitori.cmd.apiserver import APIServerConfig, APIServerProcess

    started = time.monotonic()
    config = APIServerConfig(
        data_dir=args.data_dir.expanduser().resolve(),
        host=args.host,
        port=args.port,
        storage=args.storage,
        etcd_endpoint=args.etcd_endpoint,
        etcd_prefix=args.etcd_prefix,
    )
    process = APIServerProcess(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await process.start()
    except OSError as exc:
        print(f"kajitori: cannot start: {exc}", file=sys.stderr)
        await process.stop()
        return 1
    elapsed = time.monotonic() - started
    print(
        f"kajitori is ready at {process.url} ({elapsed:.2f}s, data in {config.data_dir})\n"
        f"\n  export KUBECONFIG={config.kubeconfig_path}\n  kubectl get namespaces\n\n"
        "Stop with Ctrl-C.",
        flush=True,
    )
    await stop.wait()
    print("kajitori: stopping", flush=True)
    await process.stop()
    return 0
