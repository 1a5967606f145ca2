"""The encoder stage: sampled frames -> EncodedFrame (retrieval embedding + the VLM's grid tokens).

Streams are independent and may be interleaved in one call. Per stream, frames are paired in the
order they arrive into temporal grids (Qwen2.5-VL packs two frames per grid): the first frame of a
pair waits until its partner arrives (or `flush`), then both come out together, the first one
carrying the grid's tokens.

Static skipping: `skip[i]` True says the compressor's pixel test found every patch of frame i
static against the last kept patches. Such a frame is not run through the retrieval encoder; its
embedding is the last one computed for its stream. A grid is not run through the tower when both
of its frames are skipped; its tokens are the stream's last grid's. The first frame of a stream is
always encoded (nothing to carry over yet).

Shared tower (LLaVA-OneVision, whose vision tower is SigLIP): `_embed_frames` is the one place
where retrieval embeddings are made; for such a VLM it should take them from the same forward pass
that makes the grid tokens, so each frame is encoded once. Qwen2.5-VL's tower is not
text-aligned, so here the two roles run two models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .config import EncoderSettings
from .errors import FrameShapeError
from .qwen_preprocess import upload_frames
from .records import EncodedFrame, GridTokens
from .retrieval import RetrievalEncoder
from .vision_tower import VisionTower

if TYPE_CHECKING:
    from ingest import Frame  # only a type here: the device machine has no PyAV


# A frame as the encoder plans it: (frame, skip, static_mask, its pixels on the device or None)
_Planned = tuple["Frame", bool, "np.ndarray | None", "torch.Tensor | None"]


@dataclass
class _StreamState:
    grids_started: int = 0
    pending: _Planned | None = None
    last_embedding: np.ndarray | None = None  # [D] float32
    last_tokens: np.ndarray | torch.Tensor | None = None  # [h*w, D_llm] float16, host or device
    last_grid_hw: tuple[int, int] = (0, 0)


@dataclass
class _Pair:
    """One temporal grid of a stream and what must be computed for it."""

    stream_id: str
    grid_index: int
    frames: list[_Planned]  # 1 or 2
    embed_jobs: list[int | None] = field(default_factory=list)  # per frame: row in the batch, None = carry
    tower_job: int | None = None  # row in the tower batch, None = carry


class Encoder:
    """Both encoders behind one call; plain Python (the Ray actor wrapper lives elsewhere)."""

    def __init__(
        self,
        settings: EncoderSettings,
        *,
        tower: VisionTower | None = None,
        retrieval: RetrievalEncoder | None = None,
        tokens_on_device: bool = False,
    ) -> None:
        """tokens_on_device: records carry their tokens as float16 tensors on the tower's device,
        for a compressor next to the encoder (no host round trip per frame); `records.to_host`
        turns such records into host ones. Otherwise tokens are float16 numpy."""
        self.settings = settings
        self.tokens_on_device = tokens_on_device
        self.tower = tower or VisionTower.from_settings(settings)
        self.retrieval = retrieval or RetrievalEncoder.from_settings(settings)
        self._streams: dict[str, _StreamState] = {}

    def warmup(self, frame_hw: tuple[int, int] | None = None) -> None:
        """Prepare the tower (compile, CUDA graph) for full batches of frames of this size.

        Call once when the GPU actor starts. Batches of that size of `max_batch_frames`, half and
        a quarter of it take the warmed path (others are padded up to one of these when that is
        cheaper than the eager fast path, which they run otherwise).
        """
        grid_hw = None
        if frame_hw is not None:
            height, width = self.tower.layout.resized_hw(*frame_hw)
            grid_hw = (height // self.tower.layout.patch_size, width // self.tower.layout.patch_size)
        # Full batches, and half and quarter ones: a partial batch (static skipping) is padded up
        # to the next of these instead of running eager.
        full = self.tower.max_grids_per_call
        for grids in sorted({full, max(1, full // 2), max(1, full // 4)}, reverse=True):
            self.tower.warmup(grids, grid_hw=grid_hw)

    def encode(
        self,
        frames: Sequence[Frame],
        skip: Sequence[bool] | None = None,
        static_masks: Sequence[np.ndarray | None] | None = None,
        pixels: Sequence[torch.Tensor | None] | None = None,
    ) -> list[EncodedFrame]:
        """Frames of any streams, in arrival order -> EncodedFrames of every completed pair.

        `static_masks[i]` (the compressor's [H//p, W//p] mask) is passed through to the record.
        `pixels[i]`: frame i's [H, W, 3] uint8 already on the device (the pixel test uploaded it),
        used instead of copying `frames[i].rgb` over again.
        """
        n = len(frames)
        skip = [False] * n if skip is None else list(skip)
        masks = [None] * n if static_masks is None else list(static_masks)
        rows = [None] * n if pixels is None else list(pixels)
        if len(skip) != n or len(masks) != n or len(rows) != n:
            raise FrameShapeError(
                f"skip, static_masks and pixels need one entry per frame: {n} frames, "
                f"{len(skip)} skip flags, {len(masks)} masks, {len(rows)} pixel rows"
            )
        for frame, row in zip(frames, rows, strict=True):  # refuse bad input before any state changes
            self.tower.layout.resized_hw(frame.height, frame.width)
            if row is not None and tuple(row.shape) != (frame.height, frame.width, 3):
                expected = (frame.height, frame.width, 3)
                raise FrameShapeError(f"pixels of frame {frame.index} are {tuple(row.shape)}, not {expected}")
        pairs = []
        for planned in zip(frames, skip, masks, rows, strict=True):
            frame = planned[0]
            state = self._streams.setdefault(frame.stream_id, _StreamState())
            if state.pending is None:
                state.pending = planned
                continue
            pairs.append(self._close_pair(frame.stream_id, state, [state.pending, planned]))
        return self._run(pairs)

    def flush(self, stream_id: str | None = None) -> list[EncodedFrame]:
        """Encode the waiting lone frame of one stream (or of all), as a grid of its own."""
        ids = list(self._streams) if stream_id is None else [stream_id]
        pairs = []
        for sid in ids:
            state = self._streams.get(sid)
            if state is not None and state.pending is not None:
                pairs.append(self._close_pair(sid, state, [state.pending]))
        return self._run(pairs)

    def forget(self, stream_id: str) -> None:
        """Drop a stream's state (its waiting frame too): the next frame starts grid 0 again."""
        self._streams.pop(stream_id, None)

    # planning and running ----------------------------------------------------------------------

    def _close_pair(self, stream_id: str, state: _StreamState, frames: list) -> _Pair:
        state.pending = None
        state.grids_started += 1
        return _Pair(stream_id, state.grids_started - 1, frames)

    def _run(self, pairs: list[_Pair]) -> list[EncodedFrame]:
        if not pairs:
            return []
        to_embed, to_tower = self._plan(pairs)
        needed = set(to_embed) | {(p, f) for p in to_tower for f in range(len(pairs[p].frames))}
        pixels = self._on_device(pairs, needed)
        embeddings = _frozen(self._embed_frames([pixels[key] for key in to_embed]))
        grids = self.tower.encode_pairs(
            [[pixels[(p, f)] for f in range(len(pairs[p].frames))] for p in to_tower]
        )
        records = self._assemble(pairs, embeddings, grids)
        if self.tokens_on_device and grids and self.tower.device.type == "cuda":
            # Finished before they are handed over (as the host copy used to ensure): a consumer
            # may read them from another thread or CUDA stream.
            torch.cuda.current_stream(self.tower.device).synchronize()
        return records

    def _on_device(self, pairs: list[_Pair], needed: set[tuple[int, int]]) -> dict[tuple[int, int], Any]:
        """The pixels of the (pair, frame)s either model needs, on the tower's device: each frame
        goes over once for both models, in one copy per frame size (frames that came with their
        pixels there are not copied again)."""
        out: dict[tuple[int, int], Any] = {}
        by_size: dict[tuple[int, ...], list[tuple[int, int]]] = {}
        for p, f in sorted(needed):
            frame, _, _, row = pairs[p].frames[f]
            if row is not None:
                out[(p, f)] = row
            else:
                by_size.setdefault(frame.rgb.shape, []).append((p, f))
        for keys in by_size.values():
            batch = upload_frames([pairs[p].frames[f][0].rgb for p, f in keys], self.tower.device)
            out.update(zip(keys, batch, strict=True))
        return out

    def _plan(self, pairs: list[_Pair]) -> tuple[list[tuple[int, int]], list[int]]:
        """Decide what runs: (pair, frame) rows for the retrieval encoder, pair rows for the tower."""
        has_embedding = {sid: s.last_embedding is not None for sid, s in self._streams.items()}
        has_tokens = {sid: s.last_tokens is not None for sid, s in self._streams.items()}
        to_embed: list[tuple[int, int]] = []
        to_tower: list[int] = []
        for p, pair in enumerate(pairs):
            for f, (_, is_static, _, _) in enumerate(pair.frames):
                if is_static and has_embedding[pair.stream_id]:
                    pair.embed_jobs.append(None)
                else:
                    pair.embed_jobs.append(len(to_embed))
                    to_embed.append((p, f))
                    has_embedding[pair.stream_id] = True
            if not (all(s for _, s, _, _ in pair.frames) and has_tokens[pair.stream_id]):
                pair.tower_job = len(to_tower)
                to_tower.append(p)
                has_tokens[pair.stream_id] = True
        return to_embed, to_tower

    def _embed_frames(self, rgbs: list[Any]) -> np.ndarray:
        """Retrieval embeddings [n, D] of [H, W, 3] uint8 frames on the device. The hook for a VLM
        whose tower is the retrieval encoder."""
        return self.retrieval.embed_images(rgbs)

    def _assemble(
        self, pairs: list[_Pair], embeddings: np.ndarray, grids: list[GridTokens]
    ) -> list[EncodedFrame]:
        out = []
        for pair in pairs:
            state = self._streams[pair.stream_id]
            if pair.tower_job is not None:
                grid = grids[pair.tower_job]
                tokens = grid.tokens.half()
                state.last_tokens = tokens if self.tokens_on_device else _frozen(tokens.cpu().numpy())
                state.last_grid_hw = grid.grid_hw
            for f, (frame, _, mask, _) in enumerate(pair.frames):
                job = pair.embed_jobs[f]
                if job is not None:
                    state.last_embedding = embeddings[job]
                assert state.last_embedding is not None and state.last_tokens is not None  # planned above
                out.append(
                    EncodedFrame(
                        stream_id=frame.stream_id,
                        index=frame.index,
                        pts_s=frame.pts_s,
                        wall_time_s=frame.wall_time_s,
                        embedding=state.last_embedding,
                        grid_index=pair.grid_index,
                        tokens=state.last_tokens if f == 0 else None,
                        grid_hw=state.last_grid_hw,
                        is_encoder_skipped=job is None,
                        static_mask=mask,
                    )
                )
        return out


def _frozen(array: np.ndarray) -> np.ndarray:
    """Carried-over frames share these arrays: make writes fail instead of leaking across frames."""
    array.flags.writeable = False
    return array
