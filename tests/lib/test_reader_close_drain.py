"""Reader.close() with messages that nsqd delivers between the CLS and its CLOSE_WAIT (what it
had buffered for the connection goes out first): the drain waits for every one of them."""

import asyncio

from fake_nsqd import FakeNSQD, new_message_id

import nsqcli.lib as nsq


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
