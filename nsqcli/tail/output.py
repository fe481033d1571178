"""nsq-tail's output: lines buffered per loop iteration, written, then their messages FINed.

Messages are answered asynchronously (``enable_async``): a message is FINed only after the write
that carried its line succeeded. After ``-n`` messages, a stop, or a write failure, every later
message is requeued at once (no delay, no backoff) so that nothing is lost on a durable channel.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import json
from typing import IO, Any, Callable

from nsqcli.cli.exit_codes import ToolError, error_text
from nsqcli.lib.message import finish_all

Formatter = Callable[[str, Any], bytes]


def make_formatter(output_format: str, print_topic: bool) -> Formatter | None:
    """A per-message line formatter; None means raw bodies (joined in one go, the fast path)."""
    if output_format == "json":
        return _json_line
    if print_topic:
        return lambda topic, message: b"%s | %s\n" % (topic.encode(), message.body)
    return None


def _json_line(topic: str, message: Any) -> bytes:
    record: dict[str, Any] = {
        "topic": topic,
        "id": message.id.decode("ascii", "replace") if isinstance(message.id, bytes) else message.id,
        "attempts": message.attempts,
        "timestamp": message.timestamp,
    }
    try:
        record["body"] = message.body.decode("utf-8")
    except UnicodeDecodeError:
        record["body_base64"] = base64.b64encode(message.body).decode("ascii")
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def _write_all(out: IO[bytes], data: bytes) -> None:
    """``out.write(data)`` until all of it is written: a BufferedWriter returns a short count
    instead of raising when the file hits its size limit mid-write (EFBIG), and the messages
    of the unwritten lines must not be FINed. The next write raises the real error."""
    view = memoryview(data)
    while view:
        written = out.write(view)
        if written is None:  # a non-blocking stream with no room: not written at all
            written = 0
        if written <= 0:
            raise OSError(errno.EIO, "short write to stdout")
        view = view[written:]


class TailOutput:
    """See the module docstring. ``limit`` 0 means no limit."""

    def __init__(self, out: IO[bytes], formatter: Formatter | None, limit: int = 0) -> None:
        self._out = out
        self._format = formatter
        self._limit = limit
        self._lines: list[bytes] = []
        self._messages: list[Any] = []
        self._accepted = 0
        self.printed = 0
        #: write and FIN as soon as this many lines wait (0: once per loop iteration); half of
        #: max_in_flight lets nsqd send the next messages while the rest of a chunk is handled
        self.batch_size = 0
        self._stopped = False
        self._flush_scheduled = False
        self._done = asyncio.Event()
        self.pipe_closed = False
        self.write_error: ToolError | None = None
        #: with a limit: told of every message that counts, before its FIN (tail_budget)
        self.budget: Any = None

    def handler(self, topic: str) -> Callable[[Any], None]:
        fmt = self._format
        lines_append = self._lines.append
        messages = self._messages  # cleared by flush(), never replaced
        messages_append = messages.append
        limit = self._limit

        def handle(message: Any) -> None:
            message.enable_async()
            if self._stopped:
                message.requeue(delay=0, backoff=False)
                return
            if fmt is not None:
                lines_append(fmt(topic, message))
            messages_append(message)
            if limit:
                self._accepted += 1
                if self.budget is not None:  # lowers RDY before this message's FIN goes out
                    self.budget.received(topic, message.nsqd_address)
                if self._accepted >= limit:
                    self._stopped = True  # later messages are requeued; flush what we have now
            batch_size = self.batch_size
            if batch_size and len(messages) >= batch_size:
                self.flush()  # mid-chunk: nsqd refills what this batch FINs while we go on
            elif not self._flush_scheduled:
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self.flush)

        return handle

    def flush(self) -> None:
        """Write buffered lines; FIN their messages on success, requeue them on failure."""
        self._flush_scheduled = False
        lines, messages = self._lines, self._messages
        if not messages:
            self._check_done()
            return
        if self._format is None:
            data = b"\n".join([message.body for message in messages]) + b"\n"
        else:
            data = b"".join(lines)
            lines.clear()
        batch = messages[:]
        messages.clear()
        try:
            _write_all(self._out, data)
            self._out.flush()
        except BrokenPipeError:
            self.pipe_closed = True
            self._fail(batch)
            return
        except (OSError, ValueError) as exc:
            self.write_error = ToolError(f"cannot write to stdout: {error_text(exc)}")
            self._fail(batch)
            return
        finish_all(batch)  # FIN only now that the lines reached stdout
        self.printed += len(batch)
        self._check_done()

    def _fail(self, batch: list) -> None:
        self._stopped = True
        for message in batch:
            message.requeue(delay=0, backoff=False)
        self._done.set()

    def _check_done(self) -> None:
        if self._stopped and not self._messages:
            self._done.set()

    def stop(self) -> None:
        """Print and FIN what is buffered, then requeue everything that still arrives."""
        self._stopped = True
        self.flush()
        self._done.set()

    async def finished(self) -> None:
        await self._done.wait()
