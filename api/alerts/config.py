"""Settings for the alert engine (an `alerts` section the lead adds to `vidsight.settings.Settings`).

Environment: `VIDSIGHT_ALERTS__MQTT__HOST=broker`, `VIDSIGHT_ALERTS__SCORING__TEXT_MIN_SCORE=0.6`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ScoringSettings(BaseModel):
    """When an event is a candidate: above an absolute floor AND an outlier for its own stream."""

    model_config = ConfigDict(extra="forbid")

    visual_min_probability: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Absolute floor on the retrieval encoder's (SigLIP) match probability of event vs query.",
    )
    text_min_score: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Absolute floor on the text score: max(MiniLM cosine, keyword overlap) of the event's "
        "OCR/speech text vs the query.",
    )
    window_events: int = Field(
        256, ge=8, le=100_000, description="Recent events per stream and query the calibration looks at."
    )
    min_samples: int = Field(
        20,
        ge=1,
        le=100_000,
        description="Below this many samples a stream is warming up: only the stricter warm-up floors apply.",
    )
    k: float = Field(
        3.0,
        ge=0.0,
        le=50.0,
        description="A score fires above median + k * robust spread (1.4826 * MAD) of its stream's window.",
    )
    visual_min_spread_logit: float = Field(
        0.5, ge=0.0, le=100.0, description="Smallest spread assumed for visual logits (a constant stream)."
    )
    text_min_spread: float = Field(
        0.05, ge=0.0, le=1.0, description="Smallest spread assumed for text scores (a constant stream)."
    )
    warmup_visual_probability: float = Field(
        0.8, ge=0.0, le=1.0, description="Visual floor while the stream's window is warming up."
    )
    warmup_text_score: float = Field(
        0.7, ge=0.0, le=1.0, description="Text floor while the stream's window is warming up."
    )
    max_text_chunks: int = Field(
        32,
        ge=1,
        le=1024,
        description="Lines/sentences of an event's text scored separately (best one counts).",
    )

    @model_validator(mode="after")
    def _warmup_floors_not_below_floors(self) -> ScoringSettings:
        s = self
        if s.warmup_visual_probability < s.visual_min_probability or s.warmup_text_score < s.text_min_score:
            raise ValueError(
                "scoring warm-up floors must be at least the floors: "
                f"warmup_visual_probability={s.warmup_visual_probability} vs "
                f"visual_min_probability={s.visual_min_probability}, warmup_text_score={s.warmup_text_score} "
                f"vs text_min_score={s.text_min_score}"
            )
        return self


class VerifySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        True, description="Ask the VLM to confirm each candidate (when a verifier is given)."
    )
    timeout_s: float = Field(
        30.0, gt=0.0, le=3600.0, description="A verification slower than this gives the verdict 'unverified'."
    )
    max_concurrent: int = Field(1, ge=1, le=64, description="Verifications running at once.")
    max_pending: int = Field(
        64,
        ge=1,
        le=100_000,
        description="Candidates waiting for the verifier; past this they are 'unverified'.",
    )
    max_visual_tokens: int = Field(
        1024, ge=1, le=65_536, description="Visual tokens of the event given to the VLM (evenly subsampled)."
    )
    explanation_max_tokens: int = Field(48, ge=1, le=1024, description="Tokens of the VLM's explanation.")


class WebhookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timeout_s: float = Field(5.0, gt=0.0, le=120.0, description="One POST's connect+read timeout.")
    max_attempts: int = Field(5, ge=1, le=20, description="Tries per message (the first one included).")
    backoff_base_s: float = Field(0.5, gt=0.0, le=60.0, description="Delay before the first retry (doubles).")
    backoff_cap_s: float = Field(30.0, gt=0.0, le=3600.0, description="Longest delay between tries.")
    queue_size: int = Field(
        1000, ge=1, le=1_000_000, description="Messages waiting per webhook URL; past this the oldest go."
    )
    signature_tolerance_s: float = Field(
        300.0, gt=0.0, le=86_400.0, description="Receivers should refuse signatures older than this."
    )


class MqttSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str | None = Field(None, description="Broker host; None disables the MQTT channel.")
    port: int = Field(1883, ge=1, le=65_535, description="Broker port.")
    username: str | None = Field(None, description="Broker user name.")
    password: str | None = Field(None, description="Broker password.")
    topic_prefix: str = Field(
        "vidsight/alerts", min_length=1, max_length=200, description="Messages go to <prefix>/<alert_id>."
    )
    qos: int = Field(1, ge=0, le=2, description="MQTT quality of service of published messages.")
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keepalive.")
    max_queued: int = Field(
        10_000, ge=1, le=1_000_000, description="Messages paho holds while the broker is unreachable."
    )
    client_id: str = Field("vidsight-alerts", min_length=1, max_length=128, description="MQTT client id.")


class AlertSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Run the alert engine in `vidsight serve`.")
    redis_key_prefix: str = Field(
        "vidsight:alerts:", min_length=1, max_length=64, description="Prefix of every Redis key alerts write."
    )
    follow_block_ms: int = Field(
        1000, ge=10, le=60_000, description="How long one read of the memory's new-event stream waits."
    )
    follow_batch: int = Field(100, ge=1, le=10_000, description="Stream entries read at once.")
    max_firings_per_alert: int = Field(
        10_000, ge=10, le=10_000_000, description="Stored firings per alert; the oldest go past this."
    )
    subscriber_queue: int = Field(
        256,
        ge=1,
        le=100_000,
        description="Messages one WebSocket subscriber may lag; past this it loses some.",
    )
    default_cooldown_s: float = Field(
        60.0, ge=0.0, le=7 * 86_400.0, description="Cooldown of alerts that do not name one."
    )
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    verify: VerifySettings = Field(default_factory=VerifySettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
