"""Reader.close() and the messages nsqd delivers while it closes: those before CLOSE_WAIT (what
nsqd had buffered goes out first) are waited for; one after the drain is never handled: it is
requeued at once while our side of the connection is open, else left to nsqd."""

import asyncio
import json
import socket
import time

from fake_nsqd import DEFAULT_IDENTIFY_RESPONSE, FakeNSQD, new_message_id, run
from polling import until

import nsqcli.lib as nsq
from nsqcli.lib.conn import AsyncConn
from nsqcli.lib.protocol.commands import CommandParser
from nsqcli.lib.protocol.constants import FRAME_TYPE_RESPONSE
from nsqcli.lib.protocol.frames import encode_frame, encode_message


def test_close_waits_for_messages_delivered_before_close_wait():
    """One of them answered at once must not end the drain while the other is still being
    handled: nsq-to-file's SIGTERM against nsqd v1.3.0 closed with 74 messages unanswered
    (FINed too late, on the closed connection: in flight at nsqd until msg_timeout)."""
    async def main():
        fake = FakeNSQD()

        def on_cls(command):
            fake.peers[0].send_messages([b"quick", b"slow"])
            return b"CLOSE_WAIT"

        fake.responses["CLS"] = on_cls
        async with fake:
            loop = asyncio.get_running_loop()

            def handler(message):
                if message.body == b"quick":
                    return True
                message.enable_async()
                loop.call_later(0.2, message.finish)  # written and synced a moment later

            reader = nsq.Reader("t", "c", handler, nsqd_tcp_addresses=[fake.address],
                                max_in_flight=5, close_timeout=5.0)
            peer = await fake.wait_peer()
            await fake.wait_for("RDY")
            await reader.close()
            await fake.wait_until(lambda: peer.closed)
            quick, slow = (new_message_id(n).decode() for n in (0, 1))
            assert fake.transcript[-4:] == ["RDY 0", "CLS", f"FIN {quick}", f"FIN {slow}"]

    asyncio.run(asyncio.wait_for(main(), 20))


async def _nsqd_with_a_late_message(reader, writer):
    """Just enough nsqd for one Reader connection: after CLOSE_WAIT and the Reader's EOF (it
    shut its side), one more message, then the close (an asyncio stream, unlike tornado's,
    can still write after reading EOF)."""
    parser = CommandParser()
    names = []
    while b"CLS" not in names:
        for command in parser.feed(await reader.read(65536)):
            names.append(command.name)
            if command.name == b"IDENTIFY":
                writer.write(encode_frame(FRAME_TYPE_RESPONSE, json.dumps(DEFAULT_IDENTIFY_RESPONSE).encode()))
            elif command.name == b"SUB":
                writer.write(encode_frame(FRAME_TYPE_RESPONSE, b"OK"))
            elif command.name == b"CLS":
                writer.write(encode_frame(FRAME_TYPE_RESPONSE, b"CLOSE_WAIT"))
    while await reader.read(65536):
        pass
    writer.write(encode_message(time.time_ns(), 1, new_message_id(7), b"late"))
    await writer.drain()
    writer.close()


def test_a_message_after_the_drain_is_left_to_nsqd(caplog):
    """nsqd v1.3.0's message pump may hold a message when RDY 0 comes and send it after
    CLOSE_WAIT. Once the Reader shut its side of the connection, that message's FIN or REQ
    cannot be sent: it is not handed to the handler (nsq-to-file would archive a message that
    nsqd redelivers after msg_timeout), and nsqd still owns it."""
    async def main():
        handled = []
        server = await asyncio.start_server(_nsqd_with_a_late_message, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader = nsq.Reader("t", "c", lambda m: handled.append(m.body) or True,
                                nsqd_tcp_addresses=[f"127.0.0.1:{port}"], max_in_flight=5)
            await until(lambda: reader.conns)
            (conn,) = reader.conns.values()
            await reader.close()
        return handled, conn

    caplog.set_level("DEBUG", logger="nsqcli.lib.conn")
    handled, conn = asyncio.run(asyncio.wait_for(main(), 20))
    assert handled == []
    assert conn.messages_left_in_flight == 1  # counted: a test reading nsqd's stats needs it
    assert f"message {new_message_id(7).decode()} came after the drain" in caplog.text


def test_a_message_during_close_gracefully_is_requeued_before_our_side_shuts():
    """The late message arrives while close_gracefully() still waits for the socket to take our
    last writes (the fake does not read meanwhile): it is not handed to the handler, and its
    ``REQ <id> 0`` reaches nsqd before our EOF, so nsqd hands it on at once instead of after
    msg_timeout."""
    resume = asyncio.Event()

    async def script(peer):
        await peer.handshake()
        while (name := (await peer.read_command()).name) != b"CLS":
            if name == b"SUB":
                peer.send_response(b"OK")
        peer.send_response(b"CLOSE_WAIT")
        await resume.wait()  # not reading: the client's writes pile up in its buffers
        await peer.serve()  # PUB -> OK, until the client's EOF
        peer.close()  # as nsqd does once it read the EOF

    async def main():
        handled = []
        async with FakeNSQD(script) as fake:
            conn = AsyncConn(fake.host, fake.port)
            conn.on("message", lambda conn, message: handled.append(message))
            await conn.wait_ready(5)
            assert await conn.subscribe("t", "c") == b"OK"
            assert conn.send_rdy(1)
            assert await conn.start_close() == b"CLOSE_WAIT"
            peer = fake.peers[0]
            # fixed socket buffers (no autotuning): what the kernel can hold stays well under
            # what piles up below, so close_gracefully() waits until the fake reads again
            conn.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
            peer.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            publishes = [conn.publish("t", b"x" * (1024 * 1024)) for _ in range(8)]
            closing = asyncio.ensure_future(conn.close_gracefully(timeout=10))
            await until(lambda: conn._closing_gracefully)
            written = conn.stream._total_write_index  # bytes handed to tornado so far
            late = peer.send_message(b"late")
            request = b"REQ %s 0\n" % late
            await until(lambda: conn.stream._total_write_index == written + len(request), timeout=5)
            assert not conn._half_closed  # still waiting for the socket
            resume.set()
            await closing
            assert all(await asyncio.gather(*publishes))
            await fake.wait_until(lambda: peer.closed)
            return handled, conn, late, fake.transcript

    handled, conn, late, transcript = run(main(), 30)
    assert handled == [] and conn.in_flight == 0
    assert conn.messages_left_in_flight == 0  # requeued: nsqd has it back
    assert conn.close_error is None  # nsqd's EOF came as expected
    assert transcript[-1] == f"REQ {late.decode()} 0"
    assert transcript[:4] == ["IDENTIFY", "SUB t c", "RDY 1", "CLS"]
