"""CONNECT requests' options objects, as upstream's parameter codec decodes them from the URL."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest

from kajitori.server.handlers import connect_admission
from kajitori.server.request_info import new_request_info


def options(method: str, url: str) -> dict[str, Any]:
    path, _, query = url.partition("?")
    info = new_request_info(method, path, {})
    assert connect_admission.is_connect(info)
    parsed = urllib.parse.parse_qs(query, keep_blank_values=True)
    return connect_admission.options_object(info, parsed)


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        pytest.param(
            "POST",
            "/api/v1/namespaces/a/pods/p/exec?command=sh&command=-c&command=ls&stdin=true"
            "&stdout=1&stderr=false&tty=true&container=c",
            {
                "kind": "PodExecOptions",
                "apiVersion": "v1",
                "stdin": True,
                "stdout": True,
                "tty": True,
                "container": "c",
                "command": ["sh", "-c", "ls"],
            },
            id="exec",
        ),
        pytest.param(
            "GET",
            "/api/v1/namespaces/a/pods/p/exec?stdout=true",
            {"kind": "PodExecOptions", "apiVersion": "v1", "stdout": True, "command": None},
            id="exec-without-command",
        ),
        pytest.param(
            "GET",
            "/api/v1/namespaces/a/pods/p/attach?stdin=true&container=main",
            {"kind": "PodAttachOptions", "apiVersion": "v1", "stdin": True, "container": "main"},
            id="attach",
        ),
        pytest.param(
            "GET",
            "/api/v1/namespaces/a/pods/p/portforward?ports=8080&ports=9090",
            {"kind": "PodPortForwardOptions", "apiVersion": "v1", "ports": [8080, 9090]},
            id="portforward",
        ),
        pytest.param(
            "GET",
            "/api/v1/namespaces/a/pods/p:80/proxy/x/y/",
            {"kind": "PodProxyOptions", "apiVersion": "v1", "path": "/x/y/"},
            id="pod-proxy-subpath",
        ),
        pytest.param(
            "GET",
            "/api/v1/namespaces/a/pods/p/proxy",
            {"kind": "PodProxyOptions", "apiVersion": "v1"},
            id="pod-proxy",
        ),
        pytest.param(
            "GET",
            "/api/v1/nodes/n/proxy/metrics",
            {"kind": "NodeProxyOptions", "apiVersion": "v1", "path": "/metrics"},
            id="node-proxy",
        ),
        pytest.param(
            "PUT",
            "/api/v1/namespaces/a/services/https:s:443/proxy/",
            {"kind": "ServiceProxyOptions", "apiVersion": "v1", "path": "/"},
            id="service-proxy-slash",
        ),
    ],
)
def test_options_objects(method: str, url: str, expected: dict[str, Any]) -> None:
    assert options(method, url) == expected


def test_logs_and_other_subresources_are_not_connect() -> None:
    for path in ("/api/v1/namespaces/a/pods/p/log", "/api/v1/namespaces/a/pods/p/status"):
        assert not connect_admission.is_connect(new_request_info("GET", path, {}))
