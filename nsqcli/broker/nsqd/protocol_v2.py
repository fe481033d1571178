"""The V2 commands, with nsqd v1.3.0's checks, order and error texts (nsqd/protocol_v2.go).

Each handler returns the response to send (bytes), None for no response, or a coroutine that
resolves to one of those (AUTH, a TLS upgrade, an expired authorization to re-check, a topic the
command created whose channels lookupd is asked for). Errors are raised as :class:`ClientErr`;
only E_FIN_FAILED, E_REQ_FAILED and E_TOUCH_FAILED are non-fatal.
The commands with a body live in :mod:`.body_commands`.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from nsqcli.lib.protocol.constants import NON_FATAL_ERROR_CODES
from nsqcli.lib.protocol.names import valid_channel_name, valid_topic_name

from .auth import AuthError, query_any_authd
from .client import STATE_CLOSING, STATE_INIT, STATE_SUBSCRIBED

if TYPE_CHECKING:
    from .tcp import V2Connection

OK = b"OK"


class ClientErr(Exception):
    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description

    @property
    def fatal(self) -> bool:
        return self.code not in NON_FATAL_ERROR_CODES

    def frame_data(self) -> bytes:
        return f"{self.code} {self.description}".encode("utf-8", "replace")


def go_quote(value: str) -> str:
    """Go's %q for the names that appear in error texts."""
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif not ch.isprintable():
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def as_text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def parse_base10(raw: bytes) -> int | None:
    """nsqd's ByteToBase10: digits only (no sign); the empty string is 0."""
    if raw and not raw.isdigit():
        return None
    return int(raw) if raw else 0


def message_id(raw: bytes) -> bytes:
    """nsqd's getMessageID: exactly 16 bytes, else a fatal E_INVALID (lower-case text, as nsqd)."""
    if len(raw) != 16:
        raise ClientErr("E_INVALID", "invalid message ID")
    return raw


async def then(pending: Awaitable[Any], action: Callable[[], Any]) -> Any:
    await pending
    result = action()
    if inspect.isawaitable(result):  # the action had to wait too (a topic it created)
        result = await result
    return result


def after(pending: Awaitable[Any] | None, action: Callable[[], Any]) -> Any:
    """``action()`` now, or once ``pending`` is done: a coroutine the connection suspends on."""
    return then(pending, action) if pending is not None else action()


# ------------------------------------------------------------------------ auth


def check_auth(conn: "V2Connection", cmd: str, topic: str, channel: str) -> Awaitable[None] | None:
    """nsqd's CheckAuth; a coroutine when the cached authorization expired and must be re-read."""
    nsqd = conn.nsqd
    if not nsqd.auth_enabled:
        return None
    client = conn.client
    state = client.auth_state
    if state is None or not state.authorizations:
        raise ClientErr("E_AUTH_FIRST", f"AUTH required before {cmd}")

    def verdict() -> None:
        current = client.auth_state  # query_auth() replaces an expired one
        assert current is not None  # it was set (above), and is only ever replaced
        if not current.allows(topic, channel):
            raise ClientErr("E_UNAUTHORIZED",
                            f"AUTH failed for {cmd} on {go_quote(topic)} {go_quote(channel)}")

    if state.expired():
        return then(query_auth(conn), verdict)
    verdict()
    return None


async def query_auth(conn: "V2Connection") -> None:
    client = conn.client
    try:
        client.auth_state = await query_any_authd(
            conn.nsqd.options.auth_http_addresses, conn.remote_ip, client.tls,
            conn.tls_common_name(), client.auth_secret, conn.nsqd.options.tls_root_ca_file)
    except AuthError:
        raise ClientErr("E_AUTH_FAILED", "AUTH failed") from None


# ------------------------------------------------------------------------ simple commands


def cmd_nop(conn: "V2Connection", params: tuple[bytes, ...]) -> None:
    return None


def cmd_rdy(conn: "V2Connection", params: tuple[bytes, ...]) -> None:
    client = conn.client
    if client.state == STATE_CLOSING:
        return None  # nsqd ignores RDY after CLS
    if client.state != STATE_SUBSCRIBED:
        raise ClientErr("E_INVALID", "cannot RDY in current state")
    count = 1
    if len(params) > 1:
        parsed = parse_base10(params[1])
        if parsed is None:
            raise ClientErr("E_INVALID", f"RDY could not parse count {as_text(params[1])}")
        count = parsed
    limit = conn.nsqd.options.max_rdy_count
    if count > limit:
        raise ClientErr("E_INVALID", f"RDY count {count} out of range 0-{limit}")
    client.set_ready_count(count)
    return None


def _consumer_state(conn: "V2Connection", cmd: str) -> None:
    if conn.client.state not in (STATE_SUBSCRIBED, STATE_CLOSING):
        raise ClientErr("E_INVALID", f"cannot {cmd} in current state")


def cmd_fin(conn: "V2Connection", params: tuple[bytes, ...]) -> None:
    client = conn.client
    if client.state != STATE_SUBSCRIBED and client.state != STATE_CLOSING:
        raise ClientErr("E_INVALID", "cannot FIN in current state")
    if len(params) < 2:
        raise ClientErr("E_INVALID", "FIN insufficient number of params")
    msg_id = message_id(params[1])
    assert client.channel is not None  # subscribed (or closing)
    error = client.channel.finish(client, msg_id)
    if error:
        raise ClientErr("E_FIN_FAILED", f"FIN {as_text(msg_id)} failed {error}")
    client.finished_message()
    return None


def cmd_req(conn: "V2Connection", params: tuple[bytes, ...]) -> None:
    _consumer_state(conn, "REQ")
    if len(params) < 3:
        raise ClientErr("E_INVALID", "REQ insufficient number of params")
    msg_id = message_id(params[1])
    delay = parse_base10(params[2])
    if delay is None:
        raise ClientErr("E_INVALID", f"REQ could not parse timeout {as_text(params[2])}")
    delay = min(delay, conn.nsqd.options.max_req_timeout_ms)  # clamped, not refused
    assert conn.client.channel is not None  # _consumer_state: subscribed (or closing)
    error = conn.client.channel.requeue(conn.client, msg_id, delay)
    if error:
        raise ClientErr("E_REQ_FAILED", f"REQ {as_text(msg_id)} failed {error}")
    conn.client.requeued_message()
    return None


def cmd_touch(conn: "V2Connection", params: tuple[bytes, ...]) -> None:
    _consumer_state(conn, "TOUCH")
    if len(params) < 2:
        raise ClientErr("E_INVALID", "TOUCH insufficient number of params")
    msg_id = message_id(params[1])
    client = conn.client
    assert client.channel is not None  # _consumer_state: subscribed (or closing)
    error = client.channel.touch(client, msg_id, client.msg_timeout)
    if error:
        raise ClientErr("E_TOUCH_FAILED", f"TOUCH {as_text(msg_id)} failed {error}")
    return None


def cmd_cls(conn: "V2Connection", params: tuple[bytes, ...]) -> bytes:
    if conn.client.state != STATE_SUBSCRIBED:
        raise ClientErr("E_INVALID", "cannot CLS in current state")
    conn.client.start_close()
    return b"CLOSE_WAIT"


def cmd_sub(conn: "V2Connection", params: tuple[bytes, ...]) -> Any:
    client = conn.client
    if client.state != STATE_INIT:
        raise ClientErr("E_INVALID", "cannot SUB in current state")
    if client.heartbeat_interval <= 0:
        raise ClientErr("E_INVALID", "cannot SUB with heartbeats disabled")
    if len(params) < 3:
        raise ClientErr("E_INVALID", "SUB insufficient number of parameters")
    topic_name = as_text(params[1])
    if not valid_topic_name(params[1]):
        raise ClientErr("E_BAD_TOPIC", f"SUB topic name {go_quote(topic_name)} is not valid")
    channel_name = as_text(params[2])
    if not valid_channel_name(params[2]):
        raise ClientErr("E_BAD_CHANNEL", f"SUB channel name {go_quote(channel_name)} is not valid")

    def subscribe() -> Any:
        topic, created = conn.nsqd.open_topic(topic_name)

        def join() -> bytes:
            channel = topic.get_channel(channel_name)
            error = channel.add_client(client)
            if error:
                raise ClientErr("E_SUB_FAILED", f"SUB failed {error}")
            client.state = STATE_SUBSCRIBED
            client.channel = channel
            return OK

        return after(created, join)

    return after(check_auth(conn, "SUB", topic_name, channel_name), subscribe)


SIMPLE_COMMANDS: dict[bytes, Callable[..., Any]] = {
    b"FIN": cmd_fin, b"RDY": cmd_rdy, b"REQ": cmd_req, b"NOP": cmd_nop, b"TOUCH": cmd_touch,
    b"SUB": cmd_sub, b"CLS": cmd_cls,
}


def enforce_tls_policy(conn: "V2Connection", name: bytes) -> None:
    if conn.nsqd.options.tls_required_tcp and not conn.client.tls:
        raise ClientErr("E_INVALID", f"cannot {as_text(name)} in current state (TLS required)")
