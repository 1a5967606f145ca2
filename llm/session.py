"""A Q&A session: one conversation whose (pruned) KV cache persists across questions.

A follow-up prefills only what is new: the close of the previous answer, events not yet in
context, and the question. Positions continue from the same tracker, so a follow-up equals a
fresh prefill of the whole conversation when nothing is pruned.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from memory.records import Hit

from .config import LLMSettings
from .decoding import Decoder
from .engine import KeepFn, TextEngine
from .positions import PositionTracker, estimate_seconds_per_grid
from .prefill_graphs import ChunkPrefill
from .prompt import ContextEvent, Layout, Piece, Specials, TextPiece, lay_out, turn_pieces
from .pruning import grouped_topk_keep, kept_count, keynorm_keep, window_scores
from .records import Answer, AnswerPiece
from .tokenizer import StreamDecoder, TextTokenizer


@dataclass
class PrefillStats:
    tokens: int = 0  # tokens prefilled
    visual_tokens: int = 0  # of which visual
    groups: int = 0
    graphed_groups: int = 0  # of which prefilled by the bucketed/graph path
    prompt_ready_s: float = 0.0  # perf_counter when the layout and visual rows were ready


@dataclass
class SessionParts:
    """What a session borrows from its runner."""

    engine: TextEngine
    tokenizer: TextTokenizer
    specials: Specials
    settings: LLMSettings
    tokens_per_second: float
    default_seconds_per_grid: float
    generator: torch.Generator | None = None
    chunks: ChunkPrefill | None = None  # the runner's bucketed/graph prefill of short chunks, where enabled


@dataclass
class Session:
    parts: SessionParts
    decoder: Decoder
    tracker: PositionTracker = field(init=False)
    transcript: list[Piece] = field(default_factory=list)
    in_context: dict[str, ContextEvent] = field(default_factory=dict)
    seconds_per_grid: dict[str, float] = field(default_factory=dict)
    pending: list[int] = field(default_factory=list)  # sampled, not yet fed (the answer's last token)
    turns: int = 0
    visual_tokens: int = 0
    on_release: Callable[[Session], None] | None = None

    def __post_init__(self) -> None:
        self.tracker = PositionTracker(self.parts.tokens_per_second, self.parts.settings.text_resume)

    @property
    def cache(self):
        return self.decoder.cache

    # ------------------------------------------------------------------ prefill

    @torch.inference_mode()
    def prefill_turn(
        self, question: str, context: Sequence[ContextEvent]
    ) -> tuple[torch.Tensor, PrefillStats]:
        """Prefill one user turn; events already in context are not sent again. Returns logits [V]."""
        new, pieces = self._turn(question, context)
        self.pending = []
        self.turns += 1
        for c in new:
            self.in_context[c.event.event_id] = c
        return self.prefill(pieces)

    def turn_tokens(self, question: str, context: Sequence[ContextEvent]) -> int:
        """Tokens `prefill_turn(question, context)` would prefill (before KV pruning): events
        already in the session are not counted. Changes nothing."""
        _, pieces = self._turn(question, context)
        return sum(len(p.ids) if isinstance(p, TextPiece) else len(p.context.token_indices) for p in pieces)

    def _turn(self, question: str, context: Sequence[ContextEvent]) -> tuple[list[ContextEvent], list[Piece]]:
        """The turn's events not yet in the session, and its pieces (system prompt on the first turn)."""
        new = [c for c in context if c.event.event_id not in self.in_context]
        pieces = turn_pieces(
            self.parts.tokenizer,
            self.parts.specials,
            new,
            question,
            system_prompt=self.parts.settings.system_prompt if self.turns == 0 else None,
            pending_ids=self.pending,
        )
        return new, pieces

    @torch.inference_mode()
    def prefill(self, pieces: Sequence[Piece]) -> tuple[torch.Tensor, PrefillStats]:
        """Prefill pieces group by group, pruning visual KV as configured. Returns the last token's logits."""
        self._learn_seconds_per_grid(pieces)
        s = self.parts.settings
        layout = lay_out(
            pieces, self.tracker, group_grids=s.kv_group_grids, seconds_per_grid=self.seconds_per_grid
        )
        self.transcript.extend(pieces)
        engine = self.parts.engine
        visual = _gather_visual(layout, engine)
        turn_start = self.cache.length
        bounds = np.flatnonzero(np.diff(layout.group)) + 1
        starts, ends = np.r_[0, bounds], np.r_[bounds, len(layout)]
        stats = PrefillStats(len(layout), int(layout.is_visual.sum()), len(starts))
        stats.prompt_ready_s = time.perf_counter()
        self.visual_tokens += stats.visual_tokens
        hidden = None
        vis_done = 0
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            n_vis = int(layout.is_visual[a:b].sum())
            embeds = _embed_chunk(engine, layout.ids[a:b], visual[vis_done : vis_done + n_vis])
            vis_done += n_vis
            hidden = self._prefill_group(layout, a, b, embeds, turn_start, stats)
        assert hidden is not None
        return engine.logits(hidden)[0], stats

    def _prefill_group(
        self, layout: Layout, a: int, b: int, embeds: torch.Tensor, turn_start: int, stats: PrefillStats
    ) -> torch.Tensor:
        """One group, by the bucketed/graph path where it serves it, else eagerly. embeds: [q, H].
        Returns the group's last hidden state [1, H]."""
        is_last = b == len(layout)
        # SnapKV prunes the whole turn from the last group's queries: only the eager path has them
        needs_window = self.parts.settings.kv_prune == "snapkv" and is_last and layout.is_visual[:b].any()
        chunks = self.parts.chunks
        if chunks is not None and not needs_window and chunks.accepts(b - a):
            is_visual, n_keep = self._keynorm_rows(layout, a, b) or (None, 0)
            hidden = chunks.run(embeds, layout.positions[:, a:b], self.cache, is_visual, n_keep)
            if hidden is not None:
                stats.graphed_groups += 1
                return hidden
        engine = self.parts.engine
        keep, keep_from = self._keep_for(layout, a, b, turn_start, is_last=is_last)
        positions = torch.from_numpy(layout.positions[:, a:b]).to(engine.device)
        hidden, _ = engine.prefill_chunk(embeds[None], positions, self.cache, keep, keep_from)
        return hidden

    def _keynorm_rows(self, layout: Layout, a: int, b: int) -> tuple[np.ndarray, int] | None:
        """(is_visual [q], visual rows kept) of group [a, b) under key-norm pruning; None: nothing pruned."""
        s = self.parts.settings
        vis = layout.is_visual[a:b]
        n_vis = int(vis.sum())
        if s.kv_prune != "keynorm" or n_vis == 0:
            return None
        return vis, kept_count(n_vis, s.kv_keep_ratio)

    def _keep_for(
        self, layout: Layout, a: int, b: int, turn_start: int, *, is_last: bool
    ) -> tuple[KeepFn | None, int | None]:
        s = self.parts.settings
        dev = self.parts.engine.device
        if s.kv_prune == "keynorm":
            rows = self._keynorm_rows(layout, a, b)
            if rows is None:
                return None, None
            vis, n_keep = rows
            n_text = int((~vis).sum())
            vis_t = torch.from_numpy(vis).to(dev)
            return (lambda _i, keys, _q: keynorm_keep(keys, vis_t, n_text, n_keep)), None
        if s.kv_prune == "snapkv" and is_last:
            vis = layout.is_visual[:b]
            if not vis.any():
                return None, None
            groups = layout.group[:b]
            keep_per_group = {
                int(g): kept_count(int((vis & (groups == g)).sum()), s.kv_keep_ratio)
                for g in np.unique(groups[vis])
            }
            vis_t, grp_t = torch.from_numpy(vis).to(dev), torch.from_numpy(groups).to(dev)
            window, scale = s.snapkv_window, self.parts.engine.scale

            def keep(_i: int, keys: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
                score = window_scores(queries[:, :, -window:], keys, scale)
                return grouped_topk_keep(score, vis_t, grp_t, keep_per_group)

            return keep, turn_start
        return None, None

    def _learn_seconds_per_grid(self, pieces: Sequence[Piece]) -> None:
        by_stream: dict[str, list[np.ndarray]] = {}
        for p in pieces:
            ev = getattr(getattr(p, "context", None), "event", None)
            if ev is not None and ev.stream_id not in self.seconds_per_grid:
                by_stream.setdefault(ev.stream_id, []).append(ev.grid_pts_s)
        fixed = self.parts.settings.seconds_per_grid
        for stream, pts in by_stream.items():
            self.seconds_per_grid[stream] = fixed or estimate_seconds_per_grid(
                pts, self.parts.default_seconds_per_grid
            )

    # ------------------------------------------------------------------ decode

    @torch.inference_mode()
    def generate(
        self, logits: torch.Tensor, max_new_tokens: int, cancel: threading.Event | None = None
    ) -> Iterator[int]:
        """Sample, yield, feed, repeat. Stops at an end-of-turn token, after max_new_tokens, or within one
        step of `cancel` being set. The last sampled token stays pending until the next turn."""
        eos = self.parts.tokenizer.eos_ids
        token = self._sample(logits)
        fed: list[int] = []
        try:
            while True:
                yield token
                if token in eos or len(fed) + 1 >= max_new_tokens or (cancel is not None and cancel.is_set()):
                    return
                position = int(self.tracker.text(1)[0, 0])
                fed.append(token)
                token = self._sample(self.decoder.step(token, position))
        finally:
            self.pending = [token]
            if fed:
                self.transcript.append(TextPiece(tuple(fed)))

    def _sample(self, logits: torch.Tensor) -> int:
        t = self.parts.settings.temperature
        if t == 0.0:
            return int(logits.argmax().item())
        probs = torch.softmax(logits.float() / t, dim=-1)
        return int(torch.multinomial(probs, 1, generator=self.parts.generator).item())

    @torch.inference_mode()
    def ask(
        self,
        question: str,
        context: Sequence[ContextEvent],
        *,
        max_new_tokens: int | None = None,
        started_s: float | None = None,
        cancel: threading.Event | None = None,
        on_piece: Callable[[AnswerPiece], None] | None = None,
    ) -> Answer:
        """Answer one question in this session. `started_s` (perf_counter) is when the question came in,
        so that ttft_s covers retrieval and selection done before this call."""
        t_call = time.perf_counter()
        t0 = t_call if started_s is None else started_s
        limit = max_new_tokens or self.parts.settings.max_new_tokens
        logits, stats = self.prefill_turn(question, context)
        if logits.is_cuda:  # sampling syncs right after: waiting here only splits the timing
            torch.cuda.current_stream(logits.device).synchronize()
        t_logits = time.perf_counter()
        kv_tokens = self.cache.length
        text = StreamDecoder(self.parts.tokenizer)
        ttft = t_first = t_last = None
        n = 0
        finish = "length"
        for token in self.generate(logits, limit, cancel):
            t_last = time.perf_counter()
            if n == 0:
                ttft, t_first = t_last - t0, t_last
            n += 1
            if token in self.parts.tokenizer.eos_ids:
                finish = "eos"
                break
            piece = text.push(token)
            if piece and on_piece is not None:
                on_piece(AnswerPiece(piece, n))
        cancelled = cancel is not None and cancel.is_set() and finish != "eos"
        tok_s = (n - 1) / (t_last - t_first) if n > 1 and t_last and t_first and t_last > t_first else None
        return Answer(
            text=text.text,
            cited=[_hit(c) for c in context],
            ttft_s=ttft,
            visual_tokens=self.visual_tokens,
            generated_tokens=n,
            is_cancelled=cancelled,
            finish_reason="cancelled" if cancelled else finish,
            prefill_tokens=stats.tokens,
            kv_tokens=kv_tokens,
            decode_tok_s=tok_s,
            ttft_parts_s={
                "prompt_s": stats.prompt_ready_s - t_call,
                "forward_s": t_logits - stats.prompt_ready_s,
                "sample_s": (t_first or t_logits) - t_logits,
            },
            prefill_groups=stats.groups,
            graphed_groups=stats.graphed_groups,
        )

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Give the cache back to the runner's pool (idempotent)."""
        if self.on_release is not None:
            release, self.on_release = self.on_release, None
            release(self)


def _gather_visual(layout: Layout, engine: TextEngine) -> torch.Tensor:
    """Kept visual tokens of the layout in prompt order, on the engine's device: [N_vis, H]. Rows are
    gathered once into one host buffer (pinned on CUDA, so the copy is asynchronous; the caching host
    allocator keeps the buffer until the copy is done): indexing then concatenating copied them twice."""
    if not layout.visual_rows:
        return torch.empty(0, engine.embed.weight.shape[1], dtype=engine.dtype, device=engine.device)
    first = layout.visual_rows[0][0].event.tokens
    n = sum(len(idx) for _, idx in layout.visual_rows)
    pinned = engine.device.type == "cuda"
    host = torch.empty((n, first.shape[1]), dtype=torch.from_numpy(first[:0]).dtype, pin_memory=pinned)
    out = host.numpy()
    row = 0
    for c, idx in layout.visual_rows:
        dest = out[row : row + len(idx)]
        if c.event.tokens.dtype == out.dtype:
            np.take(c.event.tokens, idx, axis=0, out=dest, mode="clip")  # indices checked by ContextEvent
        else:
            dest[:] = c.event.tokens[idx]
        row += len(idx)
    return host.to(engine.device, non_blocking=True).to(engine.dtype)


def _embed_chunk(engine: TextEngine, ids: np.ndarray, visual: torch.Tensor) -> torch.Tensor:
    """Token embeddings of a chunk with visual rows put in place: [q, H]. No host sync."""
    dev = engine.device
    ids_t = torch.from_numpy(ids).to(dev)
    emb = engine.embed(ids_t.clamp(min=0))
    if visual.shape[0]:
        where = torch.from_numpy(np.flatnonzero(ids < 0)).to(dev)
        emb = emb.index_copy(0, where, visual)
    return emb


def _hit(c: ContextEvent) -> Hit:
    ev = c.event
    return Hit(
        ev.event_id, ev.stream_id, ev.start_pts_s, ev.end_pts_s, ev.start_wall_s, ev.end_wall_s, c.relevance
    )
