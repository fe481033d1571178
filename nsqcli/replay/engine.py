"""The nsq-replay engine: archive records -> per-topic publishers, with checkpoints.

Files are read in order, chunk by chunk (:mod:`nsqcli.archive.reader`); records already
acknowledged according to the checkpoint are skipped; the rest go to one
:class:`nsqcli.lib.Publisher` per target topic (the engine nsq-pub uses: MPUB batches,
several in flight). Every batch nsqd acknowledges is mapped back to its file and record numbers
and recorded in the checkpoint, which is saved at most once per event-loop iteration.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Sequence

from nsqcli.archive.reader import ArchiveReader, ArchiveReadError, Chunk
from nsqcli.cli.exit_codes import ExitStatus, ToolError, UsageError, publish_error_status
from nsqcli.replay.checkpoint import Checkpoint, CheckpointError, RangeSet, file_key
from nsqcli.replay.inputs import TopicResolver
from nsqcli.replay.stdin import Stopped, ThreadedChunks
from nsqcli.replay.timing import OriginalTiming

PIECE = 5000  # most records handed to a publisher at once


@dataclass
class ReplayConfig:
    inputs: list[str]
    resolver: TopicResolver
    format: str | None = None  # noqa: A003 - None: detect
    rate: float | None = None
    defer_ms: int | None = None
    timing: OriginalTiming | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    checkpoint: str | None = None
    dry_run: bool = False
    skip_bad: bool = False


@dataclass
class FileState:
    """Progress of one input file: records handed to publishers and acknowledged this run."""

    key: str
    submitted: int = 0
    acknowledged: int = 0
    eof: bool = False


class _Segment:
    """A run of publisher record numbers (``first`` ..) and the file records they are."""

    __slots__ = ("first", "count", "file", "start", "numbers", "acknowledged")

    def __init__(self, first: int, count: int, file: FileState, start: int,
                 numbers: list[int] | None) -> None:
        self.first, self.count, self.file = first, count, file
        self.start, self.numbers = start, numbers  # contiguous from start, or listed
        self.acknowledged = 0


class TopicSink:
    """One topic's publisher and the map from its record numbers back to files."""

    def __init__(self, topic: str, publisher: Any,
                 on_ack: Callable[[FileState, int, int, list[int] | None], None]) -> None:
        self.topic = topic
        self.publisher = publisher
        self._on_ack = on_ack
        self._next = 1  # the publisher numbers records from 1 (we never pass empty ones)
        self._firsts: list[int] = []
        self._segments: list[_Segment] = []

    async def publish(self, file: FileState, bodies: list[bytes], start: int,
                      numbers: list[int] | None) -> bool:
        segment = _Segment(self._next, len(bodies), file, start, numbers)
        self._firsts.append(segment.first)
        self._segments.append(segment)
        self._next += len(bodies)
        file.submitted += len(bodies)
        await self.publisher.publish(bodies)
        return not self.publisher.stopped

    def acknowledged(self, numbers: Sequence[int]) -> None:
        """Publisher callback: map acknowledged publisher numbers to file records."""
        if isinstance(numbers, range):
            self._ack_run(numbers.start, numbers.stop)
            return
        run_start: int | None = None  # the run being collected, run_start .. prev
        prev = 0
        for n in numbers:
            if run_start is not None and n == prev + 1:
                prev = n
                continue
            if run_start is not None:
                self._ack_run(run_start, prev + 1)
            run_start = prev = n
        if run_start is not None:
            self._ack_run(run_start, prev + 1)

    def _ack_run(self, lo: int, hi: int) -> None:
        i = bisect_right(self._firsts, lo) - 1
        segments = self._segments
        while lo < hi and 0 <= i < len(segments):
            seg = segments[i]
            end = min(hi, seg.first + seg.count)
            a, b = lo - seg.first, end - seg.first
            if seg.numbers is None:
                self._on_ack(seg.file, seg.start + a, seg.start + b, None)
            else:
                self._on_ack(seg.file, 0, 0, seg.numbers[a:b])
            seg.acknowledged += b - a
            lo = end
            i += 1
        self._forget_acknowledged()

    def _forget_acknowledged(self) -> None:
        """Drop the leading segments acknowledged in full: memory stays flat over any archive."""
        done = 0
        for seg in self._segments:
            if seg.acknowledged < seg.count:
                break
            done += 1
        if done:
            del self._segments[:done]
            del self._firsts[:done]


@dataclass
class ReplayTotals:
    files: int = 0
    files_skipped: int = 0  # complete according to the checkpoint
    records: int = 0  # records read (all files, bad ones included)
    resumed: int = 0  # skipped: acknowledged in an earlier run
    filtered: int = 0  # outside --since/--until
    bad: int = 0
    per_topic: dict[str, int] = field(default_factory=dict)  # records to publish, per topic
    bytes_read: int = 0


class Replay:
    """Drives one replay (see the module docstring)."""

    def __init__(self, config: ReplayConfig, make_publisher: Callable[[str, Any], Any] | None,
                 console: Any, should_stop: Callable[[], bool] = lambda: False) -> None:
        self.config = config
        self.make_publisher = make_publisher
        self.console = console
        self.should_stop = should_stop
        self.checkpoint = Checkpoint.load(config.checkpoint)
        if config.dry_run:
            self.checkpoint.path = None  # read it to skip what is done, never write it
        self.sinks: dict[str, TopicSink] = {}
        self.totals = ReplayTotals()
        self.stopped = False  # a publisher gave up: stop reading
        self.current: ArchiveReader | None = None
        self._save_scheduled = False
        self._save_error: BaseException | None = None

    # -- acknowledgements -> checkpoint ------------------------------------------------------

    def _acknowledged(self, file: FileState, start: int, stop: int, numbers: list[int] | None) -> None:
        if numbers is None:
            self.checkpoint.acknowledge(file.key, start, stop)
            file.acknowledged += stop - start
        else:
            self.checkpoint.acknowledge_numbers(file.key, numbers)
            file.acknowledged += len(numbers)
        self._maybe_complete(file)
        self._schedule_save()

    def _maybe_complete(self, file: FileState) -> None:
        if file.eof and file.acknowledged == file.submitted and not self.stopped:
            self.checkpoint.mark_complete(file.key)

    def _schedule_save(self) -> None:
        if self._save_scheduled or self.checkpoint.path is None:
            return
        self._save_scheduled = True
        asyncio.get_running_loop().call_soon(self._save)

    def _save(self) -> None:
        self._save_scheduled = False
        try:
            self.checkpoint.save()
        except CheckpointError as exc:
            if self._save_error is None:
                self._save_error = exc
                self.stopped = True

    # -- publishing --------------------------------------------------------------------------

    async def _sink(self, topic: str) -> TopicSink:
        sink = self.sinks.get(topic)
        if sink is None:
            sink = TopicSink(topic, None, self._acknowledged)
            assert self.make_publisher is not None, "a dry run publishes nothing"
            sink.publisher = self.make_publisher(topic, sink.acknowledged)
            self.sinks[topic] = sink
            await sink.publisher.start()
        return sink

    async def _send(self, topic: str, file: FileState, bodies: list[bytes], start: int,
                    numbers: list[int] | None) -> None:
        self.totals.per_topic[topic] = self.totals.per_topic.get(topic, 0) + len(bodies)
        if self.config.dry_run or not bodies:
            return
        sink = await self._sink(topic)
        # Hand records over in pieces so that a stop request takes effect promptly (what the
        # publisher was given is published); with --rate a piece is ~1/4 s of records.
        piece = PIECE if self.config.rate is None else max(1, min(PIECE, int(self.config.rate / 4)))
        for i in range(0, len(bodies), piece):
            if i and self.should_stop():
                return
            part_numbers = None if numbers is None else numbers[i:i + piece]
            if not await sink.publish(file, bodies[i:i + piece], start + i, part_numbers):
                self.stopped = True
                return

    # -- reading -----------------------------------------------------------------------------

    async def run(self) -> None:
        for path in self.config.inputs:
            if self.stopped or self.should_stop():
                break
            await self._replay_file(path)
        self._save()
        if self._save_error is not None:
            raise ToolError(str(self._save_error))

    async def _replay_file(self, path: str) -> None:
        key = file_key(path)
        self.totals.files += 1
        if self.checkpoint.is_complete(key):
            self.totals.files_skipped += 1
            self.console.info(f"{path}: already replayed (checkpoint)")
            return
        state = FileState(key)
        done = RangeSet(self.checkpoint.ranges(key).ranges())  # acknowledged in earlier runs
        file_topic = self.config.resolver.for_file(path)
        reader = self.current = ArchiveReader(path, self.config.format, self.config.skip_bad)
        try:
            with reader:
                async for chunk in self._chunks(reader):
                    self.totals.records += chunk.count
                    self.totals.bad += len(chunk.bad)
                    for where in chunk.bad:
                        self.console.warning(f"skipped bad record {where}")
                    if chunk.records is None:
                        await self._raw_chunk(chunk, state, done, file_topic, reader.name)
                    else:
                        await self._jsonl_chunk(chunk, state, done, file_topic, reader.name)
                    if self.stopped or self.should_stop():
                        return
        except ArchiveReadError as exc:
            raise ToolError(str(exc)) from None
        except Stopped:  # stopped while stdin had nothing to say: not at its end
            return
        finally:
            self.totals.bytes_read += reader.bytes_read
            self.current = None
        if reader.truncated:
            self.console.warning(f"{reader.name}: the gzip stream is cut short (the writer was "
                                 "killed?); replayed the complete records before the cut")
        state.eof = True
        self._maybe_complete(state)

    async def _chunks(self, reader: ArchiveReader) -> AsyncIterator[Chunk]:
        """The reader's chunks; stdin's are read on a thread (see :mod:`nsqcli.replay.stdin`)."""
        if reader.path != "-":
            for chunk in reader.chunks():
                yield chunk
            return
        source = ThreadedChunks(reader.chunks(), self.should_stop)
        while (chunk := await source.next_chunk()) is not None:
            yield chunk

    def _no_topic(self, name: str) -> UsageError:
        return UsageError(f"cannot tell the topic of the records in {name}: give --topic (its "
                          "name is not an nsq-to-file name and its records carry no topic)")

    async def _raw_chunk(self, chunk: Chunk, state: FileState, done: RangeSet,
                         topic: str | None, name: str) -> None:
        c = self.config
        if c.timing is not None or c.since_ns is not None or c.until_ns is not None:
            raise UsageError(f"{name}: --timing original, --since and --until need jsonl records "
                             "(raw records carry no timestamp)")
        if topic is None:
            raise self._no_topic(name)
        bodies, start, numbers = chunk.bodies, chunk.start, None
        if done and done.overlaps(chunk.start, chunk.start + chunk.count):
            keep = [i for i in range(len(bodies)) if chunk.start + i not in done]
            self.totals.resumed += len(bodies) - len(keep)
            bodies = [bodies[i] for i in keep]
            numbers = [chunk.start + i for i in keep]
        await self._send(topic, state, bodies, start, numbers)

    async def _jsonl_chunk(self, chunk: Chunk, state: FileState, done: RangeSet,
                           file_topic: str | None, name: str) -> None:
        c = self.config
        resolver = c.resolver
        since, until, timing = c.since_ns, c.until_ns, c.timing
        check_done = bool(done) and done.overlaps(chunk.start, chunk.start + chunk.count)
        group_topic = ""  # the topic of the bodies collected (none yet)
        bodies: list[bytes] = []
        numbers: list[int] = []
        assert chunk.records is not None and chunk.numbers is not None  # as every jsonl chunk
        for body, record, number in zip(chunk.bodies, chunk.records, chunk.numbers):
            if check_done and number in done:
                self.totals.resumed += 1
                continue
            ts = record.timestamp
            if since is not None or until is not None:
                if ts is None or (since is not None and ts < since) or (until is not None and ts >= until):
                    self.totals.filtered += 1
                    continue
            if resolver.topic is not None:
                topic = resolver.topic
            elif record.topic is not None:
                topic = resolver.check(record.topic)
            elif file_topic is not None:
                topic = file_topic
            else:
                raise self._no_topic(name)
            wait = 0.0
            if timing is not None and ts is not None:
                if topic not in self.sinks and not c.dry_run:
                    await self._sink(topic)  # connect first: the schedule starts after that
                wait = timing.wait(ts)
            if (topic != group_topic or wait > 0) and bodies:
                await self._send(group_topic, state, bodies, 0, numbers)
                bodies, numbers = [], []
                if self.stopped or self.should_stop():
                    return
            if wait > 0:
                await asyncio.sleep(wait)
                if self.should_stop():
                    return
            group_topic = topic
            bodies.append(body)
            numbers.append(number)
        if bodies:
            await self._send(group_topic, state, bodies, 0, numbers)

    # -- the end -----------------------------------------------------------------------------

    async def close(self) -> list[Any]:
        """Wait for every publisher's answers; their reports (checkpoint saved)."""
        reports = []
        for sink in self.sinks.values():
            reports.append(await sink.publisher.close())
        self._save()
        return reports


def summarize(replay: Replay, reports: list[Any], console: Any,
              interrupted: bool = False) -> ExitStatus:
    """One line of totals (and the errors) like nsq-pub -- shown without -v after a signal --;
    the exit status."""
    totals = replay.totals
    submitted = sum(r.submitted for r in reports)
    acknowledged = sum(r.acknowledged for r in reports)
    unacked = sum(r.given_up for r in reports)
    status = ExitStatus.SUCCESS
    for report in reports:
        if report.error is not None:
            error_status, message = publish_error_status(report.error)
            console.error(message)
            if status == ExitStatus.SUCCESS:
                status = error_status
    if unacked:
        console.error(f"{unacked} of {submitted} records were not acknowledged by nsqd"
                      + ("; rerun with the same --checkpoint to send them" if replay.checkpoint.path else ""))
        if status == ExitStatus.SUCCESS:
            status = ExitStatus.NOT_ACKNOWLEDGED
    extra = []
    if totals.resumed:
        extra.append(f"{totals.resumed} already acknowledged (checkpoint)")
    if totals.files_skipped:
        extra.append(f"{totals.files_skipped} file(s) already done")
    if totals.filtered:
        extra.append(f"{totals.filtered} outside --since/--until")
    if totals.bad:
        extra.append(f"{totals.bad} bad record(s) skipped")
    tell = console.notice if interrupted else console.info
    tell(f"{acknowledged} of {submitted} records acknowledged"
         + (f" ({', '.join(extra)})" if extra else ""))
    return status
