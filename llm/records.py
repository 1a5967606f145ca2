"""What the LLM path returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from memory.records import Hit


@dataclass(slots=True)
class Answer:
    text: str
    cited: list[Hit] = field(default_factory=list)
    ttft_s: float | None = None  # question in to first token out, retrieval and selection included
    visual_tokens: int = 0  # visual tokens the prompt held
    generated_tokens: int = 0
    is_cancelled: bool = False
    finish_reason: str = ""  # "eos" | "length" | "cancelled"
    prefill_tokens: int = 0  # tokens this turn prefilled (a follow-up prefills only its new part)
    kv_tokens: int = 0  # tokens held in the KV cache after the prefill, per layer (after pruning)
    decode_tok_s: float | None = None  # generated tokens per second after the first
    # Where this call's part of ttft_s went: prompt_s (tokenize, lay out, gather visual rows), forward_s
    # (the model's prefill to the last logits), sample_s (the first token). Retrieval and selection
    # done before the call are ttft_s minus their sum.
    ttft_parts_s: dict[str, float] = field(default_factory=dict)
    prefill_groups: int = 0  # prefill groups (chunks) of this turn
    graphed_groups: int = 0  # of which the bucketed / CUDA-graph path prefilled


@dataclass(frozen=True, slots=True)
class AnswerPiece:
    """A piece of streamed answer text: the text the last decoded token(s) completed."""

    text: str
    tokens: int  # tokens generated so far, this piece included
