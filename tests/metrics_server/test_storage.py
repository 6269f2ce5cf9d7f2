"""metrics-server's points and usage (metrics_server/prometheus.py, storage.py).

Two scrapes give a usage: CPU is the counter's growth over the window in
nanocores, memory the last working set, rendered as metrics-server renders
quantities (``3712766n``, ``5m``, ``30404Ki``). A restarted container starts
over, a young one gets a synthetic zero point at its start, an incomplete point
is dropped, and a pod needs every container's two points.
"""

from __future__ import annotations

from kajitori.metrics_server import prometheus, storage

T0 = 1_700_000_000.0


def text(t: float, node_cpu: float, cpu: float, memory: int, start: float = T0 - 100) -> str:
    ms = int(t * 1000)
    return f"""# HELP node_cpu_usage_seconds_total [STABLE] x
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total {node_cpu} {ms}
node_memory_working_set_bytes 1.34217728e+08 {ms}
container_cpu_usage_seconds_total{{container="app",namespace="shop",pod="web"}} {cpu} {ms}
container_memory_working_set_bytes{{container="app",namespace="shop",pod="web"}} {memory} {ms}
container_start_time_seconds{{container="app",namespace="shop",pod="web"}} {start}
container_cpu_usage_seconds_total{{container="x",namespace="shop",pod="nomem"}} 1 {ms}
pod_cpu_usage_seconds_total{{namespace="shop",pod="web"}} {cpu} {ms}
resource_scrape_error 0
"""


def scrape(
    store: storage.Storage, t: float, node_cpu: float, cpu: float, memory: int, **kw: float
) -> None:
    samples = prometheus.parse(text(t, node_cpu, cpu, memory, **kw))
    store.store(storage.decode("n1", samples, now=t))


def test_parse_reads_labels_values_and_timestamps() -> None:
    (sample,) = prometheus.parse('a_b{x="q\\"uote",y="1"} 2.5e+03 1700000000123\n# c\n')
    assert sample == prometheus.Sample("a_b", {"x": 'q"uote', "y": "1"}, 2500.0, 1700000000123)


def test_two_scrapes_give_usage_in_metrics_servers_formats() -> None:
    store = storage.Storage(15.0)
    scrape(store, T0, 10.0, 1.0, 31133696)
    assert store.node_usage("n1") is None and store.pod_usage("shop", "web") is None
    scrape(store, T0 + 15.001, 10.5, 1.0557, 31133696)
    node = store.node_usage("n1")
    assert node is not None and node.window == 15.001
    assert node.resources() == {"cpu": "33331111n", "memory": "128Mi"}
    got = store.pod_usage("shop", "web")
    assert got is not None
    earliest, containers = got
    assert earliest.timestamp == T0 + 15.001
    assert containers["app"].resources() == {"cpu": "3713085n", "memory": "30404Ki"}
    # The container without memory is dropped (incomplete point).
    assert store.pod_usage("shop", "nomem") is None
    readings = storage.Readings(store)
    assert readings.pod("shop", "web") == (
        T0 + 15.001,
        15.001,
        [("app", {"cpu": "3713085n", "memory": "30404Ki"})],
    )


def test_whole_millicores_render_as_m() -> None:
    assert storage.Usage(T0, 1.0, 5_000_000, 1025).resources() == {"cpu": "5m", "memory": "1025"}


def test_a_restart_starts_over_and_a_young_container_gets_a_zero_point() -> None:
    store = storage.Storage(15.0)
    scrape(store, T0, 1.0, 5.0, 1 << 20)
    scrape(store, T0 + 15, 2.0, 6.0, 1 << 20)
    assert store.pod_usage("shop", "web") is not None
    # Restarted at T0+20: no previous point for the new run until the next scrape.
    scrape(store, T0 + 40, 3.0, 0.5, 1 << 20, start=T0 + 20)
    assert store.pod_usage("shop", "web") is None
    scrape(store, T0 + 55, 4.0, 2.0, 1 << 20, start=T0 + 20)
    got = store.pod_usage("shop", "web")
    assert got is not None and got[1]["app"].cpu_nanocores == 100_000_000
    fresh = storage.Storage(15.0)
    # 12 s old at its first scrape (10 s <= age < resolution): usage at once, from zero.
    scrape(fresh, T0 + 12, 1.0, 1.2, 1 << 20, start=T0)
    got = fresh.pod_usage("shop", "web")
    assert got is not None and got[0].window == 12.0
    assert got[1]["app"].cpu_nanocores == 100_000_000


def test_a_counter_that_goes_back_gives_no_usage() -> None:
    store = storage.Storage(15.0)
    scrape(store, T0, 5.0, 5.0, 1 << 20)
    scrape(store, T0 + 15, 4.0, 6.0, 1 << 20)
    assert store.node_usage("n1") is None
