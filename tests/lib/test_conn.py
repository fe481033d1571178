"""AsyncConn against the scripted fake nsqd: handshake, messages, transcripts, heartbeats, errors."""

import asyncio
import json
import logging

import pytest
from fake_nsqd import FakeNSQD, run

from nsqcli.lib import protocol
from nsqcli.lib.conn import AsyncConn
from nsqcli.lib.errors import ConnectionClosedError, NSQError, NSQTimeoutError, ProtocolError, SendError


def record(conn, *names):
    """Listen for ``names`` on conn; returns the list of (name, payload-without-conn) seen."""
    seen = []
    for name in names:
        conn.on(name, lambda name=name, **kw: seen.append(
            (name, {k: v for k, v in kw.items() if k != "conn"})))
    return seen


async def consumer(fake, rdy=10, **options):
    conn = AsyncConn(fake.host, fake.port, **options)
    await conn.wait_ready(2)
    assert await conn.subscribe("topic", "chan") == b"OK"
    assert conn.send_rdy(rdy)
    return conn, await fake.wait_peer(0)


def test_handshake_events_identify_body_and_identify_response():
    async def main():
        async with FakeNSQD(identify_response={"max_rdy_count": 123}) as fake:
            conn = AsyncConn(fake.host, fake.port, heartbeat_interval=5, msg_timeout=30,
                             user_agent="agent/1", hostname="box.example.com", sample_rate=10)
            seen = record(conn, "connect", "identify", "identify_response", "ready")
            assert conn.closed() and not conn.connecting()
            conn.connect()
            assert conn.connecting()
            await conn.wait_ready(2)
            assert conn.connected() and not conn.closed()
            assert [name for name, _ in seen] == ["connect", "identify", "identify_response", "ready"]
            sent = fake.peers[0].identify
            assert seen[1][1]["data"] == sent
            assert sent["client_id"] == "box" and sent["hostname"] == "box.example.com"
            assert sent["heartbeat_interval"] == 5000 and sent["msg_timeout"] == 30000
            assert sent["user_agent"] == "agent/1" and sent["sample_rate"] == 10
            assert sent["feature_negotiation"] is True
            assert seen[2][1]["data"]["max_rdy_count"] == 123
            assert conn.max_rdy_count == 123 and conn.identify_response.max_rdy_count == 123
            assert conn.id == f"127.0.0.1:{fake.port}" and str(conn) == conn.id
            assert fake.transcript == ["IDENTIFY"]
            conn.close()
            assert conn.closed()
    run(main())


def test_old_nsqd_plain_ok_identify_response():
    async def main():
        async with FakeNSQD(identify_response=b"OK") as fake:
            conn = AsyncConn(fake.host, fake.port)
            seen = record(conn, "identify_response")
            await conn.wait_ready(2)
            assert seen == [("identify_response", {"data": b"OK"})]
            assert conn.max_rdy_count == 2500
            conn.close()
    run(main())


def test_consume_transcript_fin_req_touch_and_backoff_events():
    async def main():
        async with FakeNSQD() as fake:
            conn, peer = await consumer(fake, rdy=5, requeue_delay=90, max_requeue_delay=200)
            seen = record(conn, "resume", "backoff", "continue")
            messages = []
            conn.on("message", lambda conn, message: messages.append(message))
            ids = peer.send_messages([b"a", b"b", b"c", b"d"], attempts=3)
            await fake.wait_until(lambda: len(messages) == 4)
            assert conn.in_flight == 4
            assert [m.body for m in messages] == [b"a", b"b", b"c", b"d"]
            assert messages[0].nsqd_address == conn.id and messages[0].attempts == 3
            messages[0].touch()
            messages[0].finish()
            messages[1].requeue()                        # 90 s x 3 attempts, capped at 200 s
            messages[2].requeue(delay=5, backoff=False)
            messages[3].requeue(time_ms=1234)
            assert conn.in_flight == 0
            await fake.wait_for("REQ", 3)
            assert fake.transcript == [
                "IDENTIFY", "SUB topic chan", "RDY 5",
                f"TOUCH {ids[0].decode()}", f"FIN {ids[0].decode()}",
                f"REQ {ids[1].decode()} 200000", f"REQ {ids[2].decode()} 5000",
                f"REQ {ids[3].decode()} 1234",
            ]
            assert [name for name, _ in seen] == ["resume", "backoff", "continue", "backoff"]
            assert conn.rdy == conn.last_rdy == 5
            conn.close()
    run(main())


def test_requeue_delay_grows_with_attempts():
    async def main():
        async with FakeNSQD() as fake:
            conn, peer = await consumer(fake, requeue_delay=2)
            conn.on("message", lambda conn, message: message.requeue(backoff=False))
            ids = [peer.send_message(b"x", attempts=n) for n in (1, 2, 7)]
            await fake.wait_for("REQ", 3)
            assert fake.transcript[3:] == [f"REQ {ids[0].decode()} 2000", f"REQ {ids[1].decode()} 4000",
                                           f"REQ {ids[2].decode()} 14000"]
            conn.close()
    run(main())


def test_answers_of_a_chunk_are_coalesced_into_one_write():
    async def main():
        async with FakeNSQD() as fake:
            conn, peer = await consumer(fake, rdy=200)
            await fake.wait_for("RDY")
            conn.on("message", lambda conn, message: message.finish())
            writes_before = conn._write_calls
            peer.send_messages([b"m%d" % i for i in range(200)])
            await fake.wait_for("FIN", 200)
            assert conn._write_calls - writes_before == 1
            conn.close()
    run(main())


def test_listener_exception_is_logged_and_the_read_loop_continues(caplog):
    async def main():
        async with FakeNSQD() as fake:
            conn, peer = await consumer(fake)
            handled = []

            def handler(conn, message):
                if message.body == b"boom":
                    raise RuntimeError("handler bug")
                handled.append(message.body)
                message.finish()

            conn.on("message", handler)
            peer.send_message(b"boom")
            peer.send_message(b"fine")
            await fake.wait_for("FIN")
            assert handled == [b"fine"] and conn.connected()
            conn.close()
    with caplog.at_level(logging.ERROR, logger="nsqcli.lib.conn"):
        run(main())
    assert any("handler bug" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_heartbeat_is_answered_with_nop():
    async def main():
        async with FakeNSQD() as fake:
            conn = AsyncConn(fake.host, fake.port)
            seen = record(conn, "heartbeat")
            await conn.wait_ready(2)
            fake.peers[0].send_heartbeat()
            await fake.wait_for("NOP")
            assert seen == [("heartbeat", {})]
            assert fake.transcript == ["IDENTIFY", "NOP"]
            conn.close()
    run(main())


def test_connection_closes_when_nothing_arrives_for_two_heartbeat_intervals():
    async def main():
        async with FakeNSQD() as fake:
            conn = AsyncConn(fake.host, fake.port, heartbeat_interval=1)
            await conn.wait_ready(2)
            loop = asyncio.get_running_loop()
            start = loop.time()
            await asyncio.sleep(1.5)
            fake.peers[0].send_heartbeat()  # data resets the clock
            await asyncio.sleep(1.0)
            assert conn.connected()
            await asyncio.wait_for(conn.closed_future, 3)
            elapsed = loop.time() - start
            assert 3.3 <= elapsed <= 4.5  # 1.5 s + 2 x 1 s after the heartbeat
            assert isinstance(conn.close_error, NSQTimeoutError)
            assert "heartbeat" in str(conn.close_error)
    run(main())


def test_non_fatal_error_keeps_the_connection():
    async def main():
        async with FakeNSQD(responses={"FIN": b"E_FIN_FAILED FIN abc failed"}) as fake:
            conn, peer = await consumer(fake)
            seen = record(conn, "error", "close")
            conn.on("message", lambda conn, message: message.finish())
            peer.send_message(b"x")
            await fake.wait_until(lambda: seen)
            assert seen[0][0] == "error" and seen[0][1]["error"].code == "E_FIN_FAILED"
            assert not seen[0][1]["error"].fatal
            assert conn.connected()
            assert await conn.publish("topic", b"still works") == b"OK"
            conn.close()
    run(main())


def test_fatal_error_closes_and_fails_pending_with_the_root_cause():
    async def main():
        async def handler(peer):
            await peer.handshake()
            await peer.expect("PUB")
            await peer.expect("PUB")
            peer.send_error("E_INVALID", "cannot do that")

        async with FakeNSQD(handler) as fake:
            conn = AsyncConn(fake.host, fake.port)
            seen = record(conn, "error", "close")
            await conn.wait_ready(2)
            first = conn.publish("topic", b"1")
            second = conn.publish("topic", b"2")
            with pytest.raises(NSQError) as info:
                await first
            assert info.value.code == "E_INVALID"
            with pytest.raises(ConnectionClosedError) as closed:
                await second
            assert closed.value.__cause__ is info.value
            await asyncio.wait_for(conn.closed_future, 2)
            assert [name for name, _ in seen] == ["error", "close"]
            assert seen[0][1]["error"] is info.value
            assert conn.closed()
    run(main())


def test_publish_futures_ok_error_and_transcript():
    async def main():
        async with FakeNSQD(responses={"PUB": lambda cmd: (
                b"E_BAD_MESSAGE PUB message empty" if cmd.body == b"reject" else b"OK")}) as fake:
            conn = AsyncConn(fake.host, fake.port)
            await conn.wait_ready(2)
            results = await asyncio.gather(
                conn.publish("t", b"one"),
                conn.multi_publish("t", [b"a", b"bb"]),
                conn.deferred_publish("t", 1500, b"later"),
                conn.publish_raw(protocol.mpub("t", [b"raw1", b"raw2"]), kind=b"MPUB"),
            )
            assert results == [b"OK"] * 4
            peer = fake.peers[0]
            assert fake.transcript == ["IDENTIFY", "PUB t", "MPUB t", "DPUB t 1500", "MPUB t"]
            assert peer.commands[1].body == b"one"
            assert peer.commands[3].body == b"later"
            assert protocol.parse_mpub_body(peer.commands[4].body, 1 << 20) == [b"raw1", b"raw2"]
            with pytest.raises(NSQError) as info:
                await conn.publish("t", b"reject")
            assert info.value.code == "E_BAD_MESSAGE" and info.value.fatal
            await asyncio.wait_for(conn.closed_future, 2)
            rejected = conn.publish("t", b"after close")
            with pytest.raises(SendError):
                await rejected
    run(main())


def test_connection_lost_fails_every_pending_publish():
    async def main():
        async def handler(peer):
            await peer.handshake()
            await peer.expect("PUB")
            peer.close()  # nsqd goes away without answering

        async with FakeNSQD(handler) as fake:
            conn = AsyncConn(fake.host, fake.port)
            await conn.wait_ready(2)
            pending = [conn.publish("t", b"x%d" % i) for i in range(3)]
            results = await asyncio.gather(*pending, return_exceptions=True)
            assert all(isinstance(r, ConnectionClosedError) for r in results)
            assert all(r.__cause__ is conn.close_error for r in results)
            assert "closed the connection" in str(conn.close_error)
    run(main())


def test_close_fails_pending_and_start_close_gets_close_wait():
    async def main():
        async with FakeNSQD(responses={"PUB": lambda cmd: None}) as fake:  # never answers PUB
            conn, peer = await consumer(fake)
            assert await conn.start_close() == b"CLOSE_WAIT"
            assert fake.transcript[-1] == "CLS"
            publish = conn.publish("t", b"x")
            await fake.wait_for("PUB")
            conn.close()
            with pytest.raises(ConnectionClosedError):
                await publish
            await asyncio.wait_for(conn.closed_future, 1)
            assert conn.close_error is None
    run(main())


def test_pynsq_style_send_of_raw_commands():
    async def main():
        async with FakeNSQD() as fake:
            conn = AsyncConn(fake.host, fake.port)
            responses = []
            conn.on("response", lambda conn, data: responses.append(data))
            await conn.wait_ready(2)
            conn.send(protocol.subscribe("t", "c"))
            conn.send(protocol.pub("t", b"m"))
            await fake.wait_until(lambda: len(responses) == 2)
            assert conn.send_rdy(3)
            conn.send(protocol.nop())
            await fake.wait_for("NOP")
            assert fake.transcript == ["IDENTIFY", "SUB t c", "PUB t", "RDY 3", "NOP"]
            assert responses == [b"OK", b"OK"]
            conn.close()
    run(main())


def test_send_rdy_rules():
    async def main():
        async with FakeNSQD(identify_response={"max_rdy_count": 50}) as fake:
            conn = AsyncConn(fake.host, fake.port)
            assert conn.send_rdy(1) is False  # not connected
            await conn.wait_ready(2)
            assert conn.send_rdy(1) is False  # not subscribed
            await conn.subscribe("t", "c")
            with pytest.raises(ValueError):
                conn.send_rdy(-1)
            with pytest.raises(ValueError, match="max_rdy_count"):
                conn.send_rdy(51)
            assert conn.send_rdy(50) and conn.rdy == 50
            conn.close()
    run(main())


@pytest.mark.parametrize("kwargs, error", [
    ({"host": 1}, TypeError),
    ({"host": ""}, ValueError),
    ({"port": "4150"}, TypeError),
    ({"port": 0}, ValueError),
    ({"timeout": 0}, ValueError),
    ({"heartbeat_interval": 0.5}, ValueError),
    ({"requeue_delay": -1}, ValueError),
    ({"sample_rate": 100}, ValueError),
    ({"deflate_level": 10}, ValueError),
    ({"snappy": True, "deflate": True}, ValueError),
    ({"output_buffer_size": 10}, ValueError),
    ({"msg_timeout": 0.5}, ValueError),
    ({"auth_secret": 123}, TypeError),
    ({"tls_v1": "yes"}, TypeError),
    ({"tls_options": {"bogus": 1}}, ValueError),
    ({"tls_options": "ctx"}, TypeError),
])
def test_constructor_validation(kwargs, error):
    args = {"host": "127.0.0.1", "port": 4150}
    args.update(kwargs)
    with pytest.raises(error):
        AsyncConn(**args)


def test_identify_json_matches_what_nsqd_receives():
    async def main():
        async with FakeNSQD() as fake:
            conn = AsyncConn(fake.host, fake.port, deflate_level=3, output_buffer_timeout=100)
            await conn.wait_ready(2)
            body = json.loads(fake.peers[0].commands[0].body)
            assert body["deflate_level"] == 3 and body["output_buffer_timeout"] == 100
            assert "msg_timeout" not in body
            conn.close()
    run(main())


def test_raising_handshake_listeners_do_not_break_the_connection(caplog):
    async def main():
        async with FakeNSQD(auth_secret=b"pw") as fake:
            conn = AsyncConn(fake.host, fake.port, auth_secret="pw")
            for name in ("connect", "identify", "identify_response", "auth", "auth_response", "ready"):
                conn.on(name, lambda name=name, **kw: (_ for _ in ()).throw(RuntimeError(name)))
            await conn.wait_ready(2)
            assert conn.connected()
            assert await conn.publish("t", b"x") == b"OK"
            conn.close()
    with caplog.at_level(logging.ERROR, logger="nsqcli.lib.conn"):
        run(main())
    assert len([r for r in caplog.records if r.exc_info]) == 6


def test_start_close_without_subscription_and_closed_future():
    async def main():
        async with FakeNSQD() as fake:
            conn = AsyncConn(fake.host, fake.port)
            closed = conn.closed_future
            await conn.wait_ready(2)
            assert await conn.start_close() is None  # nothing to drain: no CLS sent
            assert fake.transcript == ["IDENTIFY"]
            assert not closed.done()
            conn.close()
            await asyncio.wait_for(closed, 1)
            with pytest.raises(ConnectionClosedError):
                await conn.wait_ready(1)
            assert conn.closed_future.done()
    run(main())


def test_reconnect_after_close():
    async def main():
        async with FakeNSQD() as fake:
            conn = AsyncConn(fake.host, fake.port)
            await conn.wait_ready(2)
            conn.close()
            conn.connect()
            await conn.wait_ready(2)
            assert await conn.publish("t", b"again") == b"OK"
            assert len(fake.peers) == 2
            conn.close()
    run(main())


def test_message_answers_after_close_are_dropped_with_a_warning(caplog):
    async def main():
        async with FakeNSQD() as fake:
            conn, peer = await consumer(fake)
            messages = []
            conn.on("message", lambda conn, message: messages.append(message))
            peer.send_message(b"late")
            await fake.wait_until(lambda: messages)
            conn.close()
            messages[0].finish()  # must not raise: nsqd redelivers after msg_timeout
            assert messages[0].has_responded()
    with caplog.at_level(logging.WARNING, logger="nsqcli.lib.conn"):
        run(main())
    assert "cannot FIN" in caplog.text


def test_frames_over_max_frame_size_close_the_connection():
    async def main():
        async with FakeNSQD() as fake:
            conn, peer = await consumer(fake, max_frame_size=1024)
            peer.send_message(b"x" * 2000)
            await asyncio.wait_for(conn.closed_future, 2)
            assert isinstance(conn.close_error, ProtocolError)
            assert "frame size" in str(conn.close_error)
    run(main())


def test_message_frame_before_subscribe_is_a_protocol_error():
    async def main():
        async with FakeNSQD() as fake:
            conn = AsyncConn(fake.host, fake.port)
            await conn.wait_ready(2)
            fake.peers[0].send_message(b"unexpected")
            await asyncio.wait_for(conn.closed_future, 2)
            assert isinstance(conn.close_error, ProtocolError)
    run(main())
