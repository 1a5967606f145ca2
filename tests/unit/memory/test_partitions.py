import numpy as np
import pytest

from memory.partitions import EventRow, StreamPartition, window_mask

from .factories import unit_rows


def _row(fid: int, t0: float, t1: float) -> EventRow:
    return EventRow(fid, f"e{fid}", "s", t0, t1, t0, t1, None, None, 0.0, False, 100, fid, 0, False, "{}")


def _partition(
    times: list[tuple[float, float]], dim: int = 8, seed: int = 0
) -> tuple[StreamPartition, np.ndarray]:
    x = unit_rows(np.random.default_rng(seed), len(times), dim)
    part = StreamPartition("s", dim)
    for fid, ((t0, t1), v) in enumerate(zip(times, x, strict=True)):
        part.append(_row(fid, t0, t1), v)
    return part, x


def test_window_is_half_open_overlap():
    t0 = np.array([0.0, 10.0, 20.0, 30.0, 25.0])
    t1 = np.array([10.0, 20.0, 30.0, 30.0, 26.0])  # a point event at 30
    assert window_mask(t0, t1, 10.0, 30.0).tolist() == [False, True, True, False, True]
    assert window_mask(t0, t1, 30.0, None).tolist() == [False, False, False, True, False]
    assert window_mask(t0, t1, None, 10.0).tolist() == [True, False, False, False, False]


@pytest.mark.parametrize("shuffled", [False, True])
def test_window_search_equals_brute_force(shuffled):
    rng = np.random.default_rng(5)
    starts = np.arange(200, dtype=float) * 2.0
    if shuffled:
        rng.shuffle(starts)  # a stream that went back in time: mask instead of binary search
    durations = rng.uniform(0.5, 6.0, 200)
    part, x = _partition([(s, s + d) for s, d in zip(starts, durations, strict=True)])
    assert part.is_time_sorted is (not shuffled)
    for _ in range(30):
        since = float(rng.uniform(0, 400))
        until = since + float(rng.uniform(1, 60))
        q = unit_rows(rng, 1, 8)[0]
        inside = window_mask(starts, starts + durations, since, until)
        expected = np.flatnonzero(inside)[np.argsort(-(x[inside] @ q))][:5]
        _, fids = part.search(q, 5, since, until)
        assert fids.tolist() == expected.tolist()
        assert part.count(since, until) == int(inside.sum())


def test_compaction_keeps_order_rows_and_vectors():
    part, x = _partition([(float(i), i + 1.0) for i in range(100)])
    for i in range(0, 100, 2):
        part.mark_dead(part.row_of(i))
    part.compact()
    assert part.n == 50 and part.dead == 0 and part.is_time_sorted
    assert part.col("fid").tolist() == list(range(1, 100, 2))
    assert np.array_equal(part.vectors[: part.n], x[1::2])
    assert part.row_of(4) == -1 and part.row(part.row_of(7)).event_id == "e7"


def test_dead_rows_are_not_searched():
    part, x = _partition([(float(i), i + 1.0) for i in range(20)])
    part.mark_dead(part.row_of(3))
    _, fids = part.search(x[3], 20, None, None)
    assert 3 not in fids.tolist() and len(fids) == 19
