"""The last-kept pixel test over a batch of frames on a device, as one CUDA graph per batch shape.

Each frame of a batch is compared with the copy-forward reference left by the frames before it, so
the frames are tested one after another: about seven small kernels each. Launched from Python that
is ~0.2 ms a frame of interpreter and launch time, next to an encoder that spends ~3 ms a frame on
the GPU and needs the same interpreter to launch its own work. Here the whole batch is captured
once per (frames, height, width) and replayed: one launch per batch. Off CUDA (tests) the same
body runs eagerly on the same buffers.

The graphs and their buffers belong to the process, not to a stream: every stream whose batches
have one shape shares one graph (its reference goes in before the replay, masks and the new
reference come out after it), so GPU memory grows with the number of batch shapes (at most
`_MAX_SHAPES`), never with the number of cameras.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

import torch

log = logging.getLogger(__name__)

_MAX_SHAPES = 8  # batch shapes kept captured: full batches, a file's last partial one, live sizes
_shared: OrderedDict[tuple[object, ...], LastKeptBatch] = OrderedDict()
_shared_lock = threading.Lock()


def last_kept_masks(
    frames: torch.Tensor, kept: torch.Tensor, patch_size: int, tau: float, scale: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Test frames [B, H, W, 3] uint8 in order against `kept` ([H, W, 3] uint8, the copy-forward
    image before them). Returns ([B, H//p, W//p] bool masks, True = static; the new copy-forward
    image of the whole patches, [H//p*p, W//p*p, 3] int16), both the caller's own tensors."""
    key = (tuple(frames.shape), frames.device, patch_size, tau)
    with _shared_lock:
        batch = _shared.get(key)
        if batch is None:
            if len(_shared) >= _MAX_SHAPES:
                _shared.popitem(last=False)
            batch = _shared[key] = LastKeptBatch(tuple(frames.shape), patch_size, tau, scale)  # type: ignore[arg-type]
        _shared.move_to_end(key)
        # The buffers are shared: this call's copies in wait for the last call's copies out, on
        # whatever CUDA stream each was made.
        batch.wait_for_last_use()
        p = patch_size
        batch.reference.copy_(kept[: batch.hp * p, : batch.wp * p])
        masks = batch.run(frames).clone()
        reference = batch.reference.clone()
        batch.mark_used()
    return masks, reference


class LastKeptBatch:
    """Static buffers and the graphed recurrence for one batch shape [B, H, W, 3] uint8.

    `reference` ([hp*p, wp*p, 3] int16, the patches' copy-forward image) goes in before `run` and
    comes out updated; `run(frames)` tests every frame against it in order and returns [B, hp, wp]
    bool masks (True = static), valid until the next run.
    """

    def __init__(
        self, shape: tuple[int, int, int, int], patch_size: int, tau: float, scale: torch.Tensor
    ) -> None:
        b, height, width, _ = shape
        p = patch_size
        self.hp, self.wp, self.p, self.tau = height // p, width // p, p, tau
        device = scale.device
        self.scale = scale  # [3] float64 on the device: |a - b| -> ImageNet-normalised difference
        self.frames = torch.zeros(shape, dtype=torch.uint8, device=device)
        self.reference = torch.zeros((self.hp * p, self.wp * p, 3), dtype=torch.int16, device=device)
        self.masks = torch.zeros((b, self.hp, self.wp), dtype=torch.bool, device=device)
        self._graph: torch.cuda.CUDAGraph | None = None
        self._is_graph_failed = device.type != "cuda"
        self._last_use: torch.cuda.Event | None = None

    def run(self, frames: torch.Tensor) -> torch.Tensor:
        self.frames.copy_(frames)
        if self._graph is None and not self._is_graph_failed:
            self._capture()
        if self._graph is not None:
            self._graph.replay()
        else:
            self._body()
        return self.masks

    def wait_for_last_use(self) -> None:
        if self._last_use is not None:
            torch.cuda.current_stream(self.frames.device).wait_event(self._last_use)

    def mark_used(self) -> None:
        if self.frames.is_cuda:
            self._last_use = torch.cuda.Event()
            self._last_use.record(torch.cuda.current_stream(self.frames.device))

    def _body(self) -> None:
        p, hp, wp = self.p, self.hp, self.wp
        patches = (hp, p, wp, p, 3)
        kept = self.reference
        for i in range(self.frames.shape[0]):
            # One frame's int16 copy at a time: the graph's pool holds a frame's temporaries, not a batch's.
            frame = self.frames[i, : hp * p, : wp * p].to(torch.int16)
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
