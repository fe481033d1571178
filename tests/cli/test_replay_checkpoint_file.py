"""nsq-replay --checkpoint FILE when FILE is empty (``"$(mktemp)"``) or not a checkpoint."""

import json

import pytest

from archive_samples import run_tool


def topic_count(nsqd, topic):
    stats = nsqd.topic_stats(topic)
    return stats["message_count"] if stats else 0


def test_an_empty_checkpoint_file_is_a_fresh_checkpoint(nsqd, tmp_path):
    src = tmp_path / "in.log"
    src.write_bytes(b"a\nb\nc\n")
    checkpoint = tmp_path / "tmp.XXXXXX"
    checkpoint.write_bytes(b"")
    rc, _, err = run_tool("replay", str(src), "--topic", "fresh", "--checkpoint", str(checkpoint),
                          "--nsqd-tcp-address", nsqd.tcp_address)
    assert rc == 0, err
    assert "Traceback" not in err
    assert topic_count(nsqd, "fresh") == 3
    saved = json.loads(checkpoint.read_text())
    assert saved["files"][str(src.resolve())] == {"acked": [[0, 3]], "complete": True}


@pytest.mark.parametrize("content", [b"not json\n", b"   \n", b'{"version": 1, "files": [1]}',
                                     b'{"version": 1, "files": {"x": {"acked": [[0, 1e999]]}}}',
                                     b"[" * 100_000, b"\xff\xfe"])
def test_a_file_that_is_not_a_checkpoint_is_a_usage_error_and_left_untouched(nsqd, tmp_path,
                                                                            content):
    src = tmp_path / "in.log"
    src.write_bytes(b"a\n")
    checkpoint = tmp_path / "notes.txt"
    checkpoint.write_bytes(content)
    rc, out, err = run_tool("replay", str(src), "--topic", "untouched", "--checkpoint",
                            str(checkpoint), "--nsqd-tcp-address", nsqd.tcp_address)
    assert rc == 2, err
    (line,) = err.splitlines()
    assert line.startswith(f"nsq-replay: error: checkpoint {checkpoint} is not a valid "
                           "nsq-replay checkpoint"), err
    assert checkpoint.read_bytes() == content
    assert topic_count(nsqd, "untouched") == 0
