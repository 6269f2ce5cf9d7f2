"""ResumingContext: a second connection to a server resumes the first's TLS session, client cert kept."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from kajitori.auth import pki
from kajitori.client import tls_sessions


def _write(directory: Path, name: str, pair: pki.CertAndKey) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    cert.write_bytes(pair.cert_pem)
    key.write_bytes(pair.key_pem)
    return cert, key


async def test_a_second_connection_resumes_and_the_server_still_sees_the_client(
    tmp_path: Path,
) -> None:
    ca = pki.generate_ca()
    serving = pki.issue_serving_cert(ca, dns_names=[], ip_addresses=["127.0.0.1"])
    client = pki.issue_client_cert(ca, user="kube-apiserver-kubelet-client", groups=[])
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(*_write(tmp_path, "server", serving))
    server_context.load_verify_locations(cadata=ca.cert_pem.decode())
    server_context.verify_mode = ssl.CERT_REQUIRED
    peers: list[bytes | None] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("ssl_object").getpeercert(binary_form=True))
        writer.write(b"hello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    context = tls_sessions.client_context(cadata=ca.cert_pem.decode())
    context.load_cert_chain(*_write(tmp_path, "client", client))
    reused = []
    try:
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
            assert await reader.read() == b"hello"  # reading also takes the server's tickets
            reused.append(writer.get_extra_info("ssl_object").session_reused)
            writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert reused == [False, True, True]
    expected = ssl.PEM_cert_to_DER_cert(client.cert_pem.decode())
    assert peers == [expected] * 3


async def test_a_wrong_server_is_still_refused(tmp_path: Path) -> None:
    """The context keeps create_default_context's checks: another CA's server fails."""
    ours, theirs = pki.generate_ca(), pki.generate_ca()
    serving = pki.issue_serving_cert(theirs, dns_names=[], ip_addresses=["127.0.0.1"])
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(*_write(tmp_path, "server", serving))

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    context = tls_sessions.client_context(cadata=ours.cert_pem.decode())
    try:
        try:
            await asyncio.open_connection("127.0.0.1", port, ssl=context)
        except ssl.SSLCertVerificationError:
            pass
        else:
            raise AssertionError("a server of another CA was accepted")
    finally:
        server.close()
        await server.wait_closed()
