"""nsq-to-file after a full disk, then a restart that appends to the same file: the archive
holds every published record once on a line of its own and nothing that was never published
(the failed write's partial record must not be spliced onto the restart's first record)."""

from __future__ import annotations

import resource

from fault_helpers import ChannelSettled, kill_quietly, queue_messages, spawn, tool, wait_for


def test_restart_after_a_full_disk_never_splices_records(nsqd, tmp_path):
    everything = queue_messages(nsqd, "splice", 20_000)
    out_dir = tmp_path / "out"
    args = [tool("nsq-to-file"), "--topic", "splice", "--channel", "c", "--output-dir",
            str(out_dir), "--max-in-flight", "1000", "--nsqd-tcp-address", nsqd.tcp_address]
    limit = 64 * 1024 + 5  # records are 12-14 bytes: the limit cuts one in the middle

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    first = spawn(args, preexec_fn=small_disk)
    try:
        _, stderr = first.communicate(timeout=30)
    finally:
        kill_quietly(first)
    assert first.returncode == 1, stderr
    assert b"File too large" in stderr, stderr
    (archive,) = out_dir.iterdir()
    after_failure = archive.read_bytes()
    assert after_failure.endswith(b"\n"), after_failure[-40:]
    assert set(after_failure.splitlines()) <= everything

    second = spawn(args)  # room was made: the restart appends to the same file
    try:
        assert wait_for(ChannelSettled(nsqd, "splice", "c", expected=0), timeout=60)
        second.terminate()
        _, stderr = second.communicate(timeout=30)
    finally:
        kill_quietly(second)
    assert second.returncode == 130, stderr
    records = archive.read_bytes().splitlines()
    assert set(records) - everything == set()  # no record that was never published
    assert set(records) == everything  # each on a line of its own
