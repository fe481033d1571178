"""One TCP client's state: IDENTIFY settings, RDY and in-flight counts, and its output buffer.

Output buffering: message frames are collected and written together (many frames per write), at
the end of the current event-loop pass or as soon as ``output_buffer_size`` bytes are waiting;
responses and errors are written as soon as the batch of commands that produced them is done
(nsqd's Send flushes them at once; a client cannot tell the difference).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

from nsqcli.lib.protocol.constants import FRAME_TYPE_ERROR, FRAME_TYPE_RESPONSE, HEARTBEAT
from nsqcli.lib.protocol.frames import encode_frame

if TYPE_CHECKING:
    from .auth import AuthState
    from .channel import Channel
    from .server import NSQD

STATE_INIT = 0
STATE_SUBSCRIBED = 3
STATE_CLOSING = 4

DEFAULT_OUTPUT_BUFFER_SIZE = 16 * 1024

_IDENTIFY_TYPES: dict[str, tuple[type, ...]] = {
    "client_id": (str,), "hostname": (str,), "user_agent": (str,),
    "heartbeat_interval": (int,), "output_buffer_size": (int,), "output_buffer_timeout": (int,),
    "feature_negotiation": (bool,), "tls_v1": (bool,), "deflate": (bool,),
    "deflate_level": (int,), "snappy": (bool,), "sample_rate": (int,), "msg_timeout": (int,),
    "short_id": (str,), "long_id": (str,),
}


def decode_identify(data: Any) -> dict | None:
    """The IDENTIFY fields nsqd's JSON decoding accepts, or None where Go's decoder would fail."""
    if not isinstance(data, dict):
        return None
    out: dict[str, Any] = {}
    for key, types in _IDENTIFY_TYPES.items():
        value = data.get(key)
        if value is None:
            continue
        if int in types and (isinstance(value, bool) or not isinstance(value, int)):
            return None
        if not isinstance(value, types):
            return None
        out[key] = value
    return out


class ClientV2:
    def __init__(self, client_id: int, nsqd: "NSQD", remote_address: str,
                 write: Callable[[bytes], None], close: Callable[[], None]) -> None:
        opts = nsqd.options
        self.id = client_id
        self.nsqd = nsqd
        self.remote_address = remote_address
        host = remote_address.rpartition(":")[0].strip("[]")
        self.client_id = host
        self.hostname = host
        self.user_agent = ""
        self.state = STATE_INIT
        self.rdy = 0
        self.in_flight = 0
        self.message_count = 0
        self.finish_count = 0
        self.requeue_count = 0
        self.connect_ts = int(time.time())
        self.sample_rate = 0
        self.tls = False
        self.snappy = False
        self.deflate = False
        self.tls_info: dict[str, Any] = {}
        self.heartbeat_interval = opts.client_timeout_ms / 2000.0
        self.msg_timeout = opts.msg_timeout_ms / 1000.0
        self.output_buffer_size = DEFAULT_OUTPUT_BUFFER_SIZE
        self.output_buffer_timeout = opts.output_buffer_timeout_ms / 1000.0
        self.channel: "Channel | None" = None
        self.pub_counts: dict[str, int] = {}
        self.auth_secret = ""
        self.auth_state: "AuthState | None" = None
        self.closed = False
        now = nsqd.now()
        self.last_read = now
        self.next_heartbeat = now + self.heartbeat_interval
        self._write = write
        self._close = close
        self._out: list[bytes] = []
        self._out_size = 0
        self._flush_scheduled = False
        #: True while the connection works through a batch of commands: responses wait for the
        #: end of the batch, so pipelined PUBs are answered with one write
        self.hold = False

    def __repr__(self) -> str:
        return f"<ClientV2 {self.id} {self.remote_address}>"

    # ---------------------------------------------------------------- IDENTIFY

    def identify(self, data: dict) -> str | None:
        """Apply IDENTIFY settings in nsqd's order; the error text when one is out of range."""
        opts = self.nsqd.options
        self.client_id = data.get("client_id", "")
        self.hostname = data.get("hostname", "")
        self.user_agent = data.get("user_agent", "")
        hb = data.get("heartbeat_interval", 0)
        if hb == -1:
            self.heartbeat_interval = 0.0
        elif hb == 0:
            pass
        elif 1000 <= hb <= opts.max_heartbeat_interval_ms:
            self.heartbeat_interval = hb / 1000.0
        else:
            return f"heartbeat interval ({hb}) is invalid"
        timeout = data.get("output_buffer_timeout", 0)
        if timeout == -1:
            self.output_buffer_timeout = 0.0
        elif timeout == 0:
            pass
        elif opts.min_output_buffer_timeout_ms <= timeout <= opts.max_output_buffer_timeout_ms:
            self.output_buffer_timeout = timeout / 1000.0
        else:
            return f"output buffer timeout ({timeout}) is invalid"
        size = data.get("output_buffer_size", 0)
        if size == -1:
            self.output_buffer_size = 1
            self.output_buffer_timeout = 0.0
        elif size == 0:
            pass
        elif 64 <= size <= opts.max_output_buffer_size:
            self.output_buffer_size = size
        else:
            return f"output buffer size ({size}) is invalid"
        rate = data.get("sample_rate", 0)
        if not 0 <= rate <= 99:
            return f"sample rate ({rate}) is invalid"
        self.sample_rate = rate
        msg_timeout = data.get("msg_timeout", 0)
        if msg_timeout == 0:
            pass
        elif 1000 <= msg_timeout <= opts.max_msg_timeout_ms:
            self.msg_timeout = msg_timeout / 1000.0
        else:
            return f"msg timeout ({msg_timeout}) is invalid"
        self.next_heartbeat = self.nsqd.now() + self.heartbeat_interval
        return None

    # ---------------------------------------------------------------- delivery state

    def ready_for_messages(self) -> bool:
        channel = self.channel
        return (channel is not None and not channel.paused and self.state == STATE_SUBSCRIBED
                and self.in_flight < self.rdy and not self.closed)

    def set_ready_count(self, count: int) -> None:
        if count != self.rdy:
            self.rdy = count
            self._poke()

    def start_close(self) -> None:
        self.set_ready_count(0)
        self.state = STATE_CLOSING

    def finished_message(self) -> None:
        self.finish_count += 1
        self.in_flight -= 1
        self._poke()

    def requeued_message(self) -> None:
        self.requeue_count += 1
        self.in_flight -= 1
        self._poke()

    def timed_out_message(self) -> None:
        self.in_flight -= 1
        self._poke()

    def emptied(self) -> None:
        self.in_flight = 0
        self._poke()

    def published(self, topic: str, count: int) -> None:
        self.pub_counts[topic] = self.pub_counts.get(topic, 0) + count

    def _poke(self) -> None:
        if self.channel is not None:
            self.channel.client_ready()

    # ---------------------------------------------------------------- output

    def send_message(self, msg: Any) -> None:
        self.in_flight += 1
        self.message_count += 1
        frame = msg.frame()
        self._out.append(frame)
        self._out_size += len(frame)
        if self._out_size >= self.output_buffer_size:
            self.flush()
        else:
            self.flush_soon()

    def send_response(self, data: bytes) -> None:
        self._out.append(encode_frame(FRAME_TYPE_RESPONSE, data))
        if not self.hold:
            self.flush()

    def send_error(self, data: bytes) -> None:
        self._out.append(encode_frame(FRAME_TYPE_ERROR, data))
        self.flush()

    def send_heartbeat(self) -> None:
        self.send_response(HEARTBEAT)

    def flush_soon(self) -> None:
        if not self._flush_scheduled and self._out:
            self._flush_scheduled = True
            self.nsqd.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        if not self._out or self.closed:
            self._out.clear()
            self._out_size = 0
            return
        data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out.clear()
        self._out_size = 0
        self._write(data)

    def close(self) -> None:
        """Flush what is buffered and close the connection."""
        if not self.closed:
            self.flush()
            self.closed = True
            self._close()

    # ---------------------------------------------------------------- stats

    def stats(self, topic_filter: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {
            "client_id": self.client_id,
            "hostname": self.hostname,
            "version": "V2",
            "remote_address": self.remote_address,
            "state": self.state,
            "ready_count": self.rdy,
            "in_flight_count": self.in_flight,
            "message_count": self.message_count,
            "finish_count": self.finish_count,
            "requeue_count": self.requeue_count,
            "connect_ts": self.connect_ts,
            "sample_rate": self.sample_rate,
            "deflate": self.deflate,
            "snappy": self.snappy,
            "user_agent": self.user_agent,
        }
        if self.auth_state is not None and self.auth_state.authorizations:
            out["authed"] = True
            if self.auth_state.identity:
                out["auth_identity"] = self.auth_state.identity
            if self.auth_state.identity_url:
                out["auth_identity_url"] = self.auth_state.identity_url
        pub_counts = [{"topic": t, "count": n} for t, n in self.pub_counts.items()
                      if not topic_filter or t == topic_filter]
        if pub_counts:
            # nsqd v1.3.0's loop stops after its first entry: one topic at most
            out["pub_counts"] = pub_counts[:1]
        out["tls"] = self.tls
        out["tls_cipher_suite"] = self.tls_info.get("cipher", "")
        out["tls_version"] = self.tls_info.get("version", "")
        out["tls_negotiated_protocol"] = ""
        out["tls_negotiated_protocol_is_mutual"] = False
        return out
