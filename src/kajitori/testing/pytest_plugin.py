"""pytest plugin: a real Kubernetes API (a kajitori cluster) for your tests.

Installed with kajitori and loaded through the ``pytest11`` entry point, so a
project that depends on kajitori gets these fixtures without a conftest. The
plugin starts nothing by itself: no fixture is autouse, and the server code is
imported only when a test first asks for a cluster.

Fixtures (each cluster is an ``InProcessCluster``, ``testing/inprocess.py``:
the API server and, unless turned off, the controllers and the scheduler, on
a thread of the test process, with its own port and data directory):

* ``kajitori_cluster`` — one cluster for the whole session;
* ``kajitori_module_cluster`` — a fresh cluster per test module;
* ``kajitori_test_cluster`` — a fresh cluster per test;
* ``kajitori_cluster_factory`` — ``factory(controllers=False, nodes=2)`` starts
  more clusters in a test; all are stopped when the test ends;
* ``kajitori_kubeconfig`` — the session cluster's kubeconfig path;
* ``kajitori_api_client`` — an official ``kubernetes`` ApiClient for the
  session cluster.

What a cluster runs comes from, in increasing precedence: the ini options
``kajitori_controllers`` / ``kajitori_nodes``, the command line
``--kajitori-controllers=on|off`` / ``--kajitori-nodes=N``, and, for the module
and per-test clusters, ``@pytest.mark.kajitori(controllers=..., nodes=...,
scheduler=...)`` on the test or the module (``pytestmark``).

At the end of the run the terminal summary reports how many clusters were
started and their time to ready.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from kajitori.testing import inprocess

if TYPE_CHECKING:
    from kubernetes import client as k8s_client

MARKER = "kajitori"
_ON = ("on", "true", "yes", "1")
_OFF = ("off", "false", "no", "0")


@dataclasses.dataclass
class _Started:
    label: str
    ready_seconds: float


_STARTED = pytest.StashKey[list[_Started]]()
_KEY_DIR = pytest.StashKey[Path]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kajitori", "kajitori test clusters")
    group.addoption(
        "--kajitori-controllers",
        choices=("on", "off"),
        default=None,
        help="run the controller manager and scheduler in kajitori test clusters "
        "(default: the kajitori_controllers ini option, else on)",
    )
    group.addoption(
        "--kajitori-nodes",
        type=int,
        default=None,
        help="simulated nodes per kajitori test cluster (default: the kajitori_nodes ini "
        "option, else 0)",
    )
    parser.addini(
        "kajitori_controllers", "on/off: controllers in kajitori test clusters", default="on"
    )
    parser.addini("kajitori_nodes", "simulated nodes per kajitori test cluster", default="0")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(controllers=True, nodes=0, scheduler=None): what the kajitori_module_cluster "
        "and kajitori_test_cluster fixtures run",
    )
    config.stash[_STARTED] = []


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    started = config.stash.get(_STARTED, [])
    if not started:
        return
    times = [entry.ready_seconds for entry in started]
    terminalreporter.write_line(
        f"kajitori: {len(started)} cluster(s) started; time to ready: first {times[0]:.2f}s, "
        f"median {statistics.median(times):.2f}s, max {max(times):.2f}s"
    )
    if config.get_verbosity() > 0:
        for entry in started:
            terminalreporter.write_line(f"kajitori:   {entry.ready_seconds:.2f}s  {entry.label}")


def default_options(config: pytest.Config) -> inprocess.ClusterOptions:
    """The command line's options, else the ini file's."""
    controllers = config.getoption("kajitori_controllers") or config.getini("kajitori_controllers")
    nodes = config.getoption("kajitori_nodes")
    if nodes is None:
        nodes = config.getini("kajitori_nodes")
    return inprocess.ClusterOptions(controllers=_on_off(str(controllers)), nodes=int(nodes))


def _on_off(value: str) -> bool:
    if value.lower() in _ON:
        return True
    if value.lower() in _OFF:
        return False
    raise pytest.UsageError(f"kajitori_controllers: expected on or off, got {value!r}")


def _options_for(
    node: pytest.Item | pytest.Collector, config: pytest.Config
) -> inprocess.ClusterOptions:
    """The defaults, overridden by the closest ``kajitori`` marker's keywords."""
    options = default_options(config)
    marker = node.get_closest_marker(MARKER)
    if marker is None:
        return options
    if marker.args:
        raise pytest.UsageError(f"@pytest.mark.{MARKER} takes keyword arguments only")
    return _replace(options, marker.kwargs, what=f"@pytest.mark.{MARKER}")


def _replace(
    options: inprocess.ClusterOptions, overrides: Mapping[str, Any], *, what: str
) -> inprocess.ClusterOptions:
    known = {field.name for field in dataclasses.fields(options)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise pytest.UsageError(
            f"{what}: unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    return dataclasses.replace(options, **overrides)


def _start(
    config: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
    options: inprocess.ClusterOptions,
    *,
    label: str,
) -> inprocess.InProcessCluster:
    """A started cluster in a fresh data directory, recorded for the summary."""
    data_dir = tmp_path_factory.mktemp("kajitori")
    cluster = inprocess.InProcessCluster(
        data_dir, options, signing_key_dir=_signing_key_dir(config, tmp_path_factory)
    )
    cluster.start()
    assert cluster.ready_seconds is not None
    config.stash[_STARTED].append(_Started(label, cluster.ready_seconds))
    return cluster


def _signing_key_dir(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One service-account key for the session's clusters (see ``InProcessCluster``)."""
    if _KEY_DIR not in config.stash:
        config.stash[_KEY_DIR] = inprocess.make_signing_key(
            tmp_path_factory.mktemp("kajitori-signing-key")
        )
    return config.stash[_KEY_DIR]


@pytest.fixture(scope="session")
def kajitori_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[inprocess.InProcessCluster]:
    """One kajitori cluster shared by the whole session (command-line / ini options)."""
    cluster = _start(
        request.config, tmp_path_factory, default_options(request.config), label="session"
    )
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def kajitori_module_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[inprocess.InProcessCluster]:
    """A kajitori cluster for this test module; the module's ``kajitori`` marker applies."""
    options = _options_for(request.node, request.config)
    cluster = _start(request.config, tmp_path_factory, options, label=request.node.nodeid)
    yield cluster
    cluster.stop()


@pytest.fixture
def kajitori_test_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[inprocess.InProcessCluster]:
    """A kajitori cluster for this test alone; the test's ``kajitori`` marker applies."""
    options = _options_for(request.node, request.config)
    cluster = _start(request.config, tmp_path_factory, options, label=request.node.nodeid)
    yield cluster
    cluster.stop()


ClusterFactory = Callable[..., inprocess.InProcessCluster]


@pytest.fixture
def kajitori_cluster_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClusterFactory]:
    """``factory(**options)`` starts another cluster; every one is stopped after the test.

    Keywords are ``ClusterOptions`` fields (``controllers``, ``scheduler``,
    ``nodes``, ``api_versions``) and override the command-line / ini defaults.
    """
    clusters: list[inprocess.InProcessCluster] = []

    def factory(**overrides: Any) -> inprocess.InProcessCluster:
        options = _replace(default_options(request.config), overrides, what="factory")
        label = f"{request.node.nodeid} (factory #{len(clusters) + 1})"
        clusters.append(_start(request.config, tmp_path_factory, options, label=label))
        return clusters[-1]

    yield factory
    for cluster in reversed(clusters):
        cluster.stop()


@pytest.fixture(scope="session")
def kajitori_kubeconfig(kajitori_cluster: inprocess.InProcessCluster) -> Path:
    """The session cluster's kubeconfig (admin credentials, its CA and URL)."""
    return kajitori_cluster.kubeconfig


@pytest.fixture(scope="session")
def kajitori_api_client(
    kajitori_cluster: inprocess.InProcessCluster,
) -> Iterator[k8s_client.ApiClient]:
    """An official ``kubernetes`` ApiClient configured for the session cluster."""
    api_client = kajitori_cluster.api_client()
    yield api_client
    api_client.close()
