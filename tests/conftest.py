"""nsqcli's own suite uses the fixtures it ships (nsqcli.testing); opt-in runs are switched here."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["nsqcli.testing"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-soak", action="store_true", default=False,
                     help="run the soak test of tests/faults (1,000,000 messages; see NSQCLI_SOAK_N)")


def _soak_enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("--run-soak")) or os.environ.get(
        "NSQCLI_RUN_SOAK", "") not in ("", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _soak_enabled(config):
        return
    skip = pytest.mark.skip(reason="soak test: run with --run-soak (or NSQCLI_RUN_SOAK=1)")
    for item in items:
        if item.get_closest_marker("soak"):
            item.add_marker(skip)
