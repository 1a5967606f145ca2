"""`Compressor`: the per-stream stage that turns `EncodedFrame`s into `Event`s.

One instance per stream, fed in order. Each frame's RLT static mask (attached by the encoder
stage, or computed here from `rgb`) is folded into its grid; the segmenter closes events; each
closed event's tokens are merged (pixel-static, EVS, cosine) into runs that keep their original
(t, h, w) positions. Plain Python: a Ray actor wraps it at the edge.

Tokens may arrive as numpy or as tensors on the encoder's device: the per-grid work (norms, token
change) and the merge run where they are, and only a closed event's kept tokens come to the host.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from encoder.records import EncodedFrame

from ._tensors import unit_rows
from .config import CompressorSettings
from .errors import CompressorInputError
from .events import CutRules, EventSegmenter, Grid, unit_norm
from .evs import evs_retention_mask
from .merging import merge_unit_tokens
from .records import Event, EventStats
from .selection import farthest_points
from .static import StaticPatchFilter, merged_static_mask


class Compressor:
    def __init__(self, settings: CompressorSettings | None = None) -> None:
        self.settings = settings or CompressorSettings()
        s = self.settings
        rules = CutRules(
            similarity_tau=s.event_similarity_tau,
            min_grids=s.min_event_grids,
            max_grids=s.max_event_grids,
            lowest_cuts=s.lowest_cuts,
            cut_changed_fraction=s.cut_changed_fraction,
        )
        self._segmenter = EventSegmenter(rules, change_similarity=s.change_similarity)
        self._filter = StaticPatchFilter(s.patch_size, s.static_tau) if s.is_pixel_filter_enabled else None
        self._grid_static: dict[int, np.ndarray] = {}  # grid_index -> [h, w] bool, AND over its frames
        self._grid_patches: dict[int, list[int]] = {}  # grid_index -> [static patches, patches tested]
        # grid_index -> its first frame, reduced (an image, or the [h, w, 3] array it came as)
        self._thumbnails: dict[int, Image.Image | np.ndarray] = {}

    def process(
        self, encoded: EncodedFrame, rgb: np.ndarray | None = None, thumbnail: np.ndarray | None = None
    ) -> list[Event]:
        """Take the next frame of the stream; return the events it closed (usually none).

        rgb: the frame (for the pixel test when the record has no mask, and for its keyframe);
        thumbnail: the frame already reduced (`thumbnail_px` or less), used for the keyframe instead.
        """
        self._note_static(encoded, rgb)
        return self._take(encoded, rgb, thumbnail)

    def process_many(
        self,
        encoded: Sequence[EncodedFrame],
        rgbs: Sequence[np.ndarray | None] | None = None,
        thumbnails: Sequence[np.ndarray | None] | None = None,
    ) -> list[Event]:
        """`process` for consecutive frames of the stream (a batch from the encoder): their grids'
        unit rows and token changes are computed together, with one host sync for the batch, and
        their static masks are merged to token grids in one pass."""
        self._segmenter.prepare(encoded)
        merged = _merged_static_mask_many(encoded)
        events: list[Event] = []
        for k, item in enumerate(encoded):
            rgb = None if rgbs is None else rgbs[k]
            if merged is None:
                self._note_static(item, rgb)
            else:
                self._add_static(item.grid_index, merged[0][k], int(merged[1][k]), merged[2])
            events += self._take(item, rgb, None if thumbnails is None else thumbnails[k])
        return events

    def _take(
        self, encoded: EncodedFrame, rgb: np.ndarray | None, thumbnail: np.ndarray | None
    ) -> list[Event]:
        grid = encoded.grid_index
        if self.settings.thumbnails_per_event and grid not in self._thumbnails:
            if thumbnail is not None:
                self._thumbnails[grid] = thumbnail  # made an image only if chosen as a keyframe
            elif rgb is not None:
                # A cheap box reduce now; the few chosen keyframes are resized properly at event close.
                factor = max(1, max(rgb.shape[:2]) // self.settings.thumbnail_px)
                self._thumbnails[grid] = Image.fromarray(rgb).reduce(factor)
        return [self._build_event(grids) for grids in self._segmenter.process(encoded)]

    def flush(self) -> list[Event]:
        """Close the open event (end of a file, or a stream going away)."""
        events = [self._build_event(grids) for grids in self._segmenter.flush()]
        if self._filter is not None:
            self._filter.reset()
        return events

    def _note_static(self, encoded: EncodedFrame, rgb: np.ndarray | None) -> None:
        mask = encoded.static_mask
        if mask is None and rgb is not None and self._filter is not None:
            mask = self._filter.process(rgb).mask
        if mask is None:  # untested: nothing may be merged on pixels
            self._add_static(encoded.grid_index, np.zeros(encoded.grid_hw, dtype=bool), 0, 0)
        else:
            static = merged_static_mask(mask, encoded.grid_hw)
            self._add_static(encoded.grid_index, static, int(mask.sum()), int(mask.size))

    def _add_static(self, grid: int, static: np.ndarray, static_patches: int, patches: int) -> None:
        counts = self._grid_patches.setdefault(grid, [0, 0])
        counts[0] += static_patches
        counts[1] += patches
        previous = self._grid_static.get(grid)
        self._grid_static[grid] = static if previous is None else previous & static

    def _build_event(self, grids: list[Grid]) -> Event:
        s = self.settings
        h, w = grids[0].grid_hw
        if any(g.units is None for g in grids):
            missing = next(g.grid_index for g in grids if g.units is None)
            raise CompressorInputError(f"grid {missing} has no frame carrying tokens")
        # [T, h*w, D] unit rows and [T, h*w] norms, where the encoder left the tokens: stacked once,
        # for EVS and the merge both
        units = torch.stack([g.units for g in grids])  # type: ignore[misc]
        norms = torch.stack([g.token_norms for g in grids])  # type: ignore[misc]
        static = np.stack([self._grid_static.pop(g.grid_index) for g in grids])
        static[0] = False  # the first grid of an event is kept whole
        evs_kept = None
        if s.evs_q > 0:  # cosines are scale-free: EVS ranks the unit rows as it would the tokens
            evs_kept = evs_retention_mask(units.flatten(0, 1), (len(grids), h, w), 1, s.evs_q)
            evs_kept = evs_kept.reshape(len(grids), h, w)
        merged = merge_unit_tokens(
            units,
            norms,
            (h, w),
            is_static=static,
            is_evs_kept=evs_kept,
            similarity=s.merge_similarity,
            out_dtype=np.float16,  # only the kept tokens leave the device, at the Event's dtype
        )
        grid_index = np.array([g.grid_index for g in grids])
        positions = merged.positions.copy()
        positions[:, 0] = grid_index[positions[:, 0]]  # back to stream coordinates
        frames = [f for g in grids for f in g.frames]
        patches = [self._grid_patches.pop(g.grid_index) for g in grids]
        stats = EventStats(
            frames=len(frames),
            grids=len(grids),
            tokens_in=len(grids) * h * w,
            tokens_kept=int(merged.tokens.shape[0]),
            encoder_frames_skipped=sum(f.is_encoder_skipped for f in frames),
            static_patches=sum(p[0] for p in patches),
            patches=sum(p[1] for p in patches),
            tokens_merged_static=merged.merged_static,
            tokens_merged_evs=merged.merged_evs,
            tokens_merged_similar=merged.merged_similar,
        )
        grid_embeddings = np.stack([g.embedding for g in grids])  # type: ignore[misc]
        return Event(
            event_id=f"{frames[0].stream_id}:{frames[0].index}",
            stream_id=frames[0].stream_id,
            start_pts_s=frames[0].pts_s,
            end_pts_s=frames[-1].pts_s,
            start_wall_s=frames[0].wall_time_s,
            end_wall_s=frames[-1].wall_time_s,
            embedding=unit_norm(np.mean([f.embedding for f in frames], axis=0)).astype(np.float32),
            tokens=merged.tokens,
            positions=positions,
            counts=merged.counts,
            grid_t0=int(grid_index[0]),
            grid_pts_s=np.array([g.frames[0].pts_s for g in grids], dtype=np.float64),
            grid_hw=(h, w),
            stats=stats,
            thumbnails=self._keyframes(grids, grid_embeddings),
            grid_embeddings=grid_embeddings.astype(np.float16),
        )

    def _keyframes(self, grids: list[Grid], grid_embeddings: np.ndarray) -> list[bytes]:
        """JPEGs of the first grid and the grids least like it and each other (max-min), in time order."""
        images = [self._thumbnails.pop(g.grid_index, None) for g in grids]
        have = [i for i, image in enumerate(images) if image is not None]
        if not have or not self.settings.thumbnails_per_event:
            return []
        chosen = farthest_points(grid_embeddings[have], self.settings.thumbnails_per_event, first=0)
        out = []
        for i in sorted(have[c] for c in chosen):
            buffer = io.BytesIO()
            image = images[i]
            assert image is not None
            if isinstance(image, np.ndarray):
                image = Image.fromarray(image)
            image.thumbnail(
                (self.settings.thumbnail_px, self.settings.thumbnail_px), Image.Resampling.BILINEAR
            )
            image.save(buffer, format="JPEG", quality=self.settings.thumbnail_quality)
            out.append(buffer.getvalue())
        return out


def _merged_static_mask_many(
    encoded: Sequence[EncodedFrame],
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """For a batch whose frames all have pixel masks of one shape over one token grid: ([B, h, w]
    merged static masks, [B] static patches, patches per frame); else None."""
    if not encoded or encoded[0].static_mask is None:
        return None
    shape, grid_hw = encoded[0].static_mask.shape, encoded[0].grid_hw
    if any(e.static_mask is None or e.static_mask.shape != shape or e.grid_hw != grid_hw for e in encoded):
        return None
    masks = np.stack([e.static_mask for e in encoded])  # type: ignore[misc]
    return merged_static_mask(masks, grid_hw), masks.sum(axis=(1, 2)), int(shape[0] * shape[1])


def warm_kernels(
    device: torch.device | str,
    frame_hw: tuple[int, int],
    grid_hw: tuple[int, int],
    token_dim: int,
    settings: CompressorSettings | None = None,
) -> None:
    """Run the pixel test and the token merge once on `device` at a stream's sizes (frames of
    frame_hw pixels, token grids of grid_hw, tokens of token_dim), so that their GPU kernels (Triton
    compiles each on first use, about a second) are ready before a stream's first batch."""
    s = settings or CompressorSettings()
    frames = torch.zeros((3, *frame_hw, 3), dtype=torch.uint8, device=device)
    StaticPatchFilter(s.patch_size, s.static_tau, device=device).process_many(frames)
    h, w = grid_hw
    units, norms = unit_rows(torch.randn(3, h * w, token_dim, device=device))
    merge_unit_tokens(list(units), norms, grid_hw, similarity=s.merge_similarity)
