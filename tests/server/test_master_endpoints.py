"""The API server publishes itself as the ``default/kubernetes`` Endpoints and EndpointSlice."""

from __future__ import annotations

import pytest

from kajitori.client import rest
from kajitori.cmd.apiserver import APIServerProcess
from kajitori.server import master_endpoints


@pytest.mark.parametrize(
    ("bind", "expected"),
    [
        pytest.param("10.1.2.3", "10.1.2.3", id="routable-bind-address-as-is"),
        pytest.param("169.254.1.1", None, id="link-local-never"),
        pytest.param("::1", master_endpoints.advertise_address("127.0.0.1"), id="loopback-v6"),
    ],
)
def test_the_advertised_address_is_never_loopback_or_link_local(
    bind: str, expected: str | None
) -> None:
    """A routable bind address is advertised as is; loopback ones use the host's interface."""
    assert master_endpoints.advertise_address(bind) == expected
    chosen = master_endpoints.advertise_address("127.0.0.1")
    assert chosen is None or not chosen.startswith("127.")


async def test_the_kubernetes_endpoints_and_slice_point_at_this_server(
    apiserver: APIServerProcess,
) -> None:
    """Both objects hold the advertised address and the serving port, named https."""
    address = master_endpoints.advertise_address("127.0.0.1")
    if address is None:
        pytest.skip("this host has no non-loopback IPv4 address to advertise")
    assert apiserver.http is not None and apiserver.pki is not None
    client = rest.Client.in_process(
        apiserver.http.app, client_cert_pem=apiserver.pki.admin.cert_pem
    )
    try:
        endpoints = await client.get(rest.ENDPOINTS, "kubernetes", namespace="default")
        slice_ = await client.get(rest.ENDPOINTSLICES, "kubernetes", namespace="default")
    finally:
        await client.aclose()
    port = apiserver.http.port
    assert endpoints["subsets"] == [
        {
            "addresses": [{"ip": address}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }
    ]
    assert slice_["metadata"]["labels"] == {"kubernetes.io/service-name": "kubernetes"}
    assert slice_["endpoints"][0]["addresses"] == [address]
    assert slice_["ports"] == [{"name": "https", "port": port, "protocol": "TCP"}]
