import numpy as np
import pytest

from memory.index_files import read_index, write_index
from memory.vector_index import EventIndex, HnswParams, build_index, choose_kind

from .factories import unit_rows


def _brute(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int, keep: np.ndarray | None = None):
    scores = x @ q
    if keep is not None:
        scores = np.where(keep, scores, -np.inf)
    order = np.argsort(-scores)[:k]
    return ids[order[np.isfinite(scores[order])]]


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_search_matches_exact_search(kind):
    rng = np.random.default_rng(0)
    x, ids = unit_rows(rng, 500, 16), np.arange(10, 510, dtype=np.int64)
    index = EventIndex(16, kind, HnswParams(ef_search=200))
    index.add(ids[:250], x[:250])
    index.add(ids[250:], x[250:])
    for q in unit_rows(rng, 20, 16):
        _, got = index.search(q, 5)
        assert list(got) == list(_brute(x, ids, q, 5))


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_tombstoned_events_never_come_back(kind):
    rng = np.random.default_rng(1)
    x, ids = unit_rows(rng, 300, 16), np.arange(300, dtype=np.int64)
    index = EventIndex(16, kind, HnswParams(ef_search=300))
    index.add(ids, x)
    dead = ids[::3]
    assert index.remove(dead) == dead.size
    assert index.remove(dead) == 0  # removing twice changes nothing
    assert index.live == 200
    for q in x[::3][:20]:  # queries that exactly match a deleted vector
        _, got = index.search(q, 10)
        assert not set(got.tolist()) & set(dead.tolist())


def test_selector_restricts_results_to_allowed_rows():
    rng = np.random.default_rng(2)
    x, ids = unit_rows(rng, 400, 16), np.arange(400, dtype=np.int64)
    index = EventIndex(16, "hnsw", HnswParams(ef_search=64, ef_search_max=4096))
    index.add(ids, x)
    allowed = np.zeros(400, bool)
    allowed[rng.choice(400, 40, replace=False)] = True
    for q in unit_rows(rng, 10, 16):
        _, got = index.search(q, 5, allowed, selectivity=0.1)
        assert allowed[got].all()
        assert list(got) == list(_brute(x, ids, q, 5, allowed))


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_snapshots_write_only_new_vectors_and_read_back_the_same_index(tmp_path, kind):
    rng = np.random.default_rng(3)
    x, ids = unit_rows(rng, 300, 8), np.arange(300, dtype=np.int64) * 2
    index = EventIndex(8, kind, HnswParams())
    index.add(ids[:100], x[:100])
    (tmp_path / "s1").mkdir()
    first = write_index(index, tmp_path / "s1", tmp_path / "vectors", [])
    index.add(ids[100:], x[100:])
    index.remove(ids[:10])
    (tmp_path / "s2").mkdir()
    second = write_index(index, tmp_path / "s2", tmp_path / "vectors", first)
    assert second[0] == first[0] and len(second) == 2  # the first 100 vectors were not written again
    back = read_index(tmp_path / "s2", tmp_path / "vectors", second, 8, index.generation, HnswParams())
    assert back.kind == kind and back.dead == 10 and np.array_equal(back.ids, ids)
    assert np.allclose(back.storage_view(), x)
    for q in x[::30]:
        assert list(back.search(q, 5)[1]) == list(index.search(q, 5)[1])
    back.add(np.array([1000]), x[50:51])  # a loaded index keeps growing
    assert sorted(back.search(x[50], 2)[1].tolist()) == [100, 1000]


def test_a_rebuilt_index_writes_all_its_vectors_again(tmp_path):
    x, ids = unit_rows(np.random.default_rng(4), 50, 8), np.arange(50, dtype=np.int64)
    old = EventIndex(8, "flat", HnswParams())
    old.add(ids, x)
    (tmp_path / "a").mkdir()
    chunks = write_index(old, tmp_path / "a", tmp_path / "vectors", [])
    rebuilt = build_index(8, "hnsw", HnswParams(), ids[10:], x[10:])
    (tmp_path / "b").mkdir()
    assert write_index(rebuilt, tmp_path / "b", tmp_path / "vectors", chunks) == [
        f"{rebuilt.generation}-{0:012d}-{40:012d}.npy"
    ]


def test_rebuild_over_live_rows_drops_tombstones():
    rng = np.random.default_rng(4)
    x, ids = unit_rows(rng, 50, 8), np.arange(50, dtype=np.int64)
    rebuilt = build_index(8, "flat", HnswParams(), ids[::-1][:30].copy(), x[::-1][:30].copy())
    assert rebuilt.ntotal == 30 and np.all(np.diff(rebuilt.ids) > 0)
    assert list(rebuilt.search(x[40], 1)[1]) == [40]


def test_event_numbers_must_grow():
    index = EventIndex(4, "flat", HnswParams())
    index.add(np.array([5]), unit_rows(np.random.default_rng(0), 1, 4))
    with pytest.raises(ValueError, match="must grow"):
        index.add(np.array([5]), unit_rows(np.random.default_rng(0), 1, 4))


def test_auto_kind_switches_at_the_threshold():
    assert choose_kind("auto", 100, 100) == "flat"
    assert choose_kind("auto", 101, 100) == "hnsw"
    assert choose_kind("hnsw", 1, 100) == "hnsw"
