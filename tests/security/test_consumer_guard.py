"""Which connection errors stop nsq-tail / nsq-to-file (nsqcli.cli.consumer_guard), and which they
keep retrying; the end-to-end behaviour is in test_hostile_server.py, test_tls.py and
test_auth_secrets.py."""

from __future__ import annotations

import logging
import ssl

import pytest

from nsqcli.cli.consumer_guard import FatalConnectionGuard, is_permanent
from nsqcli.lib.conn import ConnectError
from nsqcli.lib.protocol.client import AuthRequiredError
from nsqcli.lib.protocol.errors import ConnectionClosedError, NSQError, NSQTimeoutError, ProtocolError
from nsqcli.lib.tls import TLSHandshakeError


def tls_error(cause: BaseException) -> TLSHandshakeError:
    error = TLSHandshakeError(f"TLS handshake with nsqd at h:1 failed: {cause}")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize("error, permanent", [
    (ProtocolError("got an HTTP reply: an nsqd TCP endpoint is required"), True),
    (ProtocolError("invalid frame size -2"), True),
    (AuthRequiredError("nsqd requires AUTH but no auth_secret was configured"), True),
    (NSQError("E_AUTH_FAILED", "AUTH failed"), True),
    (NSQError("E_UNAUTHORIZED", 'AUTH failed for SUB on "t" "c"'), True),
    (NSQError("E_INVALID", "cannot SUB in current state (TLS required)"), True),
    (tls_error(ssl.SSLCertVerificationError("certificate verify failed")), True),
    (tls_error(ssl.SSLError("wrong version number")), True),
    # worth retrying: nsqd down, restarting, slow, or a transient refusal
    (tls_error(ConnectionResetError("reset during the handshake")), False),
    (ConnectError("could not connect to nsqd at h:1: refused"), False),
    (NSQTimeoutError("during IDENTIFY", 1.0, "h:1"), False),
    (ConnectionClosedError("nsqd at h:1 closed the connection"), False),
    (NSQError("E_TOO_MANY_CHANNEL_CONSUMERS", "channel consumer limit reached"), False),
    (NSQError("E_FIN_FAILED", "FIN failed"), False),
], ids=lambda value: value if isinstance(value, bool) else type(value).__name__ + ":" + str(value)[:30])
def test_is_permanent(error, permanent):
    assert is_permanent(error) is permanent


class FakeReader:
    topic, channel = "t", "c"


def test_guard_reports_once_names_topic_and_nsqd_and_demotes_the_library_lines(caplog):
    caplog.set_level(logging.DEBUG)
    calls = []
    guard = FatalConnectionGuard(lambda topic, exc: calls.append((topic, exc)))
    try:
        conn_log = logging.getLogger("nsqcli.lib.conn")
        guard.report(FakeReader(), "127.0.0.1:4150", ConnectError("refused"))
        assert guard.error is None and not calls  # transient: keep retrying
        refused = NSQError("E_AUTH_FAILED", "AUTH failed")
        conn_log.warning("[%s] connection closed: %s", "127.0.0.1:4150", refused)
        guard.report(FakeReader(), "127.0.0.1:4150", refused)
        guard.report(FakeReader(), "127.0.0.1:4151", ProtocolError("later"))
        assert calls == [("t", refused)]
        assert str(guard.tool_error()) == "[t/c] nsqd at 127.0.0.1:4150: E_AUTH_FAILED AUTH failed"
        logging.getLogger("nsqcli.lib.reader").warning("connection closed")  # after the failure
        assert [r.levelno for r in caplog.records] == [logging.DEBUG, logging.DEBUG]
    finally:
        guard.close()
    logging.getLogger("nsqcli.lib.reader").warning("after close")
    assert caplog.records[-1].levelno == logging.WARNING


class ClusterReader(FakeReader):
    def __init__(self, *known):
        self.known = set(known)

    def known_nsqds(self):
        return set(self.known)


def test_guard_stops_only_when_every_known_nsqd_fails_permanently():
    fatal, warned = [], []
    guard = FatalConnectionGuard(lambda topic, exc: fatal.append(exc), warn=warned.append)
    try:
        reader = ClusterReader("a:1", "b:2")
        refused = NSQError("E_AUTH_FAILED", "AUTH failed")
        guard.report(reader, "a:1", refused)
        guard.report(reader, "a:1", refused)  # retried as lookupd lists it: said once
        assert warned == ["[t/c] nsqd at a:1: E_AUTH_FAILED AUTH failed; consuming from the "
                          "other nsqds meanwhile"] and not fatal and guard.error is None
        guard.recovered(reader, "a:1")  # it subscribed later: a new failure is news again
        guard.report(reader, "a:1", refused)
        assert len(warned) == 2 and not fatal
        guard.report(ClusterReader("b:2"), "b:2", ConnectError("refused"))  # transient: ignored
        guard.report(reader, "b:2", ProtocolError("not nsqd"))  # now nothing is left
        assert len(fatal) == 1 and str(guard.tool_error()) == "[t/c] nsqd at b:2: not nsqd"
    finally:
        guard.close()


def test_a_retried_lookupd_nsqd_still_counts_as_known():
    # lookupd stopped listing an nsqd whose connection dropped: the Reader keeps retrying it
    # (Discovery.discovered), so one bad nsqd elsewhere must not end the tool
    from types import SimpleNamespace

    from nsqcli.cli.consumer_guard import _guarded_reader_class

    reader = _guarded_reader_class().__new__(_guarded_reader_class())
    reader._discovery = SimpleNamespace(direct={}, listed={"b:2": ("b", 2)},
                                        discovered={"a:1": ("a", 1), "b:2": ("b", 2)})
    reader.conns = {}
    assert reader.known_nsqds() == {"a:1", "b:2"}
