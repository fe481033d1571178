"""Shared helpers of the fault tests: polling, tool subprocesses, and a TCP proxy that cuts
connections (the soak test's fault injector, and a way to reset a live connection on demand)."""

from __future__ import annotations

import asyncio
import random
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from channels import (  # noqa: F401 - the fault tests import them from here
    ChannelSettled, CONSUMER_STOP_MSG_TIMEOUT_MS, consume_channel, queue_messages, settled_depth,
    tool_env,
)
from polling import tool, wait_for  # noqa: F401 - the fault tests import them here


def spawn(args: list[str], **kwargs: Any) -> subprocess.Popen:
    """Start a tool; stderr piped unless given."""
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen([str(a) for a in args], env=tool_env(), **kwargs)


def stop_with(process: subprocess.Popen, signum: int = signal.SIGTERM,
              timeout: float = 20.0) -> tuple[float, bytes]:
    """Send ``signum`` and wait; returns (seconds until exit, stderr)."""
    started = time.monotonic()
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=timeout)
    return time.monotonic() - started, stderr or b""


def kill_quietly(process: subprocess.Popen) -> None:
    """Kill the process if it still runs, and close its pipes (not left to the GC)."""
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


def lines_of(path: Path) -> list[bytes]:
    try:
        return path.read_bytes().splitlines()
    except FileNotFoundError:
        return []


def reset_socket(sock: socket.socket | None) -> None:
    """Make the next close send a TCP RST (SO_LINGER 0) instead of a FIN."""
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass


class ChaosProxy:
    """A TCP proxy on 127.0.0.1 (free port) in front of ``target`` ("host:port"), run on a
    background thread. ``cut_all()`` resets every proxied connection (both sides get an RST);
    ``start_chaos(min_gap, max_gap)`` does it at random intervals until ``stop_chaos()``.
    ``faults`` counts the connections reset. ``swallow_answers()`` makes a cut certain to catch
    requests in flight: until the next ``cut_all()`` the target's bytes are dropped (counted in
    ``swallowed``), so nothing sent meanwhile is answered. ``stall()`` stops forwarding in both
    directions (the connections stay open, the bytes wait), as a peer that hangs."""

    def __init__(self, target: str, seed: int = 0) -> None:
        host, _, port = target.rpartition(":")
        self.target = (host, int(port))
        self.faults = 0
        self.connections = 0
        self.port = 0
        self.swallowed = 0
        self._swallowing = False
        self._rng = random.Random(seed)
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="chaos-proxy",
                                        daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._chaos: asyncio.Task | None = None
        self._flowing: asyncio.Event | None = None  # cleared by stall()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def live(self) -> int:
        """Connections being proxied now."""
        return len(self._pairs)

    def __enter__(self) -> "ChaosProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> "ChaosProxy":
        self._thread.start()

        async def listen() -> None:
            self._flowing = asyncio.Event()
            self._flowing.set()
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]

        self._call(listen())
        return self

    def close(self) -> None:
        async def shutdown() -> None:
            if self._chaos is not None:
                self._chaos.cancel()
            if self._flowing is not None:
                self._flowing.set()  # stalled pumps go on, to find their connections aborted
            if self._server is not None:
                self._server.close()
            for pair in list(self._pairs):
                for writer in pair:
                    writer.transport.abort()

        if self._thread.is_alive():
            self._call(shutdown())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()  # its self-pipe sockets, not left to the GC

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError:
            reset_socket(client_w.get_extra_info("socket"))
            client_w.transport.abort()
            return
        self.connections += 1
        pair = (client_w, up_w)
        self._pairs.add(pair)
        try:
            await asyncio.gather(self._pump(client_r, up_w),
                                 self._pump(up_r, client_w, from_target=True))
        finally:
            self._pairs.discard(pair)
            for writer in pair:
                writer.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    from_target: bool = False) -> None:
        assert self._flowing is not None
        try:
            while True:
                await self._flowing.wait()
                data = await reader.read(256 * 1024)
                await self._flowing.wait()  # what came in while stalled stays here
                if not data or writer.transport.is_closing():
                    break
                if from_target and self._swallowing:
                    self.swallowed += len(data)
                    continue
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            # one side ended: end the other too (a half-open proxy would hide the fault)
            writer.transport.abort()

    def _cut(self, pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter]) -> None:
        if pair in self._pairs:
            self._pairs.discard(pair)
            self.faults += 1
            for writer in pair:
                reset_socket(writer.get_extra_info("socket"))
                writer.transport.abort()

    def cut_all(self) -> int:
        """Reset every live connection now (and stop swallowing answers); returns how many."""
        async def cut() -> int:
            pairs = list(self._pairs)
            for pair in pairs:
                self._cut(pair)
            self._swallowing = False
            return len(pairs)

        return self._call(cut())

    def swallow_answers(self) -> None:
        """Drop what the target sends until the next :meth:`cut_all`."""
        async def swallow() -> None:
            self._swallowing = True
            self.swallowed = 0

        self._call(swallow())

    def stall(self) -> None:
        """Forward nothing more, either way, until the proxy closes."""
        async def stall() -> None:
            assert self._flowing is not None
            self._flowing.clear()

        self._call(stall())

    def start_chaos(self, min_gap: float, max_gap: float) -> None:
        async def chaos() -> None:
            while True:
                await asyncio.sleep(self._rng.uniform(min_gap, max_gap))
                if self._pairs:
                    self._cut(self._rng.choice(sorted(self._pairs, key=id)))

        async def begin() -> None:
            self._chaos = asyncio.get_running_loop().create_task(chaos())

        self._call(begin())

    def stop_chaos(self) -> None:
        async def end() -> None:
            if self._chaos is not None:
                self._chaos.cancel()
                self._chaos = None

        self._call(end())


class ThreadedFake:
    """A :class:`fake_nsqd.FakeNSQD` on a background thread, for tests that run tools as
    subprocesses. ``ThreadedFake(responses={"CLS": lambda cmd: None})`` never answers CLS."""

    def __init__(self, **kwargs: Any) -> None:
        from fake_nsqd import FakeNSQD

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-nsqd",
                                        daemon=True)
        self._thread.start()

        async def make() -> Any:
            return await FakeNSQD(**kwargs).start()

        self.fake = asyncio.run_coroutine_threadsafe(make(), self._loop).result(10)

    @property
    def address(self) -> str:
        return self.fake.address

    def transcript(self) -> list[str]:
        async def copy() -> list[str]:
            return list(self.fake.transcript)

        return asyncio.run_coroutine_threadsafe(copy(), self._loop).result(10)

    def __enter__(self) -> "ThreadedFake":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.fake.stop(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()
