"""Which events retention deletes: a pure choice over one stream's columns.

Rules, per stream:
1. Age: unpinned events added more than `max_age_s` ago go; pinned ones (alert evidence) only past
   `pinned_max_age_s` (None keeps them).
2. Disk budget: while the stream's bytes exceed `budget_bytes`, the oldest unpinned event goes
   (oldest by index time); pinned events go last, and only when nothing unpinned is left.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from .partitions import StreamPartition


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    max_age_s: float | None = None
    pinned_max_age_s: float | None = None
    budget_bytes: int | None = None


def choose_victims(
    t0: np.ndarray,  # [n] index time (start)
    added_wall_s: np.ndarray,  # [n]
    pinned: np.ndarray,  # [n] bool
    nbytes: np.ndarray,  # [n] int64
    policy: RetentionPolicy,
    now_wall_s: float,
) -> np.ndarray:
    """Indices (into the given live rows) to delete, in deletion order."""
    n = t0.shape[0]
    doomed = np.zeros(n, dtype=bool)
    if policy.max_age_s is not None:
        doomed |= ~pinned & (added_wall_s < now_wall_s - policy.max_age_s)
    if policy.pinned_max_age_s is not None:
        doomed |= pinned & (added_wall_s < now_wall_s - policy.pinned_max_age_s)
    # Unpinned before pinned; inside each, oldest first (ties: earlier added first).
    order = np.lexsort((added_wall_s, t0, pinned))
    victims = [int(i) for i in order if doomed[i]]
    if policy.budget_bytes is not None:
        remaining = int(nbytes[~doomed].sum())
        for i in order.tolist():
            if remaining <= policy.budget_bytes:
                break
            if not doomed[i]:
                doomed[i] = True
                victims.append(int(i))
                remaining -= int(nbytes[i])
    return np.asarray(victims, dtype=np.int64)


def choose_in_partitions(
    parts: Mapping[str, StreamPartition], policy_for: Callable[[str], RetentionPolicy], now_wall_s: float
) -> list[str]:
    """Event ids to delete across a shard's streams, each stream under its own policy."""
    victims: list[str] = []
    for name, part in parts.items():
        policy = policy_for(name)
        if policy == RetentionPolicy():
            continue
        rows = part.live_rows()
        c = part.cols
        chosen = choose_victims(
            c["t0"][rows], c["added_wall_s"][rows], c["pinned"][rows], c["bytes"][rows], policy, now_wall_s
        )
        victims += [part.event_ids[i] for i in rows[chosen].tolist()]
    return victims
