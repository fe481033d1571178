"""The measured library client, run as its own process: ``python -m bench.workloads.client``.

The same code drives pynsq 0.9.1 (``--impl pynsq``: ``import nsq``) and nsqcli's library
(``--impl nsqcli``: ``import nsqcli.lib as nsq``), since nsqcli.lib keeps pynsq's API. It prints one
JSON line: ``{"count": messages handled or acknowledged, "errors": n, "elapsed": seconds}``,
where ``elapsed`` runs from the first publish (the connection is up) or from the Reader's creation
to the last acknowledgement or the last handler call.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import sys
import time

IMPLS = {"pynsq": "nsq", "nsqcli": "nsqcli.lib"}


async def _wait_connected(writer, timeout: float = 10.0) -> None:
    """pynsq fails a publish before its connection is up, so wait for one first (both impls)."""
    deadline = time.monotonic() + timeout
    while not getattr(writer, "conns", {1: 1}):
        if time.monotonic() > deadline:
            raise SystemExit("writer: no connection within 10 s")
        await asyncio.sleep(0.005)


async def _maybe_await(value, timeout: float = 10.0) -> None:
    if inspect.isawaitable(value):
        await asyncio.wait_for(value, timeout)


async def run_writer(nsq, args) -> dict:
    """One PUB per message, ``--window`` publishes outstanding, every acknowledgement awaited."""
    writer = nsq.Writer([args.nsqd_tcp_address])
    await _wait_connected(writer)
    body = b"x" * args.size
    n, window = args.n, args.window
    done = asyncio.get_running_loop().create_future()
    state = {"sent": 0, "acked": 0, "errors": 0}
    start = time.perf_counter()
    if args.mode == "callback":
        topic = args.topic

        def on_ack(conn=None, data=None):
            state["acked"] += 1
            if isinstance(data, Exception):
                state["errors"] += 1
            if state["sent"] < n:
                state["sent"] += 1
                writer.pub(topic, body, callback=on_ack)
            elif state["acked"] == n and not done.done():
                done.set_result(None)

        for _ in range(min(window, n)):
            state["sent"] += 1
            writer.pub(topic, body, callback=on_ack)
        await done
    else:  # "gather": windows of awaitables returned by pub()
        pub = writer.pub
        topic = args.topic
        while state["sent"] < n:
            batch = min(window, n - state["sent"])
            state["sent"] += batch
            results = await asyncio.gather(*[pub(topic, body) for _ in range(batch)],
                                           return_exceptions=True)
            state["acked"] += batch
            state["errors"] += sum(isinstance(r, BaseException) for r in results)
    elapsed = time.perf_counter() - start
    await _maybe_await(writer.close() if hasattr(writer, "close") else None)
    return {"count": state["acked"] - state["errors"], "errors": state["errors"],
            "elapsed": elapsed}


async def _consume(nsq, args, handler, done: asyncio.Future) -> None:
    """Run a Reader over every ``--nsqd-tcp-address`` (comma-separated) until ``done``, then let
    the last FINs reach the sockets and close it."""
    reader = nsq.Reader(topic=args.topic, channel=args.channel, message_handler=handler,
                        nsqd_tcp_addresses=args.nsqd_tcp_address.split(","),
                        max_in_flight=args.max_in_flight)
    await done
    await asyncio.sleep(0.05)
    await _maybe_await(reader.close())
    await asyncio.sleep(0.1)


async def run_reader(nsq, args) -> dict:
    """A Reader whose handler returns True; stops after ``-n`` messages were handled."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    state = {"count": 0, "end": 0.0}
    n = args.n

    def handler(message):
        state["count"] += 1
        if state["count"] == n:
            state["end"] = time.perf_counter()
            # the FIN for this message is sent after we return
            loop.call_soon(lambda: done.done() or done.set_result(None))
        return True

    start = time.perf_counter()
    await _consume(nsq, args, handler, done)
    return {"count": state["count"], "errors": 0, "elapsed": state["end"] - start}


async def run_reader_iter(nsq, args) -> dict:
    """The same goal as ``reader``, consumed with ``async for message in reader.messages()`` and
    ``await message.fin()`` (nsqcli only: pynsq has no iterator)."""
    if not hasattr(nsq.Reader, "messages"):
        raise SystemExit(f"{nsq.__name__}.Reader has no messages()")
    n = args.n
    count, end = 0, 0.0
    start = time.perf_counter()
    reader = nsq.Reader(topic=args.topic, channel=args.channel,
                        nsqd_tcp_addresses=args.nsqd_tcp_address.split(","),
                        max_in_flight=args.max_in_flight)
    async with reader:
        async for message in reader.messages():
            count += 1
            await message.fin()
            if count == n:
                end = time.perf_counter()
                break
    return {"count": count, "errors": 0, "elapsed": end - start}


async def run_reader_few_rdy(nsq, args) -> dict:
    """A Reader whose coroutine handler takes ``--handler-ms``; ``count`` is -n once -n handlers
    finished, ``handled`` every one that did (also those that finish while the Reader closes)."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    state = {"handled": 0, "end": 0.0}
    n, pause = args.n, args.handler_ms / 1000

    async def handler(message):
        await asyncio.sleep(pause)
        state["handled"] += 1
        if state["handled"] == n:
            state["end"] = time.perf_counter()
            loop.call_soon(lambda: done.done() or done.set_result(None))
        return True

    start = time.perf_counter()
    await _consume(nsq, args, handler, done)
    return {"count": min(state["handled"], n), "handled": state["handled"], "errors": 0,
            "elapsed": state["end"] - start}


async def run_one(nsq, args) -> dict:
    """Publish one message and return as soon as it is acknowledged (for start-to-exit timing)."""
    writer = nsq.Writer([args.nsqd_tcp_address])
    await _wait_connected(writer)
    done = asyncio.get_running_loop().create_future()
    writer.pub(args.topic, b"x", callback=lambda conn=None, data=None: done.set_result(data))
    data = await done
    return {"count": int(not isinstance(data, Exception)), "errors": 0, "elapsed": 0.0}


ROLES = {"writer": run_writer, "reader": run_reader, "reader-iter": run_reader_iter,
         "reader-few-rdy": run_reader_few_rdy, "one": run_one}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.workloads.client")
    parser.add_argument("role", choices=sorted(ROLES))
    parser.add_argument("--impl", choices=sorted(IMPLS), required=True)
    parser.add_argument("--nsqd-tcp-address", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--channel", default="bench")
    parser.add_argument("-n", type=int, default=1)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--mode", choices=("callback", "gather"), default="callback")
    parser.add_argument("--max-in-flight", type=int, default=2500)
    parser.add_argument("--handler-ms", type=float, default=50.0)
    args = parser.parse_args(argv)
    nsq = importlib.import_module(IMPLS[args.impl])
    result = asyncio.run(ROLES[args.role](nsq, args))
    print(json.dumps(result), flush=True)
    sys.exit(0 if result["count"] == args.n else 1)


if __name__ == "__main__":
    main()
