import queue
import random
import threading

import pytest

from ingest.backpressure import Backoff, DropOldestQueue, QueueClosed


def test_full_queue_drops_the_oldest_and_counts_it():
    q = DropOldestQueue[int](3)
    drops = [q.put(i) for i in range(5)]
    assert drops == [0, 0, 0, 1, 1]
    assert q.dropped == 2
    assert [q.get(0) for _ in range(3)] == [2, 3, 4]


def test_get_times_out_when_empty():
    q = DropOldestQueue[int](2)
    with pytest.raises(queue.Empty):
        q.get(0.01)


def test_closed_queue_drains_then_reports_closed():
    q = DropOldestQueue[int](2)
    q.put(1)
    q.close()
    q.close()  # idempotent
    assert q.get(0) == 1
    with pytest.raises(QueueClosed):
        q.get(0)
    with pytest.raises(QueueClosed):
        q.put(2)


def test_close_wakes_a_blocked_getter():
    q = DropOldestQueue[int](2)
    seen = []

    def getter():
        try:
            q.get(5)
        except QueueClosed:
            seen.append("closed")

    t = threading.Thread(target=getter)
    t.start()
    q.close()
    t.join(2)
    assert seen == ["closed"]


def test_backoff_grows_exponentially_within_jitter_and_cap():
    b = Backoff(0.5, 8.0, random.Random(7))
    for failures in range(1, 12):
        ceiling = min(8.0, 0.5 * 2 ** (failures - 1))
        for _ in range(20):
            assert ceiling / 2 <= b.delay_s(failures) <= ceiling


def test_backoff_jitter_spreads_reconnects():
    b = Backoff(1.0, 30.0, random.Random(1))
    assert len({round(b.delay_s(4), 6) for _ in range(50)}) > 40


def test_backoff_rejects_bad_bounds():
    with pytest.raises(ValueError, match="base_s"):
        Backoff(5.0, 1.0)
