"""``kajitori proxy --kubeconfig K``: run the Service proxy (kube-proxy's nftables mode).

Parsing only; ``cmd/proxy.py`` builds and runs the component. Needs root and
Debian's ``nft``; it programs one table, ``ip kajitori``, removed on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``proxy`` subcommand to ``parser``'s subcommands."""
    # argparse allows one subparsers action per parser; reach the one main.py made.
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    proxy = sub.add_parser("proxy", help="run the Service proxy (nftables)")
    proxy.add_argument("--kubeconfig", type=Path, required=True, help="kubeconfig to use")
    proxy.add_argument(
        "--cluster-cidr",
        default="",
        help="pod range; ClusterIP traffic from outside it is masqueraded (e.g. 10.244.0.0/16)",
    )
    proxy.add_argument(
        "--hostname-override", default="", help="this node's name (externalTrafficPolicy Local)"
    )
    proxy.add_argument(
        "--netns", default=None, help="program this named network namespace instead of the host"
    )
    proxy.add_argument("-v", "--verbose", action="store_true", help="log debug detail")


async def run(args: argparse.Namespace) -> int:
    """Proxy until SIGINT or SIGTERM; 1 when it cannot start."""
    from kajitori.cmd import proxy

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await proxy.run(
            args.kubeconfig,
            stop,
            netns=args.netns,
            cluster_cidr=args.cluster_cidr,
            node_name=args.hostname_override,
        )
    except OSError as exc:
        print(f"kajitori: proxy: {exc}", file=sys.stderr)
        return 1
    return 0
