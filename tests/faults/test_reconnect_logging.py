"""An nsqd that stays down is warned about once, not once per retry: a Reader or Writer logs the
first failure of each kind as a warning and the identical ones after it at debug, says (info)
when the nsqd is back, and warns again about a failure after that recovery."""

from __future__ import annotations

import asyncio
import logging

from polling import until

from nsqcli.lib.reader import Reader
from nsqcli.lib.writer import Writer

FAST_RETRIES = {"reconnect_interval": 0.05, "max_reconnect_interval": 0.1}


def _lines(caplog, level: int, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level and text in r.getMessage()]


async def _outage(nsqd, caplog, attempts_text: str) -> None:
    """Stop nsqd until several retries failed, then start it again on the same ports."""
    loop = asyncio.get_running_loop()
    before = len(_lines(caplog, logging.DEBUG, attempts_text))
    await loop.run_in_executor(None, nsqd.stop)
    await until(lambda: len(_lines(caplog, logging.DEBUG, attempts_text)) >= before + 3)
    await loop.run_in_executor(None, nsqd.start)


def test_reader_warns_once_per_outage(nsqd_factory, caplog):
    nsqd = nsqd_factory()
    caplog.set_level(logging.DEBUG, logger="nsqcli.lib")
    refused = "Connection refused"

    async def main():
        reader = Reader("quiet", "c", lambda m: True, nsqd_tcp_addresses=[nsqd.tcp_address],
                        **FAST_RETRIES)
        async with reader:
            await until(lambda: reader.conns)
            for outage in (1, 2):
                await _outage(nsqd, caplog, refused)
                await until(lambda: len(_lines(caplog, logging.INFO, "connected again")) == outage)
                await until(lambda: reader.conns)

    asyncio.run(main())
    warned = _lines(caplog, logging.WARNING, refused)
    assert len(warned) == 2, warned  # one per outage, though each had several failed retries
    assert len(_lines(caplog, logging.DEBUG, refused)) >= 6
    assert "retries" in _lines(caplog, logging.INFO, "connected again")[0]


def test_writer_warns_once_per_outage(nsqd_factory, caplog):
    nsqd = nsqd_factory()
    caplog.set_level(logging.DEBUG, logger="nsqcli.lib")
    refused = "Connection refused"

    async def main():
        writer = Writer([nsqd.tcp_address], reconnect_interval=0.1)
        try:
            assert await writer.pub("quiet", b"before") == b"OK"
            await _outage(nsqd, caplog, refused)
            await until(lambda: _lines(caplog, logging.INFO, "connected again"))
            assert await writer.pub("quiet", b"after") == b"OK"
        finally:
            await writer.close()

    asyncio.run(main())
    cannot = [line for line in _lines(caplog, logging.WARNING, refused) if "cannot connect" in line]
    assert len(cannot) == 1, cannot
    conn_level = [r for r in caplog.records if r.levelno == logging.WARNING
                  and r.name == "nsqcli.lib.conn" and refused in r.getMessage()]
    assert len(conn_level) <= 1, conn_level
    # both are queued; message_count would start again at the restart (nsqd's topic is new)
    assert nsqd.topic_stats("quiet")["depth"] == 2
