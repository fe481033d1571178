"""Where nsq-to-nsq publishes: the destination nsqds (given, and listed by nsqlookupd ``/nodes``)
and a started :class:`~nsqcli.lib.Publisher` for one destination topic, or why there is none.

A destination that cannot be reached now is :class:`DestinationDown` (the relay requeues and
tries again later); one that can never work as configured (a certificate that does not verify,
AUTH refused, not an nsqd) raises the error the tool exits 1 with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from nsqcli.cli.exit_codes import ToolError

if TYPE_CHECKING:  # pragma: no cover
    from nsqcli.cli.options import ClientSettings
    from nsqcli.lib.publisher import Publisher
    from nsqcli.lib.publisher.outcomes import NumbersCallback

#: Go's --mode values; hostpool and epsilon-greedy pick among the nsqds that answer, and so does
#: round-robin here: a batch goes to the next nsqd whose connection is up
MODES = {"round-robin": "round-robin", "fan-out": "fan-out", "hostpool": "round-robin",
         "epsilon-greedy": "round-robin"}


class DestinationDown(Exception):
    """No destination nsqd can take messages now (one line saying why)."""


class DestinationNsqds:
    """Makes the Publishers of every destination topic with the destination's settings."""

    def __init__(self, settings: ClientSettings, mode: str, retry_timeout: float,
                 log: Callable[[str], None]) -> None:
        self.settings = settings
        self.mode = MODES[mode]
        self.retry_timeout = retry_timeout
        self.log = log

    async def addresses(self) -> list[str]:
        """The nsqds given, and those every destination nsqlookupd lists now (their limits,
        from ``/config``, become the publishers' unless --producer-opt set them)."""
        settings = self.settings
        found = list(settings.nsqd_tcp_addresses)
        if settings.lookupd_http_addresses:
            from nsqcli.cli.lookupd_nodes import nodes_of_lookupds, nsqd_limits

            try:
                nodes = await nodes_of_lookupds(settings.lookupd_http_addresses)
            except ToolError as exc:
                raise DestinationDown(exc.message) from None
            limits = await nsqd_limits([node.http_address for node in nodes if node.http_address])
            for option, value in limits.items():
                settings.publisher_kwargs.setdefault(option, value)
            found += [node.tcp_address for node in nodes if node.tcp_address not in found]
        if not found:
            raise DestinationDown("the destination nsqlookupds list no nsqd")
        return found

    async def open(self, topic: str, on_acknowledged: NumbersCallback, on_given_up: NumbersCallback,
                   on_skipped: NumbersCallback) -> Publisher:
        """A started Publisher to ``topic`` (round-robin: one nsqd reachable; fan-out: all)."""
        from nsqcli.cli.consumer_guard import is_permanent
        from nsqcli.lib.publisher import NsqdUnreachableError, Publisher

        publisher = Publisher(
            topic, await self.addresses(), mode=self.mode, retry_timeout=self.retry_timeout,
            skip_oversized=True, keep_failed=False, log=self.log,
            on_acknowledged=on_acknowledged, on_given_up=on_given_up, on_skipped=on_skipped,
            **self.settings.publisher_kwargs, **self.settings.conn_kwargs)
        try:
            await publisher.start()
        except NsqdUnreachableError as exc:
            cause = exc.__cause__
            if cause is not None and is_permanent(cause):
                raise ToolError(f"destination: {exc.message}") from None
            raise DestinationDown(exc.message) from None
        return publisher
