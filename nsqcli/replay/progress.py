"""nsq-replay's progress bar on stderr (only when it is a terminal): bytes, records, rate, ETA.

The bar follows the bytes read from the input files (compressed bytes for gzip, so the ETA holds
for archives), and shows the records acknowledged and their rate. rich is imported only here,
only when a bar is shown.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

REFRESH = 0.25


def total_bytes(paths: list[str]) -> int | None:
    """Sum of the input sizes, or None when one is not a regular file (stdin, a pipe)."""
    total = 0
    for path in paths:
        if path == "-":
            return None
        try:
            total += os.path.getsize(path)
        except OSError:
            return None
    return total


class ProgressBar:
    def __init__(self, replay: Any, err: Any) -> None:
        from rich.console import Console as RichConsole
        from rich.progress import (
            BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.replay = replay
        self.total = total_bytes(replay.config.inputs)
        self.progress = Progress(
            TextColumn("[bold]replay"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            TextColumn("{task.fields[records]} records"), TextColumn("{task.fields[rate]}/s"),
            TimeRemainingColumn(),
            console=RichConsole(file=err), transient=False,
        )
        self.task_id = self.progress.add_task("replay", total=self.total, records="0", rate="0")
        self._loop_task: asyncio.Task | None = None
        self._started = asyncio.get_running_loop().time()

    def _acknowledged(self) -> int:
        return sum(sink.publisher.report.acknowledged for sink in self.replay.sinks.values())

    def refresh(self) -> None:
        replay = self.replay
        read = replay.totals.bytes_read
        if replay.current is not None:
            read += replay.current.bytes_read
        acked = self._acknowledged() if not replay.config.dry_run else replay.totals.records
        elapsed = max(asyncio.get_running_loop().time() - self._started, 1e-9)
        self.progress.update(self.task_id, completed=read, records=f"{acked:,}",
                             rate=f"{acked / elapsed:,.0f}")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(REFRESH)
            self.refresh()

    def start(self) -> None:
        self.progress.start()
        self._loop_task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
        self.refresh()
        self.progress.stop()
