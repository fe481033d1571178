"""Run the embedded nsqd (``nsqcli.broker.nsqd``) as its own process for the benchmark.

``python -m bench.embedded`` binds free ports on 127.0.0.1, prints one JSON line
``{"tcp_port": ..., "http_port": ...}`` and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import json
import signal


async def serve() -> None:
    from nsqcli.broker.nsqd import NSQD, NSQDOptions

    nsqd = NSQD(NSQDOptions(tcp_address="127.0.0.1:0", http_address="127.0.0.1:0",
                            broadcast_address="127.0.0.1"))
    await nsqd.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"tcp_port": nsqd.tcp_port, "http_port": nsqd.http_port}), flush=True)
    await stop.wait()
    await nsqd.stop()


if __name__ == "__main__":
    asyncio.run(serve())
