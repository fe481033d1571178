"""The pytest plugin nsqcli.testing: handles, HTTP helpers, restarts on the same ports, markers."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from nsqcli.testing import NSQ_ACCEPT, BrokerHandle, BrokerHTTPError, normalize_nsqd_options

pytest_plugins = ["pytester"]


def _connectable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# nsqd fixtures


def test_nsqd_handle_addresses_and_ping(nsqd, real_nsq):
    assert nsqd.real is real_nsq
    assert nsqd.host == "127.0.0.1"
    assert nsqd.tcp_port > 0 and nsqd.http_port > 0 and nsqd.tcp_port != nsqd.http_port
    assert nsqd.tcp_address == f"127.0.0.1:{nsqd.tcp_port}"
    assert nsqd.http_address == f"127.0.0.1:{nsqd.http_port}"
    assert nsqd.http("GET", "/ping") == (200, b"OK")
    assert _connectable("127.0.0.1", nsqd.tcp_port)


def test_nsqd_pub_mpub_and_stats(nsqd):
    nsqd.pub("fixture_topic", b"one")
    nsqd.mpub("fixture_topic", [b"two\nlines", b"three"])
    stats = nsqd.stats(topic="fixture_topic")
    (topic,) = [t for t in stats["topics"] if t["topic_name"] == "fixture_topic"]
    assert topic["message_count"] == 3
    assert topic["depth"] == 3
    assert nsqd.topic_stats("fixture_topic")["message_count"] == 3
    assert nsqd.topic_stats("no_such_topic") is None


def test_nsqd_create_topic_and_channel(nsqd):
    nsqd.create_topic("made")
    nsqd.create_channel("made", "chan")
    assert nsqd.channel_stats("made", "chan") is not None
    assert nsqd.channel_stats("made", "other") is None
    nsqd.delete_channel("made", "chan")
    assert nsqd.channel_stats("made", "chan") is None
    nsqd.delete_topic("made")
    assert nsqd.topic_stats("made") is None


def test_nsqd_http_returns_error_statuses_and_http_json_raises(nsqd):
    status, body = nsqd.http("POST", "/pub", {"topic": "t"}, b"")
    assert status == 400
    assert json.loads(body) == {"message": "MSG_EMPTY"}
    with pytest.raises(BrokerHTTPError) as caught:
        nsqd.http_json("POST", "/topic/delete", {"topic": "never_created"})
    assert caught.value.status == 404
    assert b"TOPIC_NOT_FOUND" in caught.value.body


def test_nsqd_factory_passes_options(nsqd_factory):
    small = nsqd_factory(max_msg_size=10)
    assert small.http("POST", "/pub", {"topic": "t"}, b"x" * 10)[0] == 200
    status, body = small.http("POST", "/pub", {"topic": "t"}, b"x" * 11)
    assert (status, json.loads(body)) == (413, {"message": "MSG_TOO_BIG"})


def test_nsqd_factory_makes_independent_brokers(nsqd_factory):
    first, second = nsqd_factory(), nsqd_factory()
    assert {first.tcp_port, first.http_port}.isdisjoint({second.tcp_port, second.http_port})
    first.pub("only_first", b"m")
    assert second.topic_stats("only_first") is None


def test_nsqd_stop_and_start_keep_the_ports_and_the_messages(nsqd):
    tcp_port, http_port = nsqd.tcp_port, nsqd.http_port
    nsqd.pub("kept", b"before")
    nsqd.stop()
    assert not nsqd.running
    assert not nsqd.ping()
    assert not _connectable("127.0.0.1", tcp_port)
    nsqd.start()
    assert (nsqd.tcp_port, nsqd.http_port) == (tcp_port, http_port)
    assert nsqd.ping()
    nsqd.pub("kept", b"after")
    # both nsqds write their topics and messages to their data path at stop and load them back
    assert nsqd.topic_stats("kept")["depth"] == 2


# ---------------------------------------------------------------------------------------------
# nsqlookupd fixtures


def test_nsqlookupd_handle(nsqlookupd):
    assert nsqlookupd.http("GET", "/ping") == (200, b"OK")
    assert nsqlookupd.topics() == []
    assert nsqlookupd.nodes() == []
    assert _connectable("127.0.0.1", nsqlookupd.tcp_port)
    with pytest.raises(BrokerHTTPError) as caught:
        nsqlookupd.lookup("missing")
    assert caught.value.status == 404


def test_nsqlookupd_stop_and_start_keep_the_ports_not_the_registrations(nsqlookupd):
    ports = (nsqlookupd.tcp_port, nsqlookupd.http_port)
    nsqlookupd.http_json("POST", "/topic/create", {"topic": "forgotten"})
    nsqlookupd.stop()
    assert not nsqlookupd.ping()
    nsqlookupd.start()
    assert (nsqlookupd.tcp_port, nsqlookupd.http_port) == ports
    assert nsqlookupd.ping()
    assert nsqlookupd.topics() == []  # nsqlookupd keeps nothing across restarts


def test_nsqd_with_lookupd_is_registered(nsqd_with_lookupd):
    nsqd, lookupd = nsqd_with_lookupd
    node = lookupd.wait_for_producer(nsqd, timeout=0.1)  # the fixture already waited
    assert (node["broadcast_address"], node["tcp_port"], node["http_port"]) == (
        "127.0.0.1", nsqd.tcp_port, nsqd.http_port)
    nsqd.pub("registered_topic", b"m")
    lookupd.wait_for_producer(nsqd, topic="registered_topic")
    producers = lookupd.lookup("registered_topic")["producers"]
    assert [p["tcp_port"] for p in producers] == [nsqd.tcp_port]


def test_wait_for_producer_times_out(nsqd, nsqlookupd):
    with pytest.raises(TimeoutError, match="did not register"):
        nsqlookupd.wait_for_producer(nsqd, timeout=0.05)


# ---------------------------------------------------------------------------------------------
# The HTTP helper itself, against a recording HTTP server


class _Recorder(BaseHTTPRequestHandler):
    seen: list = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        _Recorder.seen.append((self.command, self.path, self.headers.get("Accept"), body))
        status = 500 if self.path.startswith("/fail") else 200
        payload = b'{"message":"BOOM"}' if status == 500 else b'{"ok": true}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recording_http_server():
    _Recorder.seen = []
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_http_helper_sends_nsq_accept_header_params_and_body(recording_http_server):
    handle = BrokerHandle(backend=None)
    handle.http_port = recording_http_server.server_address[1]
    assert handle.http("POST", "/pub", {"topic": "a b", "defer": 5}, "body") == (200, b'{"ok": true}')
    assert handle.http("GET", "/fail") == (500, b'{"message":"BOOM"}')
    assert handle.http_json("GET", "/x") == {"ok": True}
    assert _Recorder.seen[0] == ("POST", "/pub?topic=a+b&defer=5", NSQ_ACCEPT, b"body")
    assert _Recorder.seen[1][:3] == ("GET", "/fail", NSQ_ACCEPT)
    with pytest.raises(BrokerHTTPError, match="500"):
        handle.http_json("GET", "/fail")


def test_singular_option_spellings_become_lists():
    assert normalize_nsqd_options({"auth_http_address": "127.0.0.1:1", "max_msg_size": 5}) == {
        "auth_http_addresses": ["127.0.0.1:1"], "max_msg_size": 5}
    assert normalize_nsqd_options(
        {"lookupd_tcp_address": "a:1", "lookupd_tcp_addresses": ["b:2"]}
    ) == {"lookupd_tcp_addresses": ["b:2", "a:1"]}


# ---------------------------------------------------------------------------------------------
# Markers: embedded_only / real_only are skipped in the other mode

_MARKED_TESTS = """
import pytest

@pytest.mark.embedded_only
def test_embedded():
    pass

@pytest.mark.real_only
def test_real():
    pass

def test_fixture_mode(real_nsq):
    print("REAL_NSQ=%s" % real_nsq)
"""


def test_markers_skip_by_mode(pytester, monkeypatch):
    pytester.makepyfile(_MARKED_TESTS)
    monkeypatch.delenv("NSQCLI_TEST_NSQD", raising=False)
    result = pytester.runpytest("-p", "nsqcli.testing", "-rs", "-s")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*REAL_NSQ=False*", "*needs real NSQ binaries*"])

    monkeypatch.setenv("NSQCLI_TEST_NSQD", "/nonexistent/nsqd")
    result = pytester.runpytest("-p", "nsqcli.testing", "-rs", "-s")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*REAL_NSQ=True*", "*embedded broker only*"])


# ---------------------------------------------------------------------------------------------
# BrokerThread


def test_broker_thread_runs_coroutines_and_propagates_errors():
    from nsqcli.broker.thread import BrokerThread

    async def where(value):
        await asyncio.sleep(0)
        return value, threading.current_thread().name

    async def fail():
        raise KeyError("boom")

    with BrokerThread(name="test-broker") as thread:
        assert thread.call(where, 7) == (7, "test-broker")
        with pytest.raises(KeyError, match="boom"):
            thread.call(fail)
        with pytest.raises(TimeoutError, match="did not finish"):
            thread.call(asyncio.sleep, 5, timeout=0.05)
    assert not thread.running
    with pytest.raises(RuntimeError, match="not running"):
        thread.call(where, 1)


# ---------------------------------------------------------------------------------------------
# Real mode, with a stand-in daemon (no NSQ binaries here): flags, /ping wait, restart, failures

FAKE_DAEMON = r'''
import http.server, json, os, sys
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if "=" in a)
if "fail" in args.get("data-path", "") or os.environ.get("FAKE_DAEMON_FAIL"):
    print("boom: cannot start", flush=True)
    sys.exit(3)
taken = os.environ.get("FAKE_DAEMON_PORTS_TAKEN")  # a file: how many launches find a port taken
if taken and int(open(taken).read()) > 0:
    left = int(open(taken).read())
    open(taken, "w").write(str(left - 1))
    print(f"FATAL: listen tcp {args['tcp-address']}: bind: address already in use", flush=True)
    sys.exit(1)
with open(os.environ["FAKE_DAEMON_ARGV"], "a") as out:
    out.write(json.dumps(sys.argv[1:]) + "\n")
host, port = args["http-address"].rsplit(":", 1)
class Ping(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"OK")
    def log_message(self, *a): pass
http.server.HTTPServer((host, int(port)), Ping).serve_forever()
'''


@pytest.fixture
def fake_daemon(tmp_path, monkeypatch):
    script = tmp_path / "fake-nsqd"
    script.write_text(f"#!{sys.executable}\n{FAKE_DAEMON}")
    script.chmod(0o755)
    argv_log = tmp_path / "argv.jsonl"
    monkeypatch.setenv("FAKE_DAEMON_ARGV", str(argv_log))
    assert os.access(script, os.X_OK)
    return str(script), argv_log


def test_nsqd_flags_map_option_names():
    from nsqcli.broker.daemons import UnsupportedOption, nsqd_flags

    flags = nsqd_flags({"max_msg_size": 10, "msg_timeout_ms": 1500, "snappy": False,
                        "tls_required": True, "tls_cert": "/c.pem",
                        "auth_http_addresses": ["127.0.0.1:1", "127.0.0.1:2"],
                        "lookupd_tcp_addresses": ["127.0.0.1:3"], "queue_scan_interval_ms": 5,
                        "queue_scan_refresh_interval_ms": 50, "lookupd_ping_interval_ms": 20,
                        "queue_scan_selection_count": 4, "tls_key": None})
    assert flags == ["--max-msg-size=10", "--msg-timeout=1500ms", "--snappy=false",
                     "--tls-required=true", "--tls-cert=/c.pem",
                     "--auth-http-address=127.0.0.1:1", "--auth-http-address=127.0.0.1:2",
                     "--lookupd-tcp-address=127.0.0.1:3", "--queue-scan-selection-count=4"]
    assert nsqd_flags({"tls_required": "tcp-https"}) == ["--tls-required=tcp-https"]
    with pytest.raises(UnsupportedOption, match="client_timeout_ms"):
        nsqd_flags({"client_timeout_ms": 1000})


def test_real_daemon_starts_restarts_on_same_ports_and_stops(fake_daemon):
    from nsqcli.testing import make_nsqd

    binary, argv_log = fake_daemon
    handle = make_nsqd({"max_rdy_count": 5, "lookupd_tcp_address": "127.0.0.1:9"}, binary=binary)
    try:
        handle.start()
        assert handle.real and handle.ping()
        ports = (handle.tcp_port, handle.http_port)
        (argv,) = [json.loads(line) for line in argv_log.read_text().splitlines()]
        assert f"--tcp-address=127.0.0.1:{handle.tcp_port}" in argv
        assert f"--http-address=127.0.0.1:{handle.http_port}" in argv
        assert "--broadcast-address=127.0.0.1" in argv
        assert "--max-rdy-count=5" in argv and "--lookupd-tcp-address=127.0.0.1:9" in argv
        data_path = [a for a in argv if a.startswith("--data-path=")][0].split("=", 1)[1]
        assert os.path.isdir(data_path)
        handle.stop()
        assert not handle.ping()
        handle.start()
        assert (handle.tcp_port, handle.http_port) == ports and handle.ping()
    finally:
        handle.close()
    assert not handle.ping()
    assert not os.path.exists(data_path)


def test_real_daemon_gets_fresh_ports_when_one_was_taken(fake_daemon, monkeypatch, tmp_path):
    from nsqcli.broker.daemons import PORT_ATTEMPTS
    from nsqcli.testing import make_nsqd

    binary, argv_log = fake_daemon
    taken = tmp_path / "taken"
    monkeypatch.setenv("FAKE_DAEMON_PORTS_TAKEN", str(taken))
    taken.write_text(str(PORT_ATTEMPTS - 1))  # every attempt but the last finds a port taken
    handle = make_nsqd({}, binary=binary)
    try:
        assert handle.start().ping() and taken.read_text() == "0"
    finally:
        handle.close()
    taken.write_text(str(PORT_ATTEMPTS))
    handle = make_nsqd({}, binary=binary)
    with pytest.raises(RuntimeError, match="address already in use"):
        handle.start()
    handle.close()


def test_real_daemon_that_fails_reports_its_output(fake_daemon, monkeypatch):
    from nsqcli.testing import make_nsqlookupd

    monkeypatch.setenv("FAKE_DAEMON_FAIL", "1")
    handle = make_nsqlookupd({"tombstone_lifetime_ms": 100}, binary=fake_daemon[0])
    with pytest.raises(RuntimeError, match=r"(?s)nsqlookupd exited with 3.*boom: cannot start"):
        handle.start()
    handle.close()


def test_fixtures_in_real_mode_use_the_binaries(pytester, fake_daemon, monkeypatch):
    binary, argv_log = fake_daemon
    pytester.makepyfile("""
        def test_real(nsqd, nsqlookupd, real_nsq):
            assert real_nsq and nsqd.real and nsqlookupd.real
            assert nsqd.ping() and nsqlookupd.ping()

        def test_option_without_a_flag_is_skipped(nsqd_factory):
            nsqd_factory(client_timeout_ms=1000)
    """)
    monkeypatch.setenv("NSQCLI_TEST_NSQD", binary)
    monkeypatch.setenv("NSQCLI_TEST_NSQLOOKUPD", binary)
    result = pytester.runpytest("-p", "nsqcli.testing", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*no command-line flag for option 'client_timeout_ms'*"])
    assert len(argv_log.read_text().splitlines()) == 2
