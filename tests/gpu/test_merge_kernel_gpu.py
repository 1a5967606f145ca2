"""The merge's Triton kernels on CUDA, at the 7B model's token width and a full event, merge
exactly as the torch code does on the same GPU."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from compressor._tensors import unit_rows
from compressor.merging import merge_unit_tokens
from tests.unit.compressor._tokens import drifting_tokens

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
    pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs triton"),
]


@pytest.mark.parametrize("similarity", [0.9, None])
def test_merge_kernels_equal_the_torch_code_on_a_7b_event(similarity: float | None) -> None:
    rng = np.random.default_rng(0)
    t, h, w, d = 30, 16, 16, 3584  # one event: 30 grids of 256 positions, Qwen2.5-VL-7B width
    # slow turns (0-20 degrees a grid) with now and then a jump (45, 90): runs of many lengths
    tokens = drifting_tokens(rng, t, h, w, d, steps_deg=(0, 0, 0, 5, 10, 20, 45, 90))
    static = rng.random((t, h, w)) < 0.2
    kept = rng.random((t, h, w)) < 0.8
    units, norms = unit_rows(torch.from_numpy(tokens).cuda().reshape(t, h * w, d))
    torch_way, kernel_way = (
        merge_unit_tokens(
            list(units), norms, (h, w), is_static=static, is_evs_kept=kept, similarity=similarity, kernels=k
        )
        for k in (False, True)
    )
    counts = np.bincount(torch_way.counts)
    assert np.count_nonzero(counts[2:]) >= 5  # runs of at least five different lengths formed
    np.testing.assert_array_equal(kernel_way.positions, torch_way.positions)
    np.testing.assert_array_equal(kernel_way.counts, torch_way.counts)
    np.testing.assert_array_equal(kernel_way.tokens, torch_way.tokens)  # float32 sums in one order
    counters = ("merged_static", "merged_evs", "merged_similar")
    assert [getattr(kernel_way, c) for c in counters] == [getattr(torch_way, c) for c in counters]
