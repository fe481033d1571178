"""nsqlookupd's TCP registration protocol V1, sans I/O: bytes in, reply bytes out.

Wire format (nsqlookupd/lookup_protocol_v1.go): the peer sends the magic ``"  V1"``, then
commands as lines; IDENTIFY is followed by ``[int32 size][JSON]``. Every reply -- ``OK``, the
IDENTIFY JSON, or ``"<E_CODE> <description>"`` -- is sent as ``[int32 size][data]`` with no
frame type. Every error is fatal: nsqlookupd sends it and closes the connection.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass

from nsqcli.lib.protocol.commands import CommandReader
from nsqcli.lib.protocol.constants import MAGIC_V1
from nsqcli.lib.protocol.errors import ProtocolError
from nsqcli.lib.protocol.names import is_ephemeral, valid_channel_name, valid_topic_name

from .registration_db import (
    ANY, CHANNEL, CLIENT, TOPIC, PeerInfo, Producer, Registration, RegistrationDB,
)

_SIZE = struct.Struct(">l")

OK = b"OK"


def encode_response(data: bytes) -> bytes:
    """``[int32 size][data]``: how nsqlookupd frames every reply, errors included."""
    return _SIZE.pack(len(data)) + data


class LookupClientError(Exception):
    """A client error; ``str()`` is the wire text ``"<code> <description>"``."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description


@dataclass
class Output:
    """What one call to :meth:`LookupSessionV1.receive_data` asks the transport to do."""

    data: bytes = b""
    close: bool = False


# JSON fields of IDENTIFY that we keep, with their Go types (strings, ints).
_STR_FIELDS = ("hostname", "broadcast_address", "version")
_INT_FIELDS = ("tcp_port", "http_port")


def parse_identify_body(body: bytes, peer_id: str) -> PeerInfo:
    """Decode an nsqd's IDENTIFY body as nsqlookupd does (Go's json: keys match case-insensitively)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # Recursion: "[[[[..." too deep
        raise LookupClientError("E_BAD_BODY", "IDENTIFY failed to decode JSON body") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise LookupClientError("E_BAD_BODY", "IDENTIFY failed to decode JSON body")
    fields: dict[str, object] = {}
    for key, value in data.items():
        fields[key.lower()] = value  # the last spelling wins, as in Go
    values: dict[str, object] = {}
    for name in _STR_FIELDS + _INT_FIELDS:
        value = fields.get(name)
        if value is None:
            values[name] = "" if name in _STR_FIELDS else 0
        elif name in _STR_FIELDS and isinstance(value, str):
            values[name] = value
        elif name in _INT_FIELDS and isinstance(value, int) and not isinstance(value, bool):
            values[name] = value
        else:
            raise LookupClientError("E_BAD_BODY", "IDENTIFY failed to decode JSON body")
    peer = PeerInfo(id=peer_id, remote_address=peer_id, **values)  # type: ignore[arg-type]  # checked above
    if not peer.broadcast_address or not peer.tcp_port or not peer.http_port or not peer.version:
        raise LookupClientError("E_BAD_BODY", "IDENTIFY missing fields")
    return peer


class LookupSessionV1:
    """One peer connection's protocol state, driving the shared :class:`RegistrationDB`.

    ``identify_reply()`` returns the dict nsqlookupd answers IDENTIFY with (its own ports,
    version, broadcast address, hostname).
    """

    def __init__(
        self,
        db: RegistrationDB,
        remote_address: str,
        identify_reply: Callable[[], dict],
        max_identify_body_size: int = 1024 * 1024,
    ) -> None:
        self.db = db
        self.remote_address = remote_address
        self.peer: PeerInfo | None = None
        self.closed = False
        self._identify_reply = identify_reply
        self._max_body = max_identify_body_size
        self._reader = CommandReader()
        self._magic_checked = False
        self._awaiting_identify_body = False

    def receive_data(self, data: bytes) -> Output:
        """Feed bytes from the peer; returns the replies to send and whether to close after."""
        out = Output()
        if self.closed:
            return out
        self._reader.feed(data)
        replies: list[bytes] = []
        try:
            if not self._magic_checked:
                magic = self._reader.read_exact(4)
                if magic is None:
                    return out
                if magic != MAGIC_V1:
                    replies.append(encode_response(b"E_BAD_PROTOCOL"))
                    self.closed = True
                else:
                    self._magic_checked = True
            while not self.closed:
                reply = self._next_reply()
                if reply is None:
                    break
                replies.append(encode_response(reply))
        except LookupClientError as error:
            replies.append(encode_response(str(error).encode()))
            self.closed = True
        except ProtocolError as error:  # a line over the reader's limit
            replies.append(encode_response(f"E_INVALID {error}".encode()))
            self.closed = True
        out.data = b"".join(replies)
        out.close = self.closed
        return out

    def connection_lost(self) -> list[Registration]:
        """The peer went away: it no longer produces anything (its registrations stay)."""
        self.closed = True
        if self.peer is None:
            return []
        return self.db.remove_peer(self.peer.id)

    # ---------------------------------------------------------------------------------------

    def _next_reply(self) -> bytes | None:
        if self._awaiting_identify_body:
            return self._identify_body()
        line = self._reader.read_line()
        if line is None:
            return None
        params = line.decode("utf-8", "replace").strip().split(" ")
        name, args = params[0], params[1:]
        if name == "PING":
            return self._ping()
        if name == "IDENTIFY":
            if self.peer is not None:
                raise LookupClientError("E_INVALID", "cannot IDENTIFY again")
            self._awaiting_identify_body = True
            return self._identify_body()
        if name == "REGISTER":
            return self._register(args)
        if name == "UNREGISTER":
            return self._unregister(args)
        raise LookupClientError("E_INVALID", f"invalid command {name}")

    def _ping(self) -> bytes:
        if self.peer is not None:
            self.peer.last_update = self.db.clock()
        return OK

    def _identify_body(self) -> bytes | None:
        size = self._reader.peek_size()
        if size is None:
            return None
        if size < 0 or size > self._max_body:
            raise LookupClientError("E_BAD_BODY", "IDENTIFY failed to read body size")
        if self._reader.buffered < 4 + size:
            return None
        self._reader.read_size()
        body = self._reader.read_exact(size) or b""
        self._awaiting_identify_body = False
        peer = parse_identify_body(body, self.remote_address)
        peer.last_update = self.db.clock()
        self.peer = peer
        self.db.add_producer(Registration(CLIENT), Producer(peer))
        reply = self._identify_reply()
        return json.dumps(reply, sort_keys=True, separators=(",", ":")).encode()

    def _topic_channel(self, command: str, args: list[str]) -> tuple[PeerInfo, str, str]:
        peer = self.peer
        if peer is None:
            raise LookupClientError("E_INVALID", "client must IDENTIFY")
        if not args:
            raise LookupClientError("E_INVALID", f"{command} insufficient number of params")
        topic = args[0]
        channel = args[1] if len(args) >= 2 else ""
        if not valid_topic_name(topic):
            raise LookupClientError("E_BAD_TOPIC", f"{command} topic name '{topic}' is not valid")
        if channel and not valid_channel_name(channel):
            raise LookupClientError("E_BAD_CHANNEL", f"{command} channel name '{channel}' is not valid")
        return peer, topic, channel

    def _register(self, args: list[str]) -> bytes:
        peer, topic, channel = self._topic_channel("REGISTER", args)
        if channel:
            self.db.add_producer(Registration(CHANNEL, topic, channel), Producer(peer))
        self.db.add_producer(Registration(TOPIC, topic), Producer(peer))
        return OK

    def _unregister(self, args: list[str]) -> bytes:
        peer, topic, channel = self._topic_channel("UNREGISTER", args)
        peer_id = peer.id
        if channel:
            registration = Registration(CHANNEL, topic, channel)
            _, left = self.db.remove_producer(registration, peer_id)
            if left == 0 and is_ephemeral(channel):
                self.db.remove_registration(registration)
        else:
            # a topic unregistration also drops this peer from the topic's channels
            for registration in self.db.find_registrations(CHANNEL, topic, ANY):
                self.db.remove_producer(registration, peer_id)
            registration = Registration(TOPIC, topic)
            _, left = self.db.remove_producer(registration, peer_id)
            if left == 0 and is_ephemeral(topic):
                self.db.remove_registration(registration)
        return OK
