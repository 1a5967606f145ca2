"""Settings for the compressor stage (a section of `vidsight.settings.Settings`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SelectionSettings(BaseModel):
    """Query-time token selection: how a token budget is split across retrieved events and spent."""

    model_config = ConfigDict(extra="forbid")

    budget_tokens: int = Field(
        8192, ge=1, le=1_000_000, description="Visual tokens handed to the LLM for one question."
    )
    temperature: float = Field(
        0.05,
        gt=0,
        le=10,
        description="Softmax temperature over event relevance scores (cosines); lower favours the best.",
    )
    relevance_weight: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Inside an event: 0 keeps tokens by diversity alone (DivPrune max-min), 1 by relevance.",
    )
    diversity_steps: int = Field(
        64,
        ge=1,
        le=100_000,
        description="Greedy max-min steps per event at most; beyond, each step keeps several tokens.",
    )
    recency_floor_share: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Live streams: share of the budget reserved for the latest events, whatever their score.",
    )
    recent_events: int = Field(
        2, ge=0, le=1000, description="Live streams: how many latest events share the floor."
    )


class CompressorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Pixel test (RLT), before the encoder.
    is_pixel_filter_enabled: bool = Field(
        True, description="Run the RLT pixel test when the encoder did not attach a static mask."
    )
    patch_size: int = Field(
        14, ge=1, le=256, description="Pixel patch side; must equal the vision tower's patch."
    )
    static_tau: float = Field(
        0.1,
        ge=0,
        le=10,
        description="RLT threshold: a patch is static when its ImageNet-normalised mean absolute difference "
        "from the last kept patch is at most this (0.1 is about 6 grey levels).",
    )

    # Token merging and EVS, inside an event.
    merge_similarity: float | None = Field(
        0.9,
        ge=-1,
        le=1,
        description="A token whose cosine with the last kept token at its (h, w) is at least this is merged "
        "into it (HoliTom/DyCoke); None merges only pixel-static and EVS-dropped tokens.",
    )
    evs_q: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="EVS pruning rate per event (vLLM semantics); 0 disables. Dropped tokens merge into "
        "the run at their position.",
    )

    # Event segmentation.
    event_similarity_tau: float = Field(
        0.9,
        ge=-1,
        le=1,
        description="Cut where the cosine between consecutive pooled retrieval embeddings drops below this.",
    )
    cut_changed_fraction: float | None = Field(
        0.75,
        gt=0,
        le=1,
        description="Also cut where at least this share of token positions changed from the previous grid "
        "(cosine below merge_similarity): a hard cut changes every position; None disables.",
    )
    change_similarity: float = Field(
        0.9,
        ge=-1,
        le=1,
        description="For cut_changed_fraction: a token position changed when its cosine with the previous "
        "grid's token is below this.",
    )
    min_event_grids: int = Field(2, ge=1, le=10_000, description="No cut leaves an event shorter than this.")
    max_event_grids: int = Field(
        60,
        ge=1,
        le=10_000,
        description="An event this long is split at its lowest transitions (bounds memory).",
    )
    lowest_cuts: int = Field(
        1, ge=1, le=100, description="How many of the lowest transitions a too-long event is split at."
    )

    # Keyframes.
    thumbnails_per_event: int = Field(2, ge=0, le=16, description="JPEG keyframes kept per event.")
    thumbnail_px: int = Field(192, ge=16, le=2048, description="Longer side of a keyframe thumbnail.")
    thumbnail_quality: int = Field(80, ge=10, le=95, description="JPEG quality of keyframe thumbnails.")

    selection: SelectionSettings = Field(default_factory=SelectionSettings)

    @model_validator(mode="after")
    def _check_event_lengths(self) -> CompressorSettings:
        if self.max_event_grids < 2 * self.min_event_grids:
            raise ValueError(
                f"max_event_grids must be at least 2 * min_event_grids so a split leaves two legal parts, "
                f"got max={self.max_event_grids}, min={self.min_event_grids}"
            )
        return self
