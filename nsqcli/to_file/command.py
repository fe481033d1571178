"""nsq-to-file: archive NSQ topics to disk, as the Go ``nsq_to_file`` does.

Same flags, same file names and the same at-least-once guarantee: a message is finished only
after its bytes are flushed and fsynced (see :mod:`nsqcli.to_file.topic_archiver`). ``--format jsonl``
adds a lossless record format that carries what ``nsq-replay`` needs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from nsqcli.archive.names import (
    DEFAULT_DATETIME_FORMAT, DEFAULT_FILENAME_FORMAT, compute_filename_template, needs_rev,
)
from nsqcli.cli.client_options import CONSUMER
from nsqcli.cli.exit_codes import CONSUMER_EXIT_STATUS_HELP, ExitStatus, ToolError, UsageError
from nsqcli.cli.go_flags import tool_command
from nsqcli.cli.options import DURATION, ClientSettings, client_options, go_log_options, output_options, \
    pop_console, pop_settings, user_agent, warn_settings

if TYPE_CHECKING:  # pragma: no cover
    from nsqcli.cli.timers import Repeating

PROG = "nsq-to-file"
logger = logging.getLogger("nsqcli.to_file.command")


@dataclass
class ToFileConfig:
    topics: list[str]
    channel: str = "nsq_to_file"
    topic_pattern: str = ""
    topic_refresh: float = 60.0
    max_in_flight: int = 200
    output_dir: str = "/tmp"
    work_dir: str | None = None
    filename_format: str = DEFAULT_FILENAME_FORMAT
    datetime_format: str = DEFAULT_DATETIME_FORMAT
    host_identifier: str = ""
    gzip: bool = False
    gzip_level: int = 6
    rotate_size: int = 0
    rotate_interval: float = 0.0
    skip_empty_files: bool = False
    sync_interval: float = 30.0
    format: str = "raw"  # noqa: A003
    http_connect_timeout: float = 2.0
    http_request_timeout: float = 5.0

    def check(self) -> None:
        """Raise UsageError for values the Go tool rejects (and a few more)."""
        from nsqcli.to_file.topic_discovery import TopicFilter
        from nsqcli.cli.values import check_name

        if not self.channel:
            raise UsageError("--channel is required")
        try:
            check_name("--channel", self.channel, "channel")
            for topic in self.topics:
                check_name("--topic", topic)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if not 1 <= self.gzip_level <= 9:
            raise UsageError(f"invalid --gzip-level value ({self.gzip_level}), should be 1-9")
        if self.max_in_flight < 1:
            raise UsageError("--max-in-flight must be >= 1")
        if self.rotate_size < 0 or self.rotate_interval < 0:
            raise UsageError("--rotate-size and --rotate-interval must not be negative")
        if self.sync_interval <= 0 or self.topic_refresh <= 0:
            raise UsageError("--sync-interval and --topic-refresh must be positive")
        if self.http_connect_timeout <= 0:
            raise UsageError("--http-client-connect-timeout should be positive")
        if self.http_request_timeout <= 0:
            raise UsageError("--http-client-request-timeout should be positive")
        if "<TOPIC>" not in self.filename_format and len(self.topics) != 1:
            raise UsageError("--filename-format must contain <TOPIC> when archiving several topics "
                             "(their files would collide)")
        try:
            self.template_for("check")
            TopicFilter(self.topic_pattern)
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    @property
    def effective_work_dir(self) -> str:
        return self.work_dir or self.output_dir

    def template_for(self, topic: str) -> str:
        separate = os.path.normpath(self.effective_work_dir) != os.path.normpath(self.output_dir)
        return compute_filename_template(
            self.filename_format, topic, host_identifier=self.host_identifier, gzip=self.gzip,
            rev_required=needs_rev(self.gzip, self.rotate_size, self.rotate_interval, separate),
            pid=os.getpid())


class ToFile:
    """The running tool: one Reader + TopicArchiver per topic, timers, SIGHUP, failure."""

    def __init__(self, config: ToFileConfig, settings: ClientSettings, console: Any) -> None:
        from nsqcli.to_file.topic_discovery import TopicFilter

        self.config = config
        self.settings = settings
        self.console = console
        self.topic_filter = TopicFilter(config.topic_pattern)
        self.archivers: dict[str, Any] = {}
        self.readers: dict[str, Any] = {}
        self.failed = asyncio.Event()
        self.error: tuple[str, BaseException] | None = None
        self._timers: list[Repeating] = []  # the ones that end at the stop
        self._stopping = False
        self._refresh: asyncio.Future[None] | None = None  # the topic refresh in progress
        self.guard: Any = None  # consumer_guard.FatalConnectionGuard while run() runs

    # -- topics --------------------------------------------------------------------------------

    def add_topic(self, topic: str) -> None:
        from nsqcli.archive.files import ArchiveFile, ArchiveSettings
        from nsqcli.to_file.topic_archiver import TopicArchiver
        from nsqcli.lib.reader import Reader

        if topic in self.archivers or self._stopping:
            return
        if not self.topic_filter(topic):
            self.console.info(f"skipping topic {topic}: it does not match --topic-pattern")
            return
        c = self.config
        settings = ArchiveSettings(
            work_dir=c.effective_work_dir, output_dir=c.output_dir, datetime_format=c.datetime_format,
            gzip=c.gzip, gzip_level=c.gzip_level, rotate_size=c.rotate_size,
            rotate_interval=c.rotate_interval)
        file = ArchiveFile(c.template_for(topic), settings)
        file.on_warning = self.console.warning
        archiver = TopicArchiver(topic, file, fmt=c.format,
                                 max_in_flight=c.max_in_flight, skip_empty_files=c.skip_empty_files,
                                 sync_in_background=True)
        archiver.on_error = functools.partial(self._on_error, topic)
        reader_kwargs: dict[str, Any] = {"max_tries": 0}  # never drop a message (go-nsq gives up after 5)
        reader_kwargs.update(self.settings.reader_kwargs)
        reader_kwargs["max_in_flight"] = c.max_in_flight
        make_reader = Reader if self.guard is None else self.guard.reader
        reader = make_reader(
            topic, c.channel, message_handler=archiver.handle,
            nsqd_tcp_addresses=self.settings.nsqd_tcp_addresses or None,
            lookupd_http_addresses=self.settings.lookupd_http_addresses or None,
            **reader_kwargs, **self.settings.conn_kwargs)
        archiver.is_starved = reader.is_starved
        archiver.starved_floor = lambda: starved_floor(reader)
        self.archivers[topic] = archiver
        self.readers[topic] = reader
        self.console.info(f"archiving topic {topic} (channel {c.channel})")

    def check_directories(self) -> None:
        """Exit 1 before consuming anything when a file could not be created in --work-dir
        or --output-dir (both are created when missing, as the first file would)."""
        from nsqcli.archive.files import ArchiveError, check_directory

        c = self.config
        dirs = {c.output_dir: "--output-dir"}
        dirs.setdefault(c.effective_work_dir, "--work-dir")
        for path, flag in dirs.items():
            try:
                check_directory(path)
            except ArchiveError as exc:
                raise ToolError(f"{flag}: {exc}") from None

    async def discover(self, first: bool) -> None:
        from nsqcli.to_file.topic_discovery import query_topics

        c = self.config
        try:
            topics = await query_topics(self.settings.lookupd_http_addresses,
                                        c.http_connect_timeout, c.http_request_timeout)
        except Exception as exc:  # noqa: BLE001
            if first:
                raise ToolError(f"could not retrieve the topic list: {exc}") from None
            self.console.warning(f"could not retrieve the topic list: {exc}")
            return
        for topic in topics:
            self.add_topic(topic)

    def _refresh_topics(self) -> None:
        if self._refresh is None or self._refresh.done():  # one query at a time
            self._refresh = asyncio.ensure_future(self.discover(first=False))

    # -- timers and signals --------------------------------------------------------------------

    def _idle_checks(self) -> None:
        for archiver in list(self.archivers.values()):
            archiver.idle_check()

    def _ticks(self) -> None:
        for archiver in list(self.archivers.values()):
            archiver.tick()

    def hup(self) -> None:
        """SIGHUP: sync and close every file (reopened on the next message)."""
        self.console.info("SIGHUP: closing files")
        for archiver in list(self.archivers.values()):
            archiver.close_file()

    def _on_error(self, topic: str, exc: BaseException) -> None:
        if self.error is None:
            self.error = (topic, exc)
        self.failed.set()

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self, shutdown: Any) -> ExitStatus:
        from nsqcli.cli.consumer_guard import FatalConnectionGuard

        # errors no retry fixes (bad TLS, AUTH refused, not an nsqd) on every nsqd stop the tool
        self.guard = FatalConnectionGuard(
            lambda topic, _exc: self._on_error(topic, ToolError(self.guard.describe())),
            warn=self.console.warning)
        try:
            return await self._run(shutdown)
        finally:
            self.guard.close()

    async def _run(self, shutdown: Any) -> ExitStatus:
        from nsqcli.to_file.topic_archiver import IDLE_CHECK_INTERVAL
        from nsqcli.cli.console import forward_library_logs
        from nsqcli.cli.runner import unanswered_wait
        from nsqcli.cli.timers import Repeating, first_of

        forward_library_logs(self.console)
        c = self.config
        self.check_directories()
        loop = asyncio.get_running_loop()
        for topic in c.topics:
            self.add_topic(topic)
        discovering = not c.topics
        if discovering:
            await self.discover(first=True)
            self._timers.append(Repeating(c.topic_refresh, self._refresh_topics))
        if not self.archivers and not discovering:
            raise UsageError("no topic left to archive after --topic-pattern")
        idle_checks = Repeating(IDLE_CHECK_INTERVAL, self._idle_checks)  # also while stopping
        self._timers.append(Repeating(c.sync_interval, self._ticks))
        hup_installed = _add_signal(loop, signal.SIGHUP, self.hup)
        shutdown.describe_wait(lambda: unanswered_wait(self.readers.values()))
        try:
            await first_of(shutdown.wait(), self.failed.wait())
            await self.stop()
        finally:
            idle_checks.cancel()
            for timer in self._timers:
                timer.cancel()
            if self._refresh is not None:  # its lookupd queries end (and close) now
                self._refresh.cancel()
            if hup_installed:
                loop.remove_signal_handler(signal.SIGHUP)
        if self.error is not None:
            topic, exc = self.error
            raise ToolError(f"[{topic}/{c.channel}] {exc}; unsynced messages were not finished "
                            "and will be redelivered")
        return ExitStatus.SUCCESS

    async def stop(self) -> None:
        """Sync, stop the readers (CLS + drain; late messages are synced by the idle timer),
        then a final sync, close and move of every file."""
        self._stopping = True
        for timer in self._timers:
            timer.cancel()
        for archiver in self.archivers.values():
            archiver.sync()
        readers = list(self.readers.values())
        if readers:
            await asyncio.gather(*(reader.close() for reader in readers), return_exceptions=True)
        for archiver in self.archivers.values():
            archiver.close()


def starved_floor(reader: Any) -> int:
    """Fewest in-flight messages with which ``reader.is_starved()`` can be true: 85 % of the
    lowest RDY of its connections (pynsq's rule), at least 1."""
    rdys = [getattr(conn, "last_rdy", 0) for conn in list(reader.conns.values())]
    return max(1, int(min(rdys, default=0) * 0.85))


def _add_signal(loop: asyncio.AbstractEventLoop, signum: int, handler: Any) -> bool:
    try:
        loop.add_signal_handler(signum, handler)
        return True
    except (RuntimeError, ValueError, NotImplementedError):
        return False  # not the main thread: no SIGHUP support


@tool_command("to-file", epilog=CONSUMER_EXIT_STATUS_HELP)
@click.option("--topic", "topics", multiple=True, metavar="TOPIC",
              help="Topic to archive (repeatable; one file per topic).")
@click.option("--topic-pattern", default="", metavar="REGEX",
              help="Only archive topics matching this (unanchored) regular expression.")
@click.option("--topic-refresh", type=DURATION, default="1m", show_default=True,
              help="How often lookupd /topics is polled for new topics (only without --topic).")
@click.option("--channel", default="nsq_to_file", show_default=True, help="Channel to consume.")
@click.option("--max-in-flight", type=int, default=200, show_default=True,
              help="Messages in flight; also the largest batch written before a sync.")
@click.option("--output-dir", default="/tmp", show_default=True, help="Directory for finished files.")
@click.option("--work-dir", default=None,
              help="Directory for files being written, moved to --output-dir when closed "
              "(default: --output-dir).")
@click.option("--filename-format", default=DEFAULT_FILENAME_FORMAT, show_default=True,
              help="File name: <TOPIC> <HOST> <PID> <DATETIME> <REV> are replaced; <REV> (needed "
              "with gzip, rotation or --work-dir) is bumped instead of overwriting.")
@click.option("--datetime-format", default=DEFAULT_DATETIME_FORMAT, show_default=True,
              help="strftime format of <DATETIME> (%Y %y %m %d %H %I %M %S %p %B %b %A %a %Z %z %%).")
@click.option("--host-identifier", default="",
              help="Value of <HOST> (default: short host name); may use <SHORT_HOST> and <HOSTNAME>.")
@click.option("--gzip", is_flag=True, help="Gzip output (.gz appended when missing).")
@click.option("--gzip-level", type=int, default=6, show_default=True, help="Gzip level 1-9.")
@click.option("--rotate-size", type=int, default=0, show_default=True,
              help="Rotate when a file grows beyond this many bytes (0 = never).")
@click.option("--rotate-interval", type=DURATION, default="0s", show_default=True,
              help="Rotate files older than this (0 = never).")
@click.option("--skip-empty-files", is_flag=True,
              help="On a timed rotation, close the file without opening a new empty one.")
@click.option("--sync-interval", type=DURATION, default="30s", show_default=True,
              help="Sync, finish and check rotation at least this often (a drained channel is "
              "synced and finished within a fraction of a second anyway).")
@click.option("--format", "record_format", type=click.Choice(["raw", "jsonl"]), default="raw",
              show_default=True, help="raw: body + newline (as the Go tool); jsonl: one JSON "
              "object per message with topic, id, timestamp, attempts and body/body_base64.")
@click.option("--http-client-connect-timeout", type=DURATION, default="2s", show_default=True,
              help="Timeout connecting to lookupd for /topics.")
@click.option("--http-client-request-timeout", type=DURATION, default="5s", show_default=True,
              help="Timeout of a lookupd /topics request.")
@client_options(CONSUMER)
@output_options
@go_log_options
def to_file(**params: Any) -> None:
    """Archive NSQ topics to files; a message is finished only once it is on disk (fsync)."""
    from nsqcli.cli.runner import run_tool

    console = pop_console(params, PROG)
    settings = pop_settings(params, user_agent(PROG))
    config = ToFileConfig(
        topics=list(params["topics"]), channel=params["channel"],
        topic_pattern=params["topic_pattern"], topic_refresh=params["topic_refresh"],
        max_in_flight=params["max_in_flight"], output_dir=params["output_dir"],
        work_dir=params["work_dir"], filename_format=params["filename_format"],
        datetime_format=params["datetime_format"], host_identifier=params["host_identifier"],
        gzip=params["gzip"], gzip_level=params["gzip_level"], rotate_size=params["rotate_size"],
        rotate_interval=params["rotate_interval"], skip_empty_files=params["skip_empty_files"],
        sync_interval=params["sync_interval"], format=params["record_format"],
        http_connect_timeout=params["http_client_connect_timeout"],
        http_request_timeout=params["http_client_request_timeout"])
    if not config.topics and not settings.lookupd_http_addresses:
        raise click.UsageError("use --topic to list at least one topic to subscribe to or specify "
                               "at least one --lookupd-http-address to subscribe to all its topics")
    try:
        config.check()
    except UsageError as exc:
        raise click.UsageError(exc.message) from None
    warn_settings(settings, console)

    async def main(shutdown: Any) -> ExitStatus:
        return await ToFile(config, settings, console).run(shutdown)

    run_tool(main, console)


def main() -> None:
    to_file(prog_name=PROG)


if __name__ == "__main__":
    main()
