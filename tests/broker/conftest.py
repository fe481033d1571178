"""The broker tests' raw connections are closed when each test ends, not left to the GC."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture(autouse=True)
def _close_raw_connections():
    yield
    wire = sys.modules.get("test_nsqd_wire")  # RawNSQ's module, once a test imported it
    while wire is not None and wire.RawNSQ.opened:
        wire.RawNSQ.opened.pop().close()
