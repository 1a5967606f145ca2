"""The Qwen2.5-VL runner: loads the model (by id, or a preset with random weights), assembles
prompts from selected events, prefills with KV pruning and decodes with a static cache.

    runner = Runner(settings.llm)
    answer = runner.answer("What happened?", context)          # one-shot
    with runner.session() as s: s.ask(q1, ctx1); s.ask(q2, ctx2)  # follow-ups reuse the KV
    async for piece in runner.stream(q, ctx): ...              # streamed, cancellable
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import torch

from vidsight.devices import resolve_device, resolve_dtype

from .config import LLMSettings
from .decoding import CompiledStep, Decoder, resolve_mode
from .engine import TextEngine
from .errors import ModelLoadError
from .prefill_graphs import ChunkPrefill, resolve_prefill_mode
from .prompt import ContextEvent, Specials
from .records import Answer
from .session import Session, SessionParts
from .streaming import AnswerStream
from .tokenizer import HFTokenizer, OfflineTokenizer, TextTokenizer

log = logging.getLogger(__name__)

OPTION_LETTERS = "ABCDEFGHIJ"
_OPTION_INSTRUCTION = "Answer with the option's letter from the given choices directly."


def load_model(settings: LLMSettings) -> Any:
    """Qwen2_5_VLForConditionalGeneration from settings.model_id, or the preset with seeded random weights
    built directly on the target device (a 7B never touches CPU memory)."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype, device)
    try:
        if settings.model_id:
            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(settings.model_id, dtype=dtype)
            model = model.to(device)  # type: ignore[arg-type]
        else:
            from vidsight.model_configs import qwen25vl_config

            config = qwen25vl_config(settings.model_preset)
            config._attn_implementation = "sdpa"
            torch.manual_seed(settings.seed)
            with torch.device(device):
                model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)  # type: ignore[arg-type]
    except Exception as exc:  # hub, file and config errors come in many types
        what = settings.model_id or f"preset {settings.model_preset!r}"
        raise ModelLoadError(f"cannot load Qwen2.5-VL from {what}: {exc}") from exc
    return model.eval()


class Runner:
    def __init__(
        self, settings: LLMSettings, *, model: Any = None, tokenizer: TextTokenizer | None = None
    ) -> None:
        self.settings = settings
        self.model = model if model is not None else load_model(settings)
        if tokenizer is None:
            tokenizer = HFTokenizer(settings.model_id) if settings.model_id else OfflineTokenizer()
        self.tokenizer = tokenizer
        self.engine = TextEngine(self.model, attention=settings.attention)
        self.prefill_mode = resolve_prefill_mode(settings.prefill_graphs, self.engine.device)
        chunks = None
        if self.prefill_mode != "none":
            chunks = ChunkPrefill(
                self.engine,
                bucket_tokens=settings.prefill_bucket_tokens,
                max_tokens=settings.prefill_graph_max_tokens,
                use_graphs=self.prefill_mode in ("inductor", "cudagraph"),
                use_compile=self.prefill_mode == "inductor",
            )
        vision = self.model.config.vision_config
        self._parts = SessionParts(
            engine=self.engine,
            tokenizer=tokenizer,
            specials=Specials.of(self.model.config),
            settings=settings,
            tokens_per_second=float(vision.tokens_per_second),
            default_seconds_per_grid=float(vision.temporal_patch_size),  # at 1 fps sampling
            generator=torch.Generator(device=self.engine.device).manual_seed(settings.seed),
            chunks=chunks,
        )
        self.decode_mode = resolve_mode(settings.compile_decode, self.engine.device)
        self._compiled: CompiledStep | None = None
        self._pool: list[Decoder] = []
        self._pool_lock = threading.Lock()  # sessions are opened and released from several threads
        self._lock = threading.Lock()  # one turn at a time on the model

    @property
    def device(self) -> torch.device:
        return self.engine.device

    # ------------------------------------------------------------------ sessions

    # Every tensor a decoder owns is made, written and read under inference mode (here and in
    # Session's methods): a cache made in inference mode cannot be updated in place outside it,
    # and the pool hands one caller's cache to the next.
    @torch.inference_mode()
    def session(self, capacity: int | None = None) -> Session:
        """A new conversation. Its cache (and captured decode graph) comes from a pool when one fits."""
        capacity = capacity or self.settings.max_context_tokens
        with self._pool_lock:
            decoder = next((d for d in self._pool if d.cache.capacity == capacity), None)
            if decoder is not None:
                self._pool.remove(decoder)
        if decoder is not None:
            decoder.cache.reset()
        else:
            decoder = self._new_decoder(capacity)
        return Session(parts=self._parts, decoder=decoder, on_release=self._release)

    @torch.inference_mode()
    def _release(self, session: Session) -> None:
        session.decoder.cache.reset()
        with self._pool_lock:
            self._pool.append(session.decoder)

    def _new_decoder(self, capacity: int) -> Decoder:
        cache = self.engine.new_cache(capacity)
        while True:
            try:
                if self.decode_mode == "inductor" and self._compiled is None:
                    self._compiled = CompiledStep(self.engine)
                return Decoder(self.engine, cache, self.decode_mode, self._compiled)
            except Exception as exc:  # compiler and graph-capture failures: fall back, keep serving
                fallback = {"inductor": "cudagraph", "cudagraph": "none"}.get(self.decode_mode)
                if fallback is None:
                    raise
                log.warning("decode mode %s failed (%s); falling back to %s", self.decode_mode, exc, fallback)
                self.decode_mode = fallback

    def warmup(self) -> None:
        """Compile and capture the decode step and the short-prefill graphs now rather than on the first
        questions."""
        self.session().close()
        if self._parts.chunks is not None:
            self._parts.chunks.capture_all()

    def prefill_graph_counts(self) -> dict[str, int]:
        """Prefill buckets captured as CUDA graphs, and chunks the bucketed path prefilled."""
        chunks = self._parts.chunks
        if chunks is None:
            return {"captured_buckets": 0, "chunks": 0, "compiled": 0}
        counts = chunks.counts
        return {
            "captured_buckets": counts.captured_buckets,
            "chunks": counts.chunks,
            "compiled": int(chunks.is_compiled),
        }

    # ------------------------------------------------------------------ answers

    def answer(self, question: str, context: Sequence[ContextEvent], **kwargs: Any) -> Answer:
        """One question in a fresh session (released afterwards)."""
        with self.session() as s, self._lock:
            return s.ask(question, context, **kwargs)

    def ask(self, session: Session, question: str, context: Sequence[ContextEvent], **kwargs: Any) -> Answer:
        with self._lock:
            return session.ask(question, context, **kwargs)

    def stream(
        self,
        question: str,
        context: Sequence[ContextEvent],
        *,
        session: Session | None = None,
        max_new_tokens: int | None = None,
        started_s: float | None = None,
    ) -> AnswerStream:
        """Streamed answer: `async for piece in stream`, `stream.cited`, `stream.cancel()`, `stream.answer`.
        Without a session, a fresh one is used and released at the end."""
        owned = session is None
        s = session if session is not None else self.session()
        return AnswerStream(
            lambda cancel, on_piece: self.ask(
                s,
                question,
                context,
                max_new_tokens=max_new_tokens,
                started_s=started_s,
                cancel=cancel,
                on_piece=on_piece,
            ),
            cited_from=context,
            on_done=s.close if owned else None,
        )

    @torch.inference_mode()
    def choose_option(self, question: str, options: Sequence[str], context: Sequence[ContextEvent]) -> int:
        """Multiple choice: the option whose letter the model scores highest as the answer's first token."""
        letters = OPTION_LETTERS[: len(options)]
        listing = "\n".join(f"{letter}. {text}" for letter, text in zip(letters, options, strict=True))
        prompt = f"{question}\nOptions:\n{listing}\n{_OPTION_INSTRUCTION}"
        ids = [self.tokenizer.encode(letter)[0] for letter in letters]
        with self.session() as s, self._lock:
            logits, _ = s.prefill_turn(prompt, context)
        return int(torch.argmax(logits[ids]).item())


def now_s() -> float:
    """The clock ttft_s is measured on (pass it as started_s when the question arrives)."""
    return time.perf_counter()
