import importlib.util
import os

import numpy as np
import pytest
import torch

from compressor import CompressorError, CompressorInputError, merge_event_tokens, merging
from compressor._tensors import unit_rows
from compressor.merging import _pick_backend, _run_sums, _runs, _similar_to_run_head, merge_unit_tokens
from tests.unit.compressor._tokens import drifting_tokens


def video_tokens(rng, t=6, h=2, w=3, d=16, moving=((0, 1),)):
    """Tokens constant over time except at `moving` positions, which change every grid."""
    base = rng.standard_normal((h, w, d))
    tokens = np.repeat(base[None], t, axis=0)
    for i, j in moving:
        tokens[:, i, j] = rng.standard_normal((t, d))
    return tokens


def test_static_tokens_collapse_into_one_token_per_position_and_dynamic_ones_stay():
    rng = np.random.default_rng(0)
    tokens = video_tokens(rng)
    merged = merge_event_tokens(tokens, similarity=0.9)
    # 5 static positions -> one token each; the moving one keeps all 6
    assert merged.tokens.shape == (5 + 6, 16)
    moving = np.all(merged.positions[:, 1:] == (0, 1), axis=1)
    assert merged.positions[moving, 0].tolist() == list(range(6))
    assert merged.counts[moving].tolist() == [1] * 6
    assert merged.counts[~moving].tolist() == [6] * 5
    assert np.all(merged.positions[~moving, 0] == 0)


def test_every_source_token_is_counted_once():
    rng = np.random.default_rng(1)
    tokens = rng.standard_normal((7, 3, 4, 8))
    static = rng.random((7, 3, 4)) < 0.5
    static[0] = False
    merged = merge_event_tokens(tokens, is_static=static, similarity=0.5)
    assert merged.counts.sum() == 7 * 3 * 4
    assert (
        merged.tokens.shape[0] == 7 * 3 * 4 - merged.merged_static - merged.merged_evs - merged.merged_similar
    )


def test_positions_are_in_time_order_and_a_run_starts_at_its_first_token():
    rng = np.random.default_rng(2)
    tokens = rng.standard_normal((5, 2, 2, 8))
    static = np.zeros((5, 2, 2), bool)
    static[2:4, 1, 1] = True  # (1, 1) repeats grid 1 at grids 2 and 3
    merged = merge_event_tokens(tokens, is_static=static)
    keys = [tuple(p) for p in merged.positions]
    assert keys == sorted(keys)
    run = keys.index((1, 1, 1))
    assert merged.counts[run] == 3
    np.testing.assert_allclose(merged.tokens[run], tokens[1:4, 1, 1].mean(axis=0), rtol=1e-6)
    assert (2, 1, 1) not in keys and (3, 1, 1) not in keys


def test_pixel_static_tokens_merge_even_when_their_embedding_moved():
    rng = np.random.default_rng(3)
    tokens = rng.standard_normal((3, 1, 2, 8))
    static = np.array([[[False, False]], [[True, False]], [[True, False]]])
    merged = merge_event_tokens(tokens, is_static=static, similarity=None)
    assert merged.merged_static == 2
    assert merged.tokens.shape[0] == 1 + 3


def test_evs_dropped_tokens_merge_into_their_run():
    rng = np.random.default_rng(4)
    tokens = rng.standard_normal((3, 1, 2, 8))
    kept = np.array([[[True, True]], [[False, True]], [[True, True]]])
    merged = merge_event_tokens(tokens, is_evs_kept=kept)
    assert merged.merged_evs == 1
    assert [tuple(p) for p in merged.positions] == [(0, 0, 0), (0, 0, 1), (1, 0, 1), (2, 0, 0), (2, 0, 1)]
    assert merged.counts.tolist() == [2, 1, 1, 1, 1]


def test_a_slow_drift_ends_the_run_because_tokens_are_compared_with_its_first():
    d = 8
    angle = np.deg2rad(np.arange(6) * 10.0)  # 10 degrees per grid: each step is cos 0.985
    tokens = np.zeros((6, 1, 1, d))
    tokens[:, 0, 0, 0], tokens[:, 0, 0, 1] = np.cos(angle), np.sin(angle)
    merged = merge_event_tokens(tokens, similarity=0.95)  # cos 18.2 deg = 0.95
    assert merged.positions[:, 0].tolist() == [0, 2, 4]


def test_rejects_masks_of_the_wrong_shape():
    with pytest.raises(CompressorInputError, match="is_static"):
        merge_event_tokens(np.zeros((2, 2, 2, 4)), is_static=np.zeros((2, 2), bool))


def reference_runs(tokens, static, kept, similarity):
    """Position by position, grid by grid: the merge rule written as plainly as possible."""
    t_grids, h, w, _ = tokens.shape
    out = []
    for i in range(h):
        for j in range(w):
            runs = [[0]]
            for t in range(1, t_grids):
                head = tokens[runs[-1][0], i, j]
                cos = head @ tokens[t, i, j] / (np.linalg.norm(head) * np.linalg.norm(tokens[t, i, j]))
                if static[t, i, j] or not kept[t, i, j] or (similarity is not None and cos >= similarity):
                    runs[-1].append(t)
                else:
                    runs.append([t])
            out += [((r[0], i, j), len(r), tokens[r, i, j].mean(axis=0)) for r in runs]
    return sorted(out, key=lambda run: run[0])


@pytest.mark.parametrize("seed", range(8))
def test_vectorised_runs_equal_the_position_by_position_rule(seed):
    rng = np.random.default_rng(seed)
    t, h, w = int(rng.integers(1, 9)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    tokens = rng.standard_normal((1, h, w, 8)) + rng.choice([0.3, 1.0]) * rng.standard_normal((t, h, w, 8))
    static, kept = rng.random((t, h, w)) < 0.3, rng.random((t, h, w)) < 0.8
    similarity = [None, 0.5, 0.9][seed % 3]
    merged = merge_event_tokens(tokens, is_static=static, is_evs_kept=kept, similarity=similarity)
    expected = reference_runs(tokens, static, kept, similarity)
    assert [tuple(p) for p in merged.positions.tolist()] == [run[0] for run in expected]
    assert merged.counts.tolist() == [run[1] for run in expected]
    np.testing.assert_allclose(merged.tokens, np.stack([run[2] for run in expected]), rtol=1e-5, atol=1e-6)


def test_float16_numpy_and_tensor_tokens_merge_alike():
    rng = np.random.default_rng(7)
    tokens = video_tokens(rng, t=5, d=32).astype(np.float16)
    static = rng.random((5, 2, 3)) < 0.3
    from_numpy = merge_event_tokens(tokens, is_static=static, similarity=0.9)
    from_tensor = merge_event_tokens(
        torch.from_numpy(tokens), is_static=torch.from_numpy(static), similarity=0.9
    )
    np.testing.assert_array_equal(from_numpy.positions, from_tensor.positions)
    np.testing.assert_array_equal(from_numpy.tokens, from_tensor.tokens)
    assert from_numpy.tokens.dtype == np.float32  # computed in float32, never in float16


# The Triton kernels (the CUDA path) against the torch code (the CPU path and the reference). Without
# a GPU they run in Triton's interpreter (tests/conftest.py sets TRITON_INTERPRET=1): slow, so the
# events are small.
needs_triton = pytest.mark.skipif(
    importlib.util.find_spec("triton") is None, reason="triton is not installed: no merge kernels to test"
)


@pytest.fixture
def kernel_device() -> str:
    if os.environ.get("TRITON_INTERPRET") == "1":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    pytest.skip("the merge kernels need CUDA or TRITON_INTERPRET=1")


def merge_both_ways(tokens, device, **masks_and_similarity):
    t, h, w, d = tokens.shape
    units, norms = unit_rows(torch.from_numpy(tokens).to(device).reshape(t, h * w, d))
    return [
        merge_unit_tokens(list(units), norms, (h, w), kernels=kernels, **masks_and_similarity)
        for kernels in (False, True)
    ]


KERNEL_CASES = {  # t, h, w, d, similarity, share of static tokens, share of EVS-kept tokens
    "drift": (6, 2, 3, 48, 0.9, 0.2, 0.8),
    "p15_d100": (7, 3, 5, 100, 0.95, 0.0, None),
    "no_similarity": (5, 1, 3, 48, None, 0.3, 0.7),
    "one_grid": (1, 2, 2, 48, 0.9, 0.3, 0.7),
    "two_grids": (2, 3, 3, 100, 0.8, 0.2, 0.8),
}


@needs_triton
@pytest.mark.parametrize("case", KERNEL_CASES.values(), ids=KERNEL_CASES.keys())
def test_triton_kernels_merge_exactly_as_the_torch_code(case, kernel_device):
    t, h, w, d, similarity, static_share, kept_share = case
    rng = np.random.default_rng(t * 100 + d)
    tokens = drifting_tokens(rng, t, h, w, d)
    static = rng.random((t, h, w)) < static_share
    kept = None if kept_share is None else rng.random((t, h, w)) < kept_share
    torch_way, kernel_way = merge_both_ways(
        tokens, kernel_device, is_static=static, is_evs_kept=kept, similarity=similarity
    )
    np.testing.assert_array_equal(kernel_way.positions, torch_way.positions)
    np.testing.assert_array_equal(kernel_way.counts, torch_way.counts)
    np.testing.assert_array_equal(kernel_way.tokens, torch_way.tokens)  # same float32 sums, same order
    counters = ("merged_static", "merged_evs", "merged_similar")
    assert [getattr(kernel_way, c) for c in counters] == [getattr(torch_way, c) for c in counters]
    if similarity is not None and t > 2:
        assert torch_way.merged_similar > 0  # runs formed by cosine: the walk was exercised


@needs_triton
def test_triton_kernels_merge_near_duplicate_rows_as_the_torch_code(kernel_device):
    rng = np.random.default_rng(11)
    tokens = video_tokens(rng, t=5, h=2, w=3, d=48, moving=((0, 1), (1, 2))).astype(np.float32)
    tokens += 1e-3 * rng.standard_normal(tokens.shape).astype(np.float32)  # near, not exact, repeats
    static = rng.random((5, 2, 3)) < 0.2
    torch_way, kernel_way = merge_both_ways(tokens, kernel_device, is_static=static, similarity=0.9)
    assert torch_way.merged_similar > 0
    np.testing.assert_array_equal(kernel_way.positions, torch_way.positions)
    np.testing.assert_array_equal(kernel_way.tokens, torch_way.tokens)


@needs_triton
def test_triton_kernels_walk_a_width_longer_than_their_block_in_masked_chunks(kernel_device):
    from compressor import _merge_kernel

    rng = np.random.default_rng(12)
    t, h, w, d = 6, 1, 5, 100  # 100 columns: 7 blocks of 16, the last one 4 wide
    tokens = torch.from_numpy(drifting_tokens(rng, t, h, w, d)).to(kernel_device).reshape(t, h * w, d)
    units, norms = unit_rows(tokens)
    repeat = torch.from_numpy(rng.random((t, h * w)) < 0.2).to(kernel_device)
    repeat[0] = False
    similar = _merge_kernel.similar_to_run_head(units, repeat, 0.9, max_block_d=16)
    assert similar.any() and not similar[1:].all()
    assert torch.equal(similar, _similar_to_run_head(list(units), repeat, 0.9))
    starts = ~(repeat | similar)
    run_of, _, _ = _runs(starts)
    n_runs = int(starts.sum())
    sums = _merge_kernel.run_sums(units, norms, starts, run_of, n_runs, max_block_d=16)
    assert torch.equal(sums, _run_sums(list(units), norms, run_of, n_runs))


def test_cpu_tensors_merge_with_the_torch_code_unless_kernels_are_asked_for():
    assert _pick_backend(None, torch.device("cpu"), torch.float32) is None
    assert _pick_backend(False, torch.device("cuda"), torch.float32) is None
    assert _pick_backend(None, torch.device("cuda"), torch.float64) is None


@needs_triton
def test_forced_kernels_refuse_rows_that_are_not_float32():
    units, norms = unit_rows(torch.zeros((2, 4, 8), dtype=torch.float64))
    with pytest.raises(CompressorError, match="float32"):
        merge_unit_tokens(list(units), norms, (2, 2), kernels=True)


def test_without_triton_the_torch_code_merges_and_forced_kernels_say_why_not(monkeypatch):
    monkeypatch.setattr(merging, "_triton_kernels", lambda: None)
    units, norms = unit_rows(torch.ones((2, 4, 8)))
    assert merge_unit_tokens(list(units), norms, (2, 2), similarity=0.9).counts.tolist() == [2] * 4
    with pytest.raises(CompressorError, match="triton is not importable"):
        merge_unit_tokens(list(units), norms, (2, 2), kernels=True)
