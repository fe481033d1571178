"""LegacyReader: pynsq's deprecated "tasks" API, one Reader per task.

pynsq's version maps positional arguments through a tuple with two missing commas
(``'channel' 'nsqd_tcp_addresses'`` became one name), so every positional argument after
``channel`` landed on the wrong parameter; here they map as documented.
"""

from __future__ import annotations

import warnings
from typing import Any, Awaitable, Callable

from .reader import Reader

__all__ = ["LegacyReader"]

#: The positional order of pynsq's pre-0.5 Reader.
POSITIONAL_NAMES = (
    "all_tasks", "topic", "channel", "nsqd_tcp_addresses", "lookupd_http_addresses", "max_tries",
    "max_in_flight", "requeue_delay", "lookupd_poll_interval", "low_rdy_idle_timeout",
    "heartbeat_interval", "max_backoff_duration",
)


class LegacyReader:
    """``LegacyReader(all_tasks={name: handler}, topic, channel, ...)``: one :class:`Reader` per
    task, on channel ``channel.task`` when there are several tasks (else ``channel``).

    ``requeue_delay`` and ``heartbeat_interval`` go to the connections, as in pynsq.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        warnings.warn("LegacyReader is a deprecated wrapper and will be removed in a future release. "
                      "Use (multiple) Reader(s) each with their own message handler.",
                      DeprecationWarning, stacklevel=2)
        if len(args) > len(POSITIONAL_NAMES):
            raise TypeError(f"LegacyReader takes at most {len(POSITIONAL_NAMES)} positional "
                            f"arguments ({len(args)} given)")
        params = dict(zip(POSITIONAL_NAMES, args))
        for key, value in kwargs.items():
            if key in params:
                raise TypeError(f"LegacyReader got multiple values for argument {key!r}")
            params[key] = value
        for required in ("all_tasks", "topic", "channel"):
            if required not in params:
                raise TypeError(f"LegacyReader missing required argument {required!r}")
        all_tasks: dict[str, Callable[..., Any]] = params.pop("all_tasks")
        topic = params.pop("topic")
        channel = params.pop("channel")
        if not isinstance(all_tasks, dict) or not all_tasks:
            raise TypeError("all_tasks must be a non-empty dict of {task name: handler}")
        for task, method in all_tasks.items():
            if not callable(method):
                raise TypeError(f"task {task!r} must have a callable handler, not {method!r}")
        if not isinstance(channel, str):
            raise TypeError(f"channel must be a str, not {type(channel).__name__}")
        self.readers: list[Reader] = []
        for task, method in all_tasks.items():
            task_channel = f"{channel}.{task}" if len(all_tasks) > 1 else channel
            self.readers.append(Reader(topic=topic, channel=task_channel, message_handler=method, **params))

    def close(self) -> Awaitable[Any]:
        """Close every task's Reader; returns an awaitable."""
        import asyncio

        closing = [reader.close() for reader in self.readers]
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop: every Reader closed at once (already-done awaitables)
            return closing[0]
        return asyncio.gather(*(asyncio.ensure_future(c) for c in closing))

    def __repr__(self) -> str:
        return f"<LegacyReader {[reader.name for reader in self.readers]}>"

