"""TailOutput.batch_size: a full batch is written and FINed at once, mid-chunk, still FIN after
its write; the rest waits for the end of the loop iteration as before."""

from __future__ import annotations

import asyncio
import io

from nsqcli.tail.output import TailOutput, make_formatter


class Message:
    def __init__(self, body: bytes, log: list) -> None:
        self.body, self.id, self.attempts, self.timestamp, self.log = body, b"0" * 16, 1, 0, log

    def enable_async(self) -> None:
        pass

    def finish(self) -> None:
        self.log.append(("FIN", self.body))

    def requeue(self, delay=-1, backoff=True) -> None:
        self.log.append(("REQ", self.body))


class Out(io.BytesIO):
    def __init__(self, log: list) -> None:
        super().__init__()
        self.log = log

    def write(self, data: bytes) -> int:
        self.log.append(("WRITE", data))
        return super().write(data)


def run_chunk(batch_size: int, bodies: list[bytes], limit: int = 0):
    log: list = []
    output = TailOutput(Out(log), make_formatter("raw", False), limit)
    output.batch_size = batch_size

    async def main():
        handle = output.handler("t")
        for body in bodies:  # one chunk: no loop iteration in between
            handle(Message(body, log))
        during = list(log)
        await asyncio.sleep(0)
        return during

    during = asyncio.run(main())
    return during, log, output


def test_full_batches_are_written_then_fined_during_the_chunk():
    during, log, output = run_chunk(2, [b"a", b"b", b"c", b"d", b"e"])
    assert during == [("WRITE", b"a\nb\n"), ("FIN", b"a"), ("FIN", b"b"),
                      ("WRITE", b"c\nd\n"), ("FIN", b"c"), ("FIN", b"d")]
    assert log == during + [("WRITE", b"e\n"), ("FIN", b"e")]
    assert output.printed == 5


def test_without_batch_size_one_write_per_loop_iteration():
    during, log, _ = run_chunk(0, [b"a", b"b", b"c"])
    assert during == []
    assert log == [("WRITE", b"a\nb\nc\n"), ("FIN", b"a"), ("FIN", b"b"), ("FIN", b"c")]


def test_limit_reached_inside_a_batch_requeues_the_rest():
    during, log, output = run_chunk(2, [b"a", b"b", b"c", b"d"], limit=3)
    # d arrives after the limit: requeued at once, while c waits for the end of the iteration
    assert log == [("WRITE", b"a\nb\n"), ("FIN", b"a"), ("FIN", b"b"), ("REQ", b"d"),
                   ("WRITE", b"c\n"), ("FIN", b"c")]
    assert output.printed == 3
