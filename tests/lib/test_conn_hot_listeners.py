"""The per-message paths read mirrored listener tuples (EventedMixin._mirrored_events): on/off
keep them current, even in the middle of a chunk of messages."""

from fake_nsqd import FakeNSQD, run

from nsqcli.lib.conn import AsyncConn
from nsqcli.lib.event import EventedMixin


class Thing(EventedMixin):
    _mirrored_events = ("tick",)

    def __init__(self):
        super().__init__()
        self._tick_listeners = ()


def test_on_and_off_keep_the_mirror_current():
    thing = Thing()
    first, second = (lambda: None), (lambda: None)
    thing.on("tick", first)
    thing.on("tock", second)
    thing.on("tick", second)
    assert thing._tick_listeners == (first, second)
    thing.off("tick", first)
    assert thing._tick_listeners == (second,)
    thing.off("tick", second)
    assert thing._tick_listeners == ()
    assert not hasattr(thing, "_tock_listeners")


def test_listener_removed_and_added_during_a_chunk_is_honoured():
    async def main():
        async with FakeNSQD() as fake:
            conn = AsyncConn(fake.host, fake.port)
            await conn.wait_ready(2)
            await conn.subscribe("topic", "chan")
            conn.send_rdy(10)
            peer = await fake.wait_peer(0)
            seen_a, seen_b, seen_c, resumed = [], [], [], []

            def listener_c(conn, message):
                seen_c.append(message.body)

            def listener_b(conn, message):
                seen_b.append(message.body)

            def listener_a(conn, message):
                seen_a.append(message.body)
                if message.body == b"2":
                    conn.off("message", listener_b)
                    conn.on("message", listener_c)
                    conn.on("resume", lambda conn: resumed.append(1))
                message.finish()

            conn.on("message", listener_a)
            conn.on("message", listener_b)
            peer.send_messages([b"1", b"2", b"3", b"4"])  # one write: one chunk
            await fake.wait_for("FIN", 4)
            assert seen_a == [b"1", b"2", b"3", b"4"]
            # as trigger(): a message's listeners are fixed when its dispatch starts
            assert seen_b == [b"1", b"2"]  # removed while handling 2: gone from 3 on
            assert seen_c == [b"3", b"4"]
            assert len(resumed) == 3  # added before 2 was finished: FIN of 2, 3 and 4
            conn.close()
    run(main())
