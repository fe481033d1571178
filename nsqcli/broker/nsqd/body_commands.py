"""The V2 commands that carry a body: IDENTIFY, AUTH, PUB, DPUB and MPUB (nsqd/protocol_v2.go).

Each is split into ``pre`` (checked on the command line, before the body is read),
``check_size`` and ``run``, so that bad params and sizes are refused before the body arrives,
in nsqd's order and with its texts.
"""

from __future__ import annotations

import abc

import json
from struct import Struct
from typing import TYPE_CHECKING, Any, Callable

from nsqcli.lib.protocol.names import valid_topic_name

from .client import STATE_INIT, decode_identify
from .options import VERSION
from .protocol_v2 import OK, ClientErr, after, as_text, check_auth, go_quote, parse_base10, query_auth
from .topic import PublishFailed, Topic

if TYPE_CHECKING:
    from .message import Message
    from .tcp import V2Connection

_INT32 = Struct(">l")


class BodyCommand(abc.ABC):
    """A command followed by ``[int32 size][body]``."""

    def pre(self, conn: "V2Connection", params: tuple[bytes, ...]) -> Any:
        return None

    @abc.abstractmethod
    def check_size(self, conn: "V2Connection", params: tuple[bytes, ...], size: int) -> None:
        """Refuse the declared body size before the body is read (nsqd's order)."""

    @abc.abstractmethod
    def run(self, conn: "V2Connection", params: tuple[bytes, ...], body: bytes) -> Any:
        """Carry the command out once its body arrived."""


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
    name = as_text(params[1])
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
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deep
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
        await query_auth(conn)
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
        return _publish(conn, "PUB", as_text(params[1]), lambda topic: [topic.new_message(body)])


class DPub(BodyCommand):
    def pre(self, conn, params):
        _topic_param("DPUB", params, 3)
        delay = parse_base10(params[2])
        if delay is None:
            raise ClientErr("E_INVALID", f"DPUB could not parse timeout {as_text(params[2])}")
        limit = conn.nsqd.options.max_req_timeout_ms
        if delay > limit:
            raise ClientErr("E_INVALID", f"DPUB timeout {delay} out of range 0-{limit}")

    def check_size(self, conn, params, size):
        _check_message_size("DPUB", size, conn.nsqd.options.max_msg_size)

    def run(self, conn, params, body):
        delay = parse_base10(params[2]) or 0
        return _publish(conn, "DPUB", as_text(params[1]),
                        lambda topic: [topic.new_message(body, delay)])


class MPub(BodyCommand):
    def pre(self, conn, params):
        # nsqd's MPUB error text repeats its code (sic)
        topic_name = _topic_param("MPUB", params, 2, prefix="E_BAD_TOPIC ")
        # nsqd gets (creates) the topic here, before reading the body: its creator waits here
        return after(check_auth(conn, "MPUB", topic_name, ""),
                     lambda: conn.nsqd.open_topic(topic_name)[1])

    def check_size(self, conn, params, size):
        limit = conn.nsqd.options.max_body_size
        if size <= 0:
            raise ClientErr("E_BAD_BODY", f"MPUB invalid body size {size}")
        if size > limit:
            raise ClientErr("E_BAD_BODY", f"MPUB body too big {size} > {limit}")

    def run(self, conn, params, body):
        opts = conn.nsqd.options
        bodies = read_mpub(body, opts.max_msg_size, opts.max_body_size)
        topic_name = as_text(params[1])
        topic = conn.nsqd.get_topic(topic_name)
        _put(topic, [topic.new_message(b) for b in bodies], "MPUB")
        conn.client.published(topic_name, len(bodies))
        return OK


def _publish(conn: "V2Connection", command: str, topic_name: str,
             make_messages: Callable[[Topic], list[Message]]) -> Any:
    """PUB and DPUB once the body is read: check the authorization, get the topic (waiting, as
    nsqd's GetTopic, if this command created it), queue the messages, answer OK."""

    def publish() -> Any:
        topic, created = conn.nsqd.open_topic(topic_name)

        def put() -> bytes:
            messages = make_messages(topic)
            _put(topic, messages, command)
            conn.client.published(topic_name, len(messages))
            return OK

        return after(created, put)

    return after(check_auth(conn, command, topic_name, ""), publish)


def _put(topic, messages: list, command: str) -> None:
    try:
        topic.put_messages(messages)
    except PublishFailed as error:  # nsqd: fatal E_PUB_FAILED / E_MPUB_FAILED / E_DPUB_FAILED
        raise ClientErr(f"E_{command}_FAILED", f"{command} failed {error}") from None


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


BODY_COMMANDS: dict[bytes, BodyCommand] = {
    b"IDENTIFY": Identify(), b"AUTH": Auth(), b"PUB": Pub(), b"MPUB": MPub(), b"DPUB": DPub(),
}
