"""The last-kept pixel test over a batch of frames on a device, as one CUDA graph per batch shape.

Each frame of a batch is compared with the copy-forward reference left by the frames before it, so
the frames are tested one after another: about seven small kernels each. Launched from Python that
is ~0.2 ms a frame of interpreter and launch time, next to an encoder that spends ~3 ms a frame on
the GPU and needs the same interpreter to launch its own work. Here the whole batch is captured
once per (frames, height, width) and replayed: one launch per batch. Off CUDA (tests) the same
body runs eagerly on the same buffers.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)

_MAX_GRAPHS = 8  # batch shapes kept captured: full batches, a stream's last partial one, a few sizes


class LastKeptBatch:
    """Static buffers and the graphed recurrence for one batch shape [B, H, W, 3] uint8.

    `reference` ([hp*p, wp*p, 3] int16, the patches' copy-forward image) is the state carried from
    batch to batch; `run(frames)` tests every frame against it in order and returns [B, hp, wp]
    bool masks (True = static), valid until the next run.
    """

    def __init__(
        self, shape: tuple[int, int, int, int], patch_size: int, tau: float, scale: torch.Tensor
    ) -> None:
        b, height, width, _ = shape
        p = patch_size
        self.hp, self.wp, self.p, self.tau = height // p, width // p, p, tau
        device = scale.device
        self.scale = scale  # [3] float64: |a - b| -> ImageNet-normalised difference, per channel
        self.frames = torch.zeros(shape, dtype=torch.uint8, device=device)
        self.reference = torch.zeros((self.hp * p, self.wp * p, 3), dtype=torch.int16, device=device)
        self.masks = torch.zeros((b, self.hp, self.wp), dtype=torch.bool, device=device)
        self._graph: torch.cuda.CUDAGraph | None = None
        self._is_graph_failed = device.type != "cuda"

    def run(self, frames: torch.Tensor) -> torch.Tensor:
        self.frames.copy_(frames)
        if self._graph is None and not self._is_graph_failed:
            self._capture()
        if self._graph is not None:
            self._graph.replay()
        else:
            self._body()
        return self.masks

    def _body(self) -> None:
        p, hp, wp = self.p, self.hp, self.wp
        patches = (hp, p, wp, p, 3)
        frames = self.frames[:, : hp * p, : wp * p].to(torch.int16)
        kept = self.reference
        for i in range(frames.shape[0]):
            frame = frames[i]
            sums = (frame - kept).abs_().view(patches).sum(dim=(1, 3), dtype=torch.int32)  # [hp, wp, 3]
            mask = (sums.double() @ self.scale).float() <= self.tau  # as patch_differences_torch
            kept = torch.where(mask[:, None, :, None, None], kept.view(patches), frame.view(patches))
            kept = kept.view(hp * p, wp * p, 3)
            self.masks[i] = mask
        self.reference.copy_(kept)

    def _capture(self) -> None:
        """Run the body once on a side stream (kernel choice, allocator), then capture it. The state
        is saved and restored around both, so capturing changes nothing."""
        saved = self.reference.clone()
        try:
            side = torch.cuda.Stream(self.frames.device)
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self._body()
            torch.cuda.current_stream().wait_stream(side)
            self.reference.copy_(saved)
            graph = torch.cuda.CUDAGraph()
            # thread_local: the encoder keeps launching from its own thread meanwhile
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                self._body()
            self._graph = graph
        except Exception as exc:  # capture failures come in many types: run eagerly from now on
            log.warning("pixel-test graph capture failed (%s); testing eagerly", exc)
            self._is_graph_failed = True
        self.reference.copy_(saved)


class LastKeptGraphs:
    """One `LastKeptBatch` per batch shape (a file's last batch is short); the caller sets the
    reference before each run."""

    def __init__(self, patch_size: int, tau: float, scale: torch.Tensor) -> None:
        self.patch_size, self.tau, self.scale = patch_size, tau, scale
        self._batches: dict[tuple[int, ...], LastKeptBatch] = {}
        self._reference: torch.Tensor | None = None

    def set_reference(self, kept_u8: torch.Tensor) -> None:
        """Start from this copy-forward image ([H, W, 3] uint8)."""
        p = self.patch_size
        hp, wp = kept_u8.shape[0] // p, kept_u8.shape[1] // p
        self._reference = kept_u8[: hp * p, : wp * p].to(torch.int16)

    def run(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """frames [B, H, W, 3] uint8 -> ([B, hp, wp] masks, [hp*p, wp*p, 3] int16 reference after them)."""
        assert self._reference is not None, "set_reference first"
        shape = tuple(frames.shape)
        batch = self._batches.get(shape)
        if batch is None:
            if len(self._batches) >= _MAX_GRAPHS:
                self._batches.pop(next(iter(self._batches)))
            batch = self._batches[shape] = LastKeptBatch(shape, self.patch_size, self.tau, self.scale)  # type: ignore[arg-type]
        batch.reference.copy_(self._reference)
        return batch.run(frames), batch.reference
