"""pytest plugin with nsqd / nsqlookupd fixtures: ``pytest_plugins = ["nsqcli.testing"]``.

Fixtures:

* ``nsqd`` -> :class:`NSQDHandle` (addresses, an HTTP helper, ``pub``/``mpub``/``stats``, and
  ``stop()``/``start()`` that restart the broker on the same ports);
* ``nsqd_factory(**options)`` -> an NSQDHandle with custom options (``max_msg_size``,
  ``msg_timeout_ms``, ``tls_cert``, ``tls_key``, ``tls_required``, ``auth_http_address`` ...);
* ``nsqlookupd`` / ``nsqlookupd_factory(**options)`` -> :class:`LookupdHandle`;
* ``nsqd_with_lookupd`` -> ``(NSQDHandle, LookupdHandle)`` with the nsqd registered;
* ``real_nsq`` -> True when the fixtures run the real binaries.

By default the embedded brokers (:mod:`nsqcli.broker`) run on 127.0.0.1, free ports, in a
background thread with an event loop of their own, so tests use them like an external daemon.
When ``NSQCLI_TEST_NSQD`` names an nsqd binary (and ``NSQCLI_TEST_NSQLOOKUPD`` an nsqlookupd
binary) the real daemons are started instead, with a temporary ``--data-path``.

``NSQDHandle.stop()``/``start()`` restart on the same ports and keep topics, channels and
queued messages (a real nsqd keeps them in its ``--data-path``); an nsqlookupd restarts empty.
An nsqd with a TLS certificate also listens for HTTPS (``handle.https_port``), as a real one
does. ``handle.started_at`` is the ``time.monotonic()`` of the last start: nsqd's own intervals
(its queue scan refreshes its channel list every 5 s, it pings nsqlookupd every 15 s) count
from no earlier than that.

Markers: ``embedded_only`` tests are skipped against the real binaries, ``real_only`` tests
without them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nsqcli.broker.daemons import UnsupportedOption
from nsqcli.broker.handles import (
    NSQ_ACCEPT,
    BrokerHandle,
    BrokerHTTPError,
    LookupdHandle,
    NSQDHandle,
    make_nsqd,
    make_nsqlookupd,
    normalize_nsqd_options,
)

__all__ = [
    "NSQ_ACCEPT", "BrokerHandle", "BrokerHTTPError", "LookupdHandle", "NSQDHandle", "make_nsqd",
    "make_nsqlookupd", "normalize_nsqd_options", "real_nsq_mode", "nsqd_binary",
    "nsqlookupd_binary",
]

NSQD_BINARY_ENV = "NSQCLI_TEST_NSQD"
NSQLOOKUPD_BINARY_ENV = "NSQCLI_TEST_NSQLOOKUPD"


def nsqd_binary() -> str | None:
    return os.environ.get(NSQD_BINARY_ENV) or None


def nsqlookupd_binary() -> str | None:
    return os.environ.get(NSQLOOKUPD_BINARY_ENV) or None


def real_nsq_mode() -> bool:
    """True when the fixtures start a real nsqd binary rather than the embedded broker."""
    return nsqd_binary() is not None


# --------------------------------------------------------------------------------------------
# pytest hooks and fixtures


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "embedded_only(reason): needs the embedded broker (skipped against real nsqd "
        "binaries)")
    config.addinivalue_line("markers", "real_only(reason): needs real nsqd binaries")


def _why(marker: pytest.Mark) -> str:
    """The marker's own reason (``@pytest.mark.embedded_only("why")``), if it gives one."""
    reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
    return f": {reason}" if reason else ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    real = real_nsq_mode()
    for item in items:
        embedded_only = item.get_closest_marker("embedded_only")
        real_only = item.get_closest_marker("real_only")
        if real and embedded_only:
            item.add_marker(pytest.mark.skip(
                reason=f"embedded broker only ({NSQD_BINARY_ENV} is set){_why(embedded_only)}"))
        elif not real and real_only:
            item.add_marker(pytest.mark.skip(
                reason=f"needs real NSQ binaries (set {NSQD_BINARY_ENV}){_why(real_only)}"))


def _started(handles: list[BrokerHandle], handle: BrokerHandle) -> BrokerHandle:
    handles.append(handle)  # before start(): a half-started broker is cleaned up too
    return handle.start()


@pytest.fixture(scope="session")
def real_nsq() -> bool:
    """True when the fixtures run real nsqd (and maybe nsqlookupd) binaries."""
    return real_nsq_mode()


def _broker_factory(make: Callable[..., BrokerHandle], binary: Callable[[], Any]) -> Iterator[Callable[..., Any]]:
    """Yield ``factory(**options)`` starting brokers with ``make``; all are closed at teardown."""
    handles: list[BrokerHandle] = []

    def factory(**options: Any) -> BrokerHandle:
        try:
            handle = make(options, binary=binary())
        except UnsupportedOption as error:
            pytest.skip(str(error))
        return _started(handles, handle)

    yield factory
    for handle in reversed(handles):
        handle.close()


@pytest.fixture
def nsqd_factory() -> Iterator[Callable[..., NSQDHandle]]:
    """``nsqd_factory(**options)`` starts an nsqd with those options; all stop at teardown."""
    yield from _broker_factory(make_nsqd, nsqd_binary)


@pytest.fixture
def nsqd(nsqd_factory: Callable[..., NSQDHandle]) -> NSQDHandle:
    """An nsqd with default options on free ports."""
    return nsqd_factory()


@pytest.fixture
def nsqlookupd_factory() -> Iterator[Callable[..., LookupdHandle]]:
    """``nsqlookupd_factory(inactive_producer_timeout_ms=..., tombstone_lifetime_ms=...)``."""
    yield from _broker_factory(make_nsqlookupd, nsqlookupd_binary)


@pytest.fixture
def nsqlookupd(nsqlookupd_factory: Callable[..., LookupdHandle]) -> LookupdHandle:
    return nsqlookupd_factory()


@pytest.fixture
def nsqd_with_lookupd(
    nsqd_factory: Callable[..., NSQDHandle], nsqlookupd: LookupdHandle
) -> tuple[NSQDHandle, LookupdHandle]:
    """An nsqd registered with an nsqlookupd (it shows in /nodes before the test starts)."""
    nsqd = nsqd_factory(lookupd_tcp_addresses=[nsqlookupd.tcp_address])
    nsqlookupd.wait_for_producer(nsqd)
    return nsqd, nsqlookupd
