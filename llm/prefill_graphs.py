"""Short prefill chunks at bucketed static shapes, replayed as CUDA graphs.

A follow-up turn prefills a few hundred tokens; eager, that is ~1,400 kernel launches (28 layers x
~50) whose host cost exceeds the GPU work. Here a chunk is padded to a bucket of `bucket_tokens`,
its attention spans a key width rounded up to `key_bucket_tokens`, and `TextEngine.prefill_static`
runs at that shape. The cache's write offset and the pruning inputs are device tensors, so one
capture per (tokens, width, pruned) serves every later chunk of that shape in this cache, from
any offset. Graphs are captured on first use, least recently used ones dropped past `max_graphs`,
and share one memory pool per runner (turns run one at a time). Mode "bucketed" runs the same
padded computation eagerly: the CPU tests check it against the unpadded path.

Padded rows are zero embeddings at position 0, written after the chunk's real rows and seen by
none of them; key-norm pruning never keeps them; they stay past the cache's length.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .engine import TextEngine
from .kvcache import StaticKVCache

log = logging.getLogger(__name__)

PREFILL_MODES = ("cudagraph", "bucketed", "none")
TEXT, VISUAL, PADDING = 0, 1, 2  # row kinds of keynorm_order


def resolve_prefill_mode(mode: str, device: torch.device) -> str:
    """'auto' -> cudagraph on CUDA, none elsewhere; CUDA graphs need CUDA."""
    if mode == "auto":
        return "cudagraph" if device.type == "cuda" else "none"
    if mode == "cudagraph" and device.type != "cuda":
        return "none"
    return mode


def round_up(n: int, step: int) -> int:
    return -(-n // step) * step


@dataclass(frozen=True)
class Buckets:
    tokens: int  # chunk lengths are rounded up to a multiple of this
    key_tokens: int  # attention widths (cache rows read) are rounded up to a multiple of this
    max_tokens: int  # longer chunks take the eager path


@dataclass
class GraphCounts:
    captures: int = 0
    replays: int = 0
    evictions: int = 0


class ChunkPrefill:
    """The bucketed prefill of one session cache (graphs hold the cache's addresses)."""

    def __init__(
        self,
        engine: TextEngine,
        cache: StaticKVCache,
        buckets: Buckets,
        *,
        use_graphs: bool,
        max_graphs: int,
        pool: Any = None,
    ) -> None:
        self.engine, self.cache, self.buckets = engine, cache, buckets
        self.use_graphs, self.max_graphs, self.pool = use_graphs, max_graphs, pool
        self.is_enabled = True
        self.counts = GraphCounts()
        dev, n = engine.device, buckets.max_tokens
        # Static inputs at the largest bucket; a bucket reads views of their first rows.
        self._embeds = torch.zeros(1, n, engine.embed.weight.shape[1], dtype=engine.dtype, device=dev)
        self._ints = torch.zeros(2 + 4 * n, dtype=torch.long, device=dev)  # past, n_kept, kinds, positions
        self._graphs: OrderedDict[tuple[int, int, bool], tuple[torch.cuda.CUDAGraph, torch.Tensor]] = (
            OrderedDict()
        )

    def accepts(self, tokens: int) -> bool:
        """Whether a chunk of `tokens` goes through here (its padded rows must fit the cache too)."""
        b = self.buckets
        return (
            self.is_enabled
            and 0 < tokens <= b.max_tokens
            and self.cache.length + round_up(tokens, b.tokens) <= self.cache.capacity
        )

    def run(
        self,
        embeds: torch.Tensor,
        positions: np.ndarray,
        is_visual: np.ndarray | None,
        n_keep_visual: int,
    ) -> torch.Tensor | None:
        """Prefill one chunk after the cache's rows. embeds: [q, H]; positions: [3, q]; is_visual: [q]
        with key-norm pruning (None: keep every row); n_keep_visual: visual rows kept. Returns the last
        token's hidden state [1, H], or None when graph capture failed (this object is then disabled
        and the caller prefills eagerly: the cache's live rows are untouched)."""
        q = embeds.shape[0]
        n = round_up(q, self.buckets.tokens)
        past = self.cache.length
        width = min(round_up(past + n, self.buckets.key_tokens), self.cache.capacity)
        n_kept = q if is_visual is None else int((~is_visual).sum()) + n_keep_visual
        self._load(embeds, positions, is_visual, past, n_kept, n)
        prune = is_visual is not None
        try:
            out = self._forward(n, width, prune)
        except Exception as exc:  # capture failures come in many types: serve eagerly from now on
            log.warning("prefill graph (%d tokens, width %d) failed (%s); prefilling eagerly", n, width, exc)
            self.is_enabled = False
            self._graphs.clear()
            return None
        self.cache.length = past + n_kept
        return out[:, q - 1].clone()  # graph outputs of a shared pool are only valid until another replay

    def _load(
        self,
        embeds: torch.Tensor,
        positions: np.ndarray,
        is_visual: np.ndarray | None,
        past: int,
        n_kept: int,
        n: int,
    ) -> None:
        """Copy a chunk into the static inputs: embeddings on the device, the small ints in one host copy."""
        q, m = embeds.shape[0], self.buckets.max_tokens
        self._embeds[0, :q].copy_(embeds)
        self._embeds[0, q:n].zero_()
        ints = np.zeros(2 + 4 * m, dtype=np.int64)
        ints[0], ints[1] = past, n_kept
        kinds = ints[2 : 2 + m]
        kinds[:n] = PADDING
        kinds[:q] = TEXT if is_visual is None else np.where(is_visual, VISUAL, TEXT)
        ints[2 + m :].reshape(3, m)[:, :q] = positions
        self._ints.copy_(torch.from_numpy(ints))

    def _inputs(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Views of the static inputs at bucket n: embeds, positions, past, kinds, n_kept."""
        m = self.buckets.max_tokens
        positions = self._ints[2 + m :].view(3, m)[:, :n]
        return self._embeds[:, :n], positions, self._ints[0:1], self._ints[2 : 2 + n], self._ints[1:2]

    def _step(self, n: int, width: int, prune: bool) -> torch.Tensor:
        embeds, positions, past, kinds, n_kept = self._inputs(n)
        keynorm = (kinds, n_kept) if prune else None
        c = self.cache
        return self.engine.prefill_static(embeds, positions, past, c.k, c.v, width, keynorm)

    def _forward(self, n: int, width: int, prune: bool) -> torch.Tensor:
        if not self.use_graphs:
            return self._step(n, width, prune)
        key = (n, width, prune)
        entry = self._graphs.get(key)
        if entry is None:
            entry = self._graphs[key] = self._capture(n, width, prune)
            self.counts.captures += 1
            if len(self._graphs) > self.max_graphs:
                self._graphs.popitem(last=False)
                self.counts.evictions += 1
        else:
            self._graphs.move_to_end(key)
        graph, out = entry
        graph.replay()
        self.counts.replays += 1
        return out

    def _capture(self, n: int, width: int, prune: bool) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
        """Warm up once on a side stream (library handles, kernel choice), then capture. The warm-up
        computes this very chunk; rerunning it is harmless (it only writes the chunk's own rows)."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self._step(n, width, prune)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: encoder or pixel-test threads on the same GPU may keep working during the capture
        with torch.cuda.graph(graph, pool=self.pool, capture_error_mode="thread_local"):
            out = self._step(n, width, prune)
        return graph, out
