import dataclasses

import numpy as np
import pytest

from memory.blobs import BlobStore
from memory.codec import make_row, prepare, to_event
from memory.errors import DimensionMismatchError, InvalidEventError
from memory.records import StreamInfo

from .factories import make_event

PTS = StreamInfo("cam", "pts")
WALL = StreamInfo("cam", "wall")


def test_event_survives_prepare_store_and_load(tmp_path):
    event = make_event(3, thumbnails=2)
    p = prepare(event, PTS, dim=16)
    assert np.isclose(np.linalg.norm(p.vector), 1.0)
    blobs = BlobStore(tmp_path, cache_bytes=1 << 20)
    blobs.write(7, p.blob, event.thumbnails)
    row = make_row(p, fid=7, lsn=1, added_wall_s=0.0)
    back = to_event(row, p.vector, blobs.read(7), [blobs.thumbnail_path(7, i).read_bytes() for i in range(2)])
    for name in ("tokens", "positions", "counts", "grid_pts_s"):
        assert np.array_equal(getattr(back, name), getattr(event, name)), name
    assert back.tokens.dtype == np.float16 and back.positions.dtype == np.int32
    assert back.stats == event.stats and back.text == event.text and back.grid_hw == event.grid_hw
    assert back.thumbnails == event.thumbnails
    assert row.bytes == len(p.blob) + sum(map(len, event.thumbnails)) + 4 * 16


def test_event_without_arrays_writes_no_blob():
    event = dataclasses.replace(
        make_event(1, tokens=0, thumbnails=0), grid_pts_s=np.zeros(0), tokens=np.zeros((0, 8), np.float16)
    )
    p = prepare(event, PTS, dim=16)
    assert p.blob is None
    back = to_event(make_row(p, 0, 1, 0.0), p.vector, {}, [])
    assert back.tokens.shape == (0, 8)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"embedding": np.ones(15, np.float32)}, DimensionMismatchError, "dimension 15"),
        ({"embedding": np.zeros(16, np.float32)}, InvalidEventError, "all zeros"),
        ({"embedding": np.full(16, np.nan, np.float32)}, InvalidEventError, "NaN"),
        ({"event_id": "bad\nid"}, InvalidEventError, "control characters"),
        ({"event_id": ""}, InvalidEventError, "non-empty"),
        ({"start_pts_s": float("inf"), "end_pts_s": float("inf")}, InvalidEventError, "finite"),
    ],
)
def test_bad_events_are_refused_with_the_reason(change, error, match):
    event = dataclasses.replace(make_event(1), **change)
    with pytest.raises(error, match=match):
        prepare(event, PTS, dim=16)


def test_wall_clock_streams_need_wall_times():
    with pytest.raises(InvalidEventError, match="wall clock"):
        prepare(make_event(1), WALL, dim=16)
    p = prepare(make_event(1, wall=True), WALL, dim=16)
    assert p.t0 == pytest.approx(1.7e9 + 1)


def test_cache_stays_within_its_bound(tmp_path):
    blobs = BlobStore(tmp_path, cache_bytes=1000)
    for fid in range(10):
        blobs.write(fid, BlobStore.encode({"tokens": np.zeros((20, 10), np.float16)}), [])  # 400 bytes
        blobs.read(fid)
        assert blobs.cached_bytes <= 1000
    blobs.delete(9, 0)
    assert not blobs.blob_path(9).exists() and blobs.cached_bytes <= 400


def test_sweep_removes_only_files_of_unlogged_event_numbers(tmp_path):
    blobs = BlobStore(tmp_path, cache_bytes=0)
    for fid in (1, 2, 3):
        blobs.write(fid, b"x", [b"jpg"])
    (blobs.folder(3) / "3.safetensors.tmp").write_bytes(b"torn")
    assert blobs.sweep(next_fid=3) == 3  # blob + thumbnail + temporary file of event #3
    assert blobs.blob_path(2).exists() and not blobs.blob_path(3).exists()
