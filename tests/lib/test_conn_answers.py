"""Answers (FIN/REQ/TOUCH) reach nsqd only on the connection that delivered the message, and a
fatal error is charged to the command that caused it: AsyncConn against the scripted fake nsqd,
then against nsqd (embedded, or real via NSQCLI_TEST_NSQD)."""

import asyncio
import logging

import pytest
from fake_nsqd import FakeNSQD, run

from nsqcli.lib.message import finish_all
from nsqcli.lib.conn import AsyncConn
from nsqcli.lib.errors import ConnectionClosedError, NSQError


def record(conn, *names):
    seen = []
    for name in names:
        conn.on(name, lambda name=name, **kw: seen.append(name))
    return seen


async def subscribe(conn, rdy=10, topic="topic"):
    await conn.wait_ready(3)
    assert await conn.subscribe(topic, "chan") == b"OK"
    assert conn.send_rdy(rdy)


def collect(conn):
    messages = []
    conn.on("message", lambda conn, message: messages.append(message))
    return messages


async def consuming(fake, *bodies):
    """A subscribed AsyncConn to ``fake`` and the messages it received: ``bodies``."""
    conn = AsyncConn(fake.host, fake.port)
    messages = collect(conn)
    await subscribe(conn)
    (await fake.wait_peer(0)).send_messages(list(bodies))
    await fake.wait_until(lambda: len(messages) == len(bodies))
    return conn, messages


def test_answers_for_messages_of_an_earlier_connection_are_refused(caplog):
    async def main():
        async with FakeNSQD() as fake:
            conn, messages = await consuming(fake, b"old-1", b"old-2", b"old-3", b"old-4")
            conn.close()
            conn.connect()  # the same AsyncConn, a new connection
            await subscribe(conn)
            second = await fake.wait_peer(1)
            second.send_message(b"new", msg_id=b"%016x" % 99)
            await fake.wait_until(lambda: len(messages) == 5)
            events = record(conn, "resume", "backoff", "continue")
            messages[0].finish()
            messages[1].requeue()
            messages[2].touch()
            finish_all([messages[3], messages[4]])  # one old, one of this connection
            await fake.wait_for("FIN")
            assert await conn.publish("topic", b"barrier") == b"OK"  # nsqd read everything
            assert second.transcript == ["IDENTIFY", "SUB topic chan", "RDY 10",
                                         "FIN " + "%016x" % 99, "PUB topic"]
            assert events == ["resume"]  # only the message of this connection counts
            assert conn.in_flight == 0 and conn.connected()
            conn.close()

    with caplog.at_level(logging.DEBUG, logger="nsqcli.lib.conn"):
        run(main())
    assert "cannot FIN message 0000000000000000: it was delivered before this connection " \
           "reconnected (nsqd will redeliver it" in caplog.text
    assert "cannot REQ message 0000000000000001" in caplog.text


def test_answers_on_a_closed_connection_fire_no_events(caplog):
    async def main():
        async with FakeNSQD() as fake:
            conn, messages = await consuming(fake, b"1", b"2", b"3")
            events = record(conn, "resume", "backoff", "continue")
            conn.close()
            messages[0].finish()
            messages[1].requeue()
            messages[2].requeue(backoff=False)
            assert events == []  # a Reader's backoff must not move for a lost connection
            assert all(m.has_responded() for m in messages)

    with caplog.at_level(logging.WARNING, logger="nsqcli.lib.conn"):
        run(main())
    assert caplog.text.count("cannot FIN message 0000000000000000: the connection that delivered "
                             "it is closed") == 1


def test_a_fatal_error_of_rdy_does_not_fail_a_pending_publish_as_its_own():
    async def main():
        async def handler(peer):
            await peer.handshake()
            await peer.expect("RDY")
            await peer.expect("PUB")
            peer.send_error("E_INVALID", "cannot RDY in current state")
            peer.close()

        async with FakeNSQD(handler) as fake:
            conn = AsyncConn(fake.host, fake.port)
            await conn.wait_ready(2)
            conn.send(b"RDY 1\n")  # pynsq-style raw command, answered by nsqd only on failure
            pending = conn.publish("topic", b"never processed")
            with pytest.raises(ConnectionClosedError) as closed:
                await pending
            assert isinstance(closed.value.__cause__, NSQError)
            assert str(closed.value.__cause__) == "E_INVALID cannot RDY in current state"
            assert conn.closed()

    run(main())


# ---- against nsqd -------------------------------------------------------------------------------


def test_a_reused_connection_sends_no_answer_for_messages_it_no_longer_owns(nsqd):
    nsqd.pub("reuse", b"delivered on the first connection")

    async def main():
        conn = AsyncConn(nsqd.host, nsqd.tcp_port)
        messages = collect(conn)
        await subscribe(conn, rdy=1, topic="reuse")
        await asyncio.wait_for(_until(lambda: messages), 5)
        conn.close()
        conn.connect()
        await subscribe(conn, rdy=1, topic="reuse")
        errors = []
        conn.on("error", lambda conn, error: errors.append(error))
        messages[0].finish()
        assert await conn.publish("reuse_barrier", b"x") == b"OK"  # nsqd answered what came before
        assert errors == []  # no E_FIN_FAILED "client does not own message"
        assert conn.in_flight == 0 and conn.connected()
        conn.close()

    run(main())


def test_a_fatal_rdy_error_fails_the_pending_publish_as_a_lost_connection(nsqd):
    async def main():
        conn = AsyncConn(nsqd.host, nsqd.tcp_port)
        await conn.wait_ready(3)
        conn.send(b"RDY 1\n")  # not subscribed: nsqd answers E_INVALID and closes
        with pytest.raises(ConnectionClosedError) as closed:
            await conn.publish("rdy_error", b"never processed")
        assert str(closed.value.__cause__) == "E_INVALID cannot RDY in current state"

    run(main())
    assert nsqd.topic_stats("rdy_error") is None  # nsqd never saw the PUB


async def _until(predicate):
    while not predicate():
        await asyncio.sleep(0.02)


def test_fin_awaitable_waits_while_the_socket_holds_more_than_64_kib_unsent():
    import socket

    release = asyncio.Event()

    async def stalled(peer):  # stops reading after delivering one message, until released
        await peer.handshake()
        await peer.expect("SUB")
        peer.send_response(b"OK")
        await peer.expect("RDY")
        peer.send_message(b"m")
        await release.wait()
        await peer.serve()

    async def main():
        async with FakeNSQD(stalled) as fake:
            conn = AsyncConn(fake.host, fake.port)
            messages = collect(conn)
            await subscribe(conn, rdy=1)
            await fake.wait_until(lambda: messages)
            assert conn._answered.done()  # nothing backed up: fin() has nothing to wait for
            # more than the socket buffers hold (8 KiB sent, 128 KiB nsqd's first receive buffer)
            conn.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            published = conn.publish("topic", b"x" * (1024 * 1024))
            assert conn.write_buffer_size > 64 * 1024  # nsqd is not reading
            answered = messages[0].fin()
            assert not answered.done()
            release.set()
            await asyncio.wait_for(answered, 5)
            assert await published == b"OK"
            await fake.wait_for("FIN")
            conn.close()

    run(main())
