"""message.finish_all: a batch of FINs per connection, with finish()'s guarantees (each message
answered exactly once, in_flight and events kept right, nothing sent for a bad id)."""

import logging

import pytest
from fake_nsqd import FakeNSQD, run

from nsqcli.lib.conn import AsyncConn
from nsqcli.lib.message import Message, MessageAnsweredError, finish_all


async def consumer(fake, rdy=100):
    conn = AsyncConn(fake.host, fake.port)
    await conn.wait_ready(2)
    assert await conn.subscribe("topic", "chan") == b"OK"
    assert conn.send_rdy(rdy)
    return conn, await fake.wait_peer(len(fake.peers) - 1)


def collect(conn):
    messages = []
    conn.on("message", lambda conn, message: messages.append(message))
    return messages


def test_batch_is_one_write_in_order_and_counts_like_finish():
    async def main():
        async with FakeNSQD() as fake:
            conn, peer = await consumer(fake)
            messages = collect(conn)
            ids = peer.send_messages([b"m%d" % i for i in range(50)])
            await fake.wait_until(lambda: len(messages) == 50)
            resumed, finished = [], []
            conn.on("resume", lambda conn: resumed.append(conn))
            messages[7].on("finish", lambda message: finished.append(message))
            assert conn.in_flight == 50
            writes_before = conn._write_calls
            finish_all(messages[:30])
            assert conn._write_calls - writes_before == 1  # written at once, not next iteration
            assert conn.in_flight == 20
            assert all(m.has_responded() for m in messages[:30])
            assert not messages[30].has_responded()
            assert len(resumed) == 30 and finished == [messages[7]]
            await fake.wait_for("FIN", 30)
            assert conn._write_calls - writes_before == 1
            assert fake.transcript[3:] == [f"FIN {i.decode()}" for i in ids[:30]]
            with pytest.raises(MessageAnsweredError):
                finish_all(messages[29:])  # one answered already: nothing is sent
            assert not messages[30].has_responded() and conn.in_flight == 20
            finish_all(messages[30:])
            await fake.wait_for("FIN", 50)
            assert conn.in_flight == 0
            conn.close()
    run(main())


def test_messages_of_several_connections_go_to_their_own():
    async def main():
        async with FakeNSQD() as fake:
            conn_a, peer_a = await consumer(fake)
            conn_b, peer_b = await consumer(fake)
            got_a, got_b = collect(conn_a), collect(conn_b)
            ids_a = peer_a.send_messages([b"a1", b"a2"])
            ids_b = peer_b.send_messages([b"b1"])
            await fake.wait_until(lambda: len(got_a) == 2 and len(got_b) == 1)
            finish_all([got_a[0], got_b[0], got_a[1]])
            await fake.wait_for("FIN", 3)
            assert [c for c in peer_a.transcript if c.startswith("FIN")] == [f"FIN {i.decode()}" for i in ids_a]
            assert [c for c in peer_b.transcript if c.startswith("FIN")] == [f"FIN {ids_b[0].decode()}"]
            assert conn_a.in_flight == 0 and conn_b.in_flight == 0
            conn_a.close()
            conn_b.close()
    run(main())


def test_a_tampered_id_is_refused_alone(caplog):
    async def main():
        async with FakeNSQD() as fake:
            conn, peer = await consumer(fake)
            messages = collect(conn)
            ids = peer.send_messages([b"x", b"y", b"z"])
            await fake.wait_until(lambda: len(messages) == 3)
            messages[1].id = b"0123456789abcde"  # 15 bytes: refused by FIN's check alone
            finish_all(messages)
            await fake.wait_for("FIN", 2)
            assert fake.transcript[3:] == [f"FIN {ids[0].decode()}", f"FIN {ids[2].decode()}"]
            assert conn.in_flight == 0
            conn.close()
    with caplog.at_level(logging.WARNING, logger="nsqcli.lib.conn"):
        run(main())
    assert "cannot FIN" in caplog.text


class StandIn:
    def __init__(self, log):
        self.log = log

    def finish(self):
        self.log.append(self)


def test_other_objects_get_their_own_finish():
    log: list = []
    plain = Message(b"0123456789abcdef", b"b", 1, 1)
    items = [StandIn(log), plain, StandIn(log)]
    finish_all(items)
    assert log == [items[0], items[2]] and plain.has_responded()


def test_messages_without_a_connection_are_only_marked():
    messages = [Message(b"%016d" % i, b"b", 1, 1) for i in range(3)]
    finish_all(messages)
    assert all(m.has_responded() for m in messages)
    with pytest.raises(MessageAnsweredError):
        messages[0].finish()
