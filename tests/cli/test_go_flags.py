"""Go's flag syntax: every flag of nsq_tail, to_nsq, nsq_to_file and nsq_to_nsq (v1.3.0) in every form Go's
flag package takes, parsed by our tools to the same values; click's forms and short options keep
their meaning; errors name the flag as typed (nsqcli/go_flags.py)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import click
import pytest

from nsqcli.__main__ import cli
from nsqcli.cli.go_flags import GO_BOOLEANS, normalise, option_table
from nsqcli.pub.command import command as pub
from nsqcli.pub.fast import parse_simple
from nsqcli.tail.command import command as tail
from nsqcli.to_file.command import to_file
from nsqcli.to_nsq.command import command as to_nsq

ADDR, LOOKUPD = "127.0.0.1:4150", "127.0.0.1:4161"
BOOL = object()  # a Go boolean flag (no value)


def _reader(key, value):
    return lambda opts: opts["reader"][key] == value


def _conn(key, value):
    return lambda opts: opts["conn"][key] == value


# Go flag -> (example value or BOOL, click parameter, expected value or predicate), one table per
# app, every flag of its `-help` output (test_the_tables_list_every_flag_of_the_go_apps checks).
NSQ_TAIL = {
    "channel": ("audit", "channel", "audit"),
    "consumer-opt": ("max_attempts,3", "consumer_opt", _reader("max_tries", 3)),
    "lookupd-http-address": (LOOKUPD, "lookupd_http_address", (LOOKUPD,)),
    "max-in-flight": ("7", "max_in_flight", 7),
    "n": ("3", "count", 3),
    "nsqd-tcp-address": (ADDR, "nsqd_tcp_address", (ADDR,)),
    "print-topic": (BOOL, "print_topic", True),
    "topic": ("events", "topics", ("events",)),
    "version": (BOOL, None, None),
}
TO_NSQ = {
    "delimiter": (",", "delimiter", b","),
    "nsqd-tcp-address": (ADDR, "nsqd_tcp_address", (ADDR,)),
    "producer-opt": ("dial_timeout,2s", "producer_opt", _conn("timeout", 2)),
    "rate": ("10", "rate", 10.0),
    "topic": ("events", "topic", "events"),
}
NSQ_TO_FILE = {
    "channel": ("archive", "channel", "archive"),
    "consumer-opt": ("max_in_flight,9", "consumer_opt", _reader("max_in_flight", 9)),
    "datetime-format": ("%Y%m", "datetime_format", "%Y%m"),
    "filename-format": ("<TOPIC>.<REV>.log", "filename_format", "<TOPIC>.<REV>.log"),
    "gzip": (BOOL, "gzip", True),
    "gzip-level": ("9", "gzip_level", 9),
    "host-identifier": ("h1", "host_identifier", "h1"),
    "http-client-connect-timeout": ("1m30s", "http_client_connect_timeout", 90.0),
    "http-client-request-timeout": ("1.5s", "http_client_request_timeout", 1.5),
    "log-level": ("debug", "log_level", "debug"),
    "log-prefix": ("[x] ", "log_prefix", "[x] "),
    "lookupd-http-address": (LOOKUPD, "lookupd_http_address", (LOOKUPD,)),
    "max-in-flight": ("300", "max_in_flight", 300),
    "nsqd-tcp-address": (ADDR, "nsqd_tcp_address", (ADDR,)),
    "output-dir": ("out", "output_dir", "out"),
    "rotate-interval": ("1h", "rotate_interval", 3600.0),
    "rotate-size": ("1024", "rotate_size", 1024),
    "skip-empty-files": (BOOL, "skip_empty_files", True),
    "sync-interval": ("30s", "sync_interval", 30.0),
    "topic": ("events", "topics", ("events",)),
    "topic-pattern": ("^ev", "topic_pattern", "^ev"),
    "topic-refresh": ("1m0s", "topic_refresh", 60.0),
    "version": (BOOL, None, None),
    "work-dir": ("work", "work_dir", "work"),
}
NSQ_TO_NSQ = {
    "channel": ("copy", "channel", "copy"),
    "consumer-opt": ("max_in_flight,9", "consumer_opt", _reader("max_in_flight", 9)),
    "destination-nsqd-tcp-address": (ADDR, "destination_nsqd_tcp_address", (ADDR,)),
    "destination-topic": ("copies", "destination_topic", "copies"),
    "lookupd-http-address": (LOOKUPD, "lookupd_http_address", (LOOKUPD,)),
    "max-in-flight": ("300", "max_in_flight", 300),
    "mode": ("hostpool", "mode", "hostpool"),
    "nsqd-tcp-address": (ADDR, "nsqd_tcp_address", (ADDR,)),
    "producer-opt": ("dial_timeout,2s", "producer_opt", _conn("timeout", 2)),
    "require-json-field": ("kind", "require_json_field", "kind"),
    "require-json-value": ("click", "require_json_value", "click"),
    "status-every": ("250", "status_every", 250),
    "topic": ("events", "topics", ("events",)),
    "version": (BOOL, None, None),
    "whitelist-json-field": ("kind", "whitelist", ("kind",)),
}
APPS = {"nsq_tail": (tail, NSQ_TAIL, ["-topic", "base"]), "to_nsq": (pub, TO_NSQ, ["-topic", "base"]),
        "nsq_to_file": (to_file, NSQ_TO_FILE, []), "nsq_to_nsq": (to_nsq, NSQ_TO_NSQ, ["-topic", "base"])}


def parsed(command: click.Command, args: list[str]) -> dict:
    with command.make_context("prog", list(args)) as ctx:
        return ctx.params


def _cases(forms_of_value, forms_of_bool):
    return list(_each_case(forms_of_value, forms_of_bool))


def _each_case(forms_of_value, forms_of_bool):
    for app, (command, table, base) in APPS.items():
        for flag, (value, param, expected) in table.items():
            if param is None:
                continue
            forms = forms_of_bool(flag) if value is BOOL else forms_of_value(flag, value)
            for args in forms:
                extra = [] if flag == "topic" else base
                yield pytest.param(command, args + extra, param, expected, id=f"{app}:{' '.join(args)}")


VALUE_FORMS = lambda flag, value: [[f"-{flag}", value], [f"-{flag}={value}"],  # noqa: E731
                                   [f"--{flag}={value}"], [f"--{flag}", value]]
BOOL_FORMS = lambda flag: [[f"-{flag}"], [f"--{flag}"], [f"-{flag}=true"],  # noqa: E731
                           [f"--{flag}=1"], [f"-{flag}=T"]]


@pytest.mark.parametrize("command, args, param, expected", _cases(VALUE_FORMS, BOOL_FORMS))
def test_every_go_flag_in_every_go_form(command, args, param, expected):
    value = parsed(command, args)[param]
    assert expected(value) if callable(expected) else value == expected


@pytest.mark.parametrize("app, flag", [(app, flag) for app, (_, table, _) in APPS.items()
                                       for flag, spec in table.items() if spec[0] is BOOL])
@pytest.mark.parametrize("spelling", sorted(GO_BOOLEANS))
def test_every_go_boolean_spelling(app, flag, spelling):
    command, _, base = APPS[app]
    if flag == "version":
        result = click.testing.CliRunner().invoke(command, [f"-{flag}={spelling}"])
        assert ("(nsqcli)" in result.output) == GO_BOOLEANS[spelling], result.output
        assert (result.exit_code == 0) == GO_BOOLEANS[spelling]  # false: runs, refusing no topic
        return
    param = APPS[app][1][flag][1]
    assert parsed(command, [f"-{flag}={spelling}", *base])[param] is GO_BOOLEANS[spelling]


def test_the_last_setting_of_a_go_boolean_wins():
    assert parsed(to_file, ["-gzip", "-gzip=false"])["gzip"] is False
    assert parsed(to_file, ["-gzip=false", "--gzip"])["gzip"] is True
    assert parsed(pub, ["-topic", "t", "-progress=false"])["progress"] is False  # --no-progress
    assert parsed(pub, ["-topic", "t", "-no-progress=false"])["progress"] is True


def test_the_tables_list_every_flag_of_the_go_apps():
    """Against the real apps' -help when their binaries are at hand (next to NSQCLI_TEST_NSQD)."""
    nsqd = os.environ.get("NSQCLI_TEST_NSQD")
    if not nsqd:
        pytest.skip("set NSQCLI_TEST_NSQD: the Go apps are looked for next to nsqd")
    for app, (_, table, _) in APPS.items():
        binary = Path(nsqd).with_name(app)
        if not binary.exists():
            pytest.skip(f"no {binary}")
        help_text = subprocess.run([str(binary), "-help"], capture_output=True, text=True).stderr
        flags = set(re.findall(r"^  -([\w-]+)", help_text, re.MULTILINE))
        assert flags == set(table), app


def test_go_durations_and_no_limit_values():
    assert parsed(to_file, ["-rotate-interval", "1h2m3.5s"])["rotate_interval"] == pytest.approx(3723.5)
    assert parsed(to_file, ["-rotate-interval=0", "-rotate-size=0"])["rotate_interval"] == 0
    assert parsed(pub, ["-topic", "t", "-rate", "0"])["rate"] is None  # to_nsq: "0 to disable"
    assert parsed(tail, ["-topic", "t", "-n", "0"])["count"] == 0  # nsq_tail: forever


def test_repeatable_go_flags_repeat():
    params = parsed(tail, ["-topic", "a", "-topic=b", "--topic=c", "--topic", "d",
                           "-nsqd-tcp-address", "127.0.0.1:1", "-nsqd-tcp-address=127.0.0.1:2",
                           "-consumer-opt", "max_attempts,3", "-consumer-opt=msg_timeout,5s"])
    assert params["topics"] == ("a", "b", "c", "d")
    assert params["nsqd_tcp_address"] == ("127.0.0.1:1", "127.0.0.1:2")
    assert params["consumer_opt"]["reader"] == {"max_tries": 3}
    assert params["consumer_opt"]["conn"] == {"msg_timeout": 5}
    lookupds = parsed(to_file, ["-lookupd-http-address", "a:1", "--lookupd-http-address=b:2"])
    assert lookupds["lookupd_http_address"] == ("a:1", "b:2")


@pytest.mark.parametrize("args, param, expected", [
    (["--topic", "t", "-n", "5"], "count", 5),
    (["--topic", "t", "-n5"], "count", 5),
    (["--topic", "t", "-vv"], "verbose", 2),
    (["--topic", "t", "-v", "-v"], "verbose", 2),
    (["--topic", "t", "-q"], "quiet", True),
    (["--topic", "t", "-vn", "4"], "count", 4),  # a cluster whose last option takes the next word
    (["--topic", "t", "-n", "-1"], None, None),  # a value, whatever it looks like: refused by IntRange
])
def test_click_forms_and_short_options_keep_their_meaning(args, param, expected):
    if param is None:
        with pytest.raises(click.BadParameter):
            parsed(tail, args)
        return
    assert parsed(tail, args)[param] == expected


@pytest.mark.parametrize("args, param, expected", [
    (["--topic", "t", "-m", "x"], "messages", ("x",)),
    (["--topic", "t", "-mhello"], "messages", ("hello",)),
    (["--topic", "t", "-m=x"], "messages", ("x",)),        # Go's -flag=value
    (["--topic", "t", "-m", "-topic"], "messages", ("-topic",)),  # values are copied verbatim
    (["--topic", "t", "-0"], "null", True),
    (["--topic", "t", "-0q"], "quiet", True),
    (["--topic", "t", "-mode", "fan-out"], "mode", "fan-out"),  # a long name wins over -m ode
    (["-topic", "t", "--", "-file"], "files", ("-file",)),  # -- ends the options
])
def test_pub_short_options_and_values(args, param, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-file").write_text("x\n")
    assert parsed(pub, args)[param] == expected


@pytest.mark.parametrize("args, message", [
    (["-topic=events", "-max-in-flight", "abc"], "Invalid value for '-max-in-flight'"),
    (["-topic=events", "--n=x"], "Invalid value for '--n'"),
    (["-topic"], "Option '-topic' requires an argument"),
    (["-topc", "events"], "No such option '-topc'. Did you mean '--topic'?"),
    (["-topic=x", "-print-topic=yes"], "Invalid value for '-print-topic': 'yes' is not a boolean"),
    (["-topic=x", "-verbose=2"], "Option '-verbose' does not take a value"),
    (["-topic=x", "-nq"], "Invalid value for '-n': 'q'"),  # a cluster: -n q
])
def test_errors_name_the_flag_as_typed(invoke, args, message):
    result = invoke(tail, args)
    assert result.exit_code == 2, result
    assert message in result.stderr, result
    assert "Traceback" not in result.stderr


def test_the_umbrella_takes_go_syntax_too(invoke):
    assert "nsqcli" in invoke(cli, ["-version"]).stdout
    result = invoke(cli, ["tail", "-topic"])
    assert result.exit_code == 2 and "Option '-topic' requires an argument" in result.stderr, result
    result = invoke(cli, ["tail", "-topic=x", "-n=abc"])  # -topic=x parsed; -n=abc refused
    assert result.exit_code == 2 and "Invalid value for '-n': 'abc'" in result.stderr, result


def test_the_group_leaves_subcommand_words_alone():
    table = option_table(cli.get_params(click.Context(cli)))
    assert normalise(["-version", "tail", "-topic", "x"], table, interspersed=False).args == [
        "--version", "tail", "-topic", "x"]


@pytest.mark.parametrize("argv", [
    ["-topic", "t", "-m", "x"], ["-topic=t", "-m=x", "-q"], ["--topic=t", "-message", "a", "-m", "b"],
    ["-topic", "t", "-nsqd-tcp-address", "h:1", "-m", "x"], ["--topic", "t", "-m", "-q"],
    ["-topic", "a", "-topic", "b", "-m", "x"], ["-topic", "t", "-quiet", "-m", "x"],
])
def test_the_quick_path_reads_go_syntax_as_click_does(argv):
    fast = parse_simple(argv, {})
    assert fast is not None, argv
    params = parsed(pub, argv)
    assert fast.topic == params["topic"]
    assert fast.messages == [m.encode() for m in params["messages"]]
    assert (fast.address,) == (params["nsqd_tcp_address"] or ("127.0.0.1:4150",))
    assert fast.quiet == params["quiet"]


def test_go_nsq_options_we_lack_are_accepted_with_one_warning(invoke):
    from nsqcli.cli.options import pop_settings

    params = parsed(tail, ["-topic", "t", "-consumer-opt", "read_timeout,30s",
                           "-consumer-opt", "client_id,me", "-consumer-opt", "low_rdy_timeout,5s"])
    settings = pop_settings(dict(params), "ua")
    assert set(settings.ignored_options) == {"read_timeout", "client_id"}
    assert settings.reader_kwargs["low_rdy_timeout"] == 5.0  # go-nsq's name, and it acts
    assert "read_timeout" in tail.params[[p.name for p in tail.params].index("consumer_opt")].help


def test_go_nsq_auth_and_tls_options_set_what_the_flags_set(tmp_path):
    from nsqcli.cli.options import pop_settings

    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    params = parsed(tail, ["-topic", "t", "-consumer-opt", "tls_v1,true",
                           "-consumer-opt", f"tls_root_ca_file,{ca}",
                           "-consumer-opt", "auth_secret,s3cret"])
    conn = pop_settings(dict(params), "ua").conn_kwargs
    assert conn["tls_v1"] is True and conn["tls_options"]["ca_certs"] == str(ca)
    assert conn["auth_secret"] == "s3cret"
    insecure = pop_settings(dict(parsed(tail, ["-topic", "t", "-consumer-opt",
                                               "tls_insecure_skip_verify"])), "ua")
    assert insecure.insecure_tls and insecure.conn_kwargs["tls_v1"] is True


@pytest.mark.parametrize("level, verbosity", [("debug", 2), ("INFO", 1), ("warn", 0), ("error", -1),
                                              ("fatal", -1)])
def test_go_log_level_and_prefix(level, verbosity):
    from nsqcli.cli.options import pop_console

    params = parsed(to_file, ["-log-level", level, "-log-prefix=[nsq_to_file] "])
    console = pop_console(dict(params), "nsq-to-file")
    assert console.verbosity == verbosity and console.prefix == "[nsq_to_file] "


def test_log_level_with_v_or_q_is_a_usage_error(invoke):
    result = invoke(to_file, ["-topic", "t", "-log-level", "debug", "-q"])
    assert result.exit_code == 2 and "--log-level" in result.stderr, result


def test_a_to_nsq_line_with_consumer_options_runs_and_warns_once(invoke):
    """go-nsq's one Config serves both roles: to_nsq takes -producer-opt max_in_flight,5."""
    result = invoke(pub, ["-topic", "t", "-m", "x", "-nsqd-tcp-address", "127.0.0.1:1",
                          "-producer-opt", "max_in_flight,5", "-producer-opt", "max_in_flight,6",
                          "-producer-opt", "read_timeout,30s"])
    assert result.exit_code == 1, result  # parsed and run: nothing listens on port 1
    warnings = [line for line in result.stderr.splitlines() if "accepted but ignored" in line]
    assert len(warnings) == 2 and "max_in_flight" in warnings[0] and "read_timeout" in warnings[1]
