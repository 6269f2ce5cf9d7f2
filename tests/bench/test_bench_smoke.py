"""``python -m bench.api --quick`` runs end to end and writes a complete JSON report.

Only the report's shape is checked, never a timing: the figures depend on
the machine and on whoever else is using it. Cells are made tiny so the run
stays a few seconds of load.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CONCURRENCY = [1, 16, 64]
OPERATIONS = ["noop", "create", "get", "list_small", "list_large"]
OPERATION_ROW = [
    "concurrency", "requests", "seconds", "rps", "p50_ms", "p99_ms", "statuses", "errors",
    "server_cpu_us_per_request",
]  # fmt: skip
WATCH_ROW = [
    "concurrency", "watchers", "writes", "writes_per_second", "events_expected",
    "events_delivered", "events_missing", "delivered_before_ack", "p50_ms", "p99_ms", "max_ms",
    "signed_from_ack_p50_ms", "from_send_p50_ms", "from_send_p99_ms", "fanout_spread_p99_ms",
]  # fmt: skip
STARTUP = [
    "cold_ready_line_s", "cold_first_request_s", "warm_ready_line_s", "warm_first_request_s",
    "idle_rss_mb", "peak_rss_mb",
]  # fmt: skip
RAW_WRITES = ["how", "concurrency", "writes", "writes_per_second", "p50_ms", "p99_ms", "errors"]
SQLITE_TARGETS = {
    "create_vs_noop", "get_vs_noop", "watch_p99_c1", "watch_p99_c16", "watch_p99_c64",
    "ready_line", "first_request", "idle_rss",
}  # fmt: skip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One quick sqlite run with tiny cells, shared by every test here."""
    output = tmp_path_factory.mktemp("bench") / "api.json"
    command = [
        *(sys.executable, "-m", "bench.api", "--quick", "--backends", "sqlite"),
        *("--seconds", "0.2", "--small-list", "10", "--large-list", "30", "--watchers", "3"),
        *("--output", str(output)),
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"wrote {output}" in done.stdout
    loaded: dict[str, Any] = json.loads(output.read_text())
    return loaded


def test_report_describes_the_run(report: dict[str, Any]) -> None:
    """The top level names the benchmark, date, machine, plan and the no-op endpoint choice."""
    assert report["benchmark"] == "api"
    assert report["machine"]["cores"] >= 1
    assert report["plan"]["backends"] == ["sqlite"]
    assert report["plan"]["concurrency"] == CONCURRENCY
    assert report["noop_endpoint"].startswith("GET /healthz")
    assert list(report["backends"]) == ["sqlite"]
    assert report["plan"]["server_command"] == "up"


def test_server_option_chooses_the_command_benchmarked(tmp_path: Path) -> None:
    """``--server apiserver`` benchmarks the API server alone: that process is what starts."""
    script = f"""
from pathlib import Path
from bench import api, common
plan, _ = api.parse_plan(["--server", "apiserver"])
assert api.parse_plan([])[0].server_command == "up"
server = common.ServerProcess(Path({str(tmp_path / "data")!r}), command=plan.server_command, core=None)
server.start()
try:
    print(Path(f"/proc/{{server.pid}}/cmdline").read_bytes().split(b"\\0")[1:4])
finally:
    server.stop()
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip() == "[b'-m', b'kajitori', b'apiserver']"


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_operation_has_a_full_row_per_concurrency(
    report: dict[str, Any], operation: str
) -> None:
    """Each operation is measured at 1, 16 and 64 and every row carries every figure."""
    rows = report["backends"]["sqlite"]["operations"][operation]
    assert [row["concurrency"] for row in rows] == CONCURRENCY
    for row in rows:
        assert set(OPERATION_ROW) <= set(row)
        assert row["requests"] > 0
        assert set(row["statuses"]) <= {"200", "201"}


@pytest.mark.parametrize(
    ("operation", "objects"),
    [pytest.param("list_small", 10, id="small"), pytest.param("list_large", 30, id="large")],
)
def test_list_rows_record_how_many_objects_were_listed(
    report: dict[str, Any], operation: str, objects: int
) -> None:
    """List rows carry the namespace size they were measured on."""
    rows = report["backends"]["sqlite"]["operations"][operation]
    assert {row["objects"] for row in rows} == {objects}


def test_watch_rows_account_for_every_event(report: dict[str, Any]) -> None:
    """Each watch row has every figure and every acknowledged write reached every watcher."""
    rows = report["backends"]["sqlite"]["watch"]
    assert [row["concurrency"] for row in rows] == CONCURRENCY
    for row in rows:
        assert set(WATCH_ROW) <= set(row)
        assert row["watchers"] == 3
        assert row["events_expected"] == row["writes"] * 3
        assert row["events_missing"] == 0


@pytest.mark.parametrize(
    ("section", "keys"),
    [
        pytest.param("startup", STARTUP, id="startup"),
        pytest.param("raw_writes", RAW_WRITES, id="raw-writes"),
    ],
)
def test_floor_and_startup_sections_are_complete(
    report: dict[str, Any], section: str, keys: list[str]
) -> None:
    """Startup/memory and the raw backend write floor carry every figure."""
    assert set(keys) <= set(report["backends"]["sqlite"][section])


def test_targets_and_ratios_are_all_judged(report: dict[str, Any]) -> None:
    """Every sqlite target is present with a figure, a threshold and a verdict."""
    result = report["backends"]["sqlite"]
    assert {t["id"] for t in result["targets"]} == SQLITE_TARGETS
    for target in result["targets"]:
        assert isinstance(target["met"], bool)
        assert isinstance(target["value"], float | int)
    assert set(result["ratios"]) == {
        *(f"{op}_vs_noop" for op in OPERATIONS if op != "noop"),
        *(f"{op}_vs_noop_by_cpu" for op in OPERATIONS if op != "noop"),
        "create_vs_raw_writes",
    }


def test_ratio_targets_come_from_alternating_rounds(report: dict[str, Any]) -> None:
    """The create and get targets are the medians of alternating c=64 rounds' figures."""
    result = report["backends"]["sqlite"]
    rounds = result["ratio_rounds"]
    assert len(rounds["rounds"]) == report["plan"]["ratio_rounds"] == 1
    for cells in rounds["rounds"]:
        assert list(cells) == ["noop", "create", "get"]
        assert all(cell["rps"] > 0 and cell["errors"] == 0 for cell in cells.values())
    median = rounds["median"]
    by_id = {t["id"]: t["value"] for t in result["targets"]}
    assert by_id["create_vs_noop"] == round(median["create"]["rps"] / median["noop"]["rps"], 3)
    assert by_id["get_vs_noop"] == round(median["get"]["rps"] / median["noop"]["rps"], 3)
    assert set(result["interleaved_ratios"]) == {
        "create_vs_noop", "create_vs_noop_by_cpu", "get_vs_noop", "get_vs_noop_by_cpu",
        "create_vs_raw_writes",
    }  # fmt: skip


def test_bare_floor_is_measured_beside_the_server(report: dict[str, Any]) -> None:
    """Floor (c): the bare server's no-op, create and get rounds, and the ceilings they set."""
    result = report["backends"]["sqlite"]
    bare = result["bare_floor"]
    assert len(bare["rounds"]) == report["plan"]["ratio_rounds"]
    for cells in bare["rounds"]:
        assert list(cells) == ["noop", "create", "get"]
        # A create that failed (a name taken) or a get that found nothing would be an error
        # row: the floor must do the work it stands for.
        assert all(cell["rps"] > 0 and cell["errors"] == 0 for cell in cells.values())
    noop = result["ratio_rounds"]["median"]["noop"]
    ceilings = result["ceilings"]
    assert ceilings["bare_create_vs_noop"] == round(
        bare["median"]["create"]["rps"] / noop["rps"], 3
    )
    assert set(ceilings) == {
        f"bare_{op}_vs_{floor}" for op in ("create", "get")
        for floor in ("noop", "noop_by_cpu", "bare_noop")
    }  # fmt: skip


def test_bare_floor_stores_and_reads_what_it_is_sent(tmp_path: Path) -> None:
    """The bare app answers a create with the object stored (uid, resourceVersion) and a get
    with the stored bytes, from the storage backend the API server uses."""
    script = f"""
import http.client, json
from pathlib import Path
from bench import bare_floor, common
data = Path({str(tmp_path / "data")!r})
server = common.ServerProcess(data, command="apiserver", core=None)
server.start()  # makes the PKI the bare server serves with
server.stop()
bare = bare_floor.BareServer(data, ["--sqlite", {str(tmp_path / "bare.db")!r}])
bare.core = None
bare.start()
try:
    answers = []
    for method, body in (("POST", b'{{"metadata":{{"name":"a"}}}}'), ("GET", b"")):
        path = "/api/v1/namespaces/x/configmaps" + ("/a" if method == "GET" else "")
        conn = http.client.HTTPSConnection("127.0.0.1", bare.port, context=common.client_ssl_context(data))
        conn.request(method, path, body, {{"content-type": "application/json"}})
        response = conn.getresponse()
        answers.append([response.status, json.loads(response.read())])
    print(json.dumps(answers))
finally:
    bare.stop()
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-4000:]
    (created_status, created), (read_status, stored) = json.loads(done.stdout)
    assert (created_status, read_status) == (201, 200)
    assert created["metadata"]["resourceVersion"].isdigit()
    assert len(created["metadata"]["uid"]) == 36
    assert stored["metadata"]["uid"] == created["metadata"]["uid"]
    assert "resourceVersion" not in stored["metadata"]
