import itertools
import math

import numpy as np
import pytest
import torch

from compressor import (
    CompressorInputError,
    evs_retained_count,
    evs_retention_mask,
    grid_positions,
    survivor_positions,
)


def reference_mask(embeds, thw, m, q):
    """EVS written out with loops: dissimilarity per token, 255 for grid 0, stable top-k."""
    t_grids, h, w = thw[0], thw[1] // m, thw[2] // m
    e = embeds.reshape(t_grids, h, w, -1).tolist()
    scores = []
    for t, i, j in itertools.product(range(t_grids), range(h), range(w)):
        if t == 0:
            scores.append(255.0)
            continue
        a, b = e[t][i][j], e[t - 1][i][j]
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        cos = dot / max(math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)), 1e-8)
        scores.append(1.0 - cos)
    k = max(h * w, int(t_grids * h * w * (1 - q)))
    ranked = sorted(range(len(scores)), key=lambda n: -scores[n])  # sorted() is stable
    keep = np.zeros(len(scores), bool)
    keep[ranked[:k]] = True
    return keep


@pytest.mark.parametrize(
    ("thw", "m", "q"),
    [
        ((4, 4, 6), 2, 0.5),
        ((6, 8, 8), 2, 0.75),
        ((3, 2, 2), 1, 0.3),
        ((5, 4, 4), 2, 0.0),
        ((2, 6, 4), 2, 0.9),
    ],
)
def test_mask_equals_a_straightforward_implementation_on_random_embeddings(thw, m, q):
    rng = np.random.default_rng(sum(thw))
    n = thw[0] * (thw[1] // m) * (thw[2] // m)
    embeds = rng.standard_normal((n, 16))
    mask = evs_retention_mask(torch.from_numpy(embeds), thw, m, q)
    assert mask.dtype == torch.bool and mask.shape == (n,)
    np.testing.assert_array_equal(mask.numpy(), reference_mask(embeds, thw, m, q))


@pytest.mark.parametrize("q", [0.2, 0.5, 0.8])
def test_ties_go_to_the_earlier_token(q):
    """One-hot embeddings make cosines exactly 0 or 1: many equal dissimilarities."""
    rng = np.random.default_rng(5)
    thw, m = (5, 4, 4), 2
    n = 5 * 2 * 2
    embeds = np.eye(3)[rng.integers(0, 3, n)] * rng.choice([1.0, 2.0, 4.0], (n, 1))
    mask = evs_retention_mask(torch.from_numpy(embeds).float(), thw, m, q)
    np.testing.assert_array_equal(mask.numpy(), reference_mask(embeds, thw, m, q))


def test_q_zero_keeps_everything():
    embeds = torch.randn(3 * 4 * 4, 8)
    assert evs_retention_mask(embeds, (3, 8, 8), 2, 0.0).all()


def test_keeps_the_first_grid_whole_and_exactly_k_tokens():
    torch.manual_seed(0)
    thw, m, q = (6, 6, 6), 2, 0.95
    embeds = torch.randn(6 * 9, 32)
    mask = evs_retention_mask(embeds, thw, m, q)
    assert mask[:9].all()
    assert int(mask.sum()) == evs_retained_count(9, 6, q) == 9


def test_survivors_keep_their_positions_in_the_full_grid():
    torch.manual_seed(1)
    thw, m, t0 = (4, 6, 8), 2, 17
    embeds = torch.randn(4 * 3 * 4, 8)
    mask = evs_retention_mask(embeds, thw, m, 0.6)
    expected = [
        (t0 + t, i, j)
        for t, i, j in itertools.product(range(4), range(3), range(4))
        if mask[(t * 3 + i) * 4 + j]
    ]
    np.testing.assert_array_equal(survivor_positions(mask, thw, m, t0=t0), np.array(expected, np.int32))


def test_grid_positions_are_row_major_t_h_w():
    positions = grid_positions((2, 4, 6), 2)
    assert positions.shape == (12, 3)
    assert positions[:4].tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 1, 0]]
    assert positions[-1].tolist() == [1, 1, 2]


@pytest.mark.parametrize("q", [-0.1, 1.0])
def test_rejects_q_outside_zero_one(q):
    with pytest.raises(CompressorInputError, match="q must be"):
        evs_retention_mask(torch.randn(4, 2), (1, 4, 4), 2, q)


def test_rejects_embeddings_that_do_not_fill_the_grid():
    with pytest.raises(CompressorInputError, match=r"T\*h\*w=8"):
        evs_retention_mask(torch.randn(7, 2), (2, 4, 4), 2, 0.5)
