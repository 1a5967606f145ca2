"""Keeps one shard's Redis state caught up with its log.

The log is the truth; Redis is a copy that other processes read. Each logged change becomes a
`RedisOp` queued here and applied in log order. While Redis is down the queue grows (bounded by
`redis_max_pending`, past which `add` refuses) and is retried at most every probe interval.

Redis may come back with less than it had (restarted without persistence, or an AOF that lost its
last second). Every op moves a per-shard watermark in Redis in the same atomic script, so on the
first contact after an outage (and at open) a watermark below what we know was applied means data
was lost: then the shard's events are written again from memory (publishing to the event stream
only those Redis never had).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

from .codec import redis_fields
from .errors import StoreUnavailableError
from .partitions import EventRow
from .redis_store import RedisOp, RedisStore

log = logging.getLogger(__name__)
_CHUNK = 2000


class RedisSync:
    def __init__(
        self, redis: RedisStore, shard: int, floor_lsn: int, thumbnail: Callable[[EventRow], str | None]
    ) -> None:
        self.redis = redis
        self.shard = shard
        self.pending: deque[RedisOp] = deque()
        self._floor = floor_lsn  # Redis must hold at least this much of the log
        self._check = True  # compare the watermark at the next contact
        self._thumbnail = thumbnail
        self.resyncs = 0
        self.last_error = ""

    def set_floor(self, lsn: int) -> None:
        """Redis must hold the log up to lsn (what a snapshot covers); checked at the next contact."""
        self._floor = lsn
        self._check = True

    def add_op(self, row: EventRow, publish: bool = True) -> RedisOp:
        fields = redis_fields(row, self.shard, self._thumbnail(row))
        return RedisOp(
            "add", self.shard, row.lsn, row.event_id, row.stream_id, publish, row.t0, row.pinned, fields
        )

    def delete_op(self, lsn: int, event_id: str, stream_id: str, publish: bool = True) -> RedisOp:
        return RedisOp("delete", self.shard, lsn, event_id, stream_id, publish)

    def pin_op(self, lsn: int, event_id: str, stream_id: str, pinned: bool, publish: bool = True) -> RedisOp:
        return RedisOp("pin", self.shard, lsn, event_id, stream_id, publish, pinned=pinned)

    def flush(self, rows: Callable[[], list[EventRow]]) -> bool:
        """Apply what is pending; True when Redis is caught up. `rows` gives the shard's live events
        (only called for a re-sync)."""
        if not self.pending and not self._check:
            return True
        if not self.redis.may_try():
            return False
        try:
            if self._check:
                watermark = self.redis.applied_lsn(self.shard)
                if watermark < self._floor:
                    self._resync(rows(), watermark)
                self._check = False
            while self.pending:
                chunk = [self.pending[i] for i in range(min(_CHUNK, len(self.pending)))]
                found = self.redis.apply(chunk)
                if found[0] < self._floor:  # restarted empty between two calls, without an error
                    self._resync(rows(), found[0])
                for _ in chunk:
                    self.pending.popleft()
                self._floor = max(self._floor, chunk[-1].lsn)
            self.last_error = ""
            return True
        except StoreUnavailableError as exc:
            self._check = True
            self.last_error = str(exc)
            return False

    def _resync(self, rows: list[EventRow], watermark: int) -> None:
        log.warning(
            "Redis holds shard %d only up to log position %d, below %d: writing its %d events again",
            self.shard,
            watermark,
            self._floor,
            len(rows),
        )
        self.resyncs += 1
        live = {r.event_id for r in rows}
        ops: list[RedisOp] = []
        # lsn 0: these ops must not move the watermark; it moves once all of them are in.
        for stream_id in sorted({r.stream_id for r in rows}):
            for event_id in self.redis.stream_event_ids(stream_id):
                if event_id not in live:
                    ops.append(self.delete_op(0, event_id, stream_id, publish=False))
        for row in rows:
            add = self.add_op(row, publish=row.lsn > watermark)
            ops.append(
                RedisOp(
                    "add",
                    add.shard,
                    0,
                    add.event_id,
                    add.stream_id,
                    add.publish,
                    add.score,
                    add.pinned,
                    add.fields,
                )
            )
            ops.append(self.pin_op(0, row.event_id, row.stream_id, row.pinned, publish=False))
        for i in range(0, len(ops), _CHUNK):
            self.redis.apply(ops[i : i + _CHUNK])
        self.redis.bump_watermark(self.shard, self._floor)
