"""Records the memory bank hands out: search hits, write acknowledgements, stream registry entries,
entries of the Redis Stream of new events, and health.

Time model. Every stream has one clock, fixed when it is registered:
- "pts": recorded files. Times are presentation seconds from the file's start (`start_pts_s`).
- "wall": live streams. Times are Unix seconds when the frames arrived (`start_wall_s`).
An event's *index time* is its [start, end] on its stream's clock; search windows (`since`, `until`)
are compared with it, half-open: an event matches when start < until and end > since (it overlaps the
window). A window given across several streams applies to each on its own clock. Hits carry both
pts and wall times whatever the clock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Clock = Literal["pts", "wall"]
CLOCKS: tuple[str, ...] = ("pts", "wall")


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: a time range of one stream, how well it matched and through which channel."""

    event_id: str
    stream_id: str
    start_pts_s: float
    end_pts_s: float
    start_wall_s: float | None
    end_wall_s: float | None
    score: float
    channel: str = "visual"  # visual | ocr | speech | fused
    snippet: str = ""
    thumbnail_path: str | None = None
    pinned: bool = False  # kept as alert evidence


@dataclass(frozen=True, slots=True)
class Ack:
    """`add` returned: the event's log record is on disk (fsynced), so it survives a crash."""

    event_id: str
    shard: int
    lsn: int  # position of the event's record in its shard's replay log
    duplicate: bool = False  # the bank already held this event id; nothing was written
    published: bool = True  # Redis has the metadata and the new-event entry; False while Redis is down


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """A registry entry: how a stream's times are read, and the options it was added with."""

    stream_id: str
    clock: Clock
    options: dict[str, Any] = field(default_factory=dict)
    created_wall_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One entry of the Redis Stream that alert engines and live sessions follow."""

    entry_id: str  # Redis Stream id, pass it back to `follow` as last_id
    op: str  # add | delete | pin | unpin
    event_id: str
    stream_id: str
    start_pts_s: float | None = None
    end_pts_s: float | None = None
    start_wall_s: float | None = None
    end_wall_s: float | None = None


@dataclass(frozen=True, slots=True)
class RedisHealth:
    state: str  # ok | unavailable
    url: str  # where (a unix socket path for the embedded server)
    embedded: bool
    last_error: str = ""
    failures: int = 0  # consecutive failed calls
    pending_events: int = 0  # logged events waiting to be written to Redis


@dataclass(frozen=True, slots=True)
class ShardHealth:
    shard: int
    events: int
    index: str  # flat | hnsw
    dead_entries: int  # deleted events still in the index (tombstones until the next rebuild)
    lsn: int
    snapshot_lsn: int
    recovered_records: int  # log records replayed when the shard opened
    recover_s: float  # opening the shard: snapshot_load_s + replay_s + Redis check
    disk_bytes: int
    snapshot_load_s: float = 0.0
    replay_s: float = 0.0
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class BankHealth:
    state: str  # ok | degraded (Redis down: search works, publication waits) | closed
    redis: RedisHealth
    shards: list[ShardHealth]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
