"""Backtest: what an alert would have fired over recorded events, judged exactly as live.

Per stream, events are judged in the order of their start times with the live decision step
(decision.judge): the same scores, the same calibration window (warmed on the `window_events`
events that start just before `since`, which are judged for calibration only), the same schedule
and cooldown. Nothing is stored, pinned or notified. Live processing of the same events in the same
order from an empty window fires on the same events with the same scores.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from .calibration import ScoreWindow
from .config import ScoringSettings
from .decision import EventView, StreamState, judge
from .errors import InvalidAlertError
from .models import Alert, Firing
from .scoring import PreparedQuery, Scorer
from .source import MemoryLike, check_window, event_ids_by_start

MAX_EVENT_S = 3600.0  # an event starting this long before `since` can no longer overlap the window


def run_backtest(
    alert: Alert,
    prepared: PreparedQuery,
    memory: MemoryLike,
    scorer: Scorer,
    settings: ScoringSettings,
    *,
    streams: Sequence[str] | None = None,
    since: float | None = None,
    until: float | None = None,
) -> list[Firing]:
    """Firings (is_backtest=True, state new) ordered by stream, then time."""
    check_window(since, until)
    stream_ids = _streams(alert, memory, streams)
    firings: list[Firing] = []
    for stream_id in stream_ids:
        firings.extend(_backtest_stream(alert, prepared, memory, scorer, settings, stream_id, since, until))
    return firings


def _streams(alert: Alert, memory: MemoryLike, streams: Sequence[str] | None) -> list[str]:
    known = set(memory.streams())
    wanted = list(streams) if streams is not None else (alert.streams or sorted(known))
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise InvalidAlertError(f"unknown streams {unknown[:10]}; known: {sorted(known)[:20]}")
    return wanted


def _backtest_stream(
    alert: Alert, prepared: PreparedQuery, memory: MemoryLike, scorer: Scorer, settings: ScoringSettings,
    stream_id: str, since: float | None, until: float | None,
) -> list[Firing]:  # fmt: skip
    state = StreamState(ScoreWindow(settings.window_events))
    lo = None if since is None else since - MAX_EVENT_S
    ids = event_ids_by_start(memory, stream_id, lo, until)
    views = [EventView.of(memory.get_event(i)) for i in ids]
    is_wall = getattr(memory.streams().get(stream_id), "clock", "pts") == "wall"
    in_window = [since is None or _end_on_clock(v, is_wall) > since for v in views]
    if since is not None:
        warmup = [v for v, inside in zip(views, in_window, strict=True) if not inside]
        warmup += _before(memory, stream_id, lo, settings.window_events - len(warmup))
        warmup.sort(key=lambda v: v.time_s)
        for v in warmup[-settings.window_events :]:
            _judge(alert, prepared, scorer, settings, state, v)
        state.last_fire_s = None  # warm-up events are judged for calibration only
    firings = []
    for v, inside in zip(views, in_window, strict=True):
        if inside:
            j = _judge(alert, prepared, scorer, settings, state, v)
            if j is not None:
                firings.append(j)
    return firings


def _end_on_clock(view: EventView, is_wall: bool) -> float:
    return view.end_wall_s if is_wall and view.end_wall_s is not None else view.end_pts_s


def _before(memory: MemoryLike, stream_id: str, lo: float | None, count: int) -> list[EventView]:
    """The `count` events starting just before `lo` (more calibration warm-up)."""
    if count <= 0 or lo is None:
        return []
    ids = event_ids_by_start(memory, stream_id, None, lo)[-count:]
    return [EventView.of(memory.get_event(i)) for i in ids]


def _judge(
    alert: Alert, prepared: PreparedQuery, scorer: Scorer, settings: ScoringSettings, state: StreamState,
    view: EventView,
) -> Firing | None:  # fmt: skip
    scores = scorer.score(view.embedding, view.text, [prepared])[0]
    return judge(alert, view, scores, state, settings, now_s=time.time(), is_backtest=True).firing
