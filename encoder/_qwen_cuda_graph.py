"""CUDA graphs of the tower's forward pass, one per batch shape seen in warm-up.

The fast forward launches about a dozen kernels per block; a replay launches them all at once,
which matters for small batches (a live stream encodes a pair or two at a time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

Forward = Callable[[torch.Tensor, int, tuple[int, int]], torch.Tensor]


@dataclass
class _Replay:
    graph: torch.cuda.CUDAGraph
    static_in: torch.Tensor  # [G * P, patch_dim]
    static_out: torch.Tensor  # [G, units, D_llm]

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        self.static_in.copy_(pixel_values, non_blocking=True)
        self.graph.replay()
        # the next replay overwrites static_out
        return self.static_out.clone()

    def padded(self, pixel_values: torch.Tensor, grids: int) -> torch.Tensor:
        """Fewer grids than the graph holds: the rest are zero grids (grids never attend to each
        other, so they change nothing); [grids, units, D_llm]."""
        rows = pixel_values.shape[0]
        self.static_in[:rows].copy_(pixel_values, non_blocking=True)
        self.static_in[rows:].zero_()
        self.graph.replay()
        return self.static_out[:grids].clone()


class GraphCache:
    def __init__(self, forward: Forward) -> None:
        self._forward = forward
        self._graphs: dict[tuple[int, int, int], _Replay] = {}

    def get(self, grids: int, grid_hw: tuple[int, int]) -> _Replay | None:
        return self._graphs.get((grids, *grid_hw))

    def smallest_holding(self, grids: int, grid_hw: tuple[int, int]) -> tuple[int, _Replay] | None:
        """The graph of this grid size with the fewest grids >= `grids`, with its grid count."""
        sizes = [g for (g, h, w) in self._graphs if (h, w) == tuple(grid_hw) and g >= grids]
        if not sizes:
            return None
        return min(sizes), self._graphs[(min(sizes), *grid_hw)]

    def capture(self, example: torch.Tensor, grids: int, grid_hw: tuple[int, int]) -> None:
        """Record forward(example) for this shape; the example only fixes shape, dtype and device."""
        static_in = example.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # allocator warm-up off the capturing stream, as CUDA graphs need
            for _ in range(2):
                self._forward(static_in, grids, grid_hw)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self._forward(static_in, grids, grid_hw)
        self._graphs[(grids, *grid_hw)] = _Replay(graph, static_in, static_out)
