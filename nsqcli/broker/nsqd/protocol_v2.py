"""The V2 commands, with nsqd v1.3.0's checks, order and error texts (nsqd/protocol_v2.go).

Each handler returns the response to send (bytes), None for no response, or a coroutine that
resolves to one of those (AUTH, a TLS upgrade, an expired authorization to re-check). Errors are
raised as :class:`ClientErr`; only E_FIN_FAILED, E_REQ_FAILED and E_TOUCH_FAILED are non-fatal.
Body commands are split into ``pre`` (checked on the command line, before the body is read),
``check_size`` and ``run``, so that bad params are refused before the body arrives, as in nsqd.
"""

from __future__ import annotations

import json
from struct import Struct
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from nsqcli.lib.protocol.constants import NON_FATAL_ERROR_CODES
from nsqcli.lib.protocol.names import valid_channel_name, valid_topic_name

from .auth import AuthError, query_any_authd
from .client import STATE_CLOSING, STATE_INIT, STATE_SUBSCRIBED, decode_identify
from .options import VERSION

if TYPE_CHECKING:
    from .tcp import V2Connection

_INT32 = Struct(">l")
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


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def parse_base10(raw: bytes) -> int | None:
    """nsqd's ByteToBase10: digits only (no sign); the empty string is 0."""
    if raw and not raw.isdigit():
        return None
    return int(raw) if raw else 0


def message_id(raw: bytes) -> bytes:
    if len(raw) != 16:
        raise ClientErr("E_INVALID", "Invalid Message ID")
    return raw


async def _then(pending: Awaitable[Any], action: Callable[[], Any]) -> Any:
    await pending
    return action()


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
        if not client.auth_state.allows(topic, channel):
            raise ClientErr("E_UNAUTHORIZED",
                            f"AUTH failed for {cmd} on {go_quote(topic)} {go_quote(channel)}")

    if state.expired():
        return _then(_query_auth(conn), verdict)
    verdict()
    return None


async def _query_auth(conn: "V2Connection") -> None:
    client = conn.client
    try:
        client.auth_state = await query_any_authd(
            conn.nsqd.options.auth_http_addresses, conn.remote_ip, client.tls,
            conn.tls_common_name(), client.auth_secret)
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
            raise ClientErr("E_INVALID", f"RDY could not parse count {_text(params[1])}")
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
    msg_id = params[1]
    if len(msg_id) != 16:
        raise ClientErr("E_INVALID", "Invalid Message ID")
    error = client.channel.finish(client, msg_id)
    if error:
        raise ClientErr("E_FIN_FAILED", f"FIN {_text(msg_id)} failed {error}")
    client.finished_message()
    return None


def cmd_req(conn: "V2Connection", params: tuple[bytes, ...]) -> None:
    _consumer_state(conn, "REQ")
    if len(params) < 3:
        raise ClientErr("E_INVALID", "REQ insufficient number of params")
    msg_id = message_id(params[1])
    delay = parse_base10(params[2])
    if delay is None:
        raise ClientErr("E_INVALID", f"REQ could not parse timeout {_text(params[2])}")
    delay = min(delay, conn.nsqd.options.max_req_timeout_ms)  # clamped, not refused
    error = conn.client.channel.requeue(conn.client, msg_id, delay)
    if error:
        raise ClientErr("E_REQ_FAILED", f"REQ {_text(msg_id)} failed {error}")
    conn.client.requeued_message()
    return None


def cmd_touch(conn: "V2Connection", params: tuple[bytes, ...]) -> None:
    _consumer_state(conn, "TOUCH")
    if len(params) < 2:
        raise ClientErr("E_INVALID", "TOUCH insufficient number of params")
    msg_id = message_id(params[1])
    client = conn.client
    error = client.channel.touch(client, msg_id, client.msg_timeout)
    if error:
        raise ClientErr("E_TOUCH_FAILED", f"TOUCH {_text(msg_id)} failed {error}")
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
    topic_name = _text(params[1])
    if not valid_topic_name(params[1]):
        raise ClientErr("E_BAD_TOPIC", f"SUB topic name {go_quote(topic_name)} is not valid")
    channel_name = _text(params[2])
    if not valid_channel_name(params[2]):
        raise ClientErr("E_BAD_CHANNEL", f"SUB channel name {go_quote(channel_name)} is not valid")

    def subscribe() -> bytes:
        channel = conn.nsqd.get_topic(topic_name).get_channel(channel_name)
        error = channel.add_client(client)
        if error:
            raise ClientErr("E_SUB_FAILED", f"SUB failed {error}")
        client.state = STATE_SUBSCRIBED
        client.channel = channel
        return OK

    pending = check_auth(conn, "SUB", topic_name, channel_name)
    return _then(pending, subscribe) if pending else subscribe()


# ------------------------------------------------------------------------ body commands


class BodyCommand:
    """A command followed by ``[int32 size][body]``."""

    def pre(self, conn: "V2Connection", params: tuple[bytes, ...]) -> Any:
        return None

    def check_size(self, conn: "V2Connection", params: tuple[bytes, ...], size: int) -> None:
        raise NotImplementedError

    def run(self, conn: "V2Connection", params: tuple[bytes, ...], body: bytes) -> Any:
        raise NotImplementedError


def _check_body_size(cmd: str, size: int, limit: int) -> None:
    if size > limit:
        raise ClientErr("E_BAD_BODY", f"{cmd} body too big {size} > {limit}")
    if size <= 0:
        raise ClientErr("E_BAD_BODY", f"{cmd} invalid body size {size}")


def _check_message_size(cmd: str, size: int, limit: int) -> None:
    if size <= 0:
        raise ClientErr("E_BAD_MESSAGE", f"{cmd} invalid message body size {size}")
    if size > limit:
        raise ClientErr("E_BAD_MESSAGE", f"{cmd} message too big {size} > {limit}")


def _topic_param(cmd: str, params: tuple[bytes, ...], needed: int, prefix: str = "") -> str:
    if len(params) < needed:
        raise ClientErr("E_INVALID", f"{cmd} insufficient number of parameters")
    name = _text(params[1])
    if not valid_topic_name(params[1]):
        raise ClientErr("E_BAD_TOPIC", f"{prefix}{cmd} topic name {go_quote(name)} is not valid")
    return name


class Identify(BodyCommand):
    def pre(self, conn, params):
        if conn.client.state != STATE_INIT:
            raise ClientErr("E_INVALID", "cannot IDENTIFY in current state")

    def check_size(self, conn, params, size):
        _check_body_size("IDENTIFY", size, conn.nsqd.options.max_body_size)

    def run(self, conn, params, body):
        try:
            data = decode_identify(json.loads(body))
        except ValueError:
            data = None
        if data is None:
            raise ClientErr("E_BAD_BODY", "IDENTIFY failed to decode JSON body")
        client = conn.client
        error = client.identify(data)
        if error:
            raise ClientErr("E_BAD_BODY", f"IDENTIFY {error}")
        if not data.get("feature_negotiation"):
            return OK
        opts = conn.nsqd.options
        tls_v1 = conn.nsqd.ssl_context is not None and data.get("tls_v1", False)
        deflate = opts.deflate and data.get("deflate", False)
        deflate_level = 6
        if deflate and data.get("deflate_level", 0) > 0:
            deflate_level = data["deflate_level"]
        deflate_level = min(deflate_level, opts.max_deflate_level)
        snappy = opts.snappy and data.get("snappy", False)
        if deflate and snappy:
            raise ClientErr("E_IDENTIFY_FAILED", "cannot enable both deflate and snappy compression")
        reply = {
            "max_rdy_count": opts.max_rdy_count,
            "version": VERSION,
            "max_msg_timeout": opts.max_msg_timeout_ms,
            "msg_timeout": int(round(client.msg_timeout * 1000)),
            "tls_v1": bool(tls_v1),
            "deflate": bool(deflate),
            "deflate_level": deflate_level,
            "max_deflate_level": opts.max_deflate_level,
            "snappy": bool(snappy),
            "sample_rate": client.sample_rate,
            "auth_required": conn.nsqd.auth_enabled,
            "output_buffer_size": client.output_buffer_size,
            "output_buffer_timeout": int(round(client.output_buffer_timeout * 1000)),
        }
        client.send_response(json.dumps(reply, separators=(",", ":")).encode())
        compression = ("snappy", 6) if snappy else ("deflate", deflate_level) if deflate else None
        if tls_v1:
            return conn.upgrade_tls(compression)
        if compression:
            conn.upgrade_compression(*compression)
        return None


class Auth(BodyCommand):
    def pre(self, conn, params):
        if conn.client.state != STATE_INIT:
            raise ClientErr("E_INVALID", "cannot AUTH in current state")
        if len(params) != 1:
            raise ClientErr("E_INVALID", "AUTH invalid number of parameters")

    def check_size(self, conn, params, size):
        _check_body_size("AUTH", size, conn.nsqd.options.max_body_size)

    def run(self, conn, params, body):
        client = conn.client
        if client.auth_state is not None and client.auth_state.authorizations:
            raise ClientErr("E_INVALID", "AUTH already set")
        if not conn.nsqd.auth_enabled:
            raise ClientErr("E_AUTH_DISABLED", "AUTH disabled")
        client.auth_secret = body.decode("utf-8", "replace")
        return self._authenticate(conn)

    async def _authenticate(self, conn):
        await _query_auth(conn)
        state = conn.client.auth_state
        if not state.authorizations:
            raise ClientErr("E_UNAUTHORIZED", "AUTH no authorizations found")
        reply = {"identity": state.identity, "identity_url": state.identity_url,
                 "permission_count": len(state.authorizations)}
        return json.dumps(reply, separators=(",", ":")).encode()


class Pub(BodyCommand):
    def pre(self, conn, params):
        _topic_param("PUB", params, 2)

    def check_size(self, conn, params, size):
        _check_message_size("PUB", size, conn.nsqd.options.max_msg_size)

    def run(self, conn, params, body):
        topic_name = _text(params[1])

        def publish() -> bytes:
            topic = conn.nsqd.get_topic(topic_name)
            topic.put_messages([topic.new_message(body)])
            conn.client.published(topic_name, 1)
            return OK

        pending = check_auth(conn, "PUB", topic_name, "")
        return _then(pending, publish) if pending else publish()


class DPub(BodyCommand):
    def pre(self, conn, params):
        _topic_param("DPUB", params, 3)
        delay = parse_base10(params[2])
        if delay is None:
            raise ClientErr("E_INVALID", f"DPUB could not parse timeout {_text(params[2])}")
        limit = conn.nsqd.options.max_req_timeout_ms
        if delay > limit:
            raise ClientErr("E_INVALID", f"DPUB timeout {delay} out of range 0-{limit}")

    def check_size(self, conn, params, size):
        _check_message_size("DPUB", size, conn.nsqd.options.max_msg_size)

    def run(self, conn, params, body):
        topic_name = _text(params[1])
        delay = parse_base10(params[2]) or 0

        def publish() -> bytes:
            topic = conn.nsqd.get_topic(topic_name)
            topic.put_messages([topic.new_message(body, delay)])
            conn.client.published(topic_name, 1)
            return OK

        pending = check_auth(conn, "DPUB", topic_name, "")
        return _then(pending, publish) if pending else publish()


class MPub(BodyCommand):
    def pre(self, conn, params):
        # nsqd's MPUB error text repeats its code (sic)
        topic_name = _topic_param("MPUB", params, 2, prefix="E_BAD_TOPIC ")
        pending = check_auth(conn, "MPUB", topic_name, "")
        create = lambda: conn.nsqd.get_topic(topic_name)  # noqa: E731 - nsqd creates it here
        return _then(pending, create) if pending else create()

    def check_size(self, conn, params, size):
        limit = conn.nsqd.options.max_body_size
        if size <= 0:
            raise ClientErr("E_BAD_BODY", f"MPUB invalid body size {size}")
        if size > limit:
            raise ClientErr("E_BAD_BODY", f"MPUB body too big {size} > {limit}")

    def run(self, conn, params, body):
        opts = conn.nsqd.options
        bodies = read_mpub(body, opts.max_msg_size, opts.max_body_size)
        topic_name = _text(params[1])
        topic = conn.nsqd.get_topic(topic_name)
        topic.put_messages([topic.new_message(b) for b in bodies])
        conn.client.published(topic_name, len(bodies))
        return OK


def read_mpub(payload: bytes, max_msg_size: int, max_body_size: int) -> list[bytes]:
    """nsqd's readMPUB over a complete payload; ClientErr with nsqd's codes and texts."""
    if len(payload) < 4:
        raise ClientErr("E_BAD_BODY", "MPUB failed to read message count")
    (count,) = _INT32.unpack_from(payload, 0)
    if count <= 0 or count > (max_body_size - 4) // 5:
        raise ClientErr("E_BAD_BODY", f"MPUB invalid message count {count}")
    bodies = []
    offset = 4
    for index in range(count):
        if offset + 4 > len(payload):
            raise ClientErr("E_BAD_MESSAGE", f"MPUB failed to read message({index}) body size")
        (size,) = _INT32.unpack_from(payload, offset)
        offset += 4
        if size <= 0:
            raise ClientErr("E_BAD_MESSAGE", f"MPUB invalid message({index}) body size {size}")
        if size > max_msg_size:
            raise ClientErr("E_BAD_MESSAGE", f"MPUB message too big {size} > {max_msg_size}")
        if offset + size > len(payload):
            raise ClientErr("E_BAD_MESSAGE", "MPUB failed to read message body")
        bodies.append(payload[offset:offset + size])
        offset += size
    return bodies


SIMPLE_COMMANDS: dict[bytes, Callable[..., Any]] = {
    b"FIN": cmd_fin, b"RDY": cmd_rdy, b"REQ": cmd_req, b"NOP": cmd_nop, b"TOUCH": cmd_touch,
    b"SUB": cmd_sub, b"CLS": cmd_cls,
}
BODY_COMMANDS: dict[bytes, BodyCommand] = {
    b"IDENTIFY": Identify(), b"AUTH": Auth(), b"PUB": Pub(), b"MPUB": MPub(), b"DPUB": DPub(),
}


def enforce_tls_policy(conn: "V2Connection", name: bytes) -> None:
    if conn.nsqd.options.tls_required_tcp and not conn.client.tls:
        raise ClientErr("E_INVALID", f"cannot {_text(name)} in current state (TLS required)")
