"""nsq-pub's click-free entry: which command lines it takes itself, and that it hands the rest
(and what it read from stdin) to the click command unchanged."""

from __future__ import annotations

import sys

import pytest

from nsqcli.pub.fast import parse_simple

from polling import tool


def _parsed(argv, environ=None):
    args = parse_simple(argv, environ or {})
    return None if args is None else (args.topic, args.messages, args.address, args.quiet)


@pytest.mark.parametrize("argv, expected", [
    (["--topic", "t", "-m", "hi"], ("t", [b"hi"], "127.0.0.1:4150", False)),
    (["--topic=t", "--message=a", "-m", "b", "-q"], ("t", [b"a", b"b"], "127.0.0.1:4150", True)),
    (["--nsqd-tcp-address", "h:1", "--topic", "t"], ("t", [], "h:1", False)),
    (["--nsqd-tcp-address=[::1]:4150", "--topic", "t"], ("t", [], "[::1]:4150", False)),
    (["--topic", "a", "--topic", "b", "-m", "é"], ("b", ["é".encode()], "127.0.0.1:4150", False)),
    (["--topic", "t", "-m", "-q"], ("t", [b"-q"], "127.0.0.1:4150", False)),  # a value, as click
    (["-topic", "t", "-m=x"], ("t", [b"x"], "127.0.0.1:4150", False)),  # Go's syntax, as click
    (["-topic=t", "-message", "x", "-nsqd-tcp-address=h:1", "-quiet"], ("t", [b"x"], "h:1", True)),
])
def test_simple_command_lines_are_taken(argv, expected):
    assert _parsed(argv) == expected


@pytest.mark.parametrize("argv", [
    [],                                                   # --topic is required: click says so
    ["-m", "x"],
    ["--topic", "t", "file.txt"],                         # input files
    ["--topic", "t", "--rate", "5"],                      # any other flag
    ["--topic", "t", "-mx"],                              # attached short value: click's business
    ["--topic", "t", "-q=false"],                         # a Go boolean value: click's business
    ["--topic", "t", "-m"],                               # missing value
    ["--topic", "t", "-m", ""],                           # empty message: click's error
    ["--topic", "bad topic!", "-m", "x"],                 # invalid topic: click's error
    ["--topic", "t", "--nsqd-tcp-address", "nope"],       # invalid address: click's error
    ["--topic", "t", "--nsqd-tcp-address", "a:1,b:2"],    # several nsqd
    ["--topic", "t", "--nsqd-tcp-address", "a:1", "--nsqd-tcp-address", "b:2"],
    ["--topic", "t", "--help"],
    ["--version"],
    ["--topic", "t", "-m", "\udcff"],                     # undecodable argv byte
])
def test_anything_else_goes_to_click(argv):
    assert _parsed(argv) is None


@pytest.mark.parametrize("name", ["NSQD_TCP_ADDRESS", "NSQLOOKUPD_HTTP_ADDRESS", "NSQ_AUTH_SECRET"])
def test_an_option_environment_variable_sends_it_to_click(name):
    assert _parsed(["--topic", "t", "-m", "x"], {name: "x"}) is None


def _imported(stderr: bytes) -> set[str]:
    return {line.rsplit("|", 1)[-1].strip() for line in stderr.decode().splitlines()
            if line.startswith("import time:")}


def test_one_message_is_published_without_click(nsqd, run_tool):
    result = run_tool([sys.executable, "-X", "importtime", tool("nsq-pub"), "--topic", "f",
                       "-m", "one", "--nsqd-tcp-address", nsqd.tcp_address])
    assert result.returncode == 0, result.stderr
    imported = _imported(result.stderr)
    assert "click" not in imported and "asyncio" not in imported and "dataclasses" not in imported
    assert nsqd.topic_stats("f")["message_count"] == 1


def test_stdin_read_by_the_fast_path_reaches_the_engine_when_nsqd_refuses(nsqd_factory, run_tool):
    nsqd = nsqd_factory(max_msg_size=5)  # the one MPUB is refused; the engine publishes one by one
    result = run_tool([tool("nsq-pub"), "--topic", "f", "--nsqd-tcp-address", nsqd.tcp_address,
                       "--skip-oversized"], input=b"ok\ntoo long\nfine\n")
    assert result.returncode == 0, result.stderr  # --skip-oversized: not a simple line, click path
    plain = run_tool([tool("nsq-pub"), "--topic", "g", "--nsqd-tcp-address", nsqd.tcp_address],
                     input=b"ok\ntoo long\nfine\n")
    assert plain.returncode == 3, plain.stderr
    assert b"record 2 is 8 bytes, larger than nsqd's max-msg-size 5" in plain.stderr
    assert nsqd.topic_stats("g")["message_count"] == 1  # "ok" went out; nothing read twice
