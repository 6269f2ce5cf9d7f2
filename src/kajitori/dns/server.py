"""The cluster DNS component: informers feeding ``records.Records``, served over UDP and TCP.

CoreDNS's role in a cluster, reduced to its ``kubernetes`` plugin. Wire
format is dnspython's (``dns.message``): maintained, typed, and it also
gives the tests a real resolver. Each query is answered from the
informers' caches without awaiting, so one task serves UDP and one task
per TCP connection (RFC 1035 two-byte length framing, several queries per
connection). Authoritative (AA) answers for the cluster zone; NXDOMAIN and
empty answers carry the zone's SOA so resolvers cache the negative result
for the TTL. A name outside the zone is REFUSED: this server forwards
nothing, so no query leaves the machine. A UDP answer larger than the
client's limit (512 bytes, or its EDNS payload size) is truncated with TC
set, and the client retries over TCP.

Start with ``ClusterDNS(client, host=..., port=0)``, ``await start()``
(binds, then starts the informers; ``port`` then holds the bound port), and
``await stop()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import typing

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from kajitori.client import informer, rest
from kajitori.dns import records

log = logging.getLogger(__name__)

_TYPES: dict[int, records.RecordType] = {
    dns.rdatatype.A: "A",
    dns.rdatatype.SRV: "SRV",
    dns.rdatatype.CNAME: "CNAME",
    dns.rdatatype.PTR: "PTR",
}
UDP_LIMIT = 512


def answer_query(table: records.Records, wire: bytes, *, max_size: int = 65535) -> bytes | None:
    """The wire response to one wire query (None for garbage that has no ID to answer)."""
    try:
        query = dns.message.from_wire(wire)
    except dns.exception.DNSException:
        return None
    response = dns.message.make_response(query)
    if len(query.question) != 1 or query.opcode() != 0:
        response.set_rcode(dns.rcode.NOTIMP if query.opcode() != 0 else dns.rcode.FORMERR)
        return response.to_wire()
    question = query.question[0]
    qname = question.name.to_text()
    if not table.in_zone(qname):
        response.set_rcode(dns.rcode.REFUSED)
        return response.to_wire()
    response.flags |= dns.flags.AA
    _fill(response, table, question.name, question.rdtype)
    if query.edns >= 0:
        max_size = min(max_size, max(query.payload, UDP_LIMIT))
    try:
        return response.to_wire(max_size=max_size)
    except dns.exception.TooBig:
        response.answer.clear()
        response.additional.clear()
        response.flags |= dns.flags.TC
        return response.to_wire(max_size=max_size)


def _fill(
    response: dns.message.Message, table: records.Records, qname: dns.name.Name, rdtype: int
) -> None:
    rtype = _TYPES.get(rdtype)
    answer = table.lookup(qname.to_text(), rtype or "A")
    if rtype is None:  # AAAA, TXT, ...: the name may exist, but never with this type
        answer = records.Answer(answer.exists)
    if not answer.exists:
        response.set_rcode(dns.rcode.NXDOMAIN)
    for record in answer.records:
        response.answer.append(_rrset(record))
    for record in answer.additional:
        response.additional.append(_rrset(record))
    if not answer.records:
        response.authority.append(_soa(table.zone))


def _rrset(record: records.Record) -> dns.rrset.RRset:
    if record.type == "SRV":
        text = f"0 100 {record.port} {record.data}."
    elif record.type == "A":
        text = record.data
    else:
        text = f"{record.data}."
    return dns.rrset.from_text(f"{record.name}.", records.TTL, "IN", record.type, text)


def _soa(zone: str) -> dns.rrset.RRset:
    # CoreDNS's kubernetes plugin SOA: ns.dns.<zone> hostmaster.<zone>, negative TTL 5.
    text = f"ns.dns.{zone}. hostmaster.{zone}. 1 7200 1800 86400 {records.TTL}"
    return dns.rrset.from_text(f"{zone}.", records.TTL, "IN", "SOA", text)


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, table: records.Records) -> None:
        self.table = table
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = answer_query(self.table, data, max_size=UDP_LIMIT)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


class ClusterDNS:
    """Cluster DNS over UDP and TCP on ``host:port`` (port 0: any free one, same for both)."""

    def __init__(
        self,
        client: rest.Client,
        *,
        host: str = "127.0.0.1",
        port: int = 53,
        zone: str = records.ZONE,
    ) -> None:
        self.client = client
        self.host = host
        self.port = port
        self.factory = informer.InformerFactory(client, transform=informer.strip_managed_fields)
        services = self.factory.informer(rest.SERVICES)
        slices = self.factory.informer(rest.ENDPOINTSLICES)
        pods = self.factory.informer(rest.PODS)
        self.records = records.Records(services.indexer, slices.indexer, pods.indexer, zone=zone)
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind UDP and TCP (the same port), then start the informers."""
        loop = asyncio.get_running_loop()
        self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port)
        self.port = self._tcp.sockets[0].getsockname()[1]
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _UDP(self.records), local_addr=(self.host, self.port)
        )
        self.factory.start()

    async def wait_for_sync(self) -> None:
        await self.factory.wait_for_sync()

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
        await self.factory.stop()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                reply = answer_query(self.records, await reader.readexactly(length))
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
