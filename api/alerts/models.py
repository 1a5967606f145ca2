"""Alert records: what a standing query is (`AlertSpec` in, `Alert` stored), how it is delivered
(`Channels`, kept apart from the query so one alert has several subscriptions), what happened
(`Firing`), and what subscribers receive (`AlertMessage`, Frigate's new/update/end envelope).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer, field_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FiringState = Literal["new", "verified", "rejected", "unverified", "ended"]
Verdict = Literal["confirmed", "rejected", "unverified"]
EvidenceChannel = Literal["visual", "text", "visual+text"]
MessageType = Literal["new", "update", "end", "dropped"]
REVEAL = {"reveal_secrets": True}  # model_dump(context=REVEAL) keeps webhook secrets (for storage only)


class TimeWindow(BaseModel):
    """Local time of day [start, end) on the given days. end <= start runs past midnight
    (22:00-06:00 on "fri" covers Friday night into Saturday morning); start == end is the whole day."""

    model_config = ConfigDict(extra="forbid")

    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS), min_length=1)
    start: dt.time = dt.time(0, 0)
    end: dt.time = dt.time(0, 0)

    def contains(self, local: dt.datetime) -> bool:
        t = local.time().replace(tzinfo=None)
        day = WEEKDAYS[local.weekday()]
        yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
        if self.start == self.end:
            return day in self.days
        if self.start < self.end:
            return day in self.days and self.start <= t < self.end
        # past midnight: the late part belongs to today's window, the early part to yesterday's
        return (day in self.days and t >= self.start) or (yesterday in self.days and t < self.end)


class Schedule(BaseModel):
    """When an alert may fire, in a time zone. No windows: always. Events without a wall-clock time
    (recorded files) are always in schedule: the schedule is about when things happen live."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = "UTC"
    windows: list[TimeWindow] = Field(default_factory=list, max_length=64)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'Europe/Berlin'"
            ) from exc
        return value

    def is_active(self, wall_s: float | None) -> bool:
        if not self.windows or wall_s is None:
            return True
        local = dt.datetime.fromtimestamp(wall_s, zoneinfo.ZoneInfo(self.timezone))
        return any(w.contains(local) for w in self.windows)


class WebhookChannel(BaseModel):
    """POST every message as JSON to `url`, signed with `secret` (see notifiers/webhook.py)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(..., min_length=8, max_length=2000)
    secret: SecretStr | None = Field(None, description="HMAC-SHA256 key; None sends unsigned messages.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook url must be http(s)://host/..., got {value!r}")
        return value

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("webhook secret must be at least 16 characters")
        return value

    @field_serializer("secret", when_used="always")
    def _dump_secret(self, value: SecretStr | None, info: Any) -> str | None:
        if value is None:
            return None
        if isinstance(info.context, dict) and info.context.get("reveal_secrets"):
            return value.get_secret_value()
        return "**********"


class MqttChannel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: str | None = Field(
        None, max_length=200, description="Topic; None publishes to <settings prefix>/<alert_id>."
    )

    @field_validator("topic")
    @classmethod
    def _no_wildcards(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(c in value for c in "+#\0")):
            raise ValueError(f"mqtt topic must be non-empty without '+', '#' or NUL, got {value!r}")
        return value


class Channels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhooks: list[WebhookChannel] = Field(default_factory=list, max_length=16)
    mqtt: MqttChannel | None = None
    websocket: bool = Field(True, description="Push messages to WebSocket subscribers (/v1/live).")


class AlertSpec(BaseModel):
    """A standing query as a client defines it. `id` given and known: the alert is replaced (its
    calibration and firings stay)."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field("", max_length=200)
    query: str = Field(
        ..., min_length=1, max_length=1000, description='Natural language; "quoted" = keywords.'
    )
    streams: list[str] | None = Field(None, max_length=1000, description="Stream ids; None = every stream.")
    schedule: Schedule = Field(default_factory=Schedule)
    cooldown_s: float | None = Field(None, ge=0.0, le=7 * 86_400.0, description="Per stream; None = default.")
    channels: Channels = Field(default_factory=Channels)
    enabled: bool = True
    verify: bool = Field(True, description="Ask the VLM to confirm candidates (when a verifier is present).")

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query must hold some words")
        return value.strip()

    @field_validator("streams")
    @classmethod
    def _stream_ids(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (not value or any(not s or len(s) > 512 for s in value)):
            raise ValueError("streams must be None (every stream) or a non-empty list of stream ids")
        return value


class Alert(AlertSpec):
    id: str = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    cooldown_s: float = Field(..., ge=0.0, le=7 * 86_400.0)
    created_s: float
    updated_s: float

    def watches(self, stream_id: str) -> bool:
        return self.streams is None or stream_id in self.streams

    @property
    def title(self) -> str:
        return self.name or self.query


class Evidence(BaseModel):
    """Why an event was a candidate: each channel's score and the threshold it had to pass."""

    model_config = ConfigDict(extra="forbid")

    visual_probability: float | None = None
    visual_threshold: float | None = None  # probability the calibrated logit threshold stands for
    text_score: float | None = None  # max(cosine, keyword overlap); None when the event has no text
    text_threshold: float | None = None
    text_cosine: float | None = None
    keyword_overlap: float | None = None
    matched_terms: list[str] = Field(default_factory=list)
    snippet: str = ""
    calibration_samples: int = 0  # samples of the stream's window when it was scored


class Firing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    alert_id: str
    event_id: str
    stream_id: str
    start_pts_s: float
    end_pts_s: float
    start_wall_s: float | None = None
    end_wall_s: float | None = None
    score: float  # the best matching channel's raw score (probability or text score)
    channel: EvidenceChannel
    evidence: Evidence
    state: FiringState = "new"
    verdict: Verdict | None = None
    explanation: str = ""
    created_s: float
    updated_s: float
    ended_s: float | None = None
    is_backtest: bool = False

    @property
    def event_time_s(self) -> float:
        """The time cooldowns count on: wall clock for live streams, pts for recorded files."""
        return self.start_wall_s if self.start_wall_s is not None else self.start_pts_s


class AlertMessage(BaseModel):
    """What channels deliver. new: a candidate; update: verdict and explanation; end: closed.
    dropped: sent only to a WebSocket subscriber that lagged, `dropped` counts what it lost."""

    model_config = ConfigDict(extra="forbid")

    type: MessageType
    alert_id: str | None = None
    alert_name: str = ""
    before: Firing | None = None
    after: Firing | None = None
    dropped: int = 0
    sent_s: float
