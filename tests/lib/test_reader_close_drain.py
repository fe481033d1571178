"""Reader.close() and the messages nsqd delivers while it closes: those before CLOSE_WAIT (what
nsqd had buffered goes out first) are waited for; one after the drain is left to nsqd."""

import asyncio
import json
import time

from fake_nsqd import DEFAULT_IDENTIFY_RESPONSE, FakeNSQD, new_message_id
from polling import until

import nsqcli.lib as nsq
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
            await reader.close()
        return handled

    caplog.set_level("DEBUG", logger="nsqcli.lib.conn")
    assert asyncio.run(asyncio.wait_for(main(), 20)) == []
    assert f"message {new_message_id(7).decode()} came after the drain" in caplog.text
