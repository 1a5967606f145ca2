"""The Encoder stage: per-stream frame pairs, static-frame carry-over, streaming equals offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encoder.encoder import Encoder
from encoder.errors import FrameShapeError
from encoder.records import EncodedFrame, to_host
from encoder.retrieval import RetrievalEncoder
from encoder.vision_tower import VisionTower

from .conftest import SETTINGS, make_frames, random_frames


@pytest.fixture
def encoder(tower: VisionTower, retrieval: RetrievalEncoder) -> Encoder:
    return Encoder(SETTINGS, tower=tower, retrieval=retrieval)


def _same(a: list[EncodedFrame], b: list[EncodedFrame]) -> bool:
    return [(r.stream_id, r.index, r.grid_index, r.is_encoder_skipped) for r in a] == [
        (r.stream_id, r.index, r.grid_index, r.is_encoder_skipped) for r in b
    ] and all(
        np.allclose(x.embedding, y.embedding, atol=1e-6)
        and (x.tokens is None) == (y.tokens is None)
        and (x.tokens is None or np.array_equal(x.tokens, y.tokens))
        for x, y in zip(a, b, strict=True)
    )


def test_frames_pair_into_grids_and_only_the_first_of_a_pair_carries_tokens(
    encoder: Encoder, tower: VisionTower
) -> None:
    rgbs = random_frames(5)
    records = encoder.encode(make_frames("cam", rgbs))
    assert [(r.index, r.grid_index, r.tokens is not None) for r in records] == [
        (0, 0, True), (1, 0, False), (2, 1, True), (3, 1, False),
    ]  # fmt: skip
    records += encoder.flush("cam")
    assert [(r.index, r.grid_index) for r in records[4:]] == [(4, 2)]
    expected = tower.encode(rgbs)  # the same clip through the tower: odd last frame repeated
    for record, grid in zip([r for r in records if r.tokens is not None], expected, strict=True):
        assert record.grid_hw == grid.grid_hw
        assert np.array_equal(record.tokens, grid.tokens.half().numpy())


def test_skipped_frames_carry_the_last_embedding_and_a_skipped_pair_the_last_tokens(encoder: Encoder) -> None:
    rgbs = random_frames(6, seed=3)  # all different: a recomputation would not match the carried values
    records = encoder.encode(make_frames("cam", rgbs), skip=[False, True, True, True, False, True])
    emb = [r.embedding for r in records]
    assert [r.is_encoder_skipped for r in records] == [False, True, True, True, False, True]
    assert emb[1] is emb[0] and emb[2] is emb[0] and emb[3] is emb[0] and emb[5] is emb[4]
    assert records[2].tokens is records[0].tokens  # grid 1: both frames static, tower not run
    assert not np.array_equal(records[4].tokens, records[0].tokens)  # grid 2: one frame moved
    assert not np.allclose(emb[4], emb[0])
    with pytest.raises(ValueError):
        records[0].embedding[0] = 1.0  # shared by carried frames: read-only


def test_first_frame_of_a_stream_is_encoded_even_when_marked_static(encoder: Encoder) -> None:
    records = encoder.encode(make_frames("cam", random_frames(2)), skip=[True, True])
    assert [r.is_encoder_skipped for r in records] == [False, True]
    assert records[0].tokens is not None and np.isfinite(records[0].tokens).all()


def test_streaming_in_chunks_equals_one_offline_call(tower: VisionTower, retrieval: RetrievalEncoder) -> None:
    a, b = make_frames("a", random_frames(7, seed=4)), make_frames("b", random_frames(4, seed=5))
    frames = [a[0], b[0], a[1], a[2], b[1], a[3], b[2], a[4], a[5], b[3], a[6]]
    skip = [False, False, True, False, False, True, True, True, False, False, False]
    offline = Encoder(SETTINGS, tower=tower, retrieval=retrieval)
    expected = offline.encode(frames, skip) + offline.flush()
    streaming = Encoder(SETTINGS, tower=tower, retrieval=retrieval)
    got: list[EncodedFrame] = []
    for start, stop in [(0, 1), (1, 4), (4, 5), (5, 11)]:
        got += streaming.encode(frames[start:stop], skip[start:stop])
    got += streaming.flush()
    key = lambda r: (r.stream_id, r.index)  # noqa: E731
    assert _same(sorted(got, key=key), sorted(expected, key=key))


def test_streams_do_not_share_grids_or_carried_values(encoder: Encoder) -> None:
    a, b = make_frames("a", random_frames(2, seed=6)), make_frames("b", random_frames(2, seed=7))
    records = encoder.encode([a[0], b[0], a[1], b[1]], skip=[False, False, False, True])
    by_stream = {s: [r for r in records if r.stream_id == s] for s in "ab"}
    assert [r.grid_index for r in by_stream["a"]] == [0, 0] and [r.grid_index for r in by_stream["b"]] == [
        0,
        0,
    ]
    assert by_stream["b"][1].embedding is by_stream["b"][0].embedding
    assert not np.allclose(by_stream["a"][0].embedding, by_stream["b"][0].embedding)


def test_forget_restarts_grid_counting(encoder: Encoder) -> None:
    frames = make_frames("cam", random_frames(3))
    encoder.encode(frames[:2])
    encoder.forget("cam")
    assert [r.grid_index for r in encoder.encode(frames[1:3])] == [0, 0]


def test_static_masks_pass_through_and_lengths_are_checked(encoder: Encoder) -> None:
    frames = make_frames("cam", random_frames(2))
    masks = [np.zeros((8, 12), bool), np.ones((8, 12), bool)]
    records = encoder.encode(frames, skip=[False, True], static_masks=masks)
    assert records[1].static_mask is masks[1]
    with pytest.raises(FrameShapeError, match="one entry per frame"):
        encoder.encode(frames, skip=[False])


def test_tokens_are_float16_and_embeddings_unit_norm(encoder: Encoder) -> None:
    records = encoder.encode(make_frames("cam", random_frames(2)))
    assert records[0].tokens is not None and records[0].tokens.dtype == np.float16
    assert np.isclose(np.linalg.norm(records[0].embedding), 1.0, atol=1e-5)
    assert torch.get_default_dtype() == torch.float32  # seeded model building restores the default


def test_device_tokens_equal_host_tokens_and_carried_grids_share_one_tensor(
    tower: VisionTower, retrieval: RetrievalEncoder
) -> None:
    frames, skip = make_frames("cam", random_frames(6, seed=8)), [False, False, True, True, False, True]
    host = Encoder(SETTINGS, tower=tower, retrieval=retrieval).encode(frames, skip)
    device = Encoder(SETTINGS, tower=tower, retrieval=retrieval, tokens_on_device=True).encode(frames, skip)
    assert isinstance(device[0].tokens, torch.Tensor) and device[0].tokens.dtype == torch.float16
    assert device[2].tokens is device[0].tokens  # grid 1 carried over: the same tensor
    back = to_host(device)
    assert back[2].tokens is back[0].tokens  # still shared once on the host
    assert _same(back, host)
