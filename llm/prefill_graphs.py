"""Short prefill chunks replayed as piecewise CUDA graphs (attention eager in between).

A follow-up turn prefills a few hundred tokens; eager, that is ~1,400 kernel launches (28 layers x
~50) whose host cost exceeds the GPU work. Here a chunk is padded to a bucket of `bucket_tokens`
and each layer's cache-free parts run as captured graphs: piece j holds layer j-1 after attention
(o_proj, residual, MLP) and layer j up to attention (norm, QKV, RoPE, key-norm ranking). Between
pieces, attention runs eagerly on the chunk's real rows (`TextEngine.attend_cached`): it writes
the cache and reads exactly past + q rows, so graphs depend on neither the cache nor its length,
and a handful of eager launches per layer hides behind the GPU work of the pieces.

One set of graphs per bucket serves every session of the runner; `capture_all` takes them ahead
(Runner.warmup), or each bucket is captured on first use. Static buffers at the largest bucket
hold every piece's inputs and outputs (a bucket uses views of their front), so the graphs' own
memory pool holds only a piece's temporaries. Mode "bucketed" runs the same pieces without graphs:
the CPU tests check it against the eager path.

Captured as they are, the pieces still run ~30 small kernels per layer around their GEMMs (norms,
RoPE, residual adds, the key-norm ranking, copies into the buffers): at 640 rows of a 7B model that
was a third of the GPU time of a follow-up (H100 profile). With `use_compile` the middle pieces are
torch.compile'd first (one compilation, symbolic in the rows, serves every layer and bucket), which
fuses them; a failed compilation falls back to the pieces as they are.

Padded rows (zero embeddings, position 0) flow through the pieces but never reach the cache or
attention; key-norm ranking marks them never kept.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .engine import TextEngine
from .kvcache import StaticKVCache
from .pruning import keynorm_order

log = logging.getLogger(__name__)

TEXT, VISUAL, PADDING = 0, 1, 2  # row kinds of keynorm_order


def resolve_prefill_mode(mode: str, device: torch.device) -> str:
    """'auto' -> inductor on CUDA, none elsewhere; CUDA graphs need CUDA."""
    if mode == "auto":
        return "inductor" if device.type == "cuda" else "none"
    if mode in ("inductor", "cudagraph") and device.type != "cuda":
        return "none"
    return mode


def round_up(n: int, step: int) -> int:
    return -(-n // step) * step


@dataclass
class GraphCounts:
    captured_buckets: int = 0
    chunks: int = 0  # chunks prefilled here


@dataclass
class _Views:
    """The static buffers at one bucket of n rows."""

    embeds: torch.Tensor  # [1, n, H]
    positions: torch.Tensor  # [3, n] int64
    kinds: torch.Tensor  # [n] int64: TEXT, VISUAL, PADDING
    n_kept: torch.Tensor  # [1] int64: rows the chunk keeps (text + kept visual)
    cos: torch.Tensor  # [n, D]
    sin: torch.Tensor
    x: torch.Tensor  # [1, n, H] hidden states between pieces
    q: torch.Tensor  # [1, H_q, n, D]
    k: torch.Tensor  # [1, H_kv, n, D]
    v: torch.Tensor
    k_kept: torch.Tensor  # k's rows in keynorm_order: the kept ones first, ascending
    v_kept: torch.Tensor
    attended: torch.Tensor  # [1, H_q, n, D], written by the eager attention


class ChunkPrefill:
    """Chunks up to `max_tokens` prefilled by bucketed pieces; one per runner, one chunk at a time."""

    def __init__(
        self,
        engine: TextEngine,
        *,
        bucket_tokens: int,
        max_tokens: int,
        use_graphs: bool,
        use_compile: bool = False,
    ) -> None:
        self.engine, self.bucket_tokens, self.use_graphs = engine, bucket_tokens, use_graphs
        self.max_tokens = max_tokens
        self.is_enabled = True
        self.counts = GraphCounts()
        self._lock = threading.Lock()
        self._graphs: dict[int, list[torch.cuda.CUDAGraph]] = {}
        self._pool: Any = torch.cuda.graph_pool_handle() if use_graphs else None
        e, m, dev = engine, self.max_tokens, engine.device
        hidden = e.embed.weight.shape[1]
        shapes = {
            "embeds": ((hidden,), e.dtype),
            "cos": ((e.head_dim,), e.dtype),
            "sin": ((e.head_dim,), e.dtype),
            "x": ((hidden,), e.dtype),
            "q": ((e.n_heads, e.head_dim), e.dtype),
            "k": ((e.n_kv_heads, e.head_dim), e.dtype),
            "v": ((e.n_kv_heads, e.head_dim), e.dtype),
            "k_kept": ((e.n_kv_heads, e.head_dim), e.dtype),
            "v_kept": ((e.n_kv_heads, e.head_dim), e.dtype),
            "attended": ((e.n_heads, e.head_dim), e.dtype),
        }
        self._flat = {
            name: torch.zeros(m * int(np.prod(per_row)), dtype=dtype, device=dev)
            for name, (per_row, dtype) in shapes.items()
        }
        self._ints = torch.zeros(1 + 4 * m, dtype=torch.long, device=dev)  # n_kept, kinds, positions
        # The layers come in as arguments, so one compilation serves every middle piece.
        self._middle: Any = self._middle_piece
        self.is_compiled = use_compile
        if use_compile:
            self._middle = torch.compile(self._middle_piece, dynamic=True, fullgraph=True)

    @property
    def buckets(self) -> list[int]:
        return sorted({self.bucket_of(q) for q in range(1, self.max_tokens + 1, self.bucket_tokens)})

    def bucket_of(self, tokens: int) -> int:
        """Rows a chunk of `tokens` is padded to: the next multiple of bucket_tokens, at most max_tokens."""
        return min(round_up(tokens, self.bucket_tokens), self.max_tokens)

    def accepts(self, tokens: int) -> bool:
        return self.is_enabled and 0 < tokens <= self.max_tokens

    @torch.inference_mode()  # no autograd records; buffers written in place in and out of inference mode
    def capture_all(self) -> None:
        """Capture every bucket now: per bucket, one eager pass and one capture per piece (layers + 1)."""
        if not self.use_graphs:
            return
        with self._lock:
            for n in self.buckets:
                if n not in self._graphs and not self._try_capture(n):
                    return

    @torch.inference_mode()
    def run(
        self,
        embeds: torch.Tensor,
        positions: np.ndarray,
        cache: StaticKVCache,
        is_visual: np.ndarray | None,
        n_keep_visual: int,
    ) -> torch.Tensor | None:
        """Prefill one chunk after the cache's rows. embeds: [q, H]; positions: [3, q]; is_visual: [q]
        with key-norm pruning (None: keep every row); n_keep_visual: visual rows kept. Returns the last
        token's hidden state [1, H], or None where graph capture failed (graphs are then off for good and
        the caller prefills eagerly; the cache is untouched)."""
        q = embeds.shape[0]
        n = self.bucket_of(q)
        with self._lock:
            if self.use_graphs and n not in self._graphs and not self._try_capture(n):
                return None
            cache.reserve(q)
            n_kept = q if is_visual is None else int((~is_visual).sum()) + n_keep_visual
            self._load(embeds, positions, is_visual, n_kept, n)
            b, past = self._views(n), cache.length
            for i in range(len(self.engine.layers)):
                self._piece(i, n)
                attended = self.engine.attend_cached(
                    i, b.q[:, :, :q], b.k[:, :, :q], b.v[:, :, :q], cache, past
                )
                b.attended[:, :, :q] = attended
                if is_visual is not None:
                    cache.k[i][:, :, past : past + n_kept] = b.k_kept[:, :, :n_kept]
                    cache.v[i][:, :, past : past + n_kept] = b.v_kept[:, :, :n_kept]
            self._piece(len(self.engine.layers), n)
            cache.length = past + n_kept
            self.counts.chunks += 1
            return b.x[:, q - 1].clone()

    def _load(
        self, embeds: torch.Tensor, positions: np.ndarray, is_visual: np.ndarray | None, n_kept: int, n: int
    ) -> None:
        """Copy a chunk into the static inputs: embeddings on the device, the small ints in one host copy."""
        q, m = embeds.shape[0], self.max_tokens
        b = self._views(n)
        b.embeds[0, :q] = embeds
        b.embeds[0, q:] = 0
        ints = np.zeros(1 + 4 * m, dtype=np.int64)
        ints[0] = n_kept
        kinds = ints[1 : 1 + m]
        kinds[:n] = PADDING
        kinds[:q] = TEXT if is_visual is None else np.where(is_visual, VISUAL, TEXT)
        ints[1 + m :].reshape(3, m)[:, :q] = positions
        self._ints.copy_(torch.from_numpy(ints))

    def _views(self, n: int) -> _Views:
        e, m = self.engine, self.max_tokens

        def view(name: str, *shape: int) -> torch.Tensor:
            return self._flat[name][: int(np.prod(shape))].view(*shape)

        return _Views(
            embeds=view("embeds", 1, n, e.embed.weight.shape[1]),
            positions=self._ints[1 + m :].view(3, m)[:, :n],
            kinds=self._ints[1 : 1 + n],
            n_kept=self._ints[0:1],
            cos=view("cos", n, e.head_dim),
            sin=view("sin", n, e.head_dim),
            x=view("x", 1, n, e.embed.weight.shape[1]),
            q=view("q", 1, e.n_heads, n, e.head_dim),
            k=view("k", 1, e.n_kv_heads, n, e.head_dim),
            v=view("v", 1, e.n_kv_heads, n, e.head_dim),
            k_kept=view("k_kept", 1, e.n_kv_heads, n, e.head_dim),
            v_kept=view("v_kept", 1, e.n_kv_heads, n, e.head_dim),
            attended=view("attended", 1, e.n_heads, n, e.head_dim),
        )

    def _piece(self, j: int, n: int) -> None:
        if self.use_graphs:
            self._graphs[n][j].replay()
        else:
            self._piece_fn(j, self._views(n))

    def _piece_fn(self, j: int, b: _Views) -> None:
        """Piece j: layer j-1 after attention (j > 0), then layer j up to attention (j < layers). Reads and
        writes the static buffers only (no cache, no host sync): capturable."""
        e, last = self.engine, len(self.engine.layers)
        if 0 < j < last:
            self._middle(e.layers[j - 1], e.layers[j], b.x, b.attended, b.cos, b.sin, b.kinds, b.n_kept,
                         b.q, b.k, b.v, b.k_kept, b.v_kept)  # fmt: skip
            return
        if j == last:
            b.x.copy_(e.post_attention(j - 1, b.x, b.attended))
            return
        cos, sin = e.rope(b.positions, e.dtype)
        b.cos.copy_(cos)
        b.sin.copy_(sin)
        b.x.copy_(b.embeds)
        self._write_attention_inputs(*e.pre_attention(0, b.x, b.cos, b.sin), b.kinds, b.n_kept,
                                     b.q, b.k, b.v, b.k_kept, b.v_kept)  # fmt: skip

    def _middle_piece(
        self,
        prev: Any,
        layer: Any,
        x: torch.Tensor,
        attended: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        kinds: torch.Tensor,
        n_kept: torch.Tensor,
        *out: torch.Tensor,
    ) -> None:
        """Layer `prev` after attention, then `layer` up to it; writes x and the attention inputs in place."""
        x.copy_(self.engine.layer_post_attention(prev, x, attended))
        self._write_attention_inputs(
            *self.engine.layer_pre_attention(layer, x, cos, sin), kinds, n_kept, *out
        )

    @staticmethod
    def _write_attention_inputs(
        qs: torch.Tensor,
        ks: torch.Tensor,
        vs: torch.Tensor,
        kinds: torch.Tensor,
        n_kept: torch.Tensor,
        *out: torch.Tensor,
    ) -> None:
        """q, k, v into their buffers, and k, v again in key-norm order (the rows the cache keeps first)."""
        q, k, v, k_kept, v_kept = out
        order = keynorm_order(ks, kinds, n_kept)
        q.copy_(qs)
        k.copy_(ks)
        v.copy_(vs)
        k_kept.copy_(ks[:, :, order])
        v_kept.copy_(vs[:, :, order])

    def _try_capture(self, n: int) -> bool:
        try:
            self._graphs[n] = self._capture(n)
        except Exception as exc:  # capture failures come in many types
            if self.is_compiled:  # first without the compiled pieces
                log.warning("compiled prefill pieces failed (%s); capturing them uncompiled", exc)
                self._middle, self.is_compiled = self._middle_piece, False
                self._graphs.clear()
                self.counts.captured_buckets = 0
                return self._try_capture(n)
            log.warning("prefill graphs for %d tokens failed (%s); prefilling eagerly", n, exc)
            self.is_enabled = False
            self._graphs.clear()
            return False
        self.counts.captured_buckets += 1
        return True

    def _capture(self, n: int) -> list[torch.cuda.CUDAGraph]:
        """Run every piece once on a side stream (library handles, kernel choice), then capture each."""
        b = self._views(n)
        pieces = range(len(self.engine.layers) + 1)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for j in pieces:
                self._piece_fn(j, b)
        torch.cuda.current_stream().wait_stream(side)
        graphs = []
        for j in pieces:
            graph = torch.cuda.CUDAGraph()
            # thread_local: encoder or pixel-test threads on the same GPU may keep working meanwhile
            with torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
                self._piece_fn(j, b)
            graphs.append(graph)
        return graphs
