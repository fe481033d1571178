"""Bad flag values on every tool: a one-line usage error, exit 2, and nothing sent.

Each tool is pointed at sentinel sockets standing in for nsqd (TCP) and nsqlookupd (HTTP); after a
bad invocation neither may have seen a connection. Run in-process with CliRunner (fast); the
subprocess tests elsewhere prove the installed scripts behave the same. (``nsqcli dev-server``
refusing non-loopback addresses is tests/broker/test_dev_server.py::
test_refuses_non_loopback_without_allow_remote.)
"""

from __future__ import annotations

import select
import socket

import pytest
from click.testing import CliRunner

from nsqcli.__main__ import load_tool


class Sentinel:
    """A listening socket nobody should connect to; ``connections()`` accepts and counts."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.accepted = 0

    def connections(self) -> int:
        # a loopback connect() completes in the kernel at once: a pending one is readable now
        while select.select([self.sock], [], [], 0)[0]:
            conn, _ = self.sock.accept()
            conn.close()
            self.accepted += 1
        return self.accepted

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def sentinels():
    nsqd, lookupd = Sentinel(), Sentinel()
    yield nsqd, lookupd
    nsqd.close()
    lookupd.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-input")
    archive = folder / "t.host.2026-01-01_00.log"
    archive.write_bytes(b"one\ntwo\n")
    empty = folder / "empty-secret"
    empty.write_text("")
    secret = folder / "secret"
    secret.write_text("s3cr3t\n")
    return {"archive": str(archive), "empty": str(empty), "secret": str(secret),
            "dir": str(folder), "missing": str(folder / "missing.pem")}


# the part of each tool's arguments that would, with good flags, send something
BASE = {
    "tail": ["--topic", "t", "-n", "1"],
    "pub": ["--topic", "t", "-m", "hello"],
    "to-file": ["--topic", "t", "--output-dir", "{dir}"],
    "replay": ["--topic", "t", "{archive}"],
}
CONSUMERS, PRODUCERS = ("tail", "to-file"), ("pub", "replay")

# flags every client tool shares: (id, args, words the error must contain)
SHARED = [
    ("empty-topic", ["--topic", ""], "topic"),
    ("topic-with-space", ["--topic", "bad topic"], "topic"),
    ("topic-too-long", ["--topic", "t" * 65], "topic"),
    ("topic-bad-suffix", ["--topic", "t#ephemeralx"], "topic"),
    ("nsqd-no-port", ["--nsqd-tcp-address", "localhost"], "nsqd-tcp-address"),
    ("nsqd-port-range", ["--nsqd-tcp-address", "127.0.0.1:70000"], "port"),
    ("nsqd-scheme", ["--nsqd-tcp-address", "tcp://127.0.0.1:4150"], "scheme"),
    ("lookupd-no-port", ["--lookupd-http-address", "localhost"], "lookupd-http-address"),
    ("deflate-level-0", ["--deflate-level", "0"], "deflate-level"),
    ("deflate-level-10", ["--deflate-level", "10"], "deflate-level"),
    ("snappy-and-deflate", ["--snappy", "--deflate"], "mutually exclusive"),
    ("cert-without-key", ["--tls-cert", "{secret}"], "--tls-key"),
    ("missing-ca-file", ["--tls-ca-file", "{missing}"], "tls-ca-file"),
    ("empty-secret-file", ["--auth-secret-file", "{empty}"], "empty"),
    ("secret-twice", ["--auth-secret", "x", "--auth-secret-file", "{secret}"], "not both"),
    ("quiet-and-verbose", ["-q", "-v"], "contradict"),
]
OPT = {"tail": "--consumer-opt", "to-file": "--consumer-opt", "pub": "--producer-opt",
       "replay": "--producer-opt"}
SHARED_OPTS = [  # the value of --consumer-opt / --producer-opt
    ("opt-unknown", "bogus=1", "unknown"),
    ("opt-bad-duration", "dial_timeout=soon", "invalid duration"),
    ("opt-negative-timeout", "dial_timeout=-1s", "dial_timeout"),
    ("opt-zero-timeout", "dial_timeout=0", "dial_timeout"),
    ("opt-heartbeat-too-short", "heartbeat_interval=100ms", "heartbeat_interval"),
    ("opt-deflate-level", "deflate_level=12", "deflate_level"),
    ("opt-output-buffer-size", "output_buffer_size=10", "output_buffer_size"),
    ("opt-output-buffer-timeout", "output_buffer_timeout=-5ms", "output_buffer_timeout"),
    ("opt-not-a-number", "output_buffer_size=lots", "integer"),
]
CONSUMER_OPTS = [
    ("opt-max-in-flight", "max_in_flight=-1", "max_in_flight"),
    ("opt-sample-rate", "sample_rate=100", "sample_rate"),
    ("opt-msg-timeout", "msg_timeout=-5s", "msg_timeout"),
    ("opt-max-attempts", "max_attempts=-2", "max_attempts"),
    ("opt-poll-jitter", "lookupd_poll_jitter=2", "lookupd_poll_jitter"),
    ("opt-poll-interval", "lookupd_poll_interval=0", "lookupd_poll_interval"),
    ("opt-backoff-strategy", "backoff_strategy=random", "backoff_strategy"),
    ("opt-max-frame-size", "max_frame_size=10", "max_frame_size"),
    ("opt-requeue-delay", "requeue_delay=-1s", "requeue_delay"),
]
PRODUCER_OPTS = [
    ("opt-max-msg-size", "max_msg_size=-1", "max_msg_size"),
    ("opt-consumer-only-bad-value", "max_in_flight=-5", "max_in_flight"),  # checked, as go-nsq does
    ("opt-nsqcli-consumer-only", "close_timeout=5s", "unknown"),
]
PER_TOOL = {
    "tail": [
        ("channel-with-space", ["--channel", "bad channel"], "channel"),
        ("empty-channel", ["--channel", ""], "channel"),
        ("channel-too-long", ["--channel", "c" * 65], "channel"),
        ("max-in-flight-0", ["--max-in-flight", "0"], "max-in-flight"),
        ("max-in-flight-text", ["--max-in-flight", "many"], "max-in-flight"),
        ("count-negative", ["-n", "-1"], "-n"),
        ("format-unknown", ["--format", "xml"], "format"),
    ],
    "pub": [
        ("empty-message", ["-m", ""], "empty"),
        ("empty-delimiter", ["--delimiter", ""], "delimiter"),
        ("rate-infinite", ["--rate", "inf"], "rate"),  # (0 is to_nsq's "no limit")
        ("rate-negative", ["--rate", "-5"], "rate"),
        ("defer-negative", ["--defer", "-5s"], "defer"),
        ("defer-garbage", ["--defer", "later"], "defer"),
        ("retry-timeout-negative", ["--retry-timeout", "-1s"], "retry-timeout"),
        ("batch-size-0", ["--batch-size", "0"], "batch-size"),
        ("mode-unknown", ["--mode", "broadcast"], "mode"),
        ("missing-input-file", ["{missing}"], "missing.pem"),
        ("oversized-message", ["--producer-opt", "max_msg_size=4", "-m", "too large"], "max_msg_size"),
    ],
    "to-file": [
        ("channel-with-space", ["--channel", "bad channel"], "channel"),
        ("topic-pattern-regex", ["--topic-pattern", "("], "topic-pattern"),
        ("max-in-flight-0", ["--max-in-flight", "0"], "max-in-flight"),
        ("gzip-level-0", ["--gzip", "--gzip-level", "0"], "gzip-level"),
        ("gzip-level-10", ["--gzip", "--gzip-level", "10"], "gzip-level"),
        ("rotate-size-negative", ["--rotate-size", "-1"], "rotate-size"),
        ("rotate-interval-negative", ["--rotate-interval", "-1s"], "rotate-interval"),
        ("sync-interval-0", ["--sync-interval", "0"], "sync-interval"),
        ("sync-interval-negative", ["--sync-interval", "-1s"], "sync-interval"),
        ("topic-refresh-0", ["--topic-refresh", "0s"], "topic-refresh"),
        ("connect-timeout-negative", ["--http-client-connect-timeout", "-1s"], "timeout"),
        ("request-timeout-0", ["--http-client-request-timeout", "0"], "timeout"),
        ("format-unknown", ["--format", "csv"], "format"),
        ("filename-without-topic", ["--topic", "u", "--filename-format", "static.log"], "TOPIC"),
    ],
    "replay": [
        ("rate-negative", ["--rate", "-1"], "rate"),  # (0 means no limit, as nsq-pub's)
        ("speed-0", ["--speed", "0"], "speed"),
        ("speed-negative", ["--speed", "-2"], "speed"),
        ("since-garbage", ["--since", "yesterday-ish"], "since"),
        ("until-garbage", ["--until", "soon"], "until"),
        ("defer-negative", ["--defer", "-1s"], "defer"),
        ("rename-without-equals", ["--rename", "old"], "rename"),
        ("rename-bad-topic", ["--rename", "t=bad topic"], "topic"),
        ("retry-timeout-negative", ["--retry-timeout", "-1s"], "retry-timeout"),
        ("batch-size-0", ["--batch-size", "0"], "batch-size"),
        ("timing-unknown", ["--timing", "slow"], "timing"),
        ("missing-input", ["{missing}"], "missing.pem"),
    ],
}


def _cases():
    for tool in BASE:
        for case_id, args, words in SHARED:
            yield pytest.param(tool, args, words, id=f"{tool}-{case_id}")
        opts = SHARED_OPTS + (CONSUMER_OPTS if tool in CONSUMERS else PRODUCER_OPTS)
        for case_id, value, words in opts:
            yield pytest.param(tool, [OPT[tool], value], words, id=f"{tool}-{case_id}")
        for case_id, args, words in PER_TOOL[tool]:
            yield pytest.param(tool, args, words, id=f"{tool}-{case_id}")


def invoke(tool: str, args: list[str]):
    command = load_tool(tool)
    assert command is not None, tool
    env = {"NSQD_TCP_ADDRESS": None, "NSQLOOKUPD_HTTP_ADDRESS": None, "NSQ_AUTH_SECRET": None}
    return CliRunner().invoke(command, args, env=env, catch_exceptions=True)


def describe(result) -> str:
    import traceback

    exc = result.exception
    trace = "".join(traceback.format_exception(exc)) if exc and not isinstance(exc, SystemExit) else ""
    return f"exit={result.exit_code}\nstdout={result.stdout!r}\nstderr={result.stderr!r}\n{trace}"


@pytest.mark.timeout(20)  # a bad flag that is accepted makes a consumer retry the sentinel forever
@pytest.mark.parametrize("tool, args, words", list(_cases()))
def test_bad_flag_is_a_one_line_usage_error_and_nothing_is_sent(tool, args, words, sentinels, files):
    nsqd, lookupd = sentinels
    before = (nsqd.accepted, lookupd.accepted)
    # the bad flag comes last, so it overrides the good one given in BASE
    full = [part.format(**files) for part in [*BASE[tool], "--nsqd-tcp-address", nsqd.address, *args]]
    result = invoke(tool, full)
    assert result.exit_code == 2, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    error = [line for line in result.stderr.splitlines() if line.startswith("Error:")
             or ": error:" in line or line.startswith(f"nsq-{tool}: ")]
    assert len(error) == 1 and words.lower() in error[0].lower(), describe(result)
    assert (nsqd.connections(), lookupd.connections()) == before, "something was sent"


DEV_SERVER = [
    ("tcp-address", ["--tcp-address", "nowhere"], "tcp-address"),
    ("max-msg-size-0", ["--max-msg-size", "0"], "max-msg-size"),
    ("msg-timeout-negative", ["--msg-timeout", "-1s"], "msg-timeout"),
    ("msg-timeout-garbage", ["--msg-timeout", "forever"], "msg-timeout"),
    ("max-deflate-level", ["--max-deflate-level", "10"], "max-deflate-level"),
    ("tls-key-without-cert", ["--tls-key", "{secret}"], "tls"),
    ("tls-policy-unknown", ["--tls-client-auth-policy", "maybe"], "tls-client-auth-policy"),
    ("mem-queue-negative", ["--mem-queue-size", "-1"], "mem-queue-size"),
]


@pytest.mark.parametrize("args, words", [pytest.param(a, w, id=i) for i, a, w in DEV_SERVER])
def test_dev_server_bad_flags(args, words, files):
    result = invoke("dev-server", ["--tcp-address", "127.0.0.1:0", "--http-address", "127.0.0.1:0",
                                   "--no-lookupd", *[a.format(**files) for a in args]])
    assert result.exit_code == 2, describe(result)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and words.lower() in result.stderr.lower(), describe(result)
    assert any(words.lower() in line.lower() for line in lines), describe(result)


def test_the_sentinel_sees_a_connection_at_once():
    # what the table relies on: a connect() that already returned is counted without waiting
    sentinel = Sentinel()
    try:
        host, port = sentinel.address.split(":")
        socket.create_connection((host, int(port))).close()
        assert sentinel.connections() == 1
    finally:
        sentinel.close()


def test_records_over_the_limit_nsqd_reports_are_refused_and_none_is_stored(nsqd_factory, files):
    # without --producer-opt max_msg_size the limit is learned from nsqd's refusal (IDENTIFY does
    # not carry it): exit 3 (not acknowledged), the record named, nothing stored
    nsqd = nsqd_factory(max_msg_size=10)
    result = invoke("pub", ["--topic", "big", "-m", "x" * 20, "--nsqd-tcp-address", nsqd.tcp_address])
    assert result.exit_code == 3, describe(result)
    assert "Traceback" not in result.stderr
    assert "record 1 is 20 bytes" in result.stderr and "max-msg-size 10" in result.stderr, describe(result)
    stats = nsqd.topic_stats("big")
    assert stats is None or stats["message_count"] == 0


def test_empty_records_are_never_sent(nsqd):
    result = CliRunner().invoke(load_tool("pub"), ["--topic", "empty", "--nsqd-tcp-address",
                                                   nsqd.tcp_address], input=b"\n\n\n")
    assert result.exit_code == 0, describe(result)
    stats = nsqd.topic_stats("empty")
    assert stats is None or stats["message_count"] == 0
