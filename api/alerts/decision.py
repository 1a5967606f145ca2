"""Is this event a candidate for this alert? One pure step shared by the live engine and the backtest,
so that both fire on exactly the same events given the same events in the same order.

Per (alert, stream) state: the calibration window and the time of the last firing. The event's
scores always join the window (whether it fires, is out of schedule or in cooldown), so the window
is the stream's own distribution, not only its quiet part.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from compressor.records import Event

from .calibration import Sample, ScoreWindow, Threshold, outlier_threshold
from .config import ScoringSettings
from .models import Alert, Evidence, Firing
from .scoring import ChannelScores, logit, sigmoid


@dataclass(frozen=True, slots=True)
class EventView:
    """What alerts read of an event: no tokens, so backtests over long footage stay light."""

    event_id: str
    stream_id: str
    start_pts_s: float
    end_pts_s: float
    start_wall_s: float | None
    end_wall_s: float | None
    embedding: np.ndarray  # [D] float32, unit norm
    text: str = ""

    @classmethod
    def of(cls, event: Event) -> EventView:
        return cls(
            event.event_id, event.stream_id, event.start_pts_s, event.end_pts_s,
            event.start_wall_s, event.end_wall_s, event.embedding, event.text,
        )  # fmt: skip

    @property
    def time_s(self) -> float:
        """Cooldowns count on the stream's clock: wall time for live streams, pts for files."""
        return self.start_wall_s if self.start_wall_s is not None else self.start_pts_s


@dataclass
class StreamState:
    window: ScoreWindow
    last_fire_s: float | None = None


@dataclass(frozen=True, slots=True)
class Judgement:
    sample: Sample
    firing: Firing | None
    reason: str  # fired | below threshold | out of schedule | cooldown | already processed


def firing_id(alert_id: str, event_id: str) -> str:
    """Deterministic, so a re-processed event maps to the same firing (no duplicates after a crash)."""
    digest = hashlib.sha1(f"{alert_id}\0{event_id}".encode()).hexdigest()[:16]
    return f"f-{digest}"


def thresholds(window: ScoreWindow, s: ScoringSettings) -> tuple[Threshold, Threshold]:
    """(visual threshold on the logit, text threshold on the text score) for the window's stream."""
    visual = outlier_threshold(
        window.visual(), k=s.k, min_spread=s.visual_min_spread_logit, min_samples=s.min_samples,
        floor=logit(s.visual_min_probability), warmup_floor=logit(s.warmup_visual_probability),
    )  # fmt: skip
    text = outlier_threshold(
        window.text(), k=s.k, min_spread=s.text_min_spread, min_samples=s.min_samples,
        floor=s.text_min_score, warmup_floor=s.warmup_text_score,
    )  # fmt: skip
    return visual, text


def judge(
    alert: Alert, event: EventView, scores: ChannelScores, state: StreamState, settings: ScoringSettings,
    *, now_s: float, is_backtest: bool = False,
) -> Judgement:  # fmt: skip
    """Decide on one event and advance `state` (window and cooldown) accordingly."""
    sample = Sample(event.event_id, scores.visual_logit, scores.text_score)
    if event.event_id in state.window:
        return Judgement(sample, None, "already processed")
    vis_thr, txt_thr = thresholds(state.window, settings)
    state.window.add(sample)
    is_visual = scores.visual_logit is not None and scores.visual_logit >= vis_thr.value
    is_text = scores.text_score is not None and scores.text_score >= txt_thr.value
    if not (is_visual or is_text):
        return Judgement(sample, None, "below threshold")
    if not alert.schedule.is_active(event.start_wall_s):
        return Judgement(sample, None, "out of schedule")
    if state.last_fire_s is not None and abs(event.time_s - state.last_fire_s) < alert.cooldown_s:
        return Judgement(sample, None, "cooldown")
    state.last_fire_s = event.time_s
    evidence = Evidence(
        visual_probability=scores.visual_probability, visual_threshold=sigmoid(vis_thr.value),
        text_score=scores.text_score, text_threshold=txt_thr.value, text_cosine=scores.text_cosine,
        keyword_overlap=scores.keyword_overlap, matched_terms=scores.matched_terms, snippet=scores.snippet,
        calibration_samples=vis_thr.samples if is_visual else txt_thr.samples,
    )  # fmt: skip
    channel = "visual+text" if is_visual and is_text else ("visual" if is_visual else "text")
    score = max(
        scores.visual_probability if is_visual and scores.visual_probability is not None else 0.0,
        scores.text_score if is_text and scores.text_score is not None else 0.0,
    )
    firing = Firing(
        id=firing_id(alert.id, event.event_id), alert_id=alert.id, event_id=event.event_id,
        stream_id=event.stream_id, start_pts_s=event.start_pts_s, end_pts_s=event.end_pts_s,
        start_wall_s=event.start_wall_s, end_wall_s=event.end_wall_s, score=score, channel=channel,
        evidence=evidence, created_s=now_s, updated_s=now_s, is_backtest=is_backtest,
    )  # fmt: skip
    return Judgement(sample, firing, "fired")
