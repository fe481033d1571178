"""TailOutput without a network: FIN only after the write, requeue on failure, -n, stop."""

from __future__ import annotations

import asyncio
import io

from nsqcli.tail.output import TailOutput, make_formatter


class FakeMessage:
    def __init__(self, body: bytes, log: list) -> None:
        self.body = body
        self.id = b"0123456789abcdef"
        self.attempts = 1
        self.timestamp = 1_700_000_000_000_000_000
        self.log = log

    def enable_async(self) -> None:
        pass

    def finish(self) -> None:
        self.log.append(("FIN", self.body))

    def requeue(self, delay=-1, backoff=True) -> None:
        self.log.append(("REQ", self.body, delay, backoff))


class RecordingOut(io.BytesIO):
    def __init__(self, log: list, error: Exception | None = None) -> None:
        super().__init__()
        self.log = log
        self.error = error

    def write(self, data: bytes) -> int:
        if self.error is not None:
            raise self.error
        self.log.append(("WRITE", data))
        return super().write(data)


def feed(output: TailOutput, bodies, topic="t"):
    async def main():
        handle = output.handler(topic)
        log = []
        for body in bodies:
            handle(FakeMessage(body, log))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return log

    return asyncio.run(main())


def test_fin_comes_after_the_single_write():
    log: list = []
    out = RecordingOut(log)
    output = TailOutput(out, make_formatter("raw", False))

    async def main():
        handle = output.handler("t")
        for body in (b"a", b"b", b"c"):
            handle(FakeMessage(body, log))
        assert log == []  # nothing written or answered before the flush
        await asyncio.sleep(0)

    asyncio.run(main())
    assert log == [("WRITE", b"a\nb\nc\n"), ("FIN", b"a"), ("FIN", b"b"), ("FIN", b"c")]


def test_limit_prints_exactly_n_and_requeues_the_rest():
    log: list = []
    output = TailOutput(RecordingOut(log), make_formatter("raw", True), limit=2)

    async def main():
        handle = output.handler("topic")
        for body in (b"1", b"2", b"3"):
            handle(FakeMessage(body, log))
        await output.finished()

    asyncio.run(main())
    assert log[0] == ("REQ", b"3", 0, False)
    assert log[1:] == [("WRITE", b"topic | 1\ntopic | 2\n"), ("FIN", b"1"), ("FIN", b"2")]
    assert output.printed == 2


def test_broken_pipe_requeues_and_marks_the_pipe_closed():
    log: list = []
    output = TailOutput(RecordingOut(log, BrokenPipeError(32, "Broken pipe")), None)
    log.extend(feed(output, [b"x", b"y"]))
    assert output.pipe_closed and output.write_error is None
    assert sorted(entry[:2] for entry in log) == [("REQ", b"x"), ("REQ", b"y")]


def test_other_write_errors_are_reported():
    log: list = []
    output = TailOutput(RecordingOut(log, OSError(28, "No space left on device")), None)
    log.extend(feed(output, [b"x"]))
    assert "No space left on device" in output.write_error.message
    assert [entry[0] for entry in log] == ["REQ"]


def test_stop_flushes_then_requeues_late_messages():
    log: list = []
    output = TailOutput(RecordingOut(log), None)

    async def main():
        handle = output.handler("t")
        handle(FakeMessage(b"early", log))
        output.stop()
        handle(FakeMessage(b"late", log))
        await output.finished()

    asyncio.run(main())
    assert log == [("WRITE", b"early\n"), ("FIN", b"early"), ("REQ", b"late", 0, False)]


def test_json_lines():
    import json

    line = make_formatter("json", False)("t", FakeMessage(b"\xffbin", []))
    item = json.loads(line)
    assert item == {"topic": "t", "id": "0123456789abcdef", "attempts": 1,
                    "timestamp": 1_700_000_000_000_000_000, "body_base64": "/2Jpbg=="}
