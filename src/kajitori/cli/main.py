"""The ``kajitori`` command line.

``kajitori up`` starts a whole cluster in this process (today: the API
server on embedded SQLite and the controller manager, which calls the API
server in-process) and prints how to point kubectl at it.
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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kajitori.cmd.apiserver import APIServerProcess
    from kajitori.controllers.manager import ControllerManager

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
        _add_encryption_and_audit_flags(cmd)
        cmd.add_argument(
            "-v", "--verbose", action="store_true", help="log requests and debug detail"
        )
    return parser


def _add_encryption_and_audit_flags(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--encryption-provider-config",
        type=Path,
        default=None,
        help="EncryptionConfiguration file for encryption at rest (up: default is a generated "
        "one in the data dir that encrypts secrets with aescbc)",
    )
    cmd.add_argument(
        "--rewrite-encrypted-on-start",
        action="store_true",
        help="before serving, re-store every value not written with the current first "
        "provider key (after a key rotation)",
    )
    cmd.add_argument("--audit-policy-file", type=Path, default=None, help="audit.k8s.io/v1 Policy")
    cmd.add_argument("--audit-log-path", default="", help="audit log file ('-' for stdout)")
    cmd.add_argument(
        "--audit-log-maxsize", type=int, default=0, help="rotate the audit log at this many MB"
    )
    cmd.add_argument(
        "--audit-log-maxbackup", type=int, default=0, help="rotated audit logs to keep (0: all)"
    )


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
        encryption_provider_config=args.encryption_provider_config,
        generate_encryption_config=args.command == "up",
        rewrite_encrypted_on_start=args.rewrite_encrypted_on_start,
        audit_policy_file=args.audit_policy_file,
        audit_log_path=args.audit_log_path,
        audit_log_maxsize=args.audit_log_maxsize,
        audit_log_maxbackup=args.audit_log_maxbackup,
    )
    process = APIServerProcess(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await process.start()
    except (OSError, ValueError) as exc:  # ValueError: a bad encryption or audit config
        print(f"kajitori: cannot start: {exc}", file=sys.stderr)
        await process.stop()
        return 1
    if process.rewrite_result is not None:
        result = process.rewrite_result
        print(
            f"kajitori: rewrote {result.rewritten} stored values with the current encryption key"
            f" ({result.raced} were rewritten concurrently)",
            flush=True,
        )
    controllers = _start_controllers(process) if args.command == "up" else None
    elapsed = time.monotonic() - started
    print(
        f"kajitori is ready at {process.url} ({elapsed:.2f}s, data in {config.data_dir})\n"
        f"\n  export KUBECONFIG={config.kubeconfig_path}\n  kubectl get namespaces\n\n"
        "Stop with Ctrl-C.",
        flush=True,
    )
    await stop.wait()
    print("kajitori: stopping", flush=True)
    if controllers is not None:
        from kajitori.cmd import controller_manager

        await controller_manager.stop(controllers)
    await process.stop()
    return 0


def _start_controllers(process: APIServerProcess) -> ControllerManager:
    """The controller manager in this process, calling the API server's app directly."""
    from kajitori.cmd import controller_manager

    assert process.http is not None and process.pki is not None
    return controller_manager.start_in_process(process.http.app, process.pki.ca)
