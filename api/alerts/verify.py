"""Second opinion on a candidate: the VLM answers a yes/no question over the event's own visual tokens.

The verdict comes from the model's scores for the two options ("yes" / "no") as the answer's first
token (`Runner.choose_option`), not from parsing free text, so it is always one of the two; the
explanation is a short generated answer. With the tiny random-weight model both are noise: say so
wherever a verdict is shown (the runner's settings tell which weights are loaded).

Runs in a worker thread (the runner is synchronous); the engine bounds it with a timeout and sets
`cancel`, which stops the explanation's decoding at the next token.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from compressor.records import Event

from .config import VerifySettings

YES_NO = ("yes", "no")


@dataclass(frozen=True, slots=True)
class VerifierResult:
    verdict: Literal["confirmed", "rejected"]
    explanation: str


class Verifier(Protocol):
    def verify(self, event: Event, query: str, cancel: threading.Event) -> VerifierResult:
        """Blocking; called in a worker thread. Raises on failure (the engine records 'unverified')."""
        ...


def question(query: str) -> str:
    return f'Does this video show the following: "{query}"? Answer yes or no.'


def explanation_question(query: str) -> str:
    return f'In one sentence, what in this video shows or contradicts: "{query}"?'


def evenly_spaced(n: int, k: int) -> np.ndarray:
    """[min(n, k)] ascending token indices spread over [0, n)."""
    if n <= k:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


class LLMVerifier:
    """Verifier on an `llm.Runner` (Qwen2.5-VL)."""

    def __init__(self, runner: Any, settings: VerifySettings) -> None:
        self.runner = runner
        self.settings = settings

    def verify(self, event: Event, query: str, cancel: threading.Event) -> VerifierResult:
        import torch

        # Both calls under inference mode: the runner pools its decoders, and one made inside
        # inference mode (choose_option) cannot be updated in place outside it (answer).
        with torch.inference_mode():
            return self._verify(event, query, cancel)

    def _verify(self, event: Event, query: str, cancel: threading.Event) -> VerifierResult:
        from llm import ContextEvent

        context = [ContextEvent(event, evenly_spaced(event.tokens.shape[0], self.settings.max_visual_tokens))]
        choice = self.runner.choose_option(question(query), list(YES_NO), context)
        verdict: Literal["confirmed", "rejected"] = "confirmed" if choice == 0 else "rejected"
        if cancel.is_set():
            return VerifierResult(verdict, "")
        answer = self.runner.answer(
            explanation_question(query), context,
            max_new_tokens=self.settings.explanation_max_tokens, cancel=cancel,
        )  # fmt: skip
        return VerifierResult(verdict, answer.text.strip())
