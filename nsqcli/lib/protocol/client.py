"""The client side of an nsqd connection as a pure state machine (no socket, no clock).

    INIT --initiate()--> IDENTIFYING --JSON reply--> [TLS] -> [SNAPPY|DEFLATE] -> [AUTH]
         -> READY --subscribe()--> SUBSCRIBING --OK--> SUBSCRIBED --close()--> CLOSING --CLOSE_WAIT
         any E_* fatal error or malformed input -> ERROR

Feed received bytes to :meth:`receive_data` and act on the events it returns; every command
method returns the raw bytes to send, which go through :meth:`encode_outgoing` (compression)
before they reach the socket, so a caller can coalesce many commands into one write.
"""

from __future__ import annotations

import enum
import json
from collections import deque
from typing import Any, Callable, Generic, Sequence, TypeVar, cast, overload

from . import commands
from .compression import Codec, make_codec
from .constants import (
    CLOSE_WAIT,
    DEFAULT_MAX_FRAME_SIZE,
    FRAME_TYPE_ERROR,
    FRAME_TYPE_MESSAGE,
    HEARTBEAT,
    MAGIC_V2,
    MAX_MESSAGE_FRAME_SIZE,
    OK,
)
from .errors import Error, LocalProtocolError, NSQError, ProtocolError
from .commands import Body
from .events import (
    AuthRequested,
    AuthResponseReceived,
    CompressionStarted,
    ErrorReceived,
    HandshakeComplete,
    Heartbeat,
    IdentifyResponseReceived,
    ControlEvent,
    Response,
    StartTLS,
)
from .frames import FrameBuffer, MessageFrame, decode_message
from .identify import IdentifyResponse

#: the class of the message events (``message_factory``'s result; MessageFrame by default)
M = TypeVar("M")
#: builds a message event from ``(id, body, timestamp, attempts)``
MessageFactory = Callable[[bytes, bytes, int, int], M]

#: most bytes decompressed at once before the frames in them are parsed
DECOMPRESS_PIECE_SIZE = 256 * 1024

#: The OK answers to the publishing commands, one per PUB: records are immutable, so one shared
#: event per command saves building one per answer.
_OK_RESPONSES = {command: Response(OK, command) for command in (b"PUB", b"MPUB", b"DPUB")}


#: Commands nsqd answers only when they fail. A fatal error naming one of them ("cannot FIN in
#: current state", "RDY count 3000 out of range 0-2500") is theirs, not the reply to the oldest
#: PUB/SUB still waiting: that one was never processed (nsqd closes after a fatal error).
_UNANSWERED_COMMANDS = frozenset({"RDY", "FIN", "REQ", "TOUCH", "NOP"})


def _names_unanswered_command(error: NSQError) -> bool:
    words = error.description.split(None, 2)
    subject = words[1] if words[:1] == ["cannot"] and len(words) > 1 else (words[0] if words else "")
    # "invalid message ID" comes from FIN/REQ/TOUCH, "invalid command X" from an unknown one
    return subject in _UNANSWERED_COMMANDS or error.description.startswith(("invalid message ID",
                                                                           "invalid command"))


def _message_frame(msg_id: bytes, body: bytes, timestamp: int, attempts: int) -> MessageFrame:
    return MessageFrame(timestamp, attempts, msg_id, body)


class State(enum.Enum):
    # identity hashing: Enum's own __hash__ is Python code, and states are checked per publish
    __hash__ = object.__hash__

    INIT = "init"
    IDENTIFYING = "identifying"
    TLS_HANDSHAKE = "tls handshake"
    UPGRADING = "upgrading"  # waiting for the OK that follows a TLS/snappy/deflate upgrade
    AUTHENTICATING = "authenticating"
    READY = "ready"
    SUBSCRIBING = "subscribing"
    SUBSCRIBED = "subscribed"
    CLOSING = "closing"
    CLOSED = "closed"
    ERROR = "error"


_HANDSHAKE_STATES = frozenset(
    {State.IDENTIFYING, State.TLS_HANDSHAKE, State.UPGRADING, State.AUTHENTICATING}
)
_OPEN_STATES = frozenset({State.READY, State.SUBSCRIBING, State.SUBSCRIBED, State.CLOSING})
_CONSUMING_STATES = frozenset({State.SUBSCRIBING, State.SUBSCRIBED, State.CLOSING})


class AuthRequiredError(Error):
    """nsqd requires AUTH and no secret was configured."""


class ClientProtocol(Generic[M]):
    """One client connection's protocol state; see the module docstring."""

    @overload
    def __init__(
        self: ClientProtocol[MessageFrame],
        identify_data: dict[str, Any],
        auth_secret: bytes | str | None = None,
        max_frame_size: int | None = None,
        message_factory: None = None,
    ) -> None: ...

    @overload
    def __init__(
        self,
        identify_data: dict[str, Any],
        auth_secret: bytes | str | None = None,
        max_frame_size: int | None = None,
        *,
        message_factory: MessageFactory[M],
    ) -> None: ...

    def __init__(
        self,
        identify_data: dict[str, Any],
        auth_secret: bytes | str | None = None,
        max_frame_size: int | None = None,
        message_factory: MessageFactory[Any] | None = None,
    ) -> None:
        """``message_factory(id, body, timestamp, attempts)`` builds the event of each message
        frame (default: :class:`MessageFrame`); a client passes its own message class so that a
        message costs one object.

        ``max_frame_size`` bounds every frame; by default (None) a message frame may be as large
        as nsqd can send (:data:`MAX_MESSAGE_FRAME_SIZE`, from SUB on) and any other frame up to
        :data:`DEFAULT_MAX_FRAME_SIZE`, so an nsqd with a large ``--max-msg-size`` is consumed."""
        self.identify_data = identify_data
        # M is MessageFrame when no factory is given (the first overload)
        self._make_message: MessageFactory[M] = cast("MessageFactory[M]", message_factory or _message_frame)
        self._auth_secret = auth_secret
        self.state = State.INIT
        self.identify_response: IdentifyResponse | None = None
        self.auth_response: dict[str, Any] | None = None
        # message frames get their own limit only once they are legal (SUB sent)
        self._message_frame_limit = MAX_MESSAGE_FRAME_SIZE if max_frame_size is None else max_frame_size
        self._frames = FrameBuffer(DEFAULT_MAX_FRAME_SIZE if max_frame_size is None else max_frame_size)
        self._codec: Codec | None = None
        self._upgrades: list[str] = []
        self._pending: deque[bytes] = deque()  # commands awaiting a response, in order
        self._switched_rest = b""  # bytes received after the frame that started compression
        self.compression: str | None = None

    def __repr__(self) -> str:  # never shows the auth secret
        return f"<ClientProtocol state={self.state.value} compression={self.compression}>"

    # ---- outgoing -----------------------------------------------------------------------

    def initiate(self) -> bytes:
        self._require({State.INIT}, "initiate")
        self.state = State.IDENTIFYING
        return MAGIC_V2 + commands.identify(self.identify_data)

    def encode_outgoing(self, data: bytes) -> bytes:
        codec = self._codec
        return codec.compress(data) if codec is not None else data

    def subscribe(self, topic: str | bytes, channel: str | bytes) -> bytes:
        self._require({State.READY}, "SUB")
        data = commands.subscribe(topic, channel)
        self.state = State.SUBSCRIBING
        self._frames.max_message_frame_size = self._message_frame_limit
        self._pending.append(b"SUB")
        return data

    def ready(self, count: int) -> bytes:
        self._require(_CONSUMING_STATES, "RDY")
        return commands.ready(count)

    def finish(self, msg_id: bytes | str) -> bytes:
        self._require(_CONSUMING_STATES, "FIN")
        return commands.finish(msg_id)

    def requeue(self, msg_id: bytes | str, time_ms: int = 0) -> bytes:
        self._require(_CONSUMING_STATES, "REQ")
        return commands.requeue(msg_id, time_ms)

    def touch(self, msg_id: bytes | str) -> bytes:
        self._require(_CONSUMING_STATES, "TOUCH")
        return commands.touch(msg_id)

    def nop(self) -> bytes:
        return commands.nop()

    def close(self) -> bytes:
        """CLS: stop deliveries; nsqd answers CLOSE_WAIT and still takes FIN/REQ for in-flight."""
        self._require({State.SUBSCRIBING, State.SUBSCRIBED}, "CLS")
        self.state = State.CLOSING
        self._pending.append(b"CLS")
        return commands.cls()

    def publish(self, topic: str | bytes, body: Body) -> bytes:
        self._require(_OPEN_STATES, "PUB")
        data = commands.pub(topic, body)
        self._pending.append(b"PUB")
        return data

    def multi_publish(self, topic: str | bytes, bodies: Sequence[Body]) -> bytes:
        self._require(_OPEN_STATES, "MPUB")
        data = commands.mpub(topic, bodies)
        self._pending.append(b"MPUB")
        return data

    def deferred_publish(self, topic: str | bytes, delay_ms: int, body: Body) -> bytes:
        self._require(_OPEN_STATES, "DPUB")
        data = commands.dpub(topic, delay_ms, body)
        self._pending.append(b"DPUB")
        return data

    def expect_response(self, command: bytes) -> None:
        """Record that a command built elsewhere (pre-encoded PUB/MPUB) awaits a response."""
        self._pending.append(command)

    @property
    def pending_responses(self) -> int:
        return len(self._pending)

    def connection_lost(self) -> None:
        self.state = State.CLOSED

    # ---- incoming -----------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[ControlEvent | M]:
        """Bytes from the socket in; events out. Raises ProtocolError (state -> ERROR)."""
        if self.state in (State.ERROR, State.CLOSED):
            return []
        events: list[ControlEvent | M] = []
        try:
            if self._codec is not None:
                self._receive_compressed(data, events)
                return events
            self._frames.feed(data)
            self._parse_frames(events)
            rest, self._switched_rest = self._switched_rest, b""
            if rest:  # compressed bytes that followed the frame starting compression
                self._receive_compressed(rest, events)
            return events
        except ProtocolError:
            self.state = State.ERROR
            raise

    def _receive_compressed(self, data: bytes, events: list[ControlEvent | M]) -> None:
        # decompressed and parsed piece by piece: a small "deflate bomb" announcing nonsense
        # fails on its first frame header instead of being inflated whole into memory first
        # only called once a compression layer started: _codec is set
        for piece in self._codec.decompress_pieces(data, DECOMPRESS_PIECE_SIZE):  # type: ignore[union-attr]
            self._frames.feed(piece)
            self._parse_frames(events)

    def _parse_frames(self, events: list[ControlEvent | M]) -> None:
        frames = self._frames
        make = self._make_message
        # the state changes only on a response or error frame: look it up once per such frame
        consuming = self.state in _CONSUMING_STATES
        while True:
            # while subscribed, runs of message frames are decoded in one tight loop
            frame = frames.next_messages(make, events) if consuming else frames.next_frame()
            if frame is None:
                return
            frame_type, payload = frame
            if frame_type == FRAME_TYPE_MESSAGE and consuming:
                message = decode_message(payload)  # raises for a truncated header
                events.append(make(message.id, message.body, message.timestamp, message.attempts))
                continue
            if frame_type == FRAME_TYPE_ERROR:
                self._on_error(payload, events)
            elif frame_type == FRAME_TYPE_MESSAGE:
                raise ProtocolError(f"message frame received while {self.state.value}")
            else:
                self._on_response(payload, events)
            consuming = self.state in _CONSUMING_STATES

    def tls_established(self) -> None:
        self._require({State.TLS_HANDSHAKE}, "tls_established")
        self.state = State.UPGRADING

    def _on_error(self, payload: bytes, events: list[ControlEvent | M]) -> None:
        error = NSQError.from_frame(payload)
        command = None
        if error.fatal:
            if self._pending and not _names_unanswered_command(error):
                command = self._pending.popleft()
            self.state = State.ERROR
        events.append(ErrorReceived(error, command))

    def _on_response(self, payload: bytes, events: list[ControlEvent | M]) -> None:
        state = self.state
        if payload == HEARTBEAT and state not in (State.IDENTIFYING, State.UPGRADING):
            events.append(Heartbeat())
            return
        if state in _OPEN_STATES:
            if not self._pending:
                raise ProtocolError(f"unexpected response {payload[:64]!r} with no command pending")
            command = self._pending.popleft()
            if payload == OK:
                shared = _OK_RESPONSES.get(command)
                if shared is not None:
                    events.append(shared)
                    return
            if command == b"SUB" and payload == OK and state == State.SUBSCRIBING:
                self.state = State.SUBSCRIBED
            elif command == b"CLS" and payload != CLOSE_WAIT:
                raise ProtocolError(f"expected CLOSE_WAIT after CLS, got {payload[:64]!r}")
            events.append(Response(payload, command))
        elif state == State.IDENTIFYING:
            self._on_identify_response(payload, events)
        elif state == State.UPGRADING:
            if payload != OK:
                raise ProtocolError(f"expected OK after the {self._upgrades[0]} upgrade, got {payload[:64]!r}")
            self._upgrades.pop(0)
            self._next_step(events)
        elif state == State.AUTHENTICATING:
            try:
                data = json.loads(payload)
            except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deep
                raise ProtocolError(f"AUTH response is not JSON: {payload[:64]!r}") from None
            if not isinstance(data, dict):
                raise ProtocolError(f"AUTH response is not a JSON object: {payload[:64]!r}")
            self.auth_response = data
            events.append(AuthResponseReceived(data))
            self._finish_handshake(events)
        else:
            raise ProtocolError(f"unexpected response {payload[:64]!r} while {state.value}")

    def _on_identify_response(self, payload: bytes, events: list[ControlEvent | M]) -> None:
        if payload == OK:  # nsqd before feature negotiation
            self.identify_response = IdentifyResponse.legacy()
            events.append(IdentifyResponseReceived(self.identify_response))
            self._finish_handshake(events)
            return
        try:
            data = json.loads(payload)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            response = IdentifyResponse.from_dict(data)
        except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[..." nested too deep
            raise ProtocolError(f"invalid IDENTIFY response ({exc}): {payload[:64]!r}") from None
        self.identify_response = response
        events.append(IdentifyResponseReceived(response))
        asked = self.identify_data
        if asked.get("tls_v1") and not response.tls_v1:
            raise ProtocolError("TLS was requested but nsqd has no TLS configured (refusing plaintext)")
        if asked.get("tls_v1") and response.tls_v1:
            self._upgrades.append("tls")
        if response.snappy and asked.get("snappy"):
            self._upgrades.append("snappy")
        elif response.deflate and asked.get("deflate"):
            self._upgrades.append("deflate")
        if response.auth_required and not self._auth_secret:
            raise AuthRequiredError("nsqd requires AUTH but no auth_secret was configured")
        self._next_step(events)

    def _next_step(self, events: list[ControlEvent | M]) -> None:
        if not self._upgrades:
            response = self.identify_response
            if response is not None and response.auth_required:
                self.state = State.AUTHENTICATING
                events.append(AuthRequested())
                return
            self._finish_handshake(events)
            return
        step = self._upgrades[0]
        if step == "tls":
            self.state = State.TLS_HANDSHAKE
            events.append(StartTLS())
            return
        # nsqd switches both directions right after it sent the previous frame, so every byte
        # already buffered past that frame is compressed.
        level = (self.identify_response.deflate_level if self.identify_response else 0) or 6
        self._codec = make_codec(step, level)
        self.compression = step
        self.state = State.UPGRADING
        self._switched_rest = self._frames.take_remaining()  # receive_data decompresses it
        events.append(CompressionStarted(step))

    def auth_command(self) -> bytes:
        """The AUTH command to send when an ``AuthRequested`` event came out."""
        self._require({State.AUTHENTICATING}, "AUTH")
        return commands.auth(self._auth_secret or b"")

    def _finish_handshake(self, events: list[ControlEvent | M]) -> None:
        self.state = State.READY
        events.append(HandshakeComplete())

    def _require(self, states: frozenset[State] | set[State], what: str) -> None:
        if self.state not in states:
            raise LocalProtocolError(f"cannot {what} while the connection is {self.state.value}")
