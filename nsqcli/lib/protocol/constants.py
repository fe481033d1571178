"""Wire constants of the NSQ TCP protocol (nsqd protocol V2, nsqlookupd V1)."""

MAGIC_V2 = b"  V2"
MAGIC_V1 = b"  V1"

FRAME_TYPE_RESPONSE = 0
FRAME_TYPE_ERROR = 1
FRAME_TYPE_MESSAGE = 2

HEARTBEAT = b"_heartbeat_"
OK = b"OK"
CLOSE_WAIT = b"CLOSE_WAIT"

#: Error codes after which nsqd keeps the connection open; every other E_* is fatal.
NON_FATAL_ERROR_CODES = frozenset({"E_FIN_FAILED", "E_REQ_FAILED", "E_TOUCH_FAILED"})

ERROR_CODES = (
    "E_BAD_PROTOCOL", "E_INVALID", "E_BAD_BODY", "E_BAD_TOPIC", "E_BAD_CHANNEL",
    "E_BAD_MESSAGE", "E_IDENTIFY_FAILED", "E_AUTH_FIRST", "E_AUTH_DISABLED", "E_AUTH_FAILED",
    "E_AUTH_ERROR", "E_UNAUTHORIZED", "E_SUB_FAILED", "E_PUB_FAILED", "E_MPUB_FAILED",
    "E_DPUB_FAILED", "E_FIN_FAILED", "E_REQ_FAILED", "E_TOUCH_FAILED",
)

#: Message frame header: int64 timestamp, uint16 attempts, 16-byte id.
MESSAGE_HEADER_SIZE = 26
MESSAGE_ID_SIZE = 16

# nsqd v1.3.0 defaults (nsqd/options.go); the broker uses them, clients assume them until told.
DEFAULT_MAX_RDY_COUNT = 2500
DEFAULT_MAX_MSG_SIZE = 1024 * 1024
DEFAULT_MAX_BODY_SIZE = 5 * 1024 * 1024
DEFAULT_MSG_TIMEOUT_MS = 60_000
DEFAULT_MAX_MSG_TIMEOUT_MS = 15 * 60_000
DEFAULT_MAX_REQ_TIMEOUT_MS = 60 * 60_000
DEFAULT_CLIENT_TIMEOUT_MS = 60_000
DEFAULT_MAX_HEARTBEAT_INTERVAL_MS = 60_000
DEFAULT_OUTPUT_BUFFER_SIZE = 16 * 1024
DEFAULT_MAX_OUTPUT_BUFFER_SIZE = 64 * 1024
DEFAULT_OUTPUT_BUFFER_TIMEOUT_MS = 250
DEFAULT_MIN_OUTPUT_BUFFER_TIMEOUT_MS = 25
DEFAULT_MAX_OUTPUT_BUFFER_TIMEOUT_MS = 30_000
DEFAULT_MAX_DEFLATE_LEVEL = 6

#: Largest response or error frame a client accepts by default (nsqd's are a few hundred bytes),
#: and the largest of any frame before a connection is subscribed.
DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024
#: Largest message frame nsqd can send: a message frame is its body + 30 bytes, and nsqd reads
#: every body it accepts with an int32 length (PUB/MPUB/DPUB), whatever its --max-msg-size; the
#: frame size itself is an int32. nsqd does not announce --max-msg-size, so a client accepts this.
MAX_MESSAGE_FRAME_SIZE = 2**31 - 1
