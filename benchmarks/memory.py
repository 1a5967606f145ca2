"""Memory bank: insert rate, search latency and recall (plain and filtered), bytes per event, recovery.

N events of dimension D with random but clustered embeddings (unit vectors around `--clusters`
centres), spread round-robin over `--streams` streams, one event every 2 s per stream. Queries are
perturbed events. Recall@10 is measured against exact search over the same subset. The filtered
query is one stream and a window of `--window` of the timeline. Recovery: the bank is dropped
without a final snapshot (as a kill -9 would leave it) and reopened; recover_s runs to the first
answer.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import machine, percentile
from compressor.records import Event, EventStats

SECONDS_PER_EVENT = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--events", type=int, default=None, help="events (default 1,000,000; --quick 200,000)"
    )
    parser.add_argument("--dim", type=int, default=768, help="embedding dimension")
    parser.add_argument("--streams", type=int, default=100, help="streams the events are spread over")
    parser.add_argument("--clusters", type=int, default=1000, help="embedding cluster centres")
    parser.add_argument("--noise", type=float, default=0.5, help="norm of the spread around a centre")
    parser.add_argument(
        "--intrinsic-dim",
        type=int,
        default=16,
        help="directions a cluster spreads along (0: isotropic noise in all dimensions, the hard case)",
    )
    parser.add_argument("--queries", type=int, default=300, help="queries per measurement")
    parser.add_argument("--window", type=float, default=0.1, help="filtered window, fraction of the timeline")
    parser.add_argument("--batch", type=int, default=2000, help="events per add_many (one fsync each)")
    parser.add_argument("--data-dir", default=None, help="where the bank is written (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the bank's files")
    parser.add_argument(
        "--blob-tokens-per-s",
        type=float,
        default=38.4,
        help="kept LLM tokens per second of video for the token-blob measurement (default: 448 px, "
        "2 fps, Qwen2.5-VL 256 merged tokens per grid, kept ratio 0.15 from bench compress)",
    )
    parser.add_argument("--blob-dim", type=int, default=3584, help="LLM hidden size (Qwen2.5-VL-7B: 3584)")
    parser.add_argument(
        "--event-s", type=float, default=10.0, help="event length for the token-blob measurement"
    )


# --- data ------------------------------------------------------------------------------------------
def clustered(
    n: int, dim: int, clusters: int, noise: float, rng: np.random.Generator, intrinsic_dim: int = 16
) -> np.ndarray:
    """[n, dim] float32 unit rows around `clusters` random centres.

    intrinsic_dim > 0: each cluster spreads along its own random `intrinsic_dim`-dimensional
    subspace (norm ~noise) plus a little isotropic noise, as embeddings of one scene vary along a
    few directions. 0: isotropic Gaussian noise of norm ~noise in all `dim` directions, where
    distances inside a cluster concentrate and near-ties make exact top-10 hard for any graph index.
    """
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, clusters, n)
    out = np.empty((n, dim), np.float32)
    if intrinsic_dim <= 0:
        for lo in range(0, n, 50_000):
            hi = min(n, lo + 50_000)
            chunk = centres[labels[lo:hi]]
            chunk += rng.standard_normal((hi - lo, dim), dtype=np.float32) * (noise / np.sqrt(dim))
            out[lo:hi] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
        return out
    for c in range(clusters):
        rows = np.flatnonzero(labels == c)
        basis = rng.standard_normal((intrinsic_dim, dim), dtype=np.float32) / np.sqrt(dim)
        z = rng.standard_normal((rows.shape[0], intrinsic_dim), dtype=np.float32) * (
            noise / np.sqrt(intrinsic_dim)
        )
        chunk = centres[c] + z @ basis
        chunk += rng.standard_normal(chunk.shape, dtype=np.float32) * (0.05 / np.sqrt(dim))
        out[rows] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return out


def perturbed(x: np.ndarray, count: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    q = x[rng.integers(0, x.shape[0], count)] + rng.standard_normal((count, x.shape[1]), dtype=np.float32) * (
        noise / np.sqrt(x.shape[1])
    )
    return q / np.linalg.norm(q, axis=1, keepdims=True)


_EMPTY = {
    "tokens": np.zeros((0, 1), np.float16),
    "positions": np.zeros((0, 3), np.int32),
    "counts": np.zeros(0, np.int32),
    "grid_pts_s": np.zeros(0),
}


def index_only_event(i: int, vector: np.ndarray, streams: int) -> Event:
    """An event carrying only its embedding (no token blob, no thumbnail: the index is measured)."""
    t0 = (i // streams) * SECONDS_PER_EVENT
    return Event(
        event_id=f"e{i}",
        stream_id=f"s{i % streams}",
        start_pts_s=t0,
        end_pts_s=t0 + SECONDS_PER_EVENT,
        start_wall_s=None,
        end_wall_s=None,
        embedding=vector,
        grid_t0=0,
        grid_hw=(1, 1),
        stats=EventStats(frames=2, grids=1, tokens_in=0, tokens_kept=0),
        **_EMPTY,
    )


# --- measurements ----------------------------------------------------------------------------------
def recall(got: list[int], truth: np.ndarray) -> float:
    return len(set(got) & set(truth.tolist())) / max(1, min(10, truth.shape[0]))


def exact_top10(x: np.ndarray, queries: np.ndarray, subsets: list[np.ndarray | None]) -> list[np.ndarray]:
    """Exact top-10 event indices per query among its subset (None: all events). Small subsets are
    gathered; the rest share one chunked pass over x (the scan is memory-bound: one pass, not one
    per query)."""
    out: list[np.ndarray] = [np.empty(0, np.int64)] * len(queries)
    big: list[int] = []
    for i, rows in enumerate(subsets):
        if rows is not None and rows.shape[0] * 20 < x.shape[0]:
            out[i] = rows[np.argsort(-(x[rows] @ queries[i]))[:10]]
        else:
            big.append(i)
    if not big:
        return out
    n = x.shape[0]
    masks: dict[int, np.ndarray] = {}
    for j, i in enumerate(big):
        rows = subsets[i]
        if rows is not None:
            masks[j] = np.zeros(n, bool)
            masks[j][rows] = True
    best_scores = np.full((len(big), 10), -np.inf, np.float32)
    best_rows = np.zeros((len(big), 10), np.int64)
    for lo in range(0, n, 65_536):
        hi = min(n, lo + 65_536)
        scores = queries[big] @ x[lo:hi].T  # [queries, chunk]
        for j, mask in masks.items():
            scores[j, ~mask[lo:hi]] = -np.inf
        all_scores = np.concatenate([best_scores, scores], axis=1)
        all_rows = np.concatenate([best_rows, np.broadcast_to(np.arange(lo, hi), scores.shape)], axis=1)
        keep = np.argpartition(-all_scores, 9, axis=1)[:, :10]
        best_scores = np.take_along_axis(all_scores, keep, 1)
        best_rows = np.take_along_axis(all_rows, keep, 1)
    order = np.argsort(-best_scores, axis=1)
    for j, i in enumerate(big):
        out[i] = best_rows[j][order[j]][np.isfinite(best_scores[j][order[j]])]
    return out


def latency_summary(times_s: list[float], recalls: list[float]) -> dict[str, float]:
    ms = [t * 1000 for t in times_s]
    return {
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "recall_at_10": round(float(np.mean(recalls)), 4),
    }


def filter_rows(
    n: int, streams: int, chosen: list[int], since: float | None, until: float | None
) -> np.ndarray:
    """Event indices of the chosen streams overlapping [since, until)."""
    rows = np.sort(np.concatenate([np.arange(s, n, streams) for s in chosen]))
    t0 = (rows // streams) * SECONDS_PER_EVENT
    keep = np.ones(rows.shape[0], bool)
    if until is not None:
        keep &= t0 < until
    if since is not None:
        keep &= t0 + SECONDS_PER_EVENT > since
    return rows[keep]


def _fid_to_row(bank: Any) -> Any:
    # Events are added in order from 0 in one shard, so event number i is event e{i}.
    return lambda event_id: int(event_id[1:])


def measure_search(bank: Any, queries: np.ndarray, truths: list[np.ndarray]) -> dict[str, float]:
    """truths: computed before, not between timed searches: a BLAS call leaves its threads spinning
    on the cores the next search needs (10 ms p50 instead of 0.4 ms, measured)."""
    times, found = [], []
    for q in queries[:20]:
        bank.search(q, k=10)  # warm-up
    for q in queries:
        start = time.perf_counter()
        hits = bank.search(q, k=10)
        times.append(time.perf_counter() - start)
        found.append([int(h.event_id[1:]) for h in hits])
    return latency_summary(times, [recall(f, t) for f, t in zip(found, truths, strict=True)])


def filtered_requests(
    n: int, streams: int, window: float, count: int, rng: np.random.Generator, width: int = 1
):
    timeline_s = (n // streams) * SECONDS_PER_EVENT
    for _ in range(count):
        chosen = sorted(rng.choice(streams, width, replace=False).tolist())
        if window >= 1.0:
            yield chosen, None, None
            continue
        since = float(rng.uniform(0, timeline_s * (1 - window)))
        yield chosen, since, since + timeline_s * window


def filtered_truth(x: np.ndarray, streams: int, queries: np.ndarray, requests: list) -> tuple[list, float]:
    """Exact top-10 over each request's subset, and the mean subset size."""
    subsets = [filter_rows(x.shape[0], streams, chosen, since, until) for chosen, since, until in requests]
    truths = exact_top10(x, queries[: len(requests)], list(subsets))
    return truths, float(np.mean([r.shape[0] for r in subsets]))


def measure_filtered(bank: Any, queries: np.ndarray, requests: list, truths: list, route: str | None) -> dict:
    """route None: the public bank.search; else the shard's search forced onto that route."""
    writer = bank.writers[0]
    times, recalls = [], []
    for q, (chosen, since, until), truth in zip(queries, requests, truths, strict=False):
        names = [f"s{s}" for s in chosen]
        start = time.perf_counter()
        if route is None:
            got = [int(h.event_id[1:]) for h in bank.search(q, k=10, streams=names, since=since, until=until)]
        else:
            with writer._rw.read():
                _, fids, _ = writer.mem.search(q, 10, names, since, until, route=route)
            got = fids.tolist()  # event number i is event e{i}
        times.append(time.perf_counter() - start)
        recalls.append(recall(got, truth))
    return latency_summary(times, recalls)


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --- the run ---------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    with _single_threaded_blas():
        yield from _run(args)


@contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """numpy's BLAS (ground truth here) leaves threads spinning after each call, on the same two
    cores FAISS searches on; one BLAS thread keeps the timings about the bank."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _run(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    from memory import MemoryBank

    n = args.events or (200_000 if args.quick else 1_000_000)
    rng = np.random.default_rng(0)
    settings = args.settings.memory.model_copy(
        update={
            "maintenance_interval_s": 0,
            "embedding_dim": args.dim,
            "redis_key_prefix": f"bench-{uuid.uuid4().hex[:8]}:",
        }
    )
    root = Path(tempfile.mkdtemp(prefix="bench-memory-", dir=args.data_dir))
    redis_url = args.settings.redis_url
    started = time.perf_counter()
    x = clustered(n, args.dim, args.clusters, args.noise, rng, args.intrinsic_dim)
    queries = perturbed(x, args.queries + 20, args.noise, rng)
    yield {"phase": "data", "events": n, "dim": args.dim, "seconds": round(time.perf_counter() - started, 1)}

    bank = MemoryBank(settings, data_dir=root, redis_url=redis_url)
    try:
        for s in range(args.streams):
            bank.register_stream(f"s{s}", clock="pts")
        insert_s = 0.0
        report_every = max(args.batch, n // 10)
        # Worst case for recovery: the crash comes just before the next periodic snapshot, so the
        # log holds almost snapshot_every_events records to replay.
        tail = (
            ((settings.snapshot_every_events - 1) // args.batch) * args.batch
            if n > settings.snapshot_every_events
            else 0
        )
        snapshot_at = n - tail if tail else n + 1
        for lo in range(0, n, args.batch):
            if snapshot_at <= lo < snapshot_at + args.batch:
                start = time.perf_counter()
                bank.snapshot()
                insert_s += time.perf_counter() - start
            events = [index_only_event(i, x[i], args.streams) for i in range(lo, min(n, lo + args.batch))]
            start = time.perf_counter()
            bank.add_many(events)
            insert_s += time.perf_counter() - start
            if (lo + args.batch) % report_every < args.batch:
                yield {
                    "phase": "insert",
                    "events": min(n, lo + args.batch),
                    "insert_per_s": round(min(n, lo + args.batch) / insert_s),
                }
        start = time.perf_counter()
        bank.writers[0].wait_for_rebuild()
        insert_s += time.perf_counter() - start
        health = bank.health().shards[0]
        yield {"phase": "inserted", "events": n, "insert_per_s": round(n / insert_s), "index": health.index}

        truths = exact_top10(x, queries[20:], [None] * (len(queries) - 20))
        plain = measure_search(bank, queries[20:], truths)
        yield {"phase": "search", **plain}
        yield from ef_sweep(bank, queries[20:], truths)
        yield from compare_filters(bank, x, queries[20:], args, rng)
        requests = list(filtered_requests(n, args.streams, args.window, args.queries, rng))
        truths, matching = filtered_truth(x, args.streams, queries[20:], requests)
        filtered = measure_filtered(bank, queries[20:], requests, truths, route=None)
        yield {"phase": "filtered", "window": args.window, "matching_events": round(matching), **filtered}

        bank.close(snapshot=False, keep_redis=True)  # as a kill -9 leaves it: replay the log tail
        del bank
        gc.collect()
        start = time.perf_counter()
        bank = MemoryBank(settings, data_dir=root, redis_url=redis_url)
        bank.search(queries[0], k=10)
        recover_s = time.perf_counter() - start
        shard = bank.health().shards[0]
        yield {
            "phase": "recover",
            "recover_s": round(recover_s, 2),
            "replayed_records": shard.recovered_records,
            "shard_open_s": shard.recover_s,
            "snapshot_load_s": shard.snapshot_load_s,
            "replay_s": shard.replay_s,
        }
        disk = disk_bytes(root)
        shard_dir = root / "memory" / "shard-00"
        parts = {
            "snapshot": disk_bytes(shard_dir / "snapshots"),
            "log": disk_bytes(shard_dir / "wal"),
            "redis": disk_bytes(root / "memory" / "redis"),
        }
        yield {
            "phase": "disk",
            "bytes": disk,
            **{f"{k}_bytes_per_event": round(v / n) for k, v in parts.items()},
        }
        blobs = measure_token_blobs(args, settings.model_copy(update={"embedding_dim": args.dim}), redis_url)
        yield {"phase": "token_blobs", **blobs}
        yield {
            "bench": "memory",
            "events": n,
            "dim": args.dim,
            "index": f"{health.index} (M {settings.hnsw_m}, efConstruction {settings.hnsw_ef_construction}, "
            f"efSearch {settings.hnsw_ef_search})"
            if health.index == "hnsw"
            else health.index,
            "insert_per_s": round(n / insert_s),
            "search_p50_ms": plain["p50_ms"],
            "search_p95_ms": plain["p95_ms"],
            "filtered_p95_ms": filtered["p95_ms"],
            "recall_at_10": plain["recall_at_10"],
            "filtered_recall_at_10": filtered["recall_at_10"],
            "bytes_per_event": round(disk / n),
            "bytes_per_event_with_tokens": blobs["bytes_per_event"],
            "bytes_per_hour_per_stream": blobs["bytes_per_hour"],
            "recover_s": round(recover_s, 2),
            "filter": f"1 of {args.streams} streams, {args.window:.0%} of the timeline "
            f"(~{round(matching)} events)",
            "data": f"{args.clusters} clusters, spread {args.noise} along "
            + (
                f"{args.intrinsic_dim} directions" if args.intrinsic_dim > 0 else "all directions (isotropic)"
            ),
            "redis": "embedded" if redis_url is None else "url",
            "machine": machine(),
            "loadavg": Path("/proc/loadavg").read_text().split()[:3]
            if Path("/proc/loadavg").exists()
            else None,
        }
    finally:
        bank.close(snapshot=False)
        if redis_url is not None:
            _drop_keys(redis_url, settings.redis_key_prefix)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def ef_sweep(bank: Any, queries: np.ndarray, truths: list[np.ndarray]) -> Iterator[dict[str, Any]]:
    """Unfiltered recall and latency of the shard's index at other beam widths (HNSW only)."""
    index = bank.writers[0].mem.index
    if index is None or index.kind != "hnsw":
        return
    default = index.hnsw
    try:
        for ef in (32, 64, 96, 128, 192, 256):
            index.hnsw = dataclasses.replace(default, ef_search=ef)
            times, recalls = [], []
            for q, truth in zip(queries, truths, strict=True):
                start = time.perf_counter()
                _, fids = index.search(q, 10)
                times.append(time.perf_counter() - start)
                recalls.append(recall(fids.tolist(), truth))
            yield {"phase": "ef_sweep", "ef_search": ef, **latency_summary(times, recalls)}
    finally:
        index.hnsw = default


def compare_filters(
    bank: Any, x: np.ndarray, queries: np.ndarray, args: argparse.Namespace, rng: np.random.Generator
):
    """Filtered routes side by side: per-stream partitions (exact slices), the unfiltered index with
    its candidates post-filtered, FAISS HNSW with an IDSelector (beam widened by 1/selectivity) and
    FAISS exact search with the same selector, then the bank's own choice ("auto"); from selective
    (one stream and a window) to broad (half the streams)."""
    n = x.shape[0]
    shapes = [  # (name, streams in the filter, window, queries)
        ("1 stream, window", 1, args.window, min(args.queries, 100)),
        ("1 stream", 1, 1.0, min(args.queries, 100)),
        ("10% of streams", max(1, args.streams // 10), 1.0, min(args.queries, 40)),
        ("50% of streams", max(1, args.streams // 2), 1.0, min(args.queries, 40)),
    ]
    for name, width, window, count in shapes:
        requests = list(filtered_requests(n, args.streams, window, count, rng, width))
        truths, matching = filtered_truth(x, args.streams, queries, requests)
        record: dict[str, Any] = {
            "phase": "filter_routes",
            "filter": name,
            "matching_events": round(matching),
        }
        for route in ("partitions", "postfilter", "selector", "selector_exact"):
            record[route] = measure_filtered(bank, queries, requests, truths, route=route)
        record["auto"] = measure_filtered(bank, queries, requests, truths, route=None)
        yield record


def measure_token_blobs(args: argparse.Namespace, settings: Any, redis_url: str | None) -> dict[str, Any]:
    """Disk bytes of events that carry their LLM tokens (float16), positions, counts, per-grid
    embeddings and one ~40 KB JPEG thumbnail: 6 minutes of one stream, scaled to an hour."""
    from memory import MemoryBank

    rng = np.random.default_rng(1)
    events_n = max(1, round(360 / args.event_s))
    tokens = max(1, round(args.blob_tokens_per_s * args.event_s))
    grids = max(1, round(args.event_s))  # 2 fps sampling: one Qwen2.5-VL grid per second
    root = Path(tempfile.mkdtemp(prefix="bench-memory-blobs-", dir=args.data_dir))
    bank = MemoryBank(settings, data_dir=root, redis_url=redis_url)
    try:
        bank.register_stream("cam", clock="pts")
        start = time.perf_counter()
        for i in range(events_n):
            t0 = i * args.event_s
            bank.add(
                Event(
                    event_id=f"b{i}",
                    stream_id="cam",
                    start_pts_s=t0,
                    end_pts_s=t0 + args.event_s,
                    start_wall_s=None,
                    end_wall_s=None,
                    embedding=rng.standard_normal(args.dim, dtype=np.float32),
                    tokens=rng.standard_normal((tokens, args.blob_dim), dtype=np.float32).astype(np.float16),
                    positions=rng.integers(0, 64, (tokens, 3)).astype(np.int32),
                    counts=np.ones(tokens, np.int32),
                    grid_t0=i * grids,
                    grid_pts_s=t0 + np.arange(grids, dtype=np.float64),
                    grid_hw=(16, 16),
                    stats=EventStats(
                        frames=2 * grids, grids=grids, tokens_in=256 * grids, tokens_kept=tokens
                    ),
                    thumbnails=[rng.integers(0, 256, 40_000, dtype=np.uint8).tobytes()],
                    grid_embeddings=rng.standard_normal((grids, args.dim), dtype=np.float32).astype(
                        np.float16
                    ),
                )
            )
        add_s = time.perf_counter() - start
        start = time.perf_counter()
        loaded = bank.get_event(f"b{events_n // 2}")
        get_ms = (time.perf_counter() - start) * 1000
        assert loaded.tokens.shape == (tokens, args.blob_dim)
        bank.close()
        per_event = disk_bytes(root / "memory" / "shard-00") / events_n
        return {
            "tokens_per_event": tokens,
            "llm_dim": args.blob_dim,
            "event_s": args.event_s,
            "bytes_per_event": round(per_event),
            "bytes_per_hour": round(per_event * 3600 / args.event_s),
            "add_ms_per_event": round(add_s / events_n * 1000, 1),
            "get_event_ms": round(get_ms, 1),
        }
    finally:
        bank.close()
        shutil.rmtree(root, ignore_errors=True)


def _drop_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=10_000))
    for i in range(0, len(keys), 10_000):
        client.delete(*keys[i : i + 10_000])
