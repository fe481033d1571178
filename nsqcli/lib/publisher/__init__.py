"""The bulk publisher: MPUB batches within nsqd's limits, several in flight, retried, counted exactly.

``Publisher`` is the public class (``nsqcli.lib.Publisher``); the rest is its machinery.
"""

from .api import Publisher
from .config import FAN_OUT, ROUND_ROBIN
from .errors import (
    NsqdRefusedError, NsqdUnreachableError, PublishError, RecordTooLargeError, RetryTimeoutError,
)
from .report import PublishReport

__all__ = [
    "FAN_OUT", "NsqdRefusedError", "NsqdUnreachableError", "PublishError", "PublishReport",
    "Publisher", "ROUND_ROBIN", "RecordTooLargeError", "RetryTimeoutError",
]
