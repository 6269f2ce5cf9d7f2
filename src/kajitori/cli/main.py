"""The ``kajitori`` command line.

``kajitori up`` starts a whole cluster in this process (today: the API
server on embedded SQLite and the controller manager, which calls the API
server in-process) and prints how to point kubectl at it.
``kajitori apiserver`` runs just the API server, e.g. on shared etcd.
``kajitori scheduler --kubeconfig K`` runs a standalone scheduler against K.
``kajitori up --nodes N --runtime simulated`` also registers N simulated
nodes; ``kajitori kubelet --kubeconfig K --node-name X`` runs one standalone,
``--nodes N`` many in one process (decision 0049).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import gc
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from kajitori.client.leaderelection import Config as LeaderElectionConfig
    from kajitori.cmd.apiserver import APIServerProcess
    from kajitori.cmd.node_network import ClusterNetwork
    from kajitori.controllers.manager import ControllerManager
    from kajitori.kubelet.kubelet import KubeletHost
    from kajitori.scheduler.config import SchedulerConfig
    from kajitori.scheduler.scheduler import Scheduler

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
            "--api-versions",
            choices=("legacy", "upstream"),
            default="legacy",
            help="legacy: also serve the workload versions removed in Kubernetes 1.16 "
            "(apps/v1beta1, apps/v1beta2, extensions/v1beta1); upstream: exactly 1.37's "
            "(default: %(default)s)",
        )
        cmd.add_argument(
            "--token-auth-file",
            type=Path,
            default=None,
            help='static bearer tokens, CSV rows of token,user,uid[,"group1,group2"]',
        )
        cmd.add_argument(
            "--metric-resolution",
            type=_duration,
            default=_duration("15s"),
            help="how often the built-in metrics-server scrapes kubelets for metrics.k8s.io; "
            "0s serves no metrics API (default: 15s)",
        )
        cmd.add_argument(
            "-v", "--verbose", action="store_true", help="log requests and debug detail"
        )
    scheduler_cmd = sub.add_parser("scheduler", help="run only the scheduler")
    scheduler_cmd.add_argument(
        "--config",
        type=Path,
        default=None,
        help="a KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1): its profile's "
        "schedulerName and leaderElection; --leader-elect* flags given override the latter",
    )
    manager_cmd = sub.add_parser("controller-manager", help="run only the controller manager")
    manager_cmd.add_argument(
        "--controllers",
        default="*",
        help="controllers to run: '*' for all, 'name' to add one, '-name' to leave one out "
        "(default: %(default)s)",
    )
    manager_cmd.add_argument(
        "--cluster-cidr",
        default="",
        help="the pod network node IPAM cuts into one /24 per node (default: 10.244.0.0/16)",
    )
    manager_cmd.add_argument(
        "--cluster-signing-cert-file",
        type=Path,
        help="PEM CA certificate the CSR signer issues certificates with (with the key file; "
        "without both, approved CertificateSigningRequests are not signed)",
    )
    manager_cmd.add_argument(
        "--cluster-signing-key-file", type=Path, help="PEM private key of that CA"
    )
    manager_cmd.add_argument(
        "--cluster-signing-duration",
        type=_duration,
        default=_duration("8760h"),
        help="longest lifetime of a signed certificate (default: 8760h)",
    )
    for cmd in (scheduler_cmd, manager_cmd):
        cmd.add_argument(
            "--kubeconfig", type=Path, required=True, help="kubeconfig of the API server to use"
        )
        _add_leader_election_flags(cmd)
        cmd.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    _add_node_flags(
        sub.choices["up"], sub.add_parser("kubelet", help="run simulated kubelets (one or --nodes)")
    )
    return parser


def _duration(text: str) -> float:
    """Seconds from ``15``, ``15s``, ``1m30s`` or ``500ms`` (Go durations, as upstream's flags)."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    total, number, rest = 0.0, "", text.strip()
    try:
        return float(rest)
    except ValueError:
        pass
    i = 0
    while i < len(rest):
        if rest[i].isdigit() or rest[i] == ".":
            number += rest[i]
            i += 1
            continue
        unit = "ms" if rest.startswith("ms", i) else rest[i]
        if unit not in units or not number:
            raise argparse.ArgumentTypeError(f"invalid duration {text!r}")
        total += float(number) * units[unit]
        number, i = "", i + len(unit)
    if number:
        raise argparse.ArgumentTypeError(f"missing unit in duration {text!r}")
    return total


def _add_leader_election_flags(cmd: argparse.ArgumentParser) -> None:
    """Upstream's --leader-elect flags: several copies elect one leader through a Lease."""
    cmd.add_argument(
        "--leader-elect",
        type=lambda v: v.lower() in ("1", "true", "yes"),
        default=True,
        help="elect a leader through a Lease before acting (default: true)",
    )
    for flag, default, text in (
        ("lease-duration", "15s", "how long a lease lasts without renewal"),
        ("renew-deadline", "10s", "how long the leader retries renewing before giving up"),
        ("retry-period", "2s", "how often to try to acquire or renew"),
    ):
        cmd.add_argument(
            f"--leader-elect-{flag}",
            type=_duration,
            default=_duration(default),
            help=f"{text} (default: {default})",
        )


def _add_node_flags(up: argparse.ArgumentParser, kubelet: argparse.ArgumentParser) -> None:
    """Simulated nodes for ``up``; ``kubelet`` runs one; lifecycle timings for tests."""
    up.add_argument("--nodes", type=int, default=0, help="simulated nodes to register")
    up.add_argument(
        "--node-monitor-grace-period",
        type=float,
        default=40.0,
        help="seconds without a heartbeat before a node is Unknown (default: %(default)s)",
    )
    up.add_argument(
        "--horizontal-pod-autoscaler-sync-period",
        type=_duration,
        default=_duration("15s"),
        help="how often each HorizontalPodAutoscaler is looked at (default: 15s)",
    )
    up.add_argument(
        "--node-monitor-period",
        type=float,
        default=5.0,
        help="how often node health is checked, in seconds (default: %(default)s)",
    )
    up.add_argument(
        "--cluster-name",
        default="kajitori",
        help="names the node network's bridge, veths and namespaces, so several clusters can "
        "run at once (default: %(default)s)",
    )
    up.add_argument(
        "--node-cidr",
        default="172.18.0.0/16",
        help="--runtime oci: the node network; the host bridge takes its first address, nodes "
        "the next ones (default: %(default)s, as kind)",
    )
    up.add_argument(
        "--cluster-cidr",
        default="",
        help="the pod network node IPAM cuts into one /24 per node (default: 10.244.0.0/16 as "
        "kind, wider above 256 nodes); --runtime oci: the host routes it to the nodes",
    )
    up.add_argument(
        "--no-node-network",
        action="store_true",
        help="--runtime oci: no bridge or node namespaces; pods get loopback only",
    )
    kubelet.add_argument("--kubeconfig", type=Path, required=True, help="kubeconfig to use")
    names = kubelet.add_mutually_exclusive_group(required=True)
    names.add_argument("--node-name", help="name of the one Node to register")
    names.add_argument(
        "--nodes",
        type=int,
        help="register this many simulated nodes in this process, named as up names them "
        "(with the node-simulator.kubeconfig of the API server's data dir)",
    )
    kubelet.add_argument(
        "--node-name-prefix",
        default="kajitori-worker",
        help="--nodes: the nodes are <prefix>, <prefix>2, ... (default: %(default)s)",
    )
    kubelet.add_argument(
        "--node-ip",
        default="172.18.0.2",
        help="the node's InternalIP (--nodes: the first node's; the next count up)",
    )
    kubelet.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    for cmd in (up, kubelet):
        cmd.add_argument(
            "--runtime",
            choices=("simulated", "oci"),
            default="simulated",
            help="container runtime (oci: runc, as root or rootless as another user; test use only; images pulled into <data-dir>/images)",
        )
        cmd.add_argument(
            "--node-lease-duration-seconds",
            type=int,
            default=40,
            help="node Lease duration; renewed every quarter of it (default: %(default)s)",
        )


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
    from kajitori.cli import image
    from kajitori.cli import proxy as proxy_cli

    parser = _parser()
    image.add_parser(parser, DEFAULT_DATA_DIR)
    proxy_cli.add_parser(parser)
    args = parser.parse_args(argv)
    if args.command == "image":
        return image.run(args)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "proxy":
        return asyncio.run(proxy_cli.run(args))
    if args.command == "apiserver":
        return _run_on_uvloop(_serve(args))
    if args.command == "up":
        return asyncio.run(_serve(args))
    if args.command == "scheduler":
        return asyncio.run(_run_scheduler(args))
    if args.command == "controller-manager":
        return asyncio.run(_run_controller_manager(args))
    if args.command == "kubelet":
        return asyncio.run(_run_kubelet(args))
    return 2


def _run_on_uvloop(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` on uvloop's event loop (decision 0076).

    The API server on its own serves every component over HTTPS; uvloop's
    loop, transports and TLS cost it ~14% less CPU per pod than asyncio's.
    """
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


async def _serve(args: argparse.Namespace) -> int:
    # Until the API server serves, start-up builds long-lived objects (modules,
    # the registry, caches) and almost no cyclic garbage (under a thousand
    # objects): collections meanwhile cost a tenth of its CPU and free nothing.
    gc.disable()
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
        api_versions=args.api_versions,
        token_auth_file=args.token_auth_file,
        metric_resolution=args.metric_resolution,
    )
    try:
        network = await _prepare_node_network(args)
    except (OSError, ValueError) as exc:  # ValueError: a bad --cluster-name or CIDR flag
        print(f"kajitori: cannot start: {exc}", file=sys.stderr)
        return 1
    if network is not None:
        config = dataclasses.replace(config, node_network_address=network.address)
    process = APIServerProcess(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await process.start()
        if network is not None:
            from kajitori.cmd import node_network

            assert process.http is not None and process.pki is not None
            await node_network.start_dns(network, process.http.app, process.pki.ca)
    except (OSError, ValueError) as exc:  # ValueError: a bad encryption or audit config
        print(f"kajitori: cannot start: {exc}", file=sys.stderr)
        await process.stop()
        await _close_node_network(network)
        return 1
    gc.enable()
    if process.rewrite_result is not None:
        result = process.rewrite_result
        print(
            f"kajitori: rewrote {result.rewritten} stored values with the current encryption key"
            f" ({result.raced} were rewritten concurrently)",
            flush=True,
        )
    kubelets = await _start_kubelets(process, args, network) if args.command == "up" else None
    if kubelets is not None and process.metrics_server is not None:
        from kajitori.cmd import kubelet as kubelet_cmd

        # Nodes beyond those with a kubelet API are scraped in process.
        process.metrics_server.local = kubelet_cmd.local_resource_metrics(kubelets)
    # Watch caches and informers keep every object several times over: collect
    # that heap rarely (``tune_gc``).
    tune_gc()
    elapsed = time.monotonic() - started
    print(
        f"kajitori is ready at {process.url} ({elapsed:.2f}s, data in {config.data_dir})\n"
        f"\n  export KUBECONFIG={config.kubeconfig_path}\n  kubectl get namespaces\n\n"
        "Stop with Ctrl-C.",
        flush=True,
    )
    # The API server answers from here on; the controllers and the scheduler
    # start just after, as upstream's components join a serving apiserver.
    components = _start_components(process, args, stop) if args.command == "up" else None
    await stop.wait()
    print("kajitori: stopping", flush=True)
    if kubelets is not None:
        from kajitori.cmd import kubelet as kubelet_cmd

        await kubelet_cmd.stop(kubelets)
    if components is not None:
        from kajitori.cmd import controller_manager
        from kajitori.cmd import scheduler as scheduler_cmd

        controllers, scheduler = await components  # re-raises a failed start
        await scheduler_cmd.stop(scheduler)
        await controller_manager.stop(controllers)
    await process.stop()
    await _close_node_network(network)
    return 0


async def _prepare_node_network(args: argparse.Namespace) -> ClusterNetwork | None:
    """``up --runtime oci``'s bridge and node namespaces, before the API server (decision 0031)."""
    if args.command == "up" and args.cluster_cidr:
        from kajitori.controllers import nodeipam

        nodeipam.check_cluster_cidr(args.cluster_cidr, args.nodes)  # ValueError if unusable
    if args.command != "up" or args.runtime != "oci" or args.nodes <= 0 or args.no_node_network:
        return None
    if os.geteuid() != 0:
        return None  # rootless oci runtime: loopback-only pods, no bridge (decision 0033)
    from kajitori.cmd import kubelet, node_network
    from kajitori.kubelet.network.node_network import NodeNetworkError

    try:
        return await node_network.prepare(
            args.cluster_name,
            [kubelet.worker_name(i) for i in range(args.nodes)],
            node_cidr=args.node_cidr,
            cluster_cidr=_cluster_cidr(args),
        )
    except NodeNetworkError as exc:
        raise OSError(f"node network: {exc}") from exc


async def _close_node_network(network: ClusterNetwork | None) -> None:
    if network is not None:
        from kajitori.cmd import node_network

        await node_network.close(network)


def _cluster_cidr(args: argparse.Namespace) -> str:
    """``--cluster-cidr``, else node IPAM's default for ``--nodes``."""
    from kajitori.controllers import nodeipam

    return str(args.cluster_cidr or nodeipam.cluster_cidr_for(args.nodes))


def _start_components(
    process: APIServerProcess, args: argparse.Namespace, stop: asyncio.Event
) -> asyncio.Task[tuple[ControllerManager, Scheduler]]:
    """The controller manager and the scheduler, started in the background.

    Their modules cost about as much to import as the API server's own, and
    an import in the event loop's thread would stall every request until it
    ends. Imported in a worker thread, they yield the GIL to the loop every
    switch interval, so the server keeps answering while they load. A failed
    start stops ``up`` (awaiting the task re-raises its error).
    """

    async def start() -> tuple[ControllerManager, Scheduler]:
        await asyncio.to_thread(_import_components)
        started = _start_controllers(process, args), _start_scheduler(process)
        if process.component_health is not None:
            # No leader election in one process: componentstatuses asks this process.
            process.component_health.run_locally("controller-manager")
            process.component_health.run_locally("scheduler")
        return started

    def stop_if_failed(done: asyncio.Task[tuple[ControllerManager, Scheduler]]) -> None:
        if not done.cancelled() and done.exception() is not None:
            stop.set()

    task = asyncio.create_task(start(), name="start-components")
    task.add_done_callback(stop_if_failed)
    return task


def _import_components() -> None:
    import importlib

    for module in ("kajitori.cmd.controller_manager", "kajitori.cmd.scheduler"):
        importlib.import_module(module)


def _start_controllers(process: APIServerProcess, args: argparse.Namespace) -> ControllerManager:
    """The controller manager in this process, calling the API server's app directly."""
    from kajitori.cmd import controller_manager

    assert process.http is not None and process.pki is not None
    options = {
        "nodelifecycle": {
            "node_monitor_grace_period": args.node_monitor_grace_period,
            "node_monitor_period": args.node_monitor_period,
        },
        "nodeipam": {"cluster_cidr": _cluster_cidr(args)},
        "horizontalpodautoscaling": {"sync_period": args.horizontal_pod_autoscaler_sync_period},
    }
    return controller_manager.start_in_process(
        process.http.app, process.pki.ca, options=options, sign_legacy=process.sign_legacy_token
    )


async def _start_kubelets(
    process: APIServerProcess, args: argparse.Namespace, network: ClusterNetwork | None = None
) -> KubeletHost | None:
    """``--nodes`` simulated nodes in this process (none by default)."""
    if args.nodes <= 0:
        return None
    from kajitori.cmd import kubelet

    assert process.http is not None and process.pki is not None
    return await kubelet.start_in_process(
        process.http.app,
        process.pki.ca,
        nodes=args.nodes,
        runtime=args.runtime,
        lease_duration=args.node_lease_duration_seconds,
        data_dir=args.data_dir.expanduser().resolve(),
        network=None if network is None else network.network,
    )


async def _run_kubelet(args: argparse.Namespace) -> int:
    from kajitori.cmd import kubelet
    from kajitori.kubelet import node_status

    if args.nodes is not None and args.nodes < 1:
        print("kajitori: --nodes must be at least 1", file=sys.stderr)
        return 2
    stop = _stop_on_signals()
    if args.nodes is None:
        configs = [node_status.NodeConfig(name=args.node_name, internal_ip=args.node_ip)]
    else:
        configs = kubelet.node_configs(
            args.nodes, prefix=args.node_name_prefix, first_ip=args.node_ip
        )
    tune_gc()
    await kubelet.run_nodes(
        args.kubeconfig,
        configs,
        stop,
        runtime=args.runtime,
        lease_duration=args.node_lease_duration_seconds,
    )
    return 0


# Collection thresholds once serving (decision 0073). Python counts net
# allocations: with a heap that churns (each watch event replaces an object in
# a watch cache and an informer), every young collection scans far more
# survivors than its threshold, and at (10_000, 10, 10) collections took a fifth
# of a 1,000-node rollout's CPU while freeing almost nothing. Fewer, larger
# young collections let most objects die before they are scanned.
GC_THRESHOLDS = (100_000, 20, 10)


def tune_gc() -> None:
    """Freeze start-up's objects (modules, caches) out of the scans; collect rarely.

    The API server, controllers, scheduler and kubelets hold every object they
    watch (watch caches, informers): with Python's default thresholds full
    collections re-scan that heap every few seconds (``GC_THRESHOLDS``).
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _start_scheduler(process: APIServerProcess) -> Scheduler:
    """The scheduler in this process, calling the API server's app directly."""
    from kajitori.cmd import scheduler

    assert process.http is not None and process.pki is not None
    return scheduler.start_in_process(process.http.app, process.pki.ca)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _election(args: argparse.Namespace, name: str) -> LeaderElectionConfig | None:
    from kajitori.client import leaderelection

    if not args.leader_elect:
        return None
    return leaderelection.Config(
        name=name,
        lease_duration=args.leader_elect_lease_duration,
        renew_deadline=args.leader_elect_renew_deadline,
        retry_period=args.leader_elect_retry_period,
    )


async def _run_scheduler(args: argparse.Namespace) -> int:
    from kajitori.cmd import scheduler
    from kajitori.scheduler import config

    try:
        settings = config.load(args.config) if args.config else config.SchedulerConfig()
    except config.ConfigError as exc:
        print(f"kajitori: scheduler --config: {exc}", file=sys.stderr)
        return 2
    stop = _stop_on_signals()
    tune_gc()
    election = _scheduler_election(args, settings)
    kept = await scheduler.run(
        args.kubeconfig, stop, election=election, scheduler_name=settings.scheduler_name
    )
    return 0 if kept else _lost_leadership("kube-scheduler")


def _scheduler_election(
    args: argparse.Namespace, settings: SchedulerConfig
) -> LeaderElectionConfig | None:
    """The config file's leaderElection, with the --leader-elect* flags given over it.

    As upstream's ApplyLeaderElectionTo; a flag counts as given when it differs
    from its default (argparse cannot tell an explicit default apart).
    """
    defaults = _parser().parse_args(["scheduler", "--kubeconfig", "-"])
    elect = settings.leader_elect
    if args.leader_elect != defaults.leader_elect:
        elect = args.leader_elect
    if not elect:
        return None
    overrides = {
        field: getattr(args, flag)
        for field, flag in (
            ("lease_duration", "leader_elect_lease_duration"),
            ("renew_deadline", "leader_elect_renew_deadline"),
            ("retry_period", "leader_elect_retry_period"),
        )
        if getattr(args, flag) != getattr(defaults, flag)
    }
    return dataclasses.replace(settings.election, **overrides)


async def _run_controller_manager(args: argparse.Namespace) -> int:
    from kajitori.cmd import controller_manager
    from kajitori.controllers import manager

    try:
        controllers = manager.select_controllers(args.controllers)
    except ValueError as exc:
        print(f"kajitori: {exc}", file=sys.stderr)
        return 2
    stop = _stop_on_signals()
    tune_gc()
    election = _election(args, manager.COMPONENT)
    options: dict[str, dict[str, Any]] = {}
    if args.cluster_cidr:
        options["nodeipam"] = {"cluster_cidr": args.cluster_cidr}
    if args.cluster_signing_cert_file or args.cluster_signing_key_file:
        signing = _signing_options(args)
        if signing is None:
            return 2
        options["csrsigning"] = signing
    kept = await controller_manager.run(
        args.kubeconfig, stop, controllers=controllers, election=election, options=options
    )
    return 0 if kept else _lost_leadership(manager.COMPONENT)


def _signing_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The CSR signer's CA pair and duration from upstream's --cluster-signing-* flags
    (decision 0080); None, after saying why, when they cannot be used."""
    from kajitori.auth import pki

    if not (args.cluster_signing_cert_file and args.cluster_signing_key_file):
        print(
            "kajitori: --cluster-signing-cert-file and --cluster-signing-key-file go together",
            file=sys.stderr,
        )
        return None
    try:
        ca = pki.load_cert_and_key(args.cluster_signing_cert_file, args.cluster_signing_key_file)
    except (OSError, ValueError) as exc:
        print(f"kajitori: cannot load the cluster signing CA: {exc}", file=sys.stderr)
        return None
    return {"ca": ca, "duration": datetime.timedelta(seconds=args.cluster_signing_duration)}


def _lost_leadership(component: str) -> int:
    print(f"kajitori: {component}: leaderelection lost", file=sys.stderr, flush=True)
    return 1
