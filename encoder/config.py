"""Settings for the encoder stage (a section of `vidsight.settings.Settings`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Qwen2.5-VL's patch (14 px) times its spatial merge (2): every side the tower sees is a multiple.
QWEN_SIDE_FACTOR_PX = 28


class EncoderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vlm_model: str = Field(
        "tiny",
        min_length=1,
        description=(
            "VLM whose vision tower makes the LLM's tokens: a preset with random weights "
            "('tiny', '3B', '7B': Qwen2.5-VL shapes) or a model id / local path for from_pretrained."
        ),
    )
    retrieval_model: str = Field(
        "tiny",
        min_length=1,
        description=(
            "Text-aligned retrieval encoder: a preset with random weights ('tiny', 'so400m': SigLIP "
            "shapes) or a SigLIP/SigLIP2 model id / local path for from_pretrained."
        ),
    )
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="'auto' picks CUDA when present, else CPU."
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="'auto' is bfloat16 on CUDA and float32 on CPU."
    )
    seed: int = Field(
        0, ge=0, description="Seed for the random weights of presets (same seed, same weights)."
    )
    min_pixels: int = Field(
        56 * 56,
        ge=28 * 28,
        le=1 << 26,
        description="Smart resize: fewest pixels per frame given to the tower.",
    )
    max_pixels: int = Field(
        448 * 448,
        ge=28 * 28,
        le=1 << 26,
        description="Smart resize: most pixels per frame given to the tower.",
    )
    fixed_hw_px: tuple[int, int] | None = Field(
        None,
        description="Resize every frame to exactly (height, width), multiples of 28, not smart resize.",
    )
    use_fast_attention: bool = Field(
        True,
        description="Run the tower with all attention windows at once (False: transformers' own forward).",
    )
    use_cuda_graphs: bool = Field(
        True, description="On CUDA, replay a captured graph for batch shapes seen in warmup()."
    )
    compile_blocks: bool = Field(
        True,
        description="torch.compile the tower's blocks for the batch shapes given to warmup() (CUDA only; "
        "about 10 s per shape).",
    )
    max_batch_frames: int = Field(
        64, ge=1, le=4096, description="BatchingEncoder: most frames encoded in one model call."
    )
    max_wait_s: float = Field(
        0.02, ge=0, le=10, description="BatchingEncoder: longest wait for more requests after the first."
    )
    text_max_tokens: int = Field(64, ge=4, le=512, description="Retrieval encoder: text length, padded.")

    @field_validator("fixed_hw_px")
    @classmethod
    def _multiple_of_patch_merge(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and any(v <= 0 or v % QWEN_SIDE_FACTOR_PX for v in value):
            raise ValueError(
                f"fixed_hw_px sides must be positive multiples of {QWEN_SIDE_FACTOR_PX}, got {value}"
            )
        return value
