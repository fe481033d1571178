"""Shared options, value parsers, the exit-code table, the runner and the consoles."""

from __future__ import annotations

import asyncio
import io
import os
import signal

import click
import pytest

from nsqcli.cli.client_options import parse_client_options, valid_names
from nsqcli.cli.console import Console, QUIET, VERBOSE
from nsqcli.cli.exit_codes import AddressError, ExitStatus, ToolError, describe
from nsqcli.lib.protocol.errors import ConnectionClosedError, LocalProtocolError, NSQError
from nsqcli.cli.options import client_options, output_options, pop_console, pop_settings
from nsqcli.cli.runner import run_to_status
from nsqcli.cli.values import (
    parse_bool, parse_delimiter, parse_duration, parse_http_address, parse_key_value,
    parse_tcp_address,
)


@click.command()
@client_options("consumer")
@output_options
def probe(**params):
    console = pop_console(params, "probe")
    settings = pop_settings(params, "probe/1")
    conn = {k: v for k, v in settings.conn_kwargs.items() if k != "auth_secret"}
    CAPTURED.append((settings.nsqd_tcp_addresses, settings.lookupd_http_addresses, conn,
                     settings.reader_kwargs, console.verbosity, settings.has_auth_secret))


CAPTURED: list = []


def probe_result(invoke, args, env=None):
    CAPTURED.clear()
    result = invoke(probe, args, env=env)
    return result, (CAPTURED[-1] if result.exit_code == 0 else None)


# ---- values ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, unit, seconds", [
    ("250ms", "s", 0.25), ("1.5s", "s", 1.5), ("1m30s", "s", 90), ("2h", "s", 7200),
    ("3", "s", 3), ("500", "ms", 0.5), ("-1s", "s", -1),
])
def test_parse_duration(text, unit, seconds):
    assert parse_duration(text, unit) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "1x", "s1", "1s2"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_addresses():
    assert parse_tcp_address(" host:4150 ") == "host:4150"
    assert parse_tcp_address("[::1]:4150") == "[::1]:4150"
    for bad in ("host", "host:0", "host:70000", ":4150", "::1:4150", "http://h:1"):
        with pytest.raises(ValueError):
            parse_tcp_address(bad)
    assert parse_http_address("http://lookupd:4161/x") == "http://lookupd:4161/x"
    assert parse_http_address("lookupd:4161") == "lookupd:4161"


def test_delimiters_and_key_values():
    assert parse_delimiter(r"\n") == b"\n"
    assert parse_delimiter(r"\0") == b"\0"
    assert parse_delimiter(r"\x1e|") == b"\x1e|"
    assert parse_delimiter("::") == b"::"
    with pytest.raises(ValueError):
        parse_delimiter("")
    assert parse_key_value("a=b=c") == ("a", "b=c")
    assert parse_key_value("a,b") == ("a", "b")
    assert parse_key_value("flag") == ("flag", "true")
    assert parse_bool("yes") is True and parse_bool("0") is False
    with pytest.raises(ValueError):
        parse_bool("maybe")


# ---- --consumer-opt / --producer-opt -----------------------------------------------------------

def test_client_options_convert_go_units():
    parsed = parse_client_options(
        ["heartbeat-interval=10s", "output_buffer_timeout,100ms", "max_attempts=7",
         "lookupd_poll_interval=15000", "msg_timeout=1m", "dial_timeout=500ms", "snappy"],
        "consumer")
    assert parsed["conn"] == {"heartbeat_interval": 10, "output_buffer_timeout": 100,
                              "msg_timeout": 60, "timeout": 0.5, "snappy": True}
    assert parsed["reader"] == {"max_tries": 7, "lookupd_poll_interval": 15}


def test_client_options_by_role():
    assert "max_in_flight" in valid_names("consumer")
    assert "max_in_flight" not in valid_names("producer")
    assert "max_msg_size" in valid_names("producer")
    # go-nsq's consumer options, given to a producer: checked, then ignored (as go-nsq does)
    assert parse_client_options(["max_in_flight=3"], "producer")["ignored"] == {
        "max_in_flight": "a consumer option, no effect on a producer (as in go-nsq)"}
    with pytest.raises(ValueError, match="producer option 'max_in_flight': must be >= 0"):
        parse_client_options(["max_in_flight=-3"], "producer")
    with pytest.raises(ValueError, match="unknown producer option 'close_timeout'"):
        parse_client_options(["close_timeout=3s"], "producer")  # nsqcli's own, not go-nsq's
    with pytest.raises(ValueError, match="deflate_level"):
        parse_client_options(["deflate_level=12"], "consumer")
    with pytest.raises(ValueError, match="sample_rate"):
        parse_client_options(["sample_rate=100"], "consumer")


# ---- shared click options ----------------------------------------------------------------------

def test_default_address(invoke):
    result, (nsqd, lookupd, conn, _, verbosity, secret) = probe_result(invoke, [])
    assert result.exit_code == 0, result
    assert nsqd == ["127.0.0.1:4150"] and lookupd == [] and verbosity == 0
    assert conn == {"user_agent": "probe/1"} and secret is False


def test_lookupd_only_means_no_default_nsqd(invoke):
    _, (nsqd, lookupd, *_rest) = probe_result(invoke, ["--lookupd-http-address", "l:4161"])
    assert nsqd == [] and lookupd == ["l:4161"]


def test_repeatable_comma_and_env_addresses(invoke):
    _, values = probe_result(invoke, ["--nsqd-tcp-address", "a:1,b:2", "--nsqd-tcp-address", "c:3"])
    assert values[0] == ["a:1", "b:2", "c:3"]
    _, values = probe_result(invoke, [], env={"NSQD_TCP_ADDRESS": "a:1, b:2",
                                              "NSQLOOKUPD_HTTP_ADDRESS": "l:1,m:2"})
    assert values[0] == ["a:1", "b:2"] and values[1] == ["l:1", "m:2"]


def test_bad_address_is_a_usage_error(invoke):
    result = invoke(probe, ["--nsqd-tcp-address", "nohost"])
    assert result.exit_code == 2 and "nohost" in result.stderr, result


def test_compression_flags(invoke):
    _, values = probe_result(invoke, ["--deflate-level", "3"])
    assert values[2]["deflate"] is True and values[2]["deflate_level"] == 3
    result = invoke(probe, ["--snappy", "--deflate"])
    assert result.exit_code == 2 and "mutually exclusive" in result.stderr, result
    assert invoke(probe, ["--deflate-level", "10"]).exit_code == 2


def test_tls_flags(invoke, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    _, values = probe_result(invoke, ["--tls-ca-file", ca])
    conn = values[2]
    assert conn["tls_v1"] is True and conn["tls_options"]["ca_certs"] == str(ca)
    result = invoke(probe, ["--tls-cert", ca])
    assert result.exit_code == 2 and "--tls-key" in result.stderr, result
    assert invoke(probe, ["--tls-ca-file", tmp_path / "missing"]).exit_code == 2
    _, values = probe_result(invoke, ["--tls-insecure-skip-verify"])
    import ssl

    assert values[2]["tls_options"]["cert_reqs"] == ssl.CERT_NONE


def test_auth_secret_sources(invoke, tmp_path):
    path = tmp_path / "secret"
    path.write_text("from-file\n")
    for args, env in ((["--auth-secret", "x"], None), ([], {"NSQ_AUTH_SECRET": "y"}),
                      (["--auth-secret-file", path], None)):
        result, values = probe_result(invoke, args, env)
        assert result.exit_code == 0 and values[5] is True, result
    empty = tmp_path / "empty"
    empty.write_text("")
    assert invoke(probe, ["--auth-secret-file", empty]).exit_code == 2


def test_verbosity(invoke):
    assert probe_result(invoke, ["-v"])[1][4] == VERBOSE
    assert probe_result(invoke, ["-vv"])[1][4] == 2
    assert probe_result(invoke, ["-q"])[1][4] == QUIET
    assert invoke(probe, ["-q", "-v"]).exit_code == 2


def test_consumer_opt_goes_to_reader_and_conn(invoke):
    _, values = probe_result(invoke, ["--consumer-opt", "max_in_flight=9", "--consumer-opt",
                                      "user_agent=custom"])
    assert values[3] == {"max_in_flight": 9} and values[2]["user_agent"] == "custom"


@pytest.mark.parametrize("role, mentioned", [("consumer", True), ("producer", False)])
def test_consumer_opt_help_says_what_giving_a_failing_message_up_takes(invoke, role, mentioned):
    """Issue 16: the consumers' --help says that max_attempts takes minutes with the defaults,
    and which options shorten it (the producers' has nothing to give up)."""
    @click.command()
    @client_options(role)
    def tool(**params):
        pass

    shown = " ".join(invoke(tool, ["--help"]).stdout.split())
    said = all(words in shown for words in (
        "given up only with max_attempts=N", "can take minutes", "requeue_delay x attempts",
        "max_backoff_duration), so"))
    assert said is mentioned, shown


# ---- exit codes --------------------------------------------------------------------------------

def test_describe_table():
    assert describe(ToolError("x", ExitStatus.NOT_ACKNOWLEDGED)) == (ExitStatus.NOT_ACKNOWLEDGED, "x")
    status, message = describe(NSQError("E_BAD_TOPIC", "PUB topic name is not valid"))
    assert status == ExitStatus.ERROR and "E_BAD_TOPIC" in message
    assert describe(LocalProtocolError("invalid topic name"))[0] == ExitStatus.USAGE
    assert describe(ConnectionClosedError("closed"))[0] == ExitStatus.ERROR
    assert describe(ConnectionRefusedError(111, "Connection refused"))[0] == ExitStatus.ERROR
    assert describe(KeyboardInterrupt())[0] == ExitStatus.INTERRUPTED
    assert describe(ZeroDivisionError()) is None
    error = AddressError("h:1", ConnectionRefusedError(111, "Connection refused"), "connecting")
    assert error.message == "h:1 while connecting: connection refused (is nsqd running there?)"


# ---- runner and console ------------------------------------------------------------------------

def console_pair():
    err = io.StringIO()
    return Console("tool", err=err, out=io.BytesIO(), color=False), err


def test_runner_maps_expected_failures_to_one_line():
    console, err = console_pair()

    async def main(shutdown):
        raise ToolError("it broke")

    assert run_to_status(main, console) == ExitStatus.ERROR
    assert err.getvalue() == "tool: error: it broke\n"


def test_runner_prints_a_traceback_only_for_bugs():
    console, err = console_pair()

    async def main(shutdown):
        return 1 / 0

    assert run_to_status(main, console) == ExitStatus.ERROR
    assert "internal error" in err.getvalue() and "ZeroDivisionError" in err.getvalue()


def test_runner_first_signal_drains_and_gives_130():
    console, err = console_pair()
    seen = []

    async def main(shutdown):
        shutdown.add_callback(lambda: seen.append("callback"))
        asyncio.get_running_loop().call_later(0.01, os.kill, os.getpid(), signal.SIGTERM)
        await shutdown.wait()
        seen.append(shutdown.signal_name)
        return ExitStatus.SUCCESS

    assert run_to_status(main, console) == ExitStatus.INTERRUPTED
    assert seen == ["callback", "SIGTERM"]


def test_runner_keeps_a_failure_status_when_interrupted():
    console, _ = console_pair()

    async def main(shutdown):
        shutdown.request("SIGINT")
        return ExitStatus.NOT_ACKNOWLEDGED

    assert run_to_status(main, console) == ExitStatus.NOT_ACKNOWLEDGED


def test_runner_gives_130_for_a_signal_that_comes_as_the_tool_finishes():
    """The signal is received (its Python-level handler ran) but the loop's callback for it has
    not run when the tool returns: still an interrupted run."""
    console, _ = console_pair()

    async def main(shutdown):
        os.kill(os.getpid(), signal.SIGTERM)  # handled before the next bytecode, not by the loop
        return None

    assert run_to_status(main, console) == ExitStatus.INTERRUPTED


def test_console_levels():
    err = io.StringIO()
    console = Console("p", verbosity=QUIET, err=err, color=False)
    console.warning("w")
    console.info("i")
    console.error("e")
    assert err.getvalue() == "p: error: e\n"
    err = io.StringIO()
    console = Console("p", verbosity=VERBOSE, err=err, color=False)
    console.info("i")
    console.debug("d")
    console.warning("w")
    assert err.getvalue() == "p: i\np: warning: w\n"


def test_every_reader_option_is_accepted_by_the_reader():
    """Each consumer option's keyword exists on Reader or AsyncConn (the table stays true)."""
    import inspect

    from nsqcli.cli.client_options import OPTIONS
    from nsqcli.lib.conn import AsyncConn
    from nsqcli.lib.reader import Reader

    conn_params = set(inspect.signature(AsyncConn.__init__).parameters)
    reader_params = set(inspect.signature(Reader.__init__).parameters)
    for option in OPTIONS:
        if option.target == "conn":
            assert option.keyword in conn_params, option
        elif option.target == "reader":
            assert option.keyword in reader_params, option


def test_consumer_opts_build_a_working_reader():
    from nsqcli.lib.reader import Reader

    parsed = parse_client_options(
        ["backoff_strategy=full-jitter", "backoff_multiplier=500ms", "close_timeout=2s",
         "max_frame_size=2048", "max_attempts=3", "low_rdy_idle_timeout=5s"], "consumer")

    async def build():
        reader = Reader("t", "c", lambda m: True, nsqd_tcp_addresses=["127.0.0.1:1"],
                        **parsed["reader"], **parsed["conn"])
        await reader.close()
        return reader

    reader = asyncio.run(build())
    assert reader.max_tries == 3


def test_log_forwarding_is_undone_when_the_tool_ends():
    import logging

    from nsqcli.cli.console import forward_library_logs

    logger = logging.getLogger("nsqcli.lib")
    before = (list(logger.handlers), logger.propagate, logger.level)
    console, err = console_pair()

    async def main(shutdown):
        forward_library_logs(console)
        logging.getLogger("nsqcli.lib.conn").warning("shown as a diagnostic")
        assert logger.propagate is False

    assert run_to_status(main, console) == ExitStatus.SUCCESS
    assert "tool: warning: shown as a diagnostic" in err.getvalue()
    assert (list(logger.handlers), logger.propagate, logger.level) == before


def test_colour_only_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    plain = io.StringIO()
    Console("p", err=plain).error("boom")
    assert plain.getvalue() == "p: error: boom\n"
    tty = Terminal()
    Console("p", err=tty).error("boom")
    assert "\x1b[" in tty.getvalue() and "p: error: boom" in tty.getvalue()


def test_progress_rewrites_one_line_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    console = Console("p", err=tty, color=False)
    console.progress("1 record")
    console.progress("2 records")
    console.end_progress()
    assert tty.getvalue() == "\r\x1b[2K1 record\r\x1b[2K2 records\n"
