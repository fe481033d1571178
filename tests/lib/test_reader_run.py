"""A pynsq-style program: Reader created before the loop, nsq.run(), SIGTERM -> graceful drain."""

import os
import subprocess
import sys
import textwrap
import time

PROGRAM = textwrap.dedent("""
    import os, signal, sys
    from tornado.ioloop import IOLoop
    import nsqcli.lib as nsq

    def handler(message):
        print("got", message.body.decode(), flush=True)
        message.enable_async()
        # answer after the shutdown started: the drain must wait for it
        IOLoop.current().call_later(0.3, message.finish)
        os.kill(os.getpid(), signal.SIGTERM)

    r = nsq.Reader(topic="run_topic", channel="c", message_handler=handler,
                   nsqd_tcp_addresses=[sys.argv[1]], max_in_flight=1)
    nsq.run()
    print("closed", r.conns, flush=True)
""")


def test_reader_under_nsq_run_drains_on_sigterm(nsqd, tmp_path):
    nsqd.pub("run_topic", b"hello")
    script = tmp_path / "prog.py"
    script.write_text(PROGRAM)
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(script), nsqd.tcp_address], capture_output=True,
                          text=True, timeout=30, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["got hello", "closed {}"]
    assert time.monotonic() - started < 20
    stats = nsqd.channel_stats("run_topic", "c")
    # FINed during the drain: nothing requeued, nothing left in flight or in the queue
    assert stats["depth"] == 0 and stats["in_flight_count"] == 0 and stats["requeue_count"] == 0
    assert stats["message_count"] == 1
