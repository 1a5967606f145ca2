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


@dataclass(frozen=True, slots=True)
class AnswerPiece:
    """A piece of streamed answer text: the text the last decoded token(s) completed."""

    text: str
    tokens: int  # tokens generated so far, this piece included
