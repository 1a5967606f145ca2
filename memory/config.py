"""Settings for the memory stage (a section of `vidsight.settings.Settings`).

`data_dir` and `redis_url` are top-level settings shared with other stages; the bank receives them
next to this section: `MemoryBank(settings.memory, data_dir=settings.data_dir, redis_url=settings.redis_url)`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MiB = 1 << 20


class MemorySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shards: int = Field(
        1, ge=1, le=64, description="Shards (one writer each); streams map to shards by hash."
    )
    embedding_dim: int | None = Field(
        None, ge=2, le=8192, description="Retrieval embedding size; None takes it from the first event."
    )

    # Index choice.
    index_kind: Literal["auto", "flat", "hnsw"] = Field(
        "auto", description="auto: exact (IndexFlatIP) up to exact_max_events live events, HNSW above."
    )
    exact_max_events: int = Field(
        2048, ge=0, le=1_000_000, description="Largest shard that auto keeps on exact search."
    )
    hnsw_m: int = Field(32, ge=4, le=128, description="HNSW graph degree.")
    hnsw_ef_construction: int = Field(
        200,
        ge=8,
        le=2048,
        description="HNSW build-time beam width. At 1M clustered 768-d events, 64 built a graph whose "
        "recall@10 stayed at 0.87 at efSearch 128 (0.92 at 256); a wider beam builds a better graph, "
        "at about twice the insert cost.",
    )
    hnsw_ef_search: int = Field(
        128,
        ge=8,
        le=4096,
        description="HNSW search beam width (unfiltered). Clustered 768-d, 200k: recall 0.957 at 64, "
        "0.995 at 128 (bench memory's ef sweep).",
    )
    hnsw_ef_search_max: int = Field(
        2048, ge=8, le=65536, description="Cap on the beam width widened for filtered HNSW searches."
    )
    filtered_exact_max: int | None = Field(
        None,
        ge=0,
        le=10_000_000,
        description="Filters matching at most this many events are searched exactly over the stream "
        "partitions (recall 1); larger ones use HNSW with an id selector. None: sqrt(8 * events * "
        "hnsw_ef_search), where the two cost the same on the 2-core box (exact is memory-bound, "
        "HNSW's widened beam grows as 1/selectivity).",
    )
    postfilter_min_selectivity: float = Field(
        0.05,
        gt=0,
        le=1,
        description="Filters matching at least this share of the events (e.g. 'the last 12 hours' over "
        "every camera) search the index unfiltered for 2k/share candidates and keep the matching ones, "
        "instead of building an id selector over that many rows. 1M events, p95: 10% matching 2.2 ms "
        "(selector 29 ms), 50% 1.7 ms (selector 71 ms); at 1% exact partitions win (3.8 vs 11.9 ms). "
        "Falls back to the selector when too few candidates match.",
    )
    compact_dead_fraction: float = Field(
        0.3, gt=0, lt=1, description="Rebuild the index when this fraction of its entries are deleted."
    )

    # Durability.
    snapshot_every_events: int = Field(
        10_000,
        ge=1,
        le=100_000_000,
        description="Snapshot after this many log records: bounds the replay after a crash (replaying "
        "costs about what inserting did). Snapshots write only vectors added since the last one.",
    )
    snapshot_interval_s: float = Field(
        600.0, gt=0, le=86_400, description="Snapshot at least this often while records arrive."
    )
    wal_segment_bytes: int = Field(
        64 * MiB, ge=64 * 1024, le=4096 * MiB, description="Replay-log file size before rotating."
    )
    maintenance_interval_s: float = Field(
        30.0, ge=0, le=3600, description="Background snapshot/retention/Redis-resync period; 0 disables it."
    )

    # Token blobs.
    token_cache_bytes: int = Field(
        256 * MiB, ge=0, le=1 << 40, description="In-memory LRU of loaded token blobs."
    )
    min_free_disk_bytes: int = Field(
        256 * MiB, ge=0, description="Refuse writes (DiskFullError) when the data disk has less free space."
    )

    # Retention.
    retention_max_age_s: float | None = Field(
        None,
        gt=0,
        description="Delete unpinned events older than this (by when they were added); None keeps.",
    )
    pinned_max_age_s: float | None = Field(
        None, gt=0, description="Delete pinned events (alert evidence) older than this; None keeps them."
    )
    stream_disk_budget_bytes: int | None = Field(
        None, ge=0, description="Per-stream disk budget; the oldest unpinned events go first, pinned last."
    )

    # Redis.
    redis_key_prefix: str = Field(
        "vidsight:", min_length=1, max_length=64, description="Prefix of every Redis key the bank writes."
    )
    redis_connect_timeout_s: float = Field(2.0, gt=0, le=60, description="Redis connect timeout.")
    redis_socket_timeout_s: float = Field(2.0, gt=0, le=60, description="Redis read/write timeout.")
    redis_retries: int = Field(4, ge=0, le=20, description="Retries of a failed Redis call before giving up.")
    redis_backoff_base_s: float = Field(0.05, gt=0, le=10, description="First Redis retry delay.")
    redis_backoff_cap_s: float = Field(0.5, gt=0, le=30, description="Longest Redis retry delay.")
    redis_probe_interval_s: float = Field(
        1.0, gt=0, le=60, description="While Redis is down, try it again at most this often."
    )
    redis_max_pending: int = Field(
        100_000, ge=0, description="Logged events waiting for Redis; past this, add() refuses."
    )
    event_stream_maxlen: int = Field(
        1_000_000, ge=1000, description="Approximate length cap of the Redis Stream of new events."
    )
    embedded_redis_appendfsync: Literal["always", "everysec"] = Field(
        "everysec", description="AOF fsync policy of the embedded Redis (its persistence is always on)."
    )
