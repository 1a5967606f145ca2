"""The last-kept pixel test over a batch of frames on a device, in one launch per batch.

Each frame of a batch is compared with the copy-forward reference left by the frames before it, so
the frames are tested one after another: as torch ops, about seven small kernels each. Launched
from Python that is ~0.2 ms a frame of interpreter and launch time, next to an encoder that spends
~3 ms a frame on the GPU and needs the same interpreter to launch its own work. On CUDA with triton
installed, one Triton kernel (`_pixel_kernel`) tests the whole batch: one program per patch
location walks the frames in order. Without triton, or once that kernel has failed to build or
launch (a warning, once per batch shape), the torch body is captured as a CUDA graph once per
(frames, height, width) and replayed instead. Off CUDA (tests) the torch body runs eagerly on the
same buffers. Every path gives the same bits: `patch_scores` spells the arithmetic out.

The buffers (and graphs) belong to the process, not to a stream: every stream whose batches have
one shape shares them (its reference goes in before the run, masks and the new reference come out
after it), so GPU memory grows with the number of batch shapes (at most `_MAX_SHAPES`), never with
the number of cameras.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

import torch

log = logging.getLogger(__name__)

_MAX_SHAPES = 8  # batch shapes kept: full batches, a file's last partial one, live sizes
_shared: OrderedDict[tuple[object, ...], LastKeptBatch] = OrderedDict()
_shared_lock = threading.Lock()


def patch_scores(sums: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """[..., 3] int32 per-channel sums of |a - b| over a patch -> [...] float32 scores.

    s0*k0 + s1*k1 + s2*k2 in float64, each product and sum rounded on its own, left to right, then
    rounded once to float32 (scale = [k0, k1, k2] float64). Spelled out rather than
    `sums.double() @ scale`: a matmul's order and fused multiply-adds are its library's choice on
    each device, and the Triton kernel must give the same bits.
    """
    weighted = sums.double() * scale  # [..., 3]
    return ((weighted[..., 0] + weighted[..., 1]) + weighted[..., 2]).float()


def float32_threshold(tau: float) -> float:
    """float32(tau) as a Python float: scores are float32, so this is the threshold every path uses
    (whether a device compares in float32 or float64, the answer is then the same)."""
    return torch.tensor(tau, dtype=torch.float32).item()


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
    """Static buffers and the recurrence for one batch shape [B, H, W, 3] uint8.

    `reference` ([hp*p, wp*p, 3] int16, the patches' copy-forward image) goes in before `run` and
    comes out updated; `run(frames)` tests every frame against it in order and returns [B, hp, wp]
    bool masks (True = static), valid until the next run.

    use_kernel: None (production) runs the Triton kernel on CUDA and the torch body elsewhere; True
    runs the kernel on any device (tests: CPU tensors under TRITON_INTERPRET=1); False always runs
    the torch body (graphed on CUDA). Without triton the kernel is never run.
    """

    def __init__(
        self,
        shape: tuple[int, int, int, int],
        patch_size: int,
        tau: float,
        scale: torch.Tensor,
        *,
        use_kernel: bool | None = None,
    ) -> None:
        b, height, width, _ = shape
        p = patch_size
        self.shape, self.hp, self.wp, self.p, self.tau = shape, height // p, width // p, p, tau
        self._tau32 = float32_threshold(tau)
        device = scale.device
        self.scale = scale  # [3] float64 on the device: |a - b| -> ImageNet-normalised difference
        self.reference = torch.zeros((self.hp * p, self.wp * p, 3), dtype=torch.int16, device=device)
        self.masks = torch.zeros((b, self.hp, self.wp), dtype=torch.bool, device=device)
        is_kernel_wanted = device.type == "cuda" if use_kernel is None else use_kernel
        self._kernel = _triton_kernel() if is_kernel_wanted else None
        self._frames: torch.Tensor | None = None  # the torch body's static input, made on first need
        self._graph: torch.cuda.CUDAGraph | None = None
        self._is_graph_failed = device.type != "cuda"
        self._last_use: torch.cuda.Event | None = None

    def run(self, frames: torch.Tensor) -> torch.Tensor:
        if self._kernel is not None:
            try:
                self._kernel(frames, self.reference, self.scale, self.p, self.tau, self.masks)
                return self.masks
            except Exception as exc:  # Triton fails to build or launch before any program runs
                log.warning("pixel-test Triton kernel failed (%s); testing with torch ops", exc)
                self._kernel = None
        if self._frames is None:
            self._frames = torch.zeros(self.shape, dtype=torch.uint8, device=self.reference.device)
        self._frames.copy_(frames)
        if self._graph is None and not self._is_graph_failed:
            self._capture(self._frames)
        if self._graph is not None:
            self._graph.replay()
        else:
            self._body(self._frames)
        return self.masks

    def wait_for_last_use(self) -> None:
        if self._last_use is not None:
            torch.cuda.current_stream(self.reference.device).wait_event(self._last_use)

    def mark_used(self) -> None:
        if self.reference.is_cuda:
            self._last_use = torch.cuda.Event()
            self._last_use.record(torch.cuda.current_stream(self.reference.device))

    def _body(self, frames: torch.Tensor) -> None:
        p, hp, wp = self.p, self.hp, self.wp
        patches = (hp, p, wp, p, 3)
        kept = self.reference
        for i in range(frames.shape[0]):
            # One frame's int16 copy at a time: the graph's pool holds a frame's temporaries, not a batch's.
            frame = frames[i, : hp * p, : wp * p].to(torch.int16)
            sums = (frame - kept).abs_().view(patches).sum(dim=(1, 3), dtype=torch.int32)  # [hp, wp, 3]
            mask = patch_scores(sums, self.scale) <= self._tau32
            kept = torch.where(mask[:, None, :, None, None], kept.view(patches), frame.view(patches))
            kept = kept.view(hp * p, wp * p, 3)
            self.masks[i] = mask
        self.reference.copy_(kept)

    def _capture(self, frames: torch.Tensor) -> None:
        """Run the body once on a side stream (kernel choice, allocator), then capture it. The state
        is saved and restored around both, so capturing changes nothing."""
        saved = self.reference.clone()
        try:
            side = torch.cuda.Stream(frames.device)
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self._body(frames)
            torch.cuda.current_stream().wait_stream(side)
            self.reference.copy_(saved)
            graph = torch.cuda.CUDAGraph()
            # thread_local: the encoder keeps launching from its own thread meanwhile
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                self._body(frames)
            self._graph = graph
        except Exception as exc:  # capture failures come in many types: run eagerly from now on
            log.warning("pixel-test graph capture failed (%s); testing eagerly", exc)
            self._is_graph_failed = True
        self.reference.copy_(saved)


def _triton_kernel() -> Callable[..., None] | None:
    """`_pixel_kernel.last_kept_triton`, or None without triton. Imported on first use, not with
    the package: triton takes a while to import and only a batch on CUDA (or a test) needs it."""
    from . import _pixel_kernel

    return _pixel_kernel.last_kept_triton if _pixel_kernel.HAS_TRITON else None
