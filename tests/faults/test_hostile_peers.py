"""Peers that misbehave at the TCP level: a reset in the middle of a frame, a peer that accepts
and then says nothing, a peer that stops heartbeating. Each ends in a clear, staged error, the
connection closed, and (for a Reader) a reconnect that carries on."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from fake_nsqd import FakeNSQD, FakePeer, run, silent_listener
from fault_helpers import reset_socket

from nsqcli.lib.conn import AsyncConn
from nsqcli.lib.protocol.errors import ConnectionClosedError, NSQTimeoutError
from nsqcli.lib.protocol.frames import encode_message
from nsqcli.lib.reader import Reader


def _half_frame_then_reset(frame: bytes):
    """A fake nsqd script: the first connection gets half of ``frame`` and a TCP reset, later
    ones get a whole message."""

    async def handler(peer: FakePeer) -> None:
        await peer.handshake()
        await peer.expect("SUB")
        peer.send_response(b"OK")
        await peer.expect("RDY")
        if len(peer.server.peers) == 1:
            peer.write_raw(frame[:len(frame) // 2])
            await peer._last_write
            await asyncio.sleep(0.05)
            reset_socket(peer.stream.socket)
            peer.close()
            return
        peer.send_message(b"whole")
        await peer.serve()

    return handler


FRAME = encode_message(time.time_ns(), 1, b"%016x" % 1, b"x" * 1000)


def test_reset_in_the_middle_of_a_frame_closes_with_the_reset_as_cause():
    async def main() -> tuple[BaseException | None, list]:
        async with FakeNSQD(_half_frame_then_reset(FRAME)) as fake:
            conn = AsyncConn(fake.host, fake.port)
            messages: list = []
            conn.on("message", lambda conn, message, **_: messages.append(message))
            await conn.wait_ready()
            await conn.subscribe("t", "c")
            conn.send_rdy(1)
            await asyncio.wait_for(conn.closed_future, 5)
            return conn.close_error, messages

    error, messages = run(main())
    assert messages == []  # the half frame never surfaces as a message
    assert isinstance(error, ConnectionClosedError), error
    assert isinstance(error.__cause__, ConnectionResetError), repr(error.__cause__)


def test_reader_reconnects_after_a_reset_mid_frame_and_carries_on(caplog):
    received: list[bytes] = []

    async def main() -> list[str]:
        async with FakeNSQD(_half_frame_then_reset(FRAME)) as fake:
            reader = Reader("t", "c", lambda m: received.append(m.body) or True,
                            nsqd_tcp_addresses=[fake.address], reconnect_interval=0.05)
            async with reader:
                await fake.wait_for("FIN")
                fake.check()
            return fake.transcript

    transcript = run(main())
    assert received == [b"whole"]
    assert transcript.count("IDENTIFY") == 2
    assert "Connection reset" in caplog.text or "closed the connection" in caplog.text


def test_silent_peer_times_out_during_identify():
    async def silent(peer: FakePeer) -> None:
        await asyncio.sleep(30)

    async def main() -> tuple[float, BaseException]:
        async with FakeNSQD(silent) as fake:
            conn = AsyncConn(fake.host, fake.port, timeout=0.3)
            started = time.monotonic()
            with pytest.raises(NSQTimeoutError) as caught:
                await conn.wait_ready()
            assert conn.closed()
            return time.monotonic() - started, caught.value

    elapsed, error = run(main())
    assert error.stage == "during IDENTIFY"
    assert "timed out after 0.3s during IDENTIFY to 127.0.0.1:" in str(error)
    assert 0.25 < elapsed < 2.0


def test_unanswered_connect_times_out_while_connecting():
    """A listener whose accept queue is full drops our SYN: the connect stage times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))  # fills the accept queue

    async def main() -> tuple[float, BaseException]:
        conn = AsyncConn("127.0.0.1", port, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(NSQTimeoutError) as caught:
            await conn.wait_ready()
        return time.monotonic() - started, caught.value

    try:
        elapsed, error = run(main())
    finally:
        filler.close()
        listener.close()
    assert error.stage == "while connecting"
    assert f"timed out after 0.3s while connecting to 127.0.0.1:{port}" == str(error)
    assert 0.25 < elapsed < 2.0


def test_silent_peer_makes_tools_fail_with_the_stage_named(tmp_path):
    """nsq-pub against a peer that accepts and says nothing: exit 1, one line naming the stage."""
    import subprocess

    from fault_helpers import spawn, tool

    with silent_listener() as address:
        process = spawn([tool("nsq-pub"), "--topic", "t", "--producer-opt", "dial_timeout=300ms",
                         "--retry-timeout", "1s", "--nsqd-tcp-address", address],
                        stdin=subprocess.PIPE)
        _, stderr = process.communicate(b"a\nb\n" * 5000, timeout=20)
    assert process.returncode == 1, stderr
    assert b"during IDENTIFY" in stderr, stderr
    assert b"Traceback" not in stderr
    assert len(stderr.strip().splitlines()) <= 2, stderr


def test_peer_that_stops_heartbeating_is_closed_after_two_intervals():
    beats_sent: list[float] = []

    async def handler(peer: FakePeer) -> None:
        await peer.handshake()
        assert peer.identify["heartbeat_interval"] == 1000
        for _ in range(3):  # healthy for a while: heartbeats every 0.5 s keep it open
            await asyncio.sleep(0.5)
            peer.send_heartbeat()
            beats_sent.append(time.monotonic())
        await asyncio.sleep(30)  # then silence

    async def main() -> tuple[float, BaseException | None, list[str]]:
        async with FakeNSQD(handler) as fake:
            conn = AsyncConn(fake.host, fake.port, heartbeat_interval=1, timeout=1)
            await conn.wait_ready()
            await asyncio.wait_for(conn.closed_future, 10)
            closed_at = time.monotonic()
            await asyncio.sleep(0.05)
            return closed_at, conn.close_error, list(fake.transcript)

    closed_at, error, transcript = run(main(), timeout=15)
    assert len(beats_sent) == 3
    silent_for = closed_at - beats_sent[-1]
    assert 1.9 <= silent_for < 3.5, silent_for
    assert isinstance(error, NSQTimeoutError)
    assert "2 x heartbeat_interval" in str(error)


def test_connection_lost_with_many_messages_in_flight_warns_once(caplog):
    """Answers for messages of a lost connection cannot be sent (nsqd redelivers them): one
    warning per lost connection, not one per message (a flood of max_in_flight lines)."""
    import logging

    async def handler(peer: FakePeer) -> None:
        await peer.handshake()
        await peer.expect("SUB")
        peer.send_response(b"OK")
        await peer.expect("RDY")
        peer.send_messages([b"m%d" % i for i in range(300)])
        await peer._last_write
        await asyncio.sleep(0.05)
        reset_socket(peer.stream.socket)
        peer.close()

    held: list = []

    async def main() -> None:
        async with FakeNSQD(handler) as fake:
            conn = AsyncConn(fake.host, fake.port)
            conn.on("message", lambda conn, message, **_: (message.enable_async(),
                                                          held.append(message)))
            await conn.wait_ready()
            await conn.subscribe("t", "c")
            conn.send_rdy(300)
            await asyncio.wait_for(conn.closed_future, 5)
            for message in held:  # the handler answers after the connection is gone
                message.finish()

    caplog.set_level(logging.DEBUG, logger="nsqcli.lib")
    run(main())
    assert len(held) == 300
    unanswered = [r for r in caplog.records if "cannot FIN" in r.getMessage()]
    assert len(unanswered) == 300
    assert [r.levelno for r in unanswered].count(logging.WARNING) == 1


def test_connection_reset_before_sub_is_answered_is_no_error(caplog):
    """A cut while SUB awaits its answer: a warning for the lost connection, a reconnect, and
    no ERROR line (nsq-tail printed 'error: SUB ... failed' for a fault it recovers from)."""
    import logging

    async def handler(peer: FakePeer) -> None:
        await peer.handshake()
        await peer.expect("SUB")
        if len(peer.server.peers) == 1:
            reset_socket(peer.stream.socket)
            peer.close()
            return
        peer.send_response(b"OK")
        await peer.expect("RDY")
        peer.send_message(b"after the cut")
        await peer.serve()

    received: list[bytes] = []

    async def main() -> None:
        async with FakeNSQD(handler) as fake:
            reader = Reader("t", "c", lambda m: received.append(m.body) or True,
                            nsqd_tcp_addresses=[fake.address], reconnect_interval=0.05)
            async with reader:
                await fake.wait_for("FIN")
                fake.check()

    caplog.set_level(logging.INFO, logger="nsqcli.lib")
    run(main())
    assert received == [b"after the cut"]
    assert "connection closed" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_nsq_tail_keeps_retrying_a_silent_peer_with_backoff():
    """A peer that accepts and says nothing (an overloaded nsqd?) is retried, not given up:
    each attempt ends 'during IDENTIFY' (a warning the first time, debug after), the delays grow,
    SIGTERM ends it cleanly."""
    import re
    import signal
    import threading

    from fault_helpers import spawn, stop_with, tool

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    accepted: list[tuple[float, socket.socket]] = []

    def accept() -> None:
        try:
            while True:
                sock = listener.accept()[0]
                accepted.append((time.monotonic(), sock))
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()
    try:
        process = spawn([tool("nsq-tail"), "-vv", "--topic", "t", "--consumer-opt",
                         "dial_timeout=200ms", "--consumer-opt", "reconnect_interval=100ms",
                         "--nsqd-tcp-address", f"127.0.0.1:{port}"])
        deadline = time.monotonic() + 10
        while len(accepted) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert process.poll() is None
        _, stderr = stop_with(process, signal.SIGTERM)
    finally:
        listener.close()
        for _, sock in accepted:
            sock.close()
    assert process.returncode == 130, stderr
    assert len(accepted) >= 4
    assert stderr.count(b"during IDENTIFY") >= len(accepted) - 1  # the last may be pending
    warned = [line for line in stderr.splitlines() if b"during IDENTIFY" in line
              and b"warning" in line]
    assert len(warned) == 1, stderr  # the same failure again is not news
    delays = [float(d) for d in re.findall(rb"reconnecting in ([0-9.]+)s", stderr)]
    assert delays[:3] == sorted(delays[:3]) and delays[2] > delays[0], delays
    gaps = [b - a for (a, _), (b, _) in zip(accepted, accepted[1:])]
    assert all(gap >= 0.2 for gap in gaps[:3]), gaps  # timeout + backoff between attempts
