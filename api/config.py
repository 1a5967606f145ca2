"""Settings for the api stage (a section of `vidsight.settings.Settings`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MiB = 1 << 20


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", min_length=1, description="Address `vidsight serve` binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port `vidsight serve` binds.")
    pipeline: Literal["ray", "local"] = Field(
        "ray",
        description="ray: encoder and live readers run as Ray actors (local Ray or VIDSIGHT_RAY_ADDRESS); "
        "local: the same stages in this process's threads (small machines, tests).",
    )
    require_keys: bool = Field(
        True, description="Every route but /healthz needs an API key. Turn off only on a trusted loopback."
    )

    # Security.
    path_roots: list[Path] = Field(
        default_factory=list,
        description="Server-side video paths must resolve (symlinks followed) under one of these folders; "
        "empty allows only the data dir's videos/ folder.",
    )
    allowed_url_schemes: list[str] = Field(
        default_factory=lambda: ["rtsp", "rtsps", "http", "https"],
        description="URL schemes a client may hand the server (streams, video URLs).",
    )
    max_upload_bytes: int = Field(
        2048 * MiB, ge=1024, le=1 << 40, description="Largest video upload; bigger bodies get 413."
    )
    max_json_bytes: int = Field(1 * MiB, ge=1024, le=64 * MiB, description="Largest JSON request body.")
    rate_per_s: float = Field(
        20.0, gt=0, le=100_000, description="Requests per second per API key, sustained."
    )
    rate_burst: int = Field(100, ge=1, le=1_000_000, description="Requests per API key allowed in a burst.")
    keys_prefix: str = Field(
        "vidsight:apikey:", min_length=1, max_length=64, description="Redis key prefix of stored API keys."
    )

    # Live streams and video jobs.
    live_batch_frames: int = Field(8, ge=1, le=256, description="Frames a live stream loop takes per batch.")
    live_poll_s: float = Field(0.5, gt=0, le=10, description="Longest wait of a live loop for new frames.")
    max_streams: int = Field(64, ge=1, le=4096, description="Live streams one server runs at most.")
    max_jobs: int = Field(2, ge=1, le=64, description="Video jobs ingesting at the same time; others wait.")
    text_channels: bool = Field(
        True,
        description="Read the slides (OCR) and speech of ingested videos into the text index and the "
        "events' text (settings.text); off: visual only, faster.",
    )
    max_clip_s: float = Field(300.0, gt=0, le=3600, description="Longest clip /v1/events/{id}/clip exports.")

    # Questions.
    ask_max_new_tokens: int = Field(
        64, ge=1, le=8192, description="Tokens of an answer when the client names none."
    )
    max_answer_tokens: int = Field(
        1024, ge=1, le=8192, description="Most tokens one answer may have, whatever the client asks for."
    )
    ask_timeout_s: float = Field(
        120.0, gt=0, le=3600, description="A question waiting longer than this for the model fails (503)."
    )
    search_k: int = Field(10, ge=1, le=200, description="Default number of search results.")
    max_pending_answers: int = Field(
        512, ge=1, le=100_000, description="Questions queued for the model at most; more get 503."
    )

    # WebSocket.
    ws_queue_messages: int = Field(
        256, ge=8, le=100_000, description="Outgoing messages buffered per WebSocket client."
    )
    ws_send_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="A client that takes longer than this to accept one message is dropped.",
    )
    ws_max_inflight: int = Field(4, ge=1, le=64, description="Questions one WebSocket client may have open.")
    ws_conversation_sessions: int = Field(
        4,
        ge=0,
        le=1024,
        description="WebSocket clients whose model session (the pruned KV of what they asked about) is "
        "kept between their questions, so a follow-up prefills only new events and the question; each "
        "holds a KV cache of llm.max_context_tokens. The client idle longest gives its up first. "
        "0: every question starts afresh.",
    )
    health_push_interval_s: float = Field(
        2.0, gt=0, le=3600, description="How often stream_health is pushed to WebSocket clients."
    )
    max_ws_clients: int = Field(1000, ge=1, le=100_000, description="WebSocket clients served at once.")
