"""nsq.run(): SIGINT/SIGTERM close every live Reader/Writer gracefully, a second signal stops now."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from fake_nsqd import FakeNSQD, FakePeer
from tornado.ioloop import IOLoop

import nsqcli.lib as nsq
from nsqcli.lib import registry
from nsqcli.lib.run_loop import close_all

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def fresh_loop():
    """A new current event loop, as a pynsq program has before it calls nsq.run()."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield loop
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    IOLoop.current().close(all_fds=False)
    if not loop.is_closed():
        loop.close()
    asyncio.set_event_loop(None)
    for sig, handler in previous.items():
        assert signal.getsignal(sig) == handler, f"run() did not restore the {sig.name} handler"


class Client:
    """A stand-in for a Reader: close() drains for ``drain`` seconds."""

    def __init__(self, drain: float) -> None:
        self.drain = drain
        self.closed_at: float | None = None
        registry.register(self)

    def close(self):
        async def drain():
            await asyncio.sleep(self.drain)
            self.closed_at = time.monotonic()
            registry.unregister(self)
        return asyncio.ensure_future(drain())


def signal_later(loop, delay: float, *signums: int) -> None:
    for i, signum in enumerate(signums):
        loop.call_later(delay + i * 0.05, os.kill, os.getpid(), signum)


async def ack_slowly(peer: FakePeer) -> None:
    await peer.handshake()
    for _ in range(2):
        await peer.expect("PUB")
    await asyncio.sleep(0.3)
    peer.send_response(b"OK")
    peer.send_response(b"OK")
    await peer.wait_closed()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_drains_writer_acks_then_stops_the_loop(fresh_loop, signum):
    loop = fresh_loop
    fake = FakeNSQD(ack_slowly)
    loop.run_until_complete(fake.start())
    writer = nsq.Writer([fake.address])  # created before the loop runs, pynsq style
    results = []

    def publish():
        writer.pub("t", b"1", lambda conn, data: results.append(data))
        writer.pub("t", b"2", lambda conn, data: results.append(data))
        signal_later(loop, 0.1, signum)  # before nsqd acknowledged anything

    IOLoop.current().add_callback(publish)
    failsafe = loop.call_later(10, loop.stop)
    started = time.monotonic()
    nsq.run()
    failsafe.cancel()
    assert time.monotonic() - started < 5
    assert results == [b"OK", b"OK"]  # run() waited for the acks before stopping
    assert writer not in registry.live_clients()
    assert fake.peers[0].transcript == ["IDENTIFY", "PUB t", "PUB t"]
    loop.run_until_complete(fake.stop())


def test_every_live_client_is_closed_and_awaited(fresh_loop):
    loop = fresh_loop
    clients = [Client(0.05), Client(0.2)]
    signal_later(loop, 0.05, signal.SIGINT)
    failsafe = loop.call_later(10, loop.stop)
    nsq.run()
    failsafe.cancel()
    assert all(c.closed_at is not None for c in clients)
    assert not any(c in registry.live_clients() for c in clients)


def test_second_signal_stops_without_waiting_for_the_drain(fresh_loop):
    loop = fresh_loop
    slow = Client(30)
    signal_later(loop, 0.05, signal.SIGINT, signal.SIGINT)
    failsafe = loop.call_later(10, loop.stop)
    started = time.monotonic()
    nsq.run()
    failsafe.cancel()
    assert time.monotonic() - started < 3
    assert slow.closed_at is None
    registry.unregister(slow)


def test_drain_timeout_bounds_the_shutdown(fresh_loop):
    loop = fresh_loop
    slow = Client(30)
    signal_later(loop, 0.05, signal.SIGTERM)
    failsafe = loop.call_later(10, loop.stop)
    started = time.monotonic()
    nsq.run(drain_timeout=0.2)
    failsafe.cancel()
    assert time.monotonic() - started < 3
    assert slow.closed_at is None
    registry.unregister(slow)


def test_close_all_inside_an_applications_own_asyncio_run():
    async def main():
        async with FakeNSQD(ack_slowly) as fake:
            writer = nsq.Writer(fake.address)
            futures = [writer.pub("t", b"a"), writer.pub("t", b"b")]
            other = Client(0.05)
            await fake.wait_for("PUB", 2)
            await close_all(timeout=5)
            assert [f.result() for f in futures] == [b"OK", b"OK"]
            assert other.closed_at is not None
            assert writer not in registry.live_clients()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_sigterm_from_outside_drains_a_pynsq_style_program(nsqd, tmp_path):
    """A real process: module-level Writer, PeriodicCallback publishing, nsq.run(); then SIGTERM."""
    import subprocess
    import sys

    script = tmp_path / "producer.py"
    script.write_text(
        "import sys, tornado.ioloop\n"
        "import nsqcli.lib as nsq\n"
        "sent, acks = [], []\n"
        "def pub_message():\n"
        "    for _ in range(50):\n"
        "        sent.append(1)\n"
        "        writer.pub('from_outside', b'x' * 100, finish_pub)\n"
        "def finish_pub(conn, data):\n"
        "    acks.append(data)\n"
        "    if len(acks) == 1:\n"
        "        print('ready', flush=True)\n"
        f"writer = nsq.Writer([{nsqd.tcp_address!r}])\n"
        "tornado.ioloop.PeriodicCallback(pub_message, 5).start()\n"
        "nsq.run()\n"
        "refused = [a for a in acks if isinstance(a, nsq.Error) and 'closed' in str(a)]\n"
        "print(len(sent), acks.count(b'OK'), len(acks), len(refused), flush=True)\n"
    )
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    sent, ok, answered, refused = map(int, out.split())
    assert sent == answered  # every publish got its callback, even those refused while closing
    assert ok + refused == answered and ok > 50  # acknowledged, or refused because closing...
    assert nsqd.topic_stats("from_outside")["message_count"] == ok  # ...and are in nsqd
