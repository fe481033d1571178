"""Interop with Go's NSQ apps (each module names the ones it runs): every module is ``real_only``.

The Go apps are looked for in the directory of the ``NSQCLI_TEST_NSQD`` binary (an NSQ release
ships them side by side); a test whose app is missing there is skipped and says which one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest

from nsqcli.testing import NSQD_BINARY_ENV, nsqd_binary


@pytest.fixture
def go_app() -> Callable[[str], str]:
    """``go_app("nsq_tail")`` -> the path of that Go app next to NSQCLI_TEST_NSQD, or a skip."""

    def find(name: str) -> str:
        binary = nsqd_binary()
        if binary is None:
            pytest.skip(f"needs real NSQ binaries (set {NSQD_BINARY_ENV})")
        path = Path(binary).parent / name
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.skip(f"Go's {name} is not in {path.parent} (the directory of "
                        f"{NSQD_BINARY_ENV}={binary})")
        return str(path)

    return find
