import os

import numpy as np
import pytest

from memory.errors import CorruptStoreError
from memory.wal import ADD, DELETE, LogRecord, ReplayLog, encode


def _records(first: int, n: int, dim: int = 4) -> list[LogRecord]:
    return [
        LogRecord(first + i, ADD, {"event_id": f"e{first + i}"}, np.full(dim, i, np.float32))
        for i in range(n)
    ]


def test_replay_returns_what_was_appended_after_a_position(tmp_path):
    log = ReplayLog(tmp_path, segment_bytes=1 << 20)
    log.open_for_append(0)
    log.append(_records(1, 3))
    log.append([LogRecord(4, DELETE, {"event_id": "e1"})])
    log.close()
    again = ReplayLog(tmp_path, segment_bytes=1 << 20)
    got = list(again.replay(after_lsn=1))
    assert [r.lsn for r in got] == [2, 3, 4]
    assert got[0].meta == {"event_id": "e2"} and np.array_equal(got[0].vector, np.full(4, 1, np.float32))
    assert got[-1].kind == DELETE and got[-1].vector is None
    assert again.last_lsn == 4


def test_torn_tail_is_cut_and_earlier_records_survive(tmp_path):
    log = ReplayLog(tmp_path, segment_bytes=1 << 20)
    log.open_for_append(0)
    log.append(_records(1, 5))
    log.close()
    segment = log.segments()[-1]
    size = segment.stat().st_size
    with open(segment, "ab") as f:  # half of a record, as a crash in the middle of a write leaves
        f.write(encode(_records(6, 1)[0])[:20])
    assert [r.lsn for r in ReplayLog(tmp_path, 1 << 20).replay(0)] == [1, 2, 3, 4, 5]
    assert segment.stat().st_size == size


def test_flipped_byte_in_an_older_segment_is_corruption(tmp_path):
    log = ReplayLog(tmp_path, segment_bytes=200)  # rotates after every batch
    log.open_for_append(0)
    log.append(_records(1, 2))
    log.append(_records(3, 2))
    log.close()
    first = log.segments()[0]
    data = bytearray(first.read_bytes())
    data[40] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError, match="bad record"):
        list(ReplayLog(tmp_path, 200).replay(0))


def test_drop_through_keeps_segments_with_newer_records(tmp_path):
    log = ReplayLog(tmp_path, segment_bytes=200)
    log.open_for_append(0)
    for first in (1, 3, 5):
        log.append(_records(first, 2))
    log.drop_through(4)
    assert [r.lsn for r in log.replay(0)] == [5, 6]


def test_failed_append_leaves_no_partial_record(tmp_path):
    log = ReplayLog(tmp_path, segment_bytes=1 << 20)
    log.open_for_append(0)
    log.append(_records(1, 2))
    os.close(log._fd)  # the next write fails as a full disk would, after nothing was written
    log._fd = os.open(os.devnull, os.O_RDONLY)
    with pytest.raises(OSError):
        log.append(_records(3, 1))
    log.close()
    assert [r.lsn for r in ReplayLog(tmp_path, 1 << 20).replay(0)] == [1, 2]
