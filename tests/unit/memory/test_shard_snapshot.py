import numpy as np
import pytest

from memory.partitions import EventRow, window_mask
from memory.shard import IndexPolicy, ShardMemory
from memory.snapshot import ShardState, latest_snapshot, read_snapshot, write_snapshot
from memory.vector_index import HnswParams

from .factories import unit_rows


def _policy(requested="hnsw", filtered_exact_max=50):
    return IndexPolicy(requested, 10, filtered_exact_max, 0.3, HnswParams(ef_search=256, ef_search_max=4096))


def _row(i: int, stream_id: str) -> EventRow:
    t0, t1 = float(i), i + 1.5
    return EventRow(i, f"e{i}", stream_id, t0, t1, t0, t1, None, None, 0.0, False, 64, i + 1, 0, False, "{}")


def _fill(mem: ShardMemory, n: int, streams: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = unit_rows(rng, n, dim)
    rows = [_row(i, f"s{i % streams}") for i in range(n)]
    mem.add(rows, x)
    return x, rows


@pytest.mark.parametrize("exact_max", [10_000, 0])  # partitions path, then the index paths
def test_filtered_search_returns_only_the_stream_and_window_and_matches_brute_force(exact_max):
    mem = ShardMemory(16, _policy(filtered_exact_max=exact_max))
    x, rows = _fill(mem, 600, streams=3, dim=16)
    t0 = np.array([r.t0 for r in rows])
    t1 = np.array([r.t1 for r in rows])
    stream = np.array([r.stream_id for r in rows])
    rng = np.random.default_rng(1)
    for _ in range(10):
        since = float(rng.uniform(0, 500))
        until = since + 150.0
        q = unit_rows(rng, 1, 16)[0]
        ok = window_mask(t0, t1, since, until) & (stream == "s1")
        expected = np.flatnonzero(ok)[np.argsort(-(x[ok] @ q))][:5]
        _, fids, route = mem.search(q, 5, ["s1"], since, until)
        assert route == ("partitions" if exact_max else "postfilter")  # ~8% of the events match
        assert all(stream[f] == "s1" and ok[f] for f in fids)
        assert fids.tolist() == expected.tolist()
        assert mem.search(q, 5, ["s1"], since, until, route="selector")[1].tolist() == expected.tolist()


def test_a_wide_filter_post_filters_the_unfiltered_search_and_matches_brute_force():
    """Two of three streams over most of the timeline: no selector is built; the unfiltered
    candidates that match are the answer, also when the query sits in the excluded stream."""
    mem = ShardMemory(16, _policy(filtered_exact_max=0))
    x, rows = _fill(mem, 600, streams=3, dim=16)
    t0 = np.array([r.t0 for r in rows])
    t1 = np.array([r.t1 for r in rows])
    stream = np.array([r.stream_id for r in rows])
    rng = np.random.default_rng(2)
    queries = np.concatenate([unit_rows(rng, 8, 16), x[stream == "s2"][:4]])  # the last ones: excluded
    for q in queries:
        ok = window_mask(t0, t1, 50.0, 550.0) & (stream != "s2")
        expected = np.flatnonzero(ok)[np.argsort(-(x[ok] @ q))][:5]
        _, fids, route = mem.search(q, 5, ["s0", "s1"], 50.0, 550.0)
        assert route == "postfilter"
        assert fids.tolist() == expected.tolist()
    assert mem.search(x[0], 5, ["s0", "s1"], 50.0, 550.0, route="selector")[2] == "selector"
    # Fewer than k of the candidates match (only 4 events do at all): the candidates give no answer
    # (search then takes the selector); at that selectivity a post-filter reads every event.
    assert mem._postfilter(x[0], 5, {"s0"}, 0.0, 10.0, selectivity=1.0) is None
    ok = window_mask(t0, t1, 0.0, 10.0) & (stream == "s0")
    _, fids, _ = mem.search(x[0], 5, ["s0"], 0.0, 10.0, route="postfilter")
    assert sorted(fids.tolist()) == np.flatnonzero(ok).tolist()


def test_a_wide_filter_whose_candidates_all_lie_outside_it_falls_back_to_the_selector():
    mem = ShardMemory(16, _policy(filtered_exact_max=0))
    rng = np.random.default_rng(3)
    rows = [_row(i, f"s{i % 3}") for i in range(600)]
    x = unit_rows(rng, 600, 16)
    centre = unit_rows(rng, 1, 16)[0]
    excluded = np.array([r.stream_id == "s2" for r in rows])
    near = centre + 0.05 * x[excluded]  # every s2 event sits next to the query
    x[excluded] = near / np.linalg.norm(near, axis=1, keepdims=True)
    mem.add(rows, x)
    _, fids, route = mem.search(centre, 5, ["s0", "s1"], None, None)
    expected = np.flatnonzero(~excluded)[np.argsort(-(x[~excluded] @ centre))][:5]
    assert route == "selector" and fids.tolist() == expected.tolist()


def test_removed_events_leave_every_route():
    mem = ShardMemory(8, _policy())
    x, _ = _fill(mem, 100, streams=2, dim=8)
    assert mem.remove("e4") is not None and mem.remove("e4") is None
    for streams in (None, ["s0"]):
        _, fids, _ = mem.search(x[4], 100, streams, None, None if streams is None else 1e9)
        assert 4 not in fids.tolist()
    assert mem.live == 99 and mem.locate("e4") is None


def test_snapshot_round_trip_answers_the_same(tmp_path):
    mem = ShardMemory(8, _policy())
    x, _ = _fill(mem, 120, streams=3, dim=8)
    mem.remove("e5")
    mem.set_pinned("e6", True)
    _, chunks = write_snapshot(tmp_path, ShardState(121, 120, 8, mem.index, mem.parts))
    assert chunks == [f"{mem.index.generation}-{0:012d}-{120:012d}.npy"]
    state = read_snapshot(latest_snapshot(tmp_path), HnswParams(ef_search=256))
    back = ShardMemory.from_state(state.dim, state.index, state.parts, _policy())
    assert (state.lsn, state.next_fid, back.live) == (121, 120, 119)
    assert back.locate("e5") is None
    part, i = back.locate("e6")
    assert part.row(i).pinned and np.allclose(part.vectors[i], x[6])
    for q in x[:10]:
        for where in ((None, None, None), (["s2"], 3.0, 90.0)):
            assert mem.search(q, 5, *where)[1].tolist() == back.search(q, 5, *where)[1].tolist()


def test_auto_policy_asks_for_hnsw_past_the_threshold_and_for_compaction():
    mem = ShardMemory(8, _policy("auto"))
    _fill(mem, 11, streams=1, dim=8)
    assert mem.index.kind == "flat" and mem.wanted_rebuild() == "hnsw"
    fids, vectors = mem.live_vectors()
    mem.index = mem.build("hnsw", fids, vectors)
    assert mem.wanted_rebuild() is None
    mem.remove("e0")
    assert mem.wanted_rebuild() is None  # 1 of 11 dead: below compact_dead_fraction
    for i in range(1, 4):
        mem.remove(f"e{i}")
    assert mem.wanted_rebuild() == "hnsw"  # 4 of 11 dead: compact, same kind
    for i in range(4, 6):
        mem.remove(f"e{i}")
    assert mem.wanted_rebuild() == "flat"  # 5 live: back to exact (at most half the threshold)


def test_deferred_events_are_searchable_on_every_route_and_survive_the_catch_up():
    mem = ShardMemory(16, _policy(filtered_exact_max=10_000))
    _fill(mem, 300, streams=3, dim=16)
    rng = np.random.default_rng(7)
    tail_x = unit_rows(rng, 50, 16)
    tail = [_row(300 + i, f"s{i % 3}") for i in range(50)]
    mem.add(tail, tail_x, defer=True)
    assert mem.pending is not None and mem.index.ntotal == 300
    base, fids, vectors = mem.catch_up_start()
    mem.remove("e310")  # deleted while catching up
    late_x = unit_rows(rng, 5, 16)
    mem.add([_row(350 + i, "s0") for i in range(5)], late_x)  # arrives while catching up: to the side
    for route in (None, "postfilter", "selector", "selector_exact"):
        streams = None if route is None else ["s0", "s1", "s2"]
        _, got, _ = mem.search(tail_x[3], 3, streams, None, None, route=route)
        assert got[0] == 303, route
        assert 310 not in mem.search(tail_x[10], 5, streams, None, None, route=route)[1].tolist()
    grown = base.clone()
    grown.add(fids, vectors)
    mem.catch_up_finish(grown, int(fids.max()))
    assert mem.pending is None and mem.index.live == 354 and mem.index.ntotal == 355
    assert mem.search(tail_x[3], 1, None, None, None)[1].tolist() == [303]
    assert mem.search(late_x[2], 1, None, None, None)[1].tolist() == [352]
    assert 310 not in mem.search(tail_x[10], 5, None, None, None)[1].tolist()
    assert mem.wanted_rebuild() is None
