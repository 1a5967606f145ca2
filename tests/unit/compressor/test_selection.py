import numpy as np
import pytest
import torch

from compressor import (
    CompressorInputError,
    Event,
    EventStats,
    SelectionSettings,
    allocate_budget,
    pick_tokens,
    pick_tokens_batched,
    select_tokens,
    token_relevance,
)


def make_event(rng, name, start_s, *, n_grids=4, hw=(2, 3), d=16, d_ret=8, grid_embeddings=None):
    n = n_grids * hw[0] * hw[1]
    positions = np.array(
        [(t, i, j) for t in range(n_grids) for i in range(hw[0]) for j in range(hw[1])], np.int32
    ) + np.array([10, 0, 0], np.int32)
    if grid_embeddings is None:
        grid_embeddings = rng.standard_normal((n_grids, d_ret))
    grid_embeddings = grid_embeddings / np.linalg.norm(grid_embeddings, axis=1, keepdims=True)
    embedding = grid_embeddings.mean(0)
    return Event(
        event_id=f"s:{name}",
        stream_id="s",
        start_pts_s=start_s,
        end_pts_s=start_s + n_grids,
        start_wall_s=None,
        end_wall_s=None,
        embedding=(embedding / np.linalg.norm(embedding)).astype(np.float32),
        tokens=rng.standard_normal((n, d)).astype(np.float16),
        positions=positions,
        counts=np.ones(n, np.int32),
        grid_t0=10,
        grid_pts_s=start_s + np.arange(n_grids, dtype=np.float64),
        grid_hw=hw,
        stats=EventStats(frames=2 * n_grids, grids=n_grids, tokens_in=n, tokens_kept=n),
        grid_embeddings=grid_embeddings.astype(np.float16),
    )


def test_budget_split_sums_to_the_budget_and_respects_capacities():
    rng = np.random.default_rng(0)
    for _ in range(200):
        e = int(rng.integers(1, 8))
        weights, capacities = rng.random(e) ** 3, rng.integers(0, 50, e)
        budget = int(rng.integers(0, 200))
        alloc = allocate_budget(weights, capacities, budget)
        assert alloc.sum() == min(budget, capacities.sum())
        assert np.all(alloc <= capacities) and np.all(alloc >= 0)


def test_budget_follows_relevance_when_nothing_is_capped():
    alloc = allocate_budget(np.array([3.0, 1.0, 0.0]), np.array([100, 100, 100]), 40)
    assert alloc.tolist() == [30, 10, 0]


def test_selection_respects_the_budget_keeps_time_order_and_original_positions():
    rng = np.random.default_rng(1)
    events = [make_event(rng, str(k), start_s) for k, start_s in enumerate([30.0, 0.0, 12.0])]
    question = rng.standard_normal(8)
    selection = select_tokens(
        question / np.linalg.norm(question), [(events[0], 0.3), (events[1], 0.2), (events[2], 0.25)], 40
    )
    assert selection.tokens_selected == 40 == selection.budget_tokens
    assert [s.event.start_pts_s for s in selection.events] == [0.0, 12.0, 30.0]
    for chosen in selection.events:
        assert np.all(np.diff(chosen.kept) > 0)
        np.testing.assert_array_equal(chosen.positions, chosen.event.positions[chosen.kept])
        np.testing.assert_array_equal(chosen.tokens, chosen.event.tokens[chosen.kept])


def test_more_relevant_events_get_more_tokens():
    rng = np.random.default_rng(2)
    strong, weak = make_event(rng, "a", 0.0), make_event(rng, "b", 5.0)
    selection = select_tokens(None, [(strong, 0.30), (weak, 0.20)], 20)
    by_id = {s.event.event_id: s.kept.size for s in selection.events}
    assert by_id["s:a"] > by_id["s:b"]


def test_divprune_keeps_one_token_from_each_cluster():
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((4, 32))
    members = np.repeat(np.arange(4), [30, 3, 3, 3])  # one big cluster, three small ones
    tokens = centres[members] + 0.01 * rng.standard_normal((39, 32))
    kept = pick_tokens(torch.from_numpy(tokens), 4)
    assert sorted(members[kept].tolist()) == [0, 1, 2, 3]


def test_relevance_pulls_tokens_from_the_grid_the_question_matches():
    rng = np.random.default_rng(4)
    grids = np.eye(8)[:4]  # grid t has retrieval embedding e_t
    event = make_event(rng, "a", 0.0, grid_embeddings=grids)
    question = np.eye(8)[2]
    selection = select_tokens(question, [(event, 0.5)], 6, settings=SelectionSettings(relevance_weight=1.0))
    assert selection.events[0].positions[:, 0].tolist() == [12] * 6  # grid_t0 + 2


def test_live_streams_reserve_a_floor_for_the_latest_events():
    rng = np.random.default_rng(5)
    old, latest = make_event(rng, "old", 0.0), make_event(rng, "new", 100.0)
    settings = SelectionSettings(recency_floor_share=0.25, recent_events=1, temperature=0.01)
    scores = [(old, 0.9), (latest, 0.1)]
    live = select_tokens(None, scores, 20, settings=settings, is_live=True)
    recorded = select_tokens(None, scores, 20, settings=settings, is_live=False)
    assert {s.event.event_id: s.kept.size for s in live.events}["s:new"] == 5
    assert [s.event.event_id for s in recorded.events] == ["s:old"]


def test_event_weights_move_the_budget_to_narrated_events_and_bad_weights_are_refused():
    """Audio-guided budgets: at equal relevance, shares follow the weights (1.0 narrated, 0.25 silent)."""
    rng = np.random.default_rng(7)
    silent, narrated = make_event(rng, "silent", 0.0), make_event(rng, "narrated", 10.0)
    scores = [(silent, 0.5), (narrated, 0.5)]
    even = select_tokens(None, scores, 20)
    guided = select_tokens(None, scores, 20, event_weights=[0.25, 1.0])
    assert [s.kept.size for s in even.events] == [10, 10]
    assert [s.kept.size for s in guided.events] == [4, 16]
    for bad in ([1.0], [1.0, -0.5], [1.0, float("nan")]):
        with pytest.raises(CompressorInputError, match="event_weights"):
            select_tokens(None, scores, 20, event_weights=bad)


def test_question_from_another_space_is_rejected():
    rng = np.random.default_rng(6)
    event = make_event(rng, "a", 0.0)
    with pytest.raises(CompressorInputError, match="retrieval encoder"):
        select_tokens(np.ones(5), [(event, 0.5)], 4)


@pytest.mark.parametrize("seed", range(4))
def test_batched_selection_picks_what_one_event_at_a_time_picks(seed):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 90, 9).tolist()
    tokens = [rng.standard_normal((n, 24)).astype(np.float16) for n in sizes]
    ks = [int(rng.integers(0, n + 3)) for n in sizes]  # some take all, some none
    relevances = [rng.random(n) if e % 3 else None for e, n in enumerate(sizes)]
    max_steps = [4, 16, 64, 1000][seed]
    batched = pick_tokens_batched(
        tokens, ks, relevances=relevances, relevance_weight=0.3, max_steps=max_steps, max_padded_bytes=20_000
    )
    for x, k, rel, kept in zip(tokens, ks, relevances, batched, strict=True):
        one = pick_tokens(
            torch.from_numpy(x),
            k,
            relevance=None if rel is None else torch.from_numpy(rel),
            relevance_weight=0.3 if rel is not None else 0.0,
            max_steps=max_steps,
        )
        assert kept.tolist() == one.tolist()


def test_selection_keeps_what_the_per_event_picker_keeps():
    rng = np.random.default_rng(7)
    events = [make_event(rng, str(k), float(k), n_grids=int(rng.integers(1, 6))) for k in range(6)]
    question = rng.standard_normal(8)
    question /= np.linalg.norm(question)
    settings = SelectionSettings(diversity_steps=5, temperature=0.5)
    selection = select_tokens(
        question, [(e, 0.2 + 0.01 * k) for k, e in enumerate(events)], 50, settings=settings
    )
    for chosen in selection.events:
        relevance = token_relevance(chosen.event, question)
        one = pick_tokens(
            torch.from_numpy(chosen.event.tokens),
            chosen.kept.size,
            relevance=torch.from_numpy(relevance),
            relevance_weight=settings.relevance_weight,
            max_steps=settings.diversity_steps,
        )
        assert chosen.kept.tolist() == one.tolist()


def test_farthest_points_start_at_first_and_add_the_row_farthest_from_those_picked():
    from compressor.selection import farthest_points

    angles = np.radians([0, 10, 90, 100, 180])
    rows = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    assert farthest_points(rows, 2, first=0) == [0, 4]  # opposite of row 0
    assert farthest_points(rows, 3, first=0) == [0, 2, 4]  # then the one 90 degrees from both
    assert farthest_points(rows, 9, first=0) == [0, 1, 2, 3, 4]
    assert farthest_points(rows, 0) == []
