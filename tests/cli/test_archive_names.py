"""Pure tests of nsq_to_file file names: strftime subset, templates, REV, parsing back."""

from datetime import datetime, timedelta, timezone

import pytest

from nsqcli.archive.names import (
    DEFAULT_DATETIME_FORMAT, DEFAULT_FILENAME_FORMAT, compute_filename_template, NamePattern,
    needs_rev, render_datetime, render_rev, strftime, topic_from_filename,
)

T = datetime(2020, 6, 30, 18, 5, 9, tzinfo=timezone(timedelta(hours=-7), "PDT"))


@pytest.mark.parametrize("fmt,expected", [
    ("%Y-%m-%d_%H", "2020-06-30_18"),
    ("%y%m%d %I:%M:%S %p", "200630 06:05:09 PM"),
    ("%B %b %A %a", "June Jun Tuesday Tue"),
    ("%Z %z %%", "PDT -0700 %"),
    ("%q %", "%q %"),  # unknown directives and a trailing % stay literal
])
def test_strftime_subset(fmt, expected):
    assert strftime(fmt, T) == expected


def test_strftime_midnight_is_12_am():
    assert strftime("%I%p", datetime(2021, 1, 1, 0, 0)) == "12AM"
    assert strftime("%z", datetime(2021, 1, 1)) == "+0000"  # naive: no offset known


def test_default_template_like_go():
    template = compute_filename_template(DEFAULT_FILENAME_FORMAT, "events", hostname="box.example.com",
                                         rev_required=True, gzip=True)
    assert template == "events.box<REV>.<DATETIME>.log.gz"
    name = render_rev(render_datetime(template, DEFAULT_DATETIME_FORMAT, T), 3)
    assert name == "events.box-000003.2020-06-30_18.log.gz"


def test_rev_dropped_when_not_needed_and_required_otherwise():
    plain = compute_filename_template(DEFAULT_FILENAME_FORMAT, "t", hostname="h")
    assert plain == "t.h.<DATETIME>.log"
    with pytest.raises(ValueError, match="missing <REV>"):
        compute_filename_template("<TOPIC>.log", "t", hostname="h", rev_required=True)
    assert needs_rev(False, 0, 0, False) is False
    assert all([needs_rev(True, 0, 0, False), needs_rev(False, 1, 0, False),
                needs_rev(False, 0, 1.0, False), needs_rev(False, 0, 0, True)])


def test_host_identifier_pid_and_gz_suffix_not_doubled():
    template = compute_filename_template("<TOPIC>/<HOST>-<PID><REV>.gz", "t", gzip=True,
                                         rev_required=True, hostname="web1.dc.example",
                                         host_identifier="<SHORT_HOST>@<HOSTNAME>", pid=4242)
    assert template == "t/web1@web1.dc.example-4242<REV>.gz"


def test_topic_from_default_names_including_dotted_topics():
    for name, topic in [
        ("events.box-000000.2020-06-30_18.log.gz", "events"),
        ("/archive/a.b.c.host-000012.2020-06-30_18.log", "a.b.c"),
        ("orders.host.2021-01-01_00.log", "orders"),  # no REV (plain, no rotation)
        ("tmp#ephemeral.h-000000.2021-01-01_00.log", "tmp#ephemeral"),
        ("8-coinbase-ALGO-USD.macbook-pro-000000.2020-06-30_18.log.gz", "8-coinbase-ALGO-USD"),
    ]:
        assert topic_from_filename(name) == topic, name
    assert topic_from_filename("random.txt") is None
    assert topic_from_filename("events.2020.log") is None


def test_custom_format_parses_back():
    pattern = NamePattern("<DATETIME>/<HOST>-<TOPIC><REV>.jsonl", "%Y%m%d%H%M")
    assert topic_from_filename("/x/202006301805/h-my.topic-000001.jsonl", pattern) == "my.topic"
    assert topic_from_filename("/x/h-my.topic.log", pattern) is None
    # the topic may be a directory of the format
    nested = NamePattern("<TOPIC>/<DATETIME>/<HOST><REV>.log", "%Y-%m-%d")
    assert nested.topic("/arch/orders/2024-01-02/web1-000003.log.gz") == "orders"
    assert nested.topic("2024-01-02/web1-000003.log") is None
