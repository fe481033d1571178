"""nsq-to-nsq in the tests: a relay process between nsqds, its final counts, and what each side
holds afterwards (shared by tests/cli, tests/faults and tests/interop)."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path
from typing import Any

from channels import ChannelSettled, consume_channel, settled_depth, tool_env
from polling import tool, wait_for

SOURCE_CHANNEL = "nsq_to_nsq"  # nsq-to-nsq's default channel, as Go's
CHECK = "check"  # the channel that collects what reached a destination topic


def fill(nsqd: Any, topic: str, bodies: list[bytes], channel: str = SOURCE_CHANNEL) -> None:
    """Queue ``bodies`` on ``channel`` of ``topic`` (created first, so it gets them all)."""
    nsqd.create_topic(topic)
    nsqd.create_channel(topic, channel)
    for start in range(0, len(bodies), 2000):
        nsqd.mpub(topic, bodies[start:start + 2000])


def watch(nsqd: Any, topic: str) -> None:
    """Make ``topic`` keep on channel ``check`` every message published to it from now on."""
    nsqd.create_topic(topic)
    nsqd.create_channel(topic, CHECK)


def received(nsqd: Any, topic: str) -> int:
    """Messages published to ``topic`` on ``nsqd`` so far (0 before the topic exists)."""
    return (nsqd.topic_stats(topic) or {}).get("message_count", 0)


def source_settled(nsqd: Any, topic: str, channel: str = SOURCE_CHANNEL) -> ChannelSettled:
    """A wait_for predicate: nothing left queued, in flight or deferred on the channel (every
    message FINed), in two /stats answers in a row. Make one per wait."""
    return ChannelSettled(nsqd, topic, channel, expected=0)


def collected(nsqd: Any, topic: str) -> list[bytes]:
    """Every message channel ``check`` of ``topic`` holds (see :func:`watch`), read and FINed."""
    return consume_channel(nsqd, topic, CHECK)


def left_on_source(nsqd: Any, topic: str, channel: str = SOURCE_CHANNEL) -> list[bytes]:
    """What the source channel still holds once the relay is gone: requeued messages come back
    from deferred (their delay is short), in-flight ones from the closed connection (or after
    msg_timeout, for one nsqd sent after CLOSE_WAIT once our side was shut)."""
    return consume_channel(nsqd, topic, channel, settled_depth(nsqd, topic, channel, timeout=60))


class RelayProcess:
    """``nsq-to-nsq ARGS`` started in the background; its stderr goes to a file."""

    def __init__(self, tmp_path: Path, *args: Any) -> None:
        self.args = [tool("nsq-to-nsq"), *map(str, args)]
        self.stderr_path = tmp_path / f"relay-{id(self)}.err"
        with open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=err,
                                            env=tool_env())

    @property
    def stderr(self) -> bytes:
        return self.stderr_path.read_bytes()

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60) -> bytes:
        """Send ``signum``, wait for the exit; its stderr."""
        self.process.send_signal(signum)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"nsq-to-nsq did not stop within {timeout} s: {self.stderr!r}")
        return self.stderr

    def wait(self, timeout: float = 60) -> int:
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> "RelayProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def relay_args(source: Any, destinations: Any, *extra: Any) -> list[str]:
    """``--nsqd-tcp-address`` of the source and ``--destination-nsqd-tcp-address`` of each
    destination, then ``extra``."""
    args = ["--nsqd-tcp-address", source.tcp_address]
    for destination in destinations if isinstance(destinations, (list, tuple)) else [destinations]:
        args += ["--destination-nsqd-tcp-address", destination.tcp_address]
    return args + [str(value) for value in extra]


_FINAL = re.compile(rb"relayed (\d+), filtered out (\d+)(?: \((\d+) not JSON objects\))?, "
                    rb"requeued (\d+)(?: \((\d+) too large for the destination\))?")


def final_counts(stderr: bytes) -> dict[str, int]:
    """The relay's last line as numbers: relayed, filtered, not_json, requeued, oversized."""
    matches = _FINAL.findall(stderr)
    assert matches, stderr[-2000:]
    names = ("relayed", "filtered", "not_json", "requeued", "oversized")
    return {name: int(value or 0) for name, value in zip(names, matches[-1])}


def wait_relayed(source: Any, destination: Any, topic: str, count: int,
                 destination_topic: str | None = None, relay: RelayProcess | None = None,
                 timeout: float = 60) -> None:
    """Wait until the source channel is settled and ``count`` messages reached the destination."""
    target = destination_topic or topic
    settled = source_settled(source, topic)
    done = wait_for(lambda: (relay is not None and relay.returncode is not None) or (
        received(destination, target) >= count and settled()), timeout=timeout)
    assert relay is None or relay.returncode is None, (relay.returncode, relay.stderr[-2000:])
    assert done, (source.channel_stats(topic, SOURCE_CHANNEL), received(destination, target),
                  relay.stderr[-2000:] if relay else "")
