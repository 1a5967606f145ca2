"""Settings for the llm stage (a section of `vidsight.settings.Settings`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LLMSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str | None = Field(
        None,
        description="Hugging Face id or local path of a Qwen2.5-VL checkpoint "
        "(e.g. Qwen/Qwen2.5-VL-7B-Instruct); None builds `model_preset` with random weights "
        "(offline tests and speed runs).",
    )
    model_preset: Literal["tiny", "3B", "7B"] = Field(
        "tiny", description="Architecture built with random weights when model_id is None."
    )
    seed: int = Field(0, ge=0, description="Seed for random weights (presets) and sampling.")
    device: str = Field("auto", description="'auto' (cuda if present, else cpu), 'cpu', 'cuda' or 'cuda:N'.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights and KV dtype; auto = bfloat16 on CUDA, float32 on CPU."
    )
    attention: Literal["sdpa", "flash"] = Field(
        "sdpa",
        description="Prefill attention kernel: torch SDPA, or flash-attn where installed "
        "(SDPA where it is not).",
    )
    max_context_tokens: int = Field(
        16384, ge=64, le=262144, description="Slots of the preallocated KV cache of one session."
    )
    max_new_tokens: int = Field(256, ge=1, le=8192, description="Default cap on generated tokens per answer.")
    temperature: float = Field(0.0, ge=0.0, le=5.0, description="0 = greedy decoding.")
    kv_prune: Literal["keynorm", "snapkv", "none"] = Field(
        "keynorm",
        description="KV-cache pruning of visual tokens: QuickPrefill key norm (smallest keys kept, "
        "per layer, query-agnostic), SnapKV-style question-window attention, or none. "
        "Never by value norm.",
    )
    kv_keep_ratio: float = Field(
        0.5, gt=0.0, le=1.0, description="Share of visual KV kept per group and layer."
    )
    kv_group_grids: int = Field(
        16, ge=1, le=4096, description="Temporal grids per prefill group: the unit of pruning and memory."
    )
    snapkv_window: int = Field(
        32, ge=1, le=1024, description="Last prompt tokens whose attention scores visual KV (snapkv)."
    )
    compile_decode: Literal["auto", "inductor", "cudagraph", "none"] = Field(
        "auto",
        description="Decode step: torch.compile'd and captured as a CUDA graph (inductor), the eager "
        "step captured (cudagraph), or eager (none); auto = inductor on CUDA, none on CPU.",
    )
    prefill_graphs: Literal["auto", "inductor", "cudagraph", "bucketed", "none"] = Field(
        "auto",
        description="Short prefill chunks (follow-ups, text-only turns): padded to a bucket, each layer's "
        "parts outside attention replayed as CUDA graphs, attention eager at the exact length: the parts "
        "torch.compile'd first, one compilation for every layer and bucket (inductor), or as they are "
        "(cudagraph); the same padded pieces without graphs (bucketed: for tests); or the eager path "
        "(none). auto = inductor on CUDA, none on CPU. Longer chunks, and SnapKV's pruned last chunk, "
        "are eager.",
    )
    prefill_graph_max_tokens: int = Field(
        1024, ge=16, le=8192, description="Longest chunk (tokens) that takes the bucketed/graph path."
    )
    prefill_bucket_tokens: int = Field(
        128,
        ge=8,
        le=4096,
        description="Chunk lengths are padded up to a multiple of this (one graph set each).",
    )
    text_resume: Literal["max_position", "spatial_extent"] = Field(
        "max_position",
        description="Where text resumes after a video block: one past the largest position used "
        "(Qwen's reference code, vLLM, transformers < 5.3) or block start + max(h, w) "
        "(transformers >= 5.3 get_rope_index).",
    )
    seconds_per_grid: float | None = Field(
        None,
        gt=0.0,
        description="Seconds per temporal grid for mRoPE time scaling; None estimates it from the "
        "events' grid pts.",
    )
    system_prompt: str = Field(
        "You are a helpful assistant.", max_length=4000, description="System message of every session."
    )
    ask_events: int = Field(8, ge=1, le=256, description="Events retrieved for one question.")
