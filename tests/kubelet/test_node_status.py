"""What a Node says about the machine: simulated nodes as configured, real ones as this host."""

from __future__ import annotations

import datetime
import os
import shutil

from kajitori.kubelet import node_status
from kajitori.kubelet.runtimes.oci import runc

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def test_a_simulated_node_is_labelled_and_says_so() -> None:
    node = node_status.initial_node(node_status.NodeConfig("sim", "172.18.0.2"), NOW)
    assert node["metadata"]["labels"]["type"] == "kajitori-simulated"
    info = node["status"]["nodeInfo"]
    assert info["osImage"] == "kajitori simulated node"
    assert info["containerRuntimeVersion"] == "simulated://1.0.0"
    assert node["status"]["capacity"]["cpu"] == "8"


def test_a_real_node_reports_this_machine() -> None:
    config = node_status.this_machine("real", "172.18.0.2", runtime_version="runc://1.1.5")
    node = node_status.initial_node(config, NOW)
    assert "type" not in node["metadata"]["labels"]
    info = node["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"] == "runc://1.1.5"
    with open("/etc/os-release") as release:
        pretty = next(line for line in release if line.startswith("PRETTY_NAME="))
    assert info["osImage"] == pretty.partition("=")[2].strip().strip('"')
    capacity = node["status"]["capacity"]
    assert capacity["cpu"] == str(os.cpu_count())
    memory_kib = int(capacity["memory"].removesuffix("Ki"))
    assert memory_kib * 1024 == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert capacity["ephemeral-storage"] == f"{shutil.disk_usage('/').total // 1024}Ki"


def test_the_runtime_version_names_runc_and_its_version() -> None:
    version = runc.runtime_version()
    if shutil.which("runc") is None:
        assert version == "runc://unknown"
    else:
        assert version.startswith("runc://") and version[len("runc://") :][0].isdigit()
    assert runc.runtime_version("/nonexistent/runc") == "runc://unknown"
