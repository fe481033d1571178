"""Helpers shared by the test folders: polling for a condition, and the venv's console scripts."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any, Callable

VENV_BIN = Path(sys.executable).parent


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is truthy (True) or ``timeout`` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


async def until(predicate: Callable[[], Any], timeout: float = 10.0) -> None:
    """Await ``predicate`` being truthy; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


def tool(name: str) -> str:
    """An installed console script next to this interpreter."""
    return str(VENV_BIN / name)
