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
