"""Every example of pynsq's documentation, ported to Python 3, runs against the `nsqd` fixture.

Each example is kept as written (``import nsqcli.lib as nsq`` in place of ``import nsq``, print
statements as functions, the broker's addresses in place of 127.0.0.1:4150/4161). ``nsq.run()``
is the real one: ``run_until`` starts it and sends this process SIGINT once the example's messages
have flowed, so run()'s graceful shutdown closes the example's Readers and Writers; a failsafe
timer bounds the run. Each test then checks nsqd's counters, not just the example's prints.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from typing import Callable

import pytest
import tornado.ioloop
from test_run import fresh_loop  # noqa: F401 - the fixture: a new current loop per test

import nsqcli.lib as nsq
from nsqcli.lib import registry

pytestmark = pytest.mark.timeout(60)


def run_until(condition: Callable[[], bool], timeout: float = 20.0) -> float:
    """nsq.run() until ``condition()`` holds, then SIGINT (graceful close); returns seconds taken."""
    io_loop = tornado.ioloop.IOLoop.current()
    sent = []

    def check() -> None:
        if not sent and condition():
            sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)

    poller = tornado.ioloop.PeriodicCallback(check, 20)
    poller.start()
    failsafe = io_loop.call_later(timeout, io_loop.stop)
    started = time.monotonic()
    nsq.run()
    poller.stop()
    io_loop.remove_timeout(failsafe)
    assert sent, f"the example's messages did not flow within {timeout}s"
    return time.monotonic() - started


def wait_listed(nsqlookupd, topic: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if nsqlookupd.lookup(topic).get("producers"):
                return
        except Exception:  # 404 until nsqd registered the topic
            pass
        time.sleep(0.02)
    raise AssertionError(f"nsqlookupd never listed a producer for {topic}")


def finished(nsqd, topic: str, channel: str, count: int) -> bool:
    """The channel got ``count`` messages and every one was FINed (none queued, in flight, deferred)."""
    stats = nsqd.channel_stats(topic, channel)
    return bool(stats) and stats["message_count"] >= count and stats["depth"] == 0 \
        and stats["in_flight_count"] == 0 and stats["deferred_count"] == 0


def published(nsqd, topic: str) -> int:
    entry = nsqd.topic_stats(topic)
    return 0 if entry is None else entry["message_count"]


# ---- Reader: synchronous example ----------------------------------------------------------


def test_reader_synchronous_example(fresh_loop, nsqd_with_lookupd, capsys):  # noqa: F811
    nsqd, nsqlookupd = nsqd_with_lookupd
    nsqd.mpub("nsq_reader", [b"msg %d" % i for i in range(5)])
    wait_listed(nsqlookupd, "nsq_reader")

    # --- the example ---
    def handler(message):
        print(message)
        return True

    r = nsq.Reader(message_handler=handler,
                   lookupd_http_addresses=[f"http://{nsqlookupd.http_address}"],
                   topic='nsq_reader', channel='asdf', lookupd_poll_interval=15)
    # nsq.run()
    run_until(lambda: finished(nsqd, "nsq_reader", "asdf", 5))

    assert len(capsys.readouterr().out.splitlines()) == 5
    stats = nsqd.channel_stats("nsq_reader", "asdf")
    assert stats["message_count"] == 5 and stats["requeue_count"] == 0 and stats["depth"] == 0
    assert r not in registry.live_clients()  # run() closed it on SIGINT


# ---- Reader: asynchronous example ---------------------------------------------------------


def test_reader_asynchronous_example(fresh_loop, nsqd_with_lookupd, capsys):  # noqa: F811
    nsqd, nsqlookupd = nsqd_with_lookupd
    nsqd.mpub("nsq_reader", [b"async %d" % i for i in range(9)])
    wait_listed(nsqlookupd, "nsq_reader")

    # --- the example ---
    buf = []

    def process_message(message):
        nonlocal buf  # "global buf" in the original module-level example
        message.enable_async()
        # cache the message for later processing
        buf.append(message)
        if len(buf) >= 3:
            for msg in buf:
                print(msg)
                msg.finish()
            buf = []
        else:
            print('deferring processing')

    r = nsq.Reader(message_handler=process_message,
                   lookupd_http_addresses=[f"http://{nsqlookupd.http_address}"],
                   topic='nsq_reader', channel='async', max_in_flight=9)
    # nsq.run()
    run_until(lambda: finished(nsqd, "nsq_reader", "async", 9))

    out = capsys.readouterr().out.splitlines()
    assert out.count("deferring processing") == 6
    assert len(out) == 6 + 9
    assert finished(nsqd, "nsq_reader", "async", 9)
    assert r not in registry.live_clients()


# ---- Reader.is_starved example ------------------------------------------------------------


def test_is_starved_example(fresh_loop, nsqd):  # noqa: F811
    nsqd.mpub("starved", [b"s%d" % i for i in range(20)])
    batches = []
    pending = []

    # --- the example (its "# perform work" filled in: finish the buffered batch) ---
    def message_handler(nsq_msg, reader):
        # buffer messages
        nsq_msg.enable_async()
        pending.append(nsq_msg)
        if reader.is_starved():
            # perform work
            batches.append(len(pending))
            for msg in pending:
                msg.finish()
            pending.clear()

    reader = nsq.Reader(topic="starved", channel="batch", nsqd_tcp_addresses=[nsqd.tcp_address],
                        max_in_flight=5)
    reader.set_message_handler(functools.partial(message_handler, reader=reader))
    # nsq.run()
    run_until(lambda: finished(nsqd, "starved", "batch", 20))

    assert sum(batches) == 20
    assert batches and max(batches) <= 5 and max(batches) > 1  # it really batched


# ---- Writer: periodic publish example -----------------------------------------------------


def test_writer_periodic_callback_example(fresh_loop, nsqd, capsys):  # noqa: F811
    # --- the example (every 20 ms instead of every second, to keep the test short) ---
    def pub_message():
        writer.pub('test', time.strftime('%H:%M:%S'), finish_pub)

    def finish_pub(conn, data):
        print(data)

    writer = nsq.Writer([nsqd.tcp_address])
    tornado.ioloop.PeriodicCallback(pub_message, 20).start()
    # nsq.run()
    run_until(lambda: published(nsqd, "test") >= 10)

    printed = capsys.readouterr().out.splitlines()
    # the periodic callback may have published more while run() drained; all were answered OK
    assert set(printed) == {"b'OK'"}
    assert len(printed) == published(nsqd, "test")
    assert writer not in registry.live_clients()


# ---- Writer: tornado HTTP request handler example -----------------------------------------


def test_writer_tornado_request_handler_example(fresh_loop, nsqd):  # noqa: F811
    import tornado.httpclient
    import tornado.httpserver
    import tornado.web
    from tornado.netutil import bind_sockets

    from nsqcli.lib import Error, Writer

    retried = []

    # --- the example ---
    class MainHandler(tornado.web.RequestHandler):
        @property
        def nsq(self):
            return self.application.nsq

        def get(self):
            topic = 'log'
            msg = b'Hello world'
            msg_cn = 'Hello 世界'.encode('utf-8')

            self.nsq.pub(topic, msg)  # pub
            self.nsq.mpub(topic, [msg, msg_cn])  # mpub
            self.nsq.dpub(topic, 60000, msg)  # dpub

            # customize callback
            callback = functools.partial(self.finish_pub, topic=topic, msg=msg)
            self.nsq.pub(topic, msg, callback=callback)

            self.write(msg)

        def finish_pub(self, conn, data, topic, msg):
            if isinstance(data, Error):
                # try to re-pub message again if pub failed
                retried.append(data)
                self.nsq.pub(topic, msg)

    class Application(tornado.web.Application):
        def __init__(self, handlers, **settings):
            self.nsq = Writer([nsqd.tcp_address])
            super(Application, self).__init__(handlers, **settings)

    # --- serving it and making one request ---
    app = Application([(r"/", MainHandler)])
    sockets = bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    responses = []

    async def request():
        client = tornado.httpclient.AsyncHTTPClient()
        response = await client.fetch(f"http://127.0.0.1:{port}/")
        responses.append(response.body)

    tornado.ioloop.IOLoop.current().add_callback(request)
    run_until(lambda: bool(responses) and published(nsqd, "log") >= 5)
    server.stop()

    assert responses == [b"Hello world"]
    assert retried == []
    assert published(nsqd, "log") == 5  # pub + 2 in the mpub + dpub + pub with callback
    assert app.nsq not in registry.live_clients()


# ---- LegacyReader example -----------------------------------------------------------------


def test_legacy_reader_tasks_example(fresh_loop, nsqd):  # noqa: F811
    import warnings

    nsqd.create_topic("legacy")
    nsqd.create_channel("legacy", "ch.one")  # both channels must exist before publishing
    nsqd.create_channel("legacy", "ch.two")
    nsqd.mpub("legacy", [b"l%d" % i for i in range(4)])
    seen = {"one": 0, "two": 0}

    def task_one(message):
        seen["one"] += 1
        return True

    def task_two(message):
        seen["two"] += 1
        return True

    # --- the example: "from nsq import LegacyReader as Reader" ---
    from nsqcli.lib import LegacyReader as Reader

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        Reader(all_tasks={"one": task_one, "two": task_two}, topic="legacy", channel="ch",
               nsqd_tcp_addresses=[nsqd.tcp_address])
    run_until(lambda: finished(nsqd, "legacy", "ch.one", 4) and finished(nsqd, "legacy", "ch.two", 4))
    assert seen == {"one": 4, "two": 4}
