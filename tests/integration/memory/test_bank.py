import dataclasses
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from memory import (
    DimensionMismatchError,
    DiskFullError,
    StoreUnavailableError,
    TimeRangeError,
    UnknownEventError,
    UnknownStreamError,
)
from memory.partitions import window_mask
from tests.unit.memory.factories import make_event, unit_rows

pytestmark = pytest.mark.integration


def test_added_events_come_back_from_search_and_get_event(open_bank):
    bank = open_bank()
    bank.register_stream("cam", clock="pts")
    events = [make_event(i, "cam", thumbnails=1) for i in range(20)]
    acks = bank.add_many(events)
    assert [a.lsn for a in acks] == list(range(1, 21)) and all(a.published and not a.duplicate for a in acks)
    for event in events[:5]:
        hit = bank.search(event.embedding, k=1)[0]
        assert hit.event_id == event.event_id and hit.score == pytest.approx(1.0, abs=1e-5)
        assert (hit.start_pts_s, hit.end_pts_s) == (event.start_pts_s, event.end_pts_s)
        assert Path(hit.thumbnail_path).read_bytes() == event.thumbnails[0]
        back = bank.get_event(event.event_id)
        assert np.array_equal(back.tokens, event.tokens) and np.array_equal(back.positions, event.positions)
        assert np.array_equal(back.counts, event.counts) and back.text == event.text
    fields = bank.redis.event_fields("cam:3")
    assert fields["stream_id"] == "cam" and float(fields["start_pts_s"]) == 3.0
    assert bank.redis.stream_event_ids("cam") == [f"cam:{i}" for i in range(20)]


def test_duplicate_event_ids_are_stored_once(open_bank):
    bank = open_bank()
    bank.register_stream("cam")
    first = bank.add(make_event(1, "cam"))
    again = bank.add_many([make_event(1, "cam"), make_event(2, "cam"), make_event(2, "cam")])
    assert again[0].duplicate and again[0].lsn == first.lsn
    assert not again[1].duplicate and again[2].duplicate
    assert bank.events == 2
    entries = bank.follow("0", block_ms=0, count=100)
    assert [e.event_id for e in entries if e.op == "add"] == ["cam:1", "cam:2"]


@pytest.mark.parametrize("shards", [1, 3])
def test_filtered_search_returns_only_the_requested_streams_and_window(open_bank, shards):
    bank = open_bank(shards=shards, filtered_exact_max=40)  # small: both the exact and the selector route
    rng = np.random.default_rng(0)
    streams = [f"s{i}" for i in range(4)]
    for s in streams:
        bank.register_stream(s, clock="wall")
    events = [
        make_event(i, streams[i % 4], rng=rng, start_s=i * 2.0, duration_s=3.0, wall=True) for i in range(400)
    ]
    bank.add_many(events)
    x = unit_rows(rng, 0, 16)
    x = np.stack([e.embedding / np.linalg.norm(e.embedding) for e in events])
    t0 = np.array([e.start_wall_s for e in events])
    t1 = np.array([e.end_wall_s for e in events])
    sid = np.array([e.stream_id for e in events])
    for trial in range(12):
        chosen = ["s1"] if trial % 2 else ["s0", "s3"]
        since = 1.7e9 + float(rng.uniform(0, 700))
        until = since + float(rng.choice([20.0, 300.0]))
        q = x[rng.integers(0, 400)]
        ok = window_mask(t0, t1, since, until) & np.isin(sid, chosen)
        expected = [events[i].event_id for i in np.flatnonzero(ok)[np.argsort(-(x[ok] @ q))][:5]]
        hits = bank.search(q, k=5, streams=chosen, since=since, until=until)
        assert all(h.stream_id in chosen and h.start_wall_s < until and h.end_wall_s > since for h in hits)
        assert [h.event_id for h in hits] == expected


def test_bad_input_gives_clear_errors_and_writes_nothing(open_bank):
    bank = open_bank()
    bank.register_stream("cam")
    bank.add(make_event(0, "cam"))
    lsn = bank.writers[0].lsn
    with pytest.raises(DimensionMismatchError, match="dimension 8; this bank holds dimension 16"):
        bank.add(make_event(1, "cam", dim=8))
    with pytest.raises(UnknownStreamError, match="unknown stream 'nope'"):
        bank.add(make_event(1, "nope"))
    with pytest.raises(UnknownStreamError):
        bank.search(np.ones(16), streams=["nope"])
    with pytest.raises(TimeRangeError, match="empty window"):
        bank.search(np.ones(16), since=10.0, until=5.0)
    with pytest.raises(DimensionMismatchError):
        bank.search(np.ones(12))
    with pytest.raises(UnknownEventError):
        bank.get_event("cam:404")
    with pytest.raises(UnknownEventError):
        bank.pin("cam:404")
    # One bad event refuses the whole batch: the good one before it is not half-written.
    with pytest.raises(DimensionMismatchError):
        bank.add_many([make_event(5, "cam"), make_event(6, "cam", dim=8)])
    assert bank.writers[0].lsn == lsn and bank.events == 1
    assert not bank.writers[0].blobs.blob_path(1).exists()


def test_a_full_disk_refuses_the_event_and_leaves_the_bank_intact(open_bank):
    bank = open_bank()
    bank.register_stream("cam")
    bank.add(make_event(0, "cam"))
    writer = bank.writers[0]
    writer.settings = writer.settings.model_copy(update={"min_free_disk_bytes": 1 << 60})  # "no room left"
    wal_bytes = writer.wal.disk_bytes()
    with pytest.raises(DiskFullError, match="min_free_disk_bytes"):
        bank.add(make_event(1, "cam"))
    assert writer.wal.disk_bytes() == wal_bytes and writer.lsn == 1 and bank.events == 1
    assert not writer.blobs.thumbnail_path(1).exists()
    assert bank.search(make_event(0, "cam").embedding, k=1)[0].event_id == "cam:0"
    assert bank.delete("cam:0")  # deleting needs no free-space floor: it is how space comes back


def test_pins_and_deletes_reach_redis_and_the_event_stream(open_bank):
    bank = open_bank()
    bank.register_stream("cam")
    bank.add_many([make_event(i, "cam") for i in range(3)])
    bank.pin("cam:1")
    bank.pin("cam:1")  # no change, no entry
    assert bank.delete("cam:2") and not bank.delete("cam:2")
    assert bank.redis.event_fields("cam:1")["pinned"] == "1"
    assert bank.redis.event_fields("cam:2") == {}
    ops = [(e.op, e.event_id) for e in bank.follow("0", block_ms=0)]
    assert ops == [
        ("add", "cam:0"),
        ("add", "cam:1"),
        ("add", "cam:2"),
        ("pin", "cam:1"),
        ("delete", "cam:2"),
    ]
    assert [h.event_id for h in bank.search(make_event(2, "cam").embedding, k=3)] != ["cam:2"]
    assert bank.search(make_event(1, "cam").embedding, k=1)[0].pinned


def test_follow_wakes_on_a_new_event_and_returns_after_block_ms(open_bank):
    bank = open_bank()
    bank.register_stream("cam")
    started = time.perf_counter()
    assert bank.follow("$", block_ms=200) == []
    assert time.perf_counter() - started < 2.0
    got = []
    reader = threading.Thread(target=lambda: got.extend(bank.follow("$", block_ms=5000)))
    reader.start()
    time.sleep(0.3)
    bank.add(make_event(7, "cam"))
    reader.join(6)
    assert [e.event_id for e in got] == ["cam:7"] and got[0].start_pts_s == 7.0


def test_searches_run_while_the_writer_adds_and_rebuilds(open_bank):
    bank = open_bank(exact_max_events=100)  # the flat index turns into HNSW halfway
    bank.register_stream("cam")
    events = [make_event(i, "cam", thumbnails=0) for i in range(400)]
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        rng = np.random.default_rng(threading.get_ident() % 1000)
        while not stop.is_set():
            try:
                for hit in bank.search(
                    unit_rows(rng, 1, 16)[0], k=5, streams=None if rng.random() < 0.5 else ["cam"]
                ):
                    assert hit.event_id.startswith("cam:")
            except BaseException as exc:  # handed back to the test thread
                errors.append(exc)
                return

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers:
        t.start()
    for i in range(0, 400, 20):
        bank.add_many(events[i : i + 20])
    bank.writers[0].wait_for_rebuild()
    stop.set()
    for t in readers:
        t.join()
    assert not errors
    assert bank.writers[0].mem.index.kind == "hnsw"
    found = sum(bank.search(e.embedding, k=1)[0].event_id == e.event_id for e in events)
    assert found >= 396  # HNSW: approximate, but these queries are the stored vectors themselves


def test_wall_clock_stream_needs_wall_times(open_bank):
    bank = open_bank()
    bank.register_stream("live", clock="wall")
    with pytest.raises(Exception, match="wall clock"):
        bank.add(make_event(0, "live"))
    bank.add(make_event(0, "live", wall=True))
    with pytest.raises(Exception, match="clock 'wall', not 'pts'"):
        bank.register_stream("live", clock="pts")


def test_unreachable_redis_is_a_clear_error_not_a_hang(tmp_path, settings):
    from memory import MemoryBank

    started = time.perf_counter()
    with pytest.raises(StoreUnavailableError, match="unreachable"):
        MemoryBank(settings, data_dir=tmp_path, redis_url="redis://127.0.0.1:1/0").register_stream("x")
    assert time.perf_counter() - started < 10


def test_events_without_arrays_or_thumbnails_write_no_files(open_bank):
    bank = open_bank()
    bank.register_stream("cam")
    event = dataclasses.replace(make_event(0, "cam", tokens=0, thumbnails=0), grid_pts_s=np.zeros(0))
    bank.add(event)
    assert not any(bank.writers[0].blobs.root.rglob("*")) if bank.writers[0].blobs.root.exists() else True
    assert bank.get_event("cam:0").tokens.shape == (0, 8)


def test_event_ids_lists_a_streams_starts_in_time_order_and_last_entry_id_marks_now(open_bank):
    bank = open_bank()
    bank.register_stream("cam")
    assert bank.last_entry_id() == "0-0"
    bank.add_many([make_event(i, "cam", start_s=float(10 - i)) for i in range(5)])  # arrive newest first
    assert bank.event_ids("cam") == [f"cam:{i}" for i in (4, 3, 2, 1, 0)]
    assert bank.event_ids("cam", since=7.0, until=9.0) == ["cam:3", "cam:2"]
    tip = bank.last_entry_id()
    bank.add(make_event(9, "cam"))
    assert [e.event_id for e in bank.follow(tip, block_ms=0)] == ["cam:9"]


def test_a_shard_writer_opened_alone_shares_the_banks_layout(tmp_path, settings):
    from memory import MemoryBank, open_writer, shard_for

    s = settings.model_copy(update={"shards": 2})
    streams = {shard_for(f"cam{i}", 2): f"cam{i}" for i in range(10)}  # one stream per shard
    for shard, stream in streams.items():
        writer = open_writer(s, data_dir=tmp_path, shard=shard, redis_url="redis://127.0.0.1:6379/0")
        try:
            writer.registry.register(stream, "pts")
            writer.add(make_event(shard, stream))
        finally:
            writer.close()
    with MemoryBank(s, data_dir=tmp_path, redis_url="redis://127.0.0.1:6379/0") as bank:
        assert bank.events == 2
        for shard, stream in streams.items():
            assert bank.writers[shard].has_event(f"{stream}:{shard}")
    with pytest.raises(Exception, match="re-sharding"):
        open_writer(settings.model_copy(update={"shards": 3}), data_dir=tmp_path, shard=0)
