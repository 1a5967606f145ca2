"""The decode hot path of one session: eager, torch.compile'd, and/or replayed as a CUDA graph.

The step function is `TextEngine.decode_step` (a handful of lines per layer). torch.compile
(inductor, one compilation shared by every session: the cache comes in as an argument of fixed
shape) fuses it; a CUDA graph captured per session cache removes the launch overhead. Static
input buffers hold the token, its position and its cache row; `step` copies into them and replays.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from .engine import TextEngine
from .kvcache import StaticKVCache

log = logging.getLogger(__name__)

DECODE_MODES = ("inductor", "cudagraph", "none")


def resolve_mode(mode: str, device: torch.device) -> str:
    """'auto' -> inductor on CUDA, none on CPU. CUDA graphs need CUDA."""
    if mode == "auto":
        return "inductor" if device.type == "cuda" else "none"
    if mode in ("inductor", "cudagraph") and device.type != "cuda":
        return "none"
    return mode


class CompiledStep:
    """The engine's decode step compiled once (torch.compile, fullgraph, static shapes)."""

    def __init__(self, engine: TextEngine) -> None:
        self.fn = torch.compile(engine.decode_step, fullgraph=True, dynamic=False)


class Decoder:
    """Decodes one token at a time into one session's cache."""

    def __init__(
        self, engine: TextEngine, cache: StaticKVCache, mode: str, compiled: CompiledStep | None
    ) -> None:
        self.engine = engine
        self.cache = cache
        self.mode = mode
        dev = engine.device
        self._token = torch.zeros(1, 1, dtype=torch.long, device=dev)
        self._pos = torch.zeros(3, 1, dtype=torch.long, device=dev)
        self._slot = torch.zeros(1, dtype=torch.long, device=dev)
        self._fn: Any = compiled.fn if (compiled is not None and mode == "inductor") else engine.decode_step
        self._graph: torch.cuda.CUDAGraph | None = None
        self._out: torch.Tensor | None = None
        if mode in ("inductor", "cudagraph"):
            self._capture()

    def _run(self) -> torch.Tensor:
        k, v = self.cache.k, self.cache.v
        if self._graph is None and self.mode == "none":
            # eager: attend over the live rows only (a captured step needs the fixed full width)
            live = self.cache.length + 1
            k, v = [t[:, :, :live] for t in k], [t[:, :, :live] for t in v]
        with torch.inference_mode():
            return self._fn(self._token, self._pos, self._slot, k, v)

    def _capture(self) -> None:
        """Warm up on a side stream (compiles, picks kernels), then capture. The warm-up writes rows
        at the next free slot, which the next real step or prefill overwrites."""
        self._slot.fill_(min(self.cache.length, self.cache.capacity - 1))
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self._run()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._out = self._run()
        self._graph = graph

    def step(self, token_id: int, position: int) -> torch.Tensor:
        """Feed one token at `position` (same on all mRoPE axes) into row cache.length. Returns logits [V]."""
        self.cache.reserve(1)
        self._token.fill_(token_id)
        self._pos.fill_(position)
        self._slot.fill_(self.cache.length)
        if self._graph is not None:
            self._graph.replay()
            out = self._out
        else:
            out = self._run()
        self.cache.length += 1
        assert out is not None
        return out[0]
