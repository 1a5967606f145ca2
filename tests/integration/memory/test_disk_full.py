"""A real full disk (a 1 MiB tmpfs): the write that does not fit raises DiskFullError, leaves no
partial file or log record, and the bank reopens with every acknowledged event."""

import subprocess

import numpy as np
import pytest

from memory import DiskFullError
from tests.unit.memory.factories import make_event

pytestmark = pytest.mark.integration


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(bank, first: int, **event_kw) -> tuple[list[str], int]:
    acked = []
    for i in range(first, first + 10_000):
        try:
            bank.add(make_event(i, "cam", **event_kw))
        except DiskFullError:
            return acked, i
        acked.append(f"cam:{i}")
    raise AssertionError("the disk never filled up")


def test_full_disk_refuses_cleanly_and_reopens_with_every_acknowledged_event(open_bank, tiny_disk):
    bank = open_bank(data_dir=tiny_disk)
    bank.register_stream("cam")
    big, refused = _fill(bank, 0, tokens=64, d_llm=512, thumbnails=1)  # 64 KiB blobs: the blob write fails
    assert big and not bank.writers[0].has_event(f"cam:{refused}")
    assert bank.delete(big[0])  # space comes back through deletion
    small, refused_small = _fill(bank, 1000, tokens=0, thumbnails=0, grids=0)  # no files: the log write fails
    assert small and not bank.writers[0].has_event(f"cam:{refused_small}")
    assert not list(tiny_disk.rglob("*.tmp"))
    lsn = bank.writers[0].lsn
    bank.close(snapshot=False)  # a snapshot would not fit either: recovery comes from the log

    again = open_bank(data_dir=tiny_disk)
    kept = big[1:] + small
    assert again.writers[0].lsn == lsn and again.events == len(kept)
    for event_id in kept[::7]:
        i = int(event_id.split(":")[1])
        event = again.get_event(event_id)
        assert np.array_equal(
            event.tokens,
            make_event(i, "cam", tokens=event.tokens.shape[0], d_llm=event.tokens.shape[1]).tokens,
        )


def test_a_log_append_that_runs_out_of_space_is_cut_back(tiny_disk):
    from memory.wal import ADD, LogRecord, ReplayLog

    (tiny_disk / "filler").write_bytes(b"\0" * (1024 * 1024 - 8192))  # leave about two pages
    log = ReplayLog(tiny_disk / "wal", segment_bytes=1 << 30)
    log.open_for_append(0)
    acked = 0
    with pytest.raises(DiskFullError, match="no room"):
        for lsn in range(1, 1000):
            log.append([LogRecord(lsn, ADD, {"pad": "x" * 700}, np.ones(16, np.float32))])
            acked = lsn
    assert acked > 0
    size = log.segments()[-1].stat().st_size
    log.close()
    again = ReplayLog(tiny_disk / "wal", segment_bytes=1 << 30)
    assert [r.lsn for r in again.replay(0)] == list(range(1, acked + 1))
    assert log.segments()[-1].stat().st_size == size  # nothing torn was left to cut
