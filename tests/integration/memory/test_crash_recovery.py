"""kill -9 in the middle of writing: every acknowledged event comes back, exactly once, and no
event is left half-present (FAISS, Redis and disk agree)."""

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import redis

from tests.unit.memory.factories import make_event

from .conftest import SYSTEM_URL

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def _run_and_kill(data_dir: Path, prefix: str, mode: str, start: int, acks_before_kill: int) -> list[str]:
    """Start the child, let it acknowledge some events, SIGKILL it; returns its output lines."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.memory._crash_child",
            str(data_dir),
            SYSTEM_URL,
            prefix,
            mode,
            str(start),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    lines, acked = [], 0
    assert child.stdout is not None
    while acked < acks_before_kill:
        line = child.stdout.readline()
        assert line, f"child exited early with {child.wait()}"
        lines.append(line)
        acked += line.startswith("acked")
    child.send_signal(signal.SIGKILL)
    child.wait()
    lines += child.stdout.readlines()  # printed before the kill: acknowledged too
    return [line.split() for line in lines if line.endswith("\n")]


def _acked(lines: list[list[str]]) -> list[str]:
    return [event_id for words in lines if words[0] == "acked" for event_id in words[1:]]


def _stream_adds(prefix: str) -> Counter:
    client = redis.Redis.from_url(SYSTEM_URL, decode_responses=True)
    return Counter(data["event_id"] for _, data in client.xrange(f"{prefix}events") if data["op"] == "add")


def _check_consistent(bank, event_id: str) -> bool:
    """True if the event is fully present, False if fully absent; fails if half-present."""
    writer = bank.writers[0]
    in_memory = writer.has_event(event_id)
    in_redis = bool(bank.redis.event_fields(event_id))
    in_zset = event_id in set(bank.redis.stream_event_ids("cam"))
    i = int(event_id.split(":")[1])
    if in_memory:
        fid = writer.event_row(event_id).fid
        files = writer.blobs.blob_path(fid).exists() and writer.blobs.thumbnail_path(fid).exists()
        hit = bank.search(make_event(i, "cam").embedding, k=1, streams=["cam"], since=i, until=i + 0.5)[0]
        assert hit.event_id == event_id and files
    assert in_memory == in_redis == in_zset, (event_id, in_memory, in_redis, in_zset)
    return in_memory


def test_every_acknowledged_event_is_found_exactly_once_after_kill_9(open_bank, prefix, tmp_path):
    data_dir = tmp_path / "data"
    lines = _run_and_kill(data_dir, prefix, "add", start=0, acks_before_kill=60)
    first = _acked(lines)
    resume = max(int(e.split(":")[1]) for e in first) + 1 + 10  # leave a gap; ids stay unique
    lines = _run_and_kill(data_dir, prefix, "add", start=resume, acks_before_kill=45)
    acked = first + _acked(lines)
    bank = open_bank(data_dir=data_dir)
    writer = bank.writers[0]
    held = [eid for part in writer.mem.parts.values() for eid in part.event_ids]
    assert len(held) == len(set(held)) == bank.events
    assert set(acked) <= set(held)
    assert all(_check_consistent(bank, e) for e in acked)  # searchable while the index catches up
    writer.wait_for_rebuild()
    assert writer.mem.pending is None and writer.mem.index.live == bank.events
    adds = _stream_adds(prefix)
    assert all(adds[e] == 1 for e in held), {e: adds[e] for e in held if adds[e] != 1}
    assert writer.recovered_records > 0  # the log after the last snapshot was replayed


def test_a_crash_during_deletion_never_leaves_an_event_half_present(open_bank, prefix, tmp_path):
    data_dir = tmp_path / "data"
    lines = _run_and_kill(data_dir, prefix, "delete", start=0, acks_before_kill=50)
    deleted = {w[1] for w in lines if w[0] == "deleted"}
    assert deleted
    bank = open_bank(data_dir=data_dir)
    for event_id in _acked(lines):
        present = _check_consistent(bank, event_id)
        assert not (present and event_id in deleted)
    files = {p.name for p in bank.writers[0].blobs.root.rglob("*") if p.is_file()}
    expected = {n for e in bank.writers[0].mem.fid_of.values() for n in (f"{e}.safetensors", f"{e}.0.jpg")}
    assert files == expected  # no orphaned files of deleted or crashed events
