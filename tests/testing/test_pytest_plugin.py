"""The pytest plugin as a user meets it: a test file run by ``pytester`` with the plugin
loaded from its ``pytest11`` entry point, asking for clusters at each scope."""

from __future__ import annotations

import re
from collections import defaultdict

# pytester's in-process runs drop the modules they imported when they end; imported here
# first, the components and the official client are imported once, not once per run.
import kubernetes.client  # noqa: F401
import pytest

import kajitori.cmd.controller_manager
import kajitori.cmd.kubelet
import kajitori.cmd.scheduler  # noqa: F401

pytest_plugins = ["pytester"]

# Each test writes "module scope url data_dir" for every cluster it was given.
RECORDER = """
    import pathlib

    import pytest

    @pytest.fixture
    def record(request):
        def write(scope, cluster):
            with pathlib.Path("seen.txt").open("a") as seen:
                seen.write(f"{request.module.__name__} {scope} {cluster.url} {cluster.data_dir}\\n")

        return write
"""

SCOPES_A = """
    def test_session_and_module(record, kajitori_cluster, kajitori_module_cluster):
        record("session", kajitori_cluster)
        record("module", kajitori_module_cluster)

    def test_all_three(record, kajitori_cluster, kajitori_module_cluster, kajitori_test_cluster):
        record("session", kajitori_cluster)
        record("module", kajitori_module_cluster)
        record("test", kajitori_test_cluster)

    def test_another_test_cluster(record, kajitori_test_cluster):
        record("test", kajitori_test_cluster)
"""

SCOPES_B = """
    def test_other_module(record, kajitori_cluster, kajitori_module_cluster, kajitori_test_cluster):
        record("session", kajitori_cluster)
        record("module", kajitori_module_cluster)
        record("test", kajitori_test_cluster)
"""

CLIENTS = """
    import asyncio

    from kubernetes import client

    from kajitori.client import rest

    def test_kubeconfig_is_the_session_clusters(kajitori_kubeconfig, kajitori_cluster):
        assert kajitori_kubeconfig == kajitori_cluster.kubeconfig
        assert kajitori_cluster.url in kajitori_kubeconfig.read_text()

    def test_official_client(kajitori_api_client):
        names = {ns.metadata.name for ns in client.CoreV1Api(kajitori_api_client).list_namespace().items}
        assert {"default", "kube-system"} <= names

    def test_kajitori_client_in_the_tests_own_loop(kajitori_cluster):
        async def main():
            api = kajitori_cluster.rest_client()
            try:
                body = {"metadata": {"name": "from-rest"}, "data": {"k": "v"}}
                await api.create(rest.CONFIGMAPS, body, namespace="default")
                return await api.get(rest.CONFIGMAPS, "from-rest", namespace="default")
            finally:
                await api.aclose()

        assert asyncio.run(main())["data"] == {"k": "v"}
        out = kajitori_cluster.kubectl("get", "configmap", "from-rest", "-o", "jsonpath={.data.k}")
        assert out.stdout == "v"
"""

OPTIONS = """
    import pytest

    pytestmark = pytest.mark.kajitori(controllers=False)

    def test_module_marker(kajitori_module_cluster):
        assert kajitori_module_cluster.options.controllers is False

    @pytest.mark.kajitori(nodes=1, controllers=True)
    def test_test_marker_overrides_module_marker(kajitori_test_cluster):
        assert kajitori_test_cluster.options.nodes == 1
        assert kajitori_test_cluster.options.controllers is True

    def test_session_cluster_follows_the_command_line(kajitori_cluster):
        assert kajitori_cluster.options.nodes == 2
        assert kajitori_cluster.options.controllers is False
        assert kajitori_cluster.options.runs_scheduler is False

    def test_nodes_register(kajitori_cluster):
        out = kajitori_cluster.kubectl("get", "nodes", "-o", "name")
        assert out.stdout.split() == ["node/kajitori-worker", "node/kajitori-worker2"]
"""

# pytest-asyncio (installed beside the plugin) warns without this, and the
# outer run's filterwarnings turns that into an error.
INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"

SUMMARY = re.compile(
    r"kajitori: (\d+) cluster\(s\) started; time to ready: "
    r"first ([\d.]+)s, median ([\d.]+)s, max ([\d.]+)s"
)


def _summary(result: pytest.RunResult) -> tuple[int, float, float]:
    """(clusters started, median and max seconds to ready) from the terminal summary."""
    match = SUMMARY.search(result.stdout.str())
    assert match is not None, result.stdout.str()
    return int(match[1]), float(match[3]), float(match[4])


def test_each_scope_gets_its_own_cluster(pytester: pytest.Pytester) -> None:
    """Session clusters are shared by all, module ones per module, test ones per test."""
    pytester.makeini(INI)
    pytester.makeconftest(RECORDER)
    pytester.makepyfile(test_a=SCOPES_A, test_b=SCOPES_B)
    result = pytester.runpytest("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=4)
    urls: dict[tuple[str, str], set[str]] = defaultdict(set)
    data_dirs: set[str] = set()
    test_urls: list[str] = []
    for line in (pytester.path / "seen.txt").read_text().splitlines():
        module, scope, url, data_dir = line.split()
        urls[module, scope].add(url)
        data_dirs.add(data_dir)
        if scope == "test":
            test_urls.append(url)
    assert urls["test_a", "session"] == urls["test_b", "session"]
    assert len(urls["test_a", "session"]) == 1
    assert len(urls["test_a", "module"]) == len(urls["test_b", "module"]) == 1
    assert urls["test_a", "module"] != urls["test_b", "module"]
    assert len(set(test_urls)) == len(test_urls) == 3
    # session + two modules + three tests, each in its own data directory.
    assert len(data_dirs) == 6
    started, median, _ = _summary(result)
    assert started == 6
    # The product promise: a cluster is ready in well under a second (generous on a busy CI).
    assert median < 2.0
    result.stdout.fnmatch_lines(["kajitori:   *s  test_a.py::test_all_three"])


def test_clients_reach_the_session_cluster(pytester: pytest.Pytester) -> None:
    """The kubeconfig, the official client, the kajitori client and kubectl all reach it."""
    pytester.makeini(INI)
    pytester.makepyfile(test_clients=CLIENTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert _summary(result)[0] == 1


def test_markers_command_line_and_ini_choose_what_runs(pytester: pytest.Pytester) -> None:
    """Markers override the command line, which overrides the ini file."""
    pytester.makeini(INI + "kajitori_controllers = on\nkajitori_nodes = 0\n")
    pytester.makepyfile(test_options=OPTIONS)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--kajitori-controllers=off", "--kajitori-nodes=2"
    )
    result.assert_outcomes(passed=4)


def test_unknown_marker_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """A misspelt option names the known ones instead of starting a default cluster."""
    pytester.makeini(INI)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kajitori(controler=False)
        def test_typo(kajitori_test_cluster):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown option(s) controler (known: *controllers*)*"])


def test_nothing_starts_unless_asked(pytester: pytest.Pytester) -> None:
    """Loading the plugin imports no server code, starts no cluster and prints nothing."""
    pytester.makeini(INI)
    pytester.makepyfile(
        """
        import sys
        import threading

        def test_plain():
            assert "kajitori.testing.pytest_plugin" in sys.modules
            assert "kajitori.cmd.apiserver" not in sys.modules
            assert not [t for t in threading.enumerate() if t.name.startswith("kajitori")]
        """
    )
    # A fresh interpreter, so that the modules this outer run imported do not count.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "cluster(s) started" not in result.stdout.str()
