"""Misuses of nsqcli.lib that a user's type checker must reject (tests/test_types.py).

Each line ending in ``# rejected: <mypy error code>`` must be reported with that code, and no
other line may be. Never run, only type-checked.
"""

from __future__ import annotations

import nsqcli.lib as nsq


def wants_text(message: str) -> bool:
    return bool(message)


def returns_a_count(message: nsq.Message) -> int:
    return message.attempts


def takes_nothing() -> bool:
    return True


def needs_a_connection(conn: nsq.AsyncConn, data: bytes | nsq.Error) -> None:
    print(conn.id, data)


async def misuse(reader: nsq.Reader, writer: nsq.Writer, message: nsq.Message) -> None:
    nsq.Reader("t", "c", wants_text, nsqd_tcp_addresses="127.0.0.1:4150")  # rejected: arg-type
    nsq.Reader("t", "c", returns_a_count, nsqd_tcp_addresses="127.0.0.1:4150")  # rejected: arg-type
    nsq.Reader("t", "c", takes_nothing, nsqd_tcp_addresses="127.0.0.1:4150")  # rejected: arg-type
    nsq.Reader("t", "c", nsqd_tcp_addresses=4150)  # rejected: arg-type
    reader.set_message_handler(wants_text)  # rejected: arg-type
    await writer.pub("t", 42)  # rejected: arg-type
    await writer.mpub("t", [b"a", 2])  # rejected: list-item
    writer.pub("t", b"x", callback=lambda: None)  # rejected: arg-type
    writer.pub("t", b"x", callback=needs_a_connection)  # rejected: arg-type
    text: str = await writer.pub("t", b"x")  # rejected: assignment
    await message.finish()  # rejected: func-returns-value
    message.requeue(delay="soon")  # rejected: arg-type
    reader.max_in_flight = "10"  # rejected: assignment
    nsq.Raeder("t", "c")  # rejected: attr-defined
    nsq.Reader("t", "c", nsqd_tcp_addresses="127.0.0.1:4150", heartbeat_intervall=10)  # rejected: call-arg
    nsq.Writer("127.0.0.1:4150", tls_v1="yes")  # rejected: arg-type
    print(text)
