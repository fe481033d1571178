"""AsyncConn's connect stage: refused, timed out (and named by stage), a peer that is not nsqd,
IPv6."""

import asyncio

import pytest
from fake_nsqd import FakeNSQD, run

from nsqcli.lib.conn import AsyncConn, ConnectError
from nsqcli.lib.errors import NSQTimeoutError, ProtocolError


def test_http_server_on_the_tcp_port_is_named():
    async def main():
        async def http_server(peer):
            await peer.stream.read_bytes(4, partial=True)
            peer.stream.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

        async with FakeNSQD(http_server) as fake:
            conn = AsyncConn(fake.host, fake.port)
            with pytest.raises(ProtocolError, match="an nsqd TCP endpoint is required"):
                await conn.wait_ready(2)
            assert conn.closed()
    run(main())


def test_connection_refused():
    async def main():
        async with FakeNSQD() as fake:
            port = fake.port
        conn = AsyncConn("127.0.0.1", port)
        seen = []
        conn.on("error", lambda **kw: seen.append("error"))
        conn.on("close", lambda **kw: seen.append("close"))
        with pytest.raises(ConnectError, match=f"127.0.0.1:{port}"):
            await conn.wait_ready(2)
        assert seen == ["error", "close"]
        assert conn.closed()
    run(main())


async def silent_after_identify(peer):
    await peer.expect("IDENTIFY")
    await asyncio.sleep(10)


def test_identify_timeout_names_the_stage():
    async def main():
        async with FakeNSQD(silent_after_identify) as fake:
            conn = AsyncConn(fake.host, fake.port, timeout=0.2)
            with pytest.raises(NSQTimeoutError, match="during IDENTIFY") as info:
                await conn.wait_ready(2)
            assert info.value.stage == "during IDENTIFY"
    run(main())


def test_connect_timeout_names_the_stage(monkeypatch):
    from tornado.tcpclient import TCPClient
    from tornado.util import TimeoutError as TornadoTimeoutError

    async def times_out(self, *args, timeout=None, **kwargs):
        assert timeout == 0.1  # the connect stage's timeout is tornado's, which cleans up
        await asyncio.sleep(timeout)
        raise TornadoTimeoutError("Timeout while connecting")

    monkeypatch.setattr(TCPClient, "connect", times_out)

    async def main():
        conn = AsyncConn("127.0.0.1", 4150, timeout=0.1)
        with pytest.raises(NSQTimeoutError, match="while connecting"):
            await conn.wait_ready(2)
    run(main())


def test_a_stage_timing_out_as_wait_ready_gives_up_is_the_error_raised(monkeypatch):
    """The stage timer and wait_ready's own bound firing in one loop iteration (the Publisher
    caps the stage timeout at its connect_timeout): the stage's error, never a bare
    TimeoutError. The wait is replaced by one that fails the handshake and then times out."""
    import nsqcli.lib.conn as conn_module

    async def main():
        async with FakeNSQD(silent_after_identify) as fake:
            conn = AsyncConn(fake.host, fake.port, timeout=5)
            conn.connect()
            await fake.wait_for("IDENTIFY")
            wait_for = asyncio.wait_for

            async def both_fire(awaitable, timeout):
                conn._stage_timed_out("during IDENTIFY")  # what the stage timer does
                awaitable.cancel()  # and what wait_for does at its deadline
                raise asyncio.TimeoutError

            monkeypatch.setattr(conn_module.asyncio, "wait_for", both_fire)
            try:
                with pytest.raises(NSQTimeoutError, match="during IDENTIFY"):
                    await conn.wait_ready(5)
            finally:
                monkeypatch.setattr(conn_module.asyncio, "wait_for", wait_for)
    run(main())


def _half_open_to(port: int) -> int:
    """Sockets of this machine still trying to connect (SYN_SENT) to 127.0.0.1:``port``."""
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(1 for row in rows if row[2] == f"0100007F:{port:04X}" and row[3] == "02")


def test_connect_timeout_closes_the_attempt():
    """A listener whose accept queue is full drops the SYN: after the connect stage timed out
    no socket keeps trying (the cancelled attempt's socket was left for the GC on 3.10)."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    with listener, socket.create_connection(("127.0.0.1", port)):  # fills the accept queue
        async def main():
            conn = AsyncConn("127.0.0.1", port, timeout=0.3)
            with pytest.raises(NSQTimeoutError, match="while connecting"):
                await conn.wait_ready(2)
            return _half_open_to(port)
        assert run(main()) == 0


def test_ipv6():
    import socket

    if not socket.has_ipv6:
        pytest.skip("no IPv6")

    async def main():
        try:
            fake = await FakeNSQD(host="::1").start()
        except OSError:
            pytest.skip("::1 not available")
        try:
            conn = AsyncConn("::1", fake.port)
            await conn.wait_ready(2)
            assert conn.id == f"[::1]:{fake.port}"
            assert await conn.publish("t", b"v6") == b"OK"
            conn.close()
        finally:
            await fake.stop()
    run(main())
