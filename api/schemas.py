"""Request and response bodies of the REST API and the /v1/live WebSocket (routes stay thin).

Times. Every stream has one clock: recorded videos use presentation seconds from the file's start,
live streams Unix seconds. `since`/`until` filters and `start_s`/`end_s` in results are on the
stream's own clock; results also carry both pts and wall times where known.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

StreamId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
        description="Letters, digits, '_', '.', ':' and '-'; starts with a letter or digit.",
    ),
]
Channel = Literal["visual", "ocr", "speech"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    status: int
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


# --------------------------------------------------------------------------------------- scope


class Scope(Strict):
    """Which footage a question or search looks at."""

    streams: list[StreamId] | None = Field(None, max_length=256, description="Stream ids; None: all streams.")
    since: float | None = Field(None, description="Window start on each stream's clock (inclusive overlap).")
    until: float | None = Field(None, description="Window end on each stream's clock (exclusive).")

    @model_validator(mode="after")
    def _ordered(self) -> Scope:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and not (-1e12 < value < 1e12):
                raise ValueError(f"{name} must be a finite time in seconds, got {value}")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError(f"since ({self.since}) must be before until ({self.until})")
        return self


# --------------------------------------------------------------------------------------- streams


class StreamCreate(Strict):
    url: str = Field(..., min_length=1, max_length=2048, description="rtsp://, rtsps:// or http(s) HLS URL.")
    stream_id: StreamId | None = Field(None, description="Default: derived from the URL.")
    fps: float | None = Field(None, gt=0, le=30, description="Frames kept per second; default: settings.")
    max_side_px: int | None = Field(None, ge=16, le=4096, description="Resize kept frames (longer side).")


class StreamOut(BaseModel):
    stream_id: str
    kind: Literal["live", "file"]
    source: str
    state: str = Field(description="connecting | live | reconnecting | failed | ended | stopped | recorded")
    fps: float | None = Field(None, description="Frames per second the pipeline processed lately.")
    lag_s: float | None = Field(None, description="How far the newest frame arrived behind real time.")
    processing_lag_s: float | None = Field(
        None, description="Real time minus the capture time of the last frame stored (reader + pipeline)."
    )
    frames: int = 0
    dropped: int = 0
    reconnects: int = 0
    events: int = 0
    tokens_in: int = 0
    tokens_kept: int = 0
    last_error: str | None = None
    created_s: float | None = None


class StreamList(BaseModel):
    streams: list[StreamOut]


# --------------------------------------------------------------------------------------- videos


class VideoCreate(Strict):
    path: str | None = Field(None, max_length=4096, description="A file under the server's allowed roots.")
    url: str | None = Field(None, max_length=2048, description="An http(s) video file or HLS playlist.")
    stream_id: StreamId | None = Field(None, description="Default: derived from the path or URL.")
    fps: float | None = Field(None, gt=0, le=30, description="Frames kept per second; default: settings.")

    @model_validator(mode="after")
    def _one_source(self) -> VideoCreate:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of path or url")
        return self


class JobOut(BaseModel):
    job_id: str
    stream_id: str
    source: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float = Field(ge=0, le=1)
    frames: int
    frames_expected: int | None
    events: int
    tokens_in: int
    tokens_kept: int
    error: str | None = None
    created_s: float
    started_s: float | None = None
    finished_s: float | None = None


class JobList(BaseModel):
    jobs: list[JobOut]


# --------------------------------------------------------------------------------------- search / ask


class SearchRequest(Scope):
    query: str = Field(..., min_length=1, max_length=2000)
    k: int | None = Field(None, ge=1, le=200, description="Results wanted; default: settings.")
    channels: list[Channel] | None = Field(None, description="Narrow to visual, ocr and/or speech.")


class SearchResult(BaseModel):
    event_id: str
    stream_id: str
    start_s: float = Field(description="Start on the stream's clock.")
    end_s: float = Field(description="End on the stream's clock.")
    start_pts_s: float
    end_pts_s: float
    start_wall_s: float | None
    end_wall_s: float | None
    score: float
    channel: str
    snippet: str
    thumbnail_url: str | None
    clip_url: str | None = Field(description="None for a text-only match that is not a stored event.")


class SearchResponse(BaseModel):
    query: str
    results: list[SearchResult]
    latency_ms: float


class AskRequest(Scope):
    question: str = Field(..., min_length=1, max_length=4000)
    k: int | None = Field(
        None, ge=1, le=64, description="Events retrieved; default: settings.llm.ask_events."
    )
    max_new_tokens: int | None = Field(None, ge=1, le=4096)
    stream: bool = Field(False, description="Answer as Server-Sent Events (token, answer_done, then [DONE]).")


class AskResponse(BaseModel):
    question: str
    answer: str
    cited: list[SearchResult]
    finish_reason: str
    ttft_ms: float | None
    generated_tokens: int
    visual_tokens: int
    model: str


# --------------------------------------------------------------------------------------- events


class EventOut(BaseModel):
    event_id: str
    stream_id: str
    start_pts_s: float
    end_pts_s: float
    start_wall_s: float | None
    end_wall_s: float | None
    frames: int
    tokens_in: int
    tokens_kept: int
    text: str
    pinned: bool
    thumbnail_urls: list[str]
    clip_url: str


# --------------------------------------------------------------------------------------- keys


class KeyCreate(Strict):
    scopes: list[Literal["read", "ingest", "admin"]] = Field(..., min_length=1, max_length=3)
    name: str = Field("", max_length=200)


class KeyOut(BaseModel):
    key_id: str
    name: str
    scopes: list[str]
    created_s: float
    revoked_s: float | None


class KeyCreated(BaseModel):
    token: str = Field(description="The bearer token. Shown once; only its hash is stored.")
    key: KeyOut


class KeyList(BaseModel):
    keys: list[KeyOut]


# --------------------------------------------------------------------------------------- health


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, str]


# --------------------------------------------------------------------------------------- chat


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text or "" for p in self.content if p.type == "text")


class VideoScope(Scope):
    k: int | None = Field(None, ge=1, le=64, description="Events retrieved.")


class ChatRequest(BaseModel):
    """OpenAI's chat request; unknown OpenAI fields are accepted and ignored. The video scope rides in
    the extra field `video`."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = Field(None, max_length=200)
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=256)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    video: VideoScope | None = Field(None, description="vidsight extension: which footage to look at.")

    @model_validator(mode="after")
    def _has_user_text(self) -> ChatRequest:
        if not any(m.role == "user" and m.text().strip() for m in self.messages):
            raise ValueError("messages need at least one user message with text")
        return self


class ChatChoiceMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: ChatChoiceMessage
    finish_reason: str


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    video: dict[str, Any] = Field(default_factory=dict, description="vidsight extension: cited events.")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# --------------------------------------------------------------------------------------- live WebSocket


class LiveAsk(Strict):
    type: Literal["ask"]
    id: str = Field(..., min_length=1, max_length=64, description="Client's id; echoed on every reply.")
    question: str = Field(..., min_length=1, max_length=4000)
    scope: VideoScope = Field(default_factory=lambda: VideoScope())
    max_new_tokens: int | None = Field(None, ge=1, le=4096)


class LiveCancel(Strict):
    type: Literal["cancel"]
    id: str = Field(..., min_length=1, max_length=64)


class LiveSubscribe(Strict):
    type: Literal["subscribe"]
    topics: list[Literal["events", "alerts", "stream_health"]] = Field(..., max_length=3)


LiveClientMessage = Annotated[LiveAsk | LiveCancel | LiveSubscribe, Field(discriminator="type")]


# --------------------------------------------------------------------------------------- alerts


class BacktestRequest(Scope):
    """Which recorded footage a backtest runs over (each stream on its own clock)."""


class AlertBacktestRequest(BacktestRequest):
    alert: dict[str, Any] = Field(
        ..., description="An alert definition (as for POST /v1/alerts), not stored."
    )
