import dataclasses

import numpy as np
import pytest

from compressor import CompressorInputError, CutRules, EventSegmenter, segment_events
from encoder.records import EncodedFrame


def scripted_frames(rng, scene_grids, *, d=12, hw=(2, 3), noise=0.05, move=0.3, frames_per_grid=2, gaps=()):
    """Frames of scenes; each scene has its own embedding direction and token set, plus noise."""
    frames, grid = [], 0
    for scene, n_grids in enumerate(scene_grids):
        direction = rng.standard_normal(d)
        tokens = rng.standard_normal((hw[0] * hw[1], 8))
        for _ in range(n_grids):
            if grid in gaps:
                grid += 1
            moved = tokens + (rng.random((tokens.shape[0], 1)) < move) * rng.standard_normal(tokens.shape)
            for k in range(frames_per_grid):
                e = direction + noise * rng.standard_normal(d)
                frames.append(
                    EncodedFrame(
                        stream_id="s",
                        index=len(frames),
                        pts_s=len(frames) * 0.5,
                        wall_time_s=None,
                        embedding=(e / np.linalg.norm(e)).astype(np.float32),
                        grid_index=grid,
                        tokens=moved.astype(np.float16) if k == 0 else None,
                        grid_hw=hw,
                    )
                )
            grid += 1
        del scene
    return frames


def streamed(frames, rules, change_similarity=0.9):
    segmenter = EventSegmenter(rules, change_similarity)
    events = []
    for f in frames:
        events.extend(segmenter.process(f))
    events.extend(segmenter.flush())
    return [[g.grid_index for g in event] for event in events]


def offline(frames, rules, change_similarity=0.9):
    """The same segmentation from whole arrays, computed independently of the segmenter."""
    by_grid = {}
    for f in frames:
        by_grid.setdefault(f.grid_index, []).append(f)
    index = np.array(sorted(by_grid))
    pooled = np.stack([np.mean([f.embedding for f in by_grid[g]], axis=0) for g in index])
    tokens = [next(f.tokens for f in by_grid[g] if f.tokens is not None).astype(np.float64) for g in index]
    changed = np.zeros(len(index))
    for i in range(1, len(index)):
        a = tokens[i - 1] / np.linalg.norm(tokens[i - 1], axis=1, keepdims=True)
        b = tokens[i] / np.linalg.norm(tokens[i], axis=1, keepdims=True)
        changed[i] = np.mean(np.sum(a * b, axis=1) < change_similarity)
    ranges = segment_events(pooled, rules, changed_fraction=changed, grid_index=index)
    return [index[a:b].tolist() for a, b in ranges]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "rules",
    [
        CutRules(0.9, 2, 60, 1, 0.75),
        CutRules(0.9, 1, 4, 1, None),
        CutRules(0.5, 2, 6, 2, 0.5),
        CutRules(0.99, 3, 7, 3, None),
    ],
)
def test_streaming_equals_offline(seed, rules):
    rng = np.random.default_rng(seed)
    scenes = rng.integers(1, 12, rng.integers(1, 6)).tolist()
    frames = scripted_frames(rng, scenes, noise=float(rng.choice([0.02, 0.3])), gaps={5} if seed % 2 else ())
    assert streamed(frames, rules) == offline(frames, rules)


def test_cuts_land_on_scripted_scene_changes():
    rng = np.random.default_rng(0)
    frames = scripted_frames(rng, [5, 7, 4])
    events = streamed(frames, CutRules(0.9, 2, 60, 1, None))
    assert [e[0] for e in events] == [0, 5, 12]


def test_token_changes_cut_where_the_retrieval_embedding_does_not():
    rng = np.random.default_rng(1)
    frames = scripted_frames(rng, [5, 7], hw=(4, 4), move=0.05)
    same = frames[0].embedding
    frames = [
        EncodedFrame(f.stream_id, f.index, f.pts_s, None, same, f.grid_index, f.tokens, f.grid_hw)
        for f in frames
    ]
    assert [e[0] for e in streamed(frames, CutRules(0.9, 2, 60, 1, None))] == [0]
    assert [e[0] for e in streamed(frames, CutRules(0.9, 2, 60, 1, 0.75))] == [0, 5]


def test_events_respect_min_and_max_length():
    rng = np.random.default_rng(2)
    frames = scripted_frames(rng, [1, 1, 9, 1, 30], noise=0.3)
    rules = CutRules(0.9, 2, 8, 2, 0.75)
    events = streamed(frames, rules)
    assert all(2 <= len(e) <= 8 for e in events[:-1])
    assert [g for e in events for g in e] == list(range(42))


def test_a_full_event_is_split_at_its_lowest_transition():
    rng = np.random.default_rng(3)
    frames = scripted_frames(rng, [3, 3], noise=0.0)  # one change, at grid 3, inside the window
    events = streamed(frames, CutRules(-1.0, 1, 6, 1, None))  # tau never fires: only the split
    assert events == [[0, 1, 2], [3, 4, 5]]


def test_a_gap_in_grid_indices_always_cuts():
    rng = np.random.default_rng(4)
    frames = scripted_frames(rng, [8], noise=0.0, gaps={3})
    assert [e[0] for e in streamed(frames, CutRules(0.9, 4, 60, 1, None))] == [0, 4]


def test_frames_out_of_order_are_rejected():
    rng = np.random.default_rng(5)
    frames = scripted_frames(rng, [3])
    segmenter = EventSegmenter(CutRules())
    segmenter.process(frames[4])
    with pytest.raises(CompressorInputError, match="went back"):
        segmenter.process(frames[0])


def test_rules_need_room_for_two_parts():
    with pytest.raises(CompressorInputError, match="max_grids"):
        CutRules(0.9, 4, 7)


def carried_over(rng, frames, share):
    """Some token grids repeat the previous grid's tokens object, as the encoder's carry-over does."""
    out, last = [], None
    for f in frames:
        if f.tokens is not None and last is not None and rng.random() < share:
            f = dataclasses.replace(f, tokens=last)
        last = f.tokens if f.tokens is not None else last
        out.append(f)
    return out


def segment(frames, rules, batches=None):
    segmenter = EventSegmenter(rules, 0.9)
    events, start = [], 0
    while start < len(frames):
        batch = frames[start : start + (1 if batches is None else int(batches.integers(1, 6)))]
        if batches is not None:
            segmenter.prepare(batch)
        for f in batch:
            events.extend(segmenter.process(f))
        start += len(batch)
    events.extend(segmenter.flush())
    return [[(g.grid_index, round(g.changed_fraction, 6)) for g in e] for e in events]


@pytest.mark.parametrize("seed", range(4))
def test_work_prepared_a_batch_ahead_gives_the_same_events(seed):
    rng = np.random.default_rng(seed)
    frames = scripted_frames(rng, rng.integers(1, 8, 4).tolist(), move=0.5, gaps={4} if seed % 2 else ())
    frames = carried_over(rng, frames, 0.3)
    rules = CutRules(0.9, 1, 6, 1, 0.5)
    assert segment(frames, rules, batches=rng) == segment(frames, rules)


def test_a_scene_where_nothing_changes_is_split_into_long_events_not_a_cascade_of_short_ones():
    from compressor.events import CutRules, segment_events

    rules = CutRules(similarity_tau=0.9, min_grids=2, max_grids=10, lowest_cuts=1)
    embeddings = np.ones((45, 4))
    ranges = segment_events(embeddings, rules)
    lengths = [end - start for start, end in ranges]
    assert sum(lengths) == 45
    assert all(n >= 8 for n in lengths[:-1]), lengths
