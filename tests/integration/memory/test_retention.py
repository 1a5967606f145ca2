"""Retention under a tiny disk budget: oldest unpinned events go first, pinned ones last, and the
index, Redis and the files on disk agree afterwards (also after a crash and reopen)."""

import pytest

from tests.unit.memory.factories import make_event

pytestmark = pytest.mark.integration


def _state(bank, event_id: str) -> tuple[bool, bool, bool, bool]:
    """(in the index, in Redis metadata, in the stream's sorted set, files on disk)."""
    writer = bank.writers[0]
    i = int(event_id.split(":")[1])
    in_index = any(h.event_id == event_id for h in bank.search(make_event(i, "cam").embedding, k=5))
    fid = i  # events are added in order from 0, so event i has event number i
    files = writer.blobs.blob_path(fid).exists() or writer.blobs.thumbnail_path(fid).exists()
    return (
        in_index,
        bool(bank.redis.event_fields(event_id)),
        event_id in bank.redis.stream_event_ids("cam"),
        files,
    )


def test_tiny_budget_deletes_oldest_unpinned_first_and_keeps_stores_consistent(open_bank, tmp_path):
    bank = open_bank()
    bank.register_stream("cam")
    events = [make_event(i, "cam", tokens=16, d_llm=32, thumbnails=1) for i in range(30)]
    bank.add_many(events)
    per_event = bank.writers[0].stream_bytes("cam") // 30
    bank.pin("cam:0")
    bank.pin("cam:1")
    budget = per_event * 10 + per_event // 2  # room for ten events
    bank.register_stream("cam", options={"disk_budget_bytes": budget})
    deleted = bank.apply_retention()
    assert deleted == [f"cam:{i}" for i in range(2, 22)]  # oldest unpinned first; the two pinned stay
    assert bank.writers[0].stream_bytes("cam") <= budget
    kept = ["cam:0", "cam:1"] + [f"cam:{i}" for i in range(22, 30)]
    assert bank.events == len(kept)
    for event_id in kept:
        assert _state(bank, event_id) == (True, True, True, True), event_id
    for event_id in deleted:
        assert _state(bank, event_id) == (False, False, False, False), event_id
    assert [e.op for e in bank.follow("0", block_ms=0, count=1000)].count("delete") == 20

    bank.register_stream("cam", options={"disk_budget_bytes": per_event})  # room for one event
    assert bank.apply_retention() == [f"cam:{i}" for i in range(22, 30)] + ["cam:0"]  # pinned go last
    assert list(bank.writers[0].mem.fid_of) == ["cam:1"]

    bank.close(snapshot=False)  # reopen from the log only: the deletions replay to the same state
    again = open_bank()
    assert list(again.writers[0].mem.fid_of) == ["cam:1"]
    assert _state(again, "cam:5") == (False, False, False, False)


def test_age_limit_spares_pinned_evidence(open_bank):
    bank = open_bank(retention_max_age_s=60.0)
    bank.register_stream("cam")
    bank.add_many([make_event(i, "cam") for i in range(5)])
    bank.pin("cam:2")
    now = bank.writers[0].event_row("cam:0").added_wall_s
    assert bank.apply_retention(now_wall_s=now + 30) == []
    assert sorted(bank.apply_retention(now_wall_s=now + 61)) == ["cam:0", "cam:1", "cam:3", "cam:4"]
    assert list(bank.writers[0].mem.fid_of) == ["cam:2"]
