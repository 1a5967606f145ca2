"""BatchingEncoder: requests from many streams share model calls; each stream keeps its order."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from encoder.batching import BatchingEncoder
from encoder.encoder import Encoder
from encoder.errors import EncoderError, FrameShapeError
from encoder.retrieval import RetrievalEncoder
from encoder.vision_tower import VisionTower

from .conftest import SETTINGS, make_frames, random_frames


@pytest.fixture
def make_encoder(tower: VisionTower, retrieval: RetrievalEncoder):
    return lambda: Encoder(SETTINGS, tower=tower, retrieval=retrieval)


def test_two_streams_from_two_threads_keep_per_stream_grid_order_and_values(make_encoder) -> None:
    streams = {
        "a": make_frames("a", random_frames(9, seed=1)),
        "b": make_frames("b", random_frames(7, seed=2)),
    }
    batching = BatchingEncoder(make_encoder(), max_batch_frames=6, max_wait_s=0.01)
    results: dict[str, list] = {"a": [], "b": []}

    def feed(stream_id: str) -> None:
        frames = streams[stream_id]
        for start in range(0, len(frames), 2):
            results[stream_id] += batching.submit(frames[start : start + 2]).result(timeout=60)

    threads = [threading.Thread(target=feed, args=(s,)) for s in streams]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for stream_id in streams:
        results[stream_id] += batching.flush(stream_id).result(timeout=60)
    batching.close()
    for stream_id, frames in streams.items():
        got = results[stream_id]
        alone = make_encoder()
        expected = alone.encode(frames) + alone.flush()
        assert [r.index for r in got] == [f.index for f in frames]
        assert [r.grid_index for r in got] == [i // 2 for i in range(len(frames))]
        for x, y in zip(got, expected, strict=True):
            assert np.allclose(x.embedding, y.embedding, atol=1e-6)
            assert (x.tokens is None and y.tokens is None) or np.array_equal(x.tokens, y.tokens)


def test_requests_waiting_together_share_one_model_call(make_encoder) -> None:
    batching = BatchingEncoder(make_encoder(), max_batch_frames=8, max_wait_s=2.0)
    futures = [batching.submit(make_frames(s, random_frames(2, seed=i))) for i, s in enumerate("abcd")]
    records = [f.result(timeout=60) for f in futures]
    batching.close()
    assert batching.batches_run == 1  # 4 x 2 frames reach max_batch_frames: one batch, no waiting
    assert [[r.stream_id for r in rs] for rs in records] == [["a", "a"], ["b", "b"], ["c", "c"], ["d", "d"]]


def test_a_pair_split_across_requests_returns_each_frame_to_its_own_request(make_encoder) -> None:
    frames = make_frames("cam", random_frames(3))
    batching = BatchingEncoder(make_encoder(), max_batch_frames=64, max_wait_s=0.0)
    first = batching.submit(frames[:1]).result(timeout=60)
    second = batching.submit(frames[1:]).result(timeout=60)
    batching.close()
    assert first == []  # waits for its partner
    assert [r.index for r in second] == [0, 1]  # frame 0's request already returned: goes with frame 1


def test_a_bad_frame_fails_only_its_own_request_and_close_is_idempotent(make_encoder) -> None:
    bad = make_frames("bad", [np.zeros((2, 600, 3), np.uint8)] * 2)  # aspect ratio 300: refused
    batching = BatchingEncoder(make_encoder(), max_batch_frames=64, max_wait_s=0.5)
    failing, fine = batching.submit(bad), batching.submit(make_frames("ok", random_frames(2)))
    with pytest.raises(FrameShapeError, match="aspect ratio"):
        failing.result(timeout=60)
    assert [r.index for r in fine.result(timeout=60)] == [0, 1]
    batching.close()
    batching.close()
    with pytest.raises(EncoderError, match="closed"):
        batching.submit(make_frames("late", random_frames(2)))
