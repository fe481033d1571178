"""The nsqcli umbrella group: same commands as the scripts, tolerant of a missing tool."""

from __future__ import annotations

import nsqcli.__main__ as umbrella
from nsqcli.pub.command import command as pub_command
from nsqcli.tail.command import command as tail_command


def test_mounts_the_standalone_commands():
    assert umbrella.load_tool("pub") is pub_command
    assert umbrella.load_tool("tail") is tail_command


def test_help_lists_every_tool(invoke):
    result = invoke(umbrella.cli, ["--help"])
    assert result.exit_code == 0, result
    for name in ("tail", "pub", "to-file", "replay", "dev-server", "topic", "channel"):
        assert f"  {name}" in result.stdout


def test_unknown_command_is_a_usage_error(invoke):
    result = invoke(umbrella.cli, ["nope"])
    assert result.exit_code == 2, result
    assert "nope" in result.stderr


def test_a_missing_tool_does_not_break_the_others(invoke, monkeypatch):
    monkeypatch.setitem(umbrella.TOOLS, "ghost", ("nsqcli.no_such_module", "command"))
    listing = invoke(umbrella.cli, ["--help"])
    assert listing.exit_code == 0 and "ghost" in listing.stdout, listing
    result = invoke(umbrella.cli, ["ghost", "--anything"])
    assert result.exit_code == 1, result
    assert "not available" in result.stderr
    assert invoke(umbrella.cli, ["pub", "--help"]).exit_code == 0


def test_version(invoke):
    result = invoke(umbrella.cli, ["--version"])
    assert result.exit_code == 0 and "nsqcli" in result.stdout, result


def test_every_tool_of_the_table_is_mounted():
    import click

    from nsqcli.cli.launch import TOOLS

    for tool in TOOLS:
        assert isinstance(umbrella.load_tool(tool.subcommand), click.Command), tool.subcommand


def test_pyproject_scripts_are_the_tables():
    # pyproject.toml cannot read nsqcli.cli.launch.TOOLS: it must name the same entry points
    from pathlib import Path

    import pytest

    from nsqcli.cli import launch

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"] == {
        script: tool.entry_point for script, tool in launch.SCRIPTS.items()}
    for tool in launch.SCRIPTS.values():
        assert callable(getattr(launch, tool.entry_point.rpartition(":")[2]))
