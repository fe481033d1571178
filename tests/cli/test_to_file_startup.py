"""nsq-to-file checks its directories before consuming, and says what is wrong with them in
words a user can act on (issue 13, item 6)."""

from __future__ import annotations

import os
import tempfile

import pytest

from archive_samples import tool
from nsqcli.archive.files import ArchiveError, ArchiveFile, ArchiveSettings
from nsqcli.archive.names import compute_filename_template


def run_to_file(nsqd, *args):
    proc = tool("to_file", "--topic", "kept", "--nsqd-tcp-address", nsqd.tcp_address, *args)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err.decode()


def nothing_consumed(nsqd):
    assert nsqd.channel_stats("kept", "nsq_to_file") is None
    assert nsqd.topic_stats("kept")["depth"] == 1


def test_output_dir_that_is_a_regular_file(nsqd, tmp_path):
    nsqd.pub("kept", b"keep me")
    blocker = tmp_path / "archive"
    blocker.write_bytes(b"")
    rc, err = run_to_file(nsqd, "--output-dir", blocker)
    assert rc == 1, err
    assert err == (f"nsq-to-file: error: --output-dir: cannot create the directory {blocker}: "
                   "it is a file, not a directory\n")
    assert "File exists" not in err
    nothing_consumed(nsqd)


def cannot_create_files_in(path):
    try:
        fd, probe = tempfile.mkstemp(dir=path)
    except PermissionError:
        return True
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return False


@pytest.mark.skipif(not cannot_create_files_in("/sys/kernel"),
                    reason="needs Linux sysfs, where nobody (not even root) creates files")
@pytest.mark.parametrize("flag", ["--output-dir", "--work-dir"])
def test_a_directory_where_no_file_can_be_created(nsqd, tmp_path, flag):
    nsqd.pub("kept", b"keep me")
    other = "--work-dir" if flag == "--output-dir" else "--output-dir"
    rc, err = run_to_file(nsqd, flag, "/sys/kernel", other, tmp_path)
    assert rc == 1, err
    assert err == f"nsq-to-file: error: {flag}: cannot create files in /sys/kernel: Permission denied\n"
    nothing_consumed(nsqd)
    assert os.listdir(tmp_path) == []  # the probe file was removed


def test_errors_name_the_file_without_the_rev_token(tmp_path):
    out = tmp_path / "out"
    settings = ArchiveSettings(str(out), str(out), "%Y", gzip=True)
    template = compute_filename_template("<TOPIC>/<REV>/x.log", "t", hostname="h", gzip=True,
                                         rev_required=True)
    out.mkdir()
    (out / "t").write_bytes(b"")  # where the topic's directory would go
    with pytest.raises(ArchiveError) as raised:
        ArchiveFile(template, settings).write(b"x\n")
    assert "<REV>" not in str(raised.value)
    assert str(raised.value) == (f"cannot create the directory {out}/t/-000000: {out}/t is a "
                                 "file, not a directory")
