"""The VLM's own vision tower (Qwen2.5-VL): frames -> merged tokens per temporal grid.

The tokens are exactly what the LLM reads for those frames: the stock transformers tower module
holds the weights; `FastQwenTower` runs them without the per-window Python loop; `stock_forward`
runs transformers' own forward for comparison.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from vidsight.devices import build_seeded, resolve_device, resolve_dtype

from ._qwen_cuda_graph import GraphCache
from ._qwen_fast import FastQwenTower
from .config import EncoderSettings
from .errors import ModelLoadError
from .qwen_preprocess import FrameArray, PatchLayout, preprocess, preprocess_pairs
from .records import GridTokens

log = logging.getLogger(__name__)

QWEN_PRESETS = ("tiny", "3B", "7B")


def _vision_class() -> Any:
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VisionTransformerPretrainedModel

    return Qwen2_5_VisionTransformerPretrainedModel


def _layout(visual: Any, settings: EncoderSettings) -> PatchLayout:
    config = visual.config
    return PatchLayout(
        patch_size=int(config.patch_size),
        temporal_patch_size=int(config.temporal_patch_size),
        merge_size=int(config.spatial_merge_size),
        min_pixels=settings.min_pixels,
        max_pixels=settings.max_pixels,
        fixed_hw_px=settings.fixed_hw_px,
    )


class VisionTower:
    """Qwen2.5-VL vision tower. Build with `from_settings`, `from_preset`, `from_pretrained` or
    `from_module` (the LLM path wraps the tower of a model it already holds: same weights)."""

    def __init__(self, visual: Any, settings: EncoderSettings | None = None) -> None:
        settings = settings or EncoderSettings()
        self.visual: Any = visual.eval()  # transformers Qwen2_5_VisionTransformerPretrainedModel
        self.settings = settings
        self.layout = _layout(visual, settings)
        self.max_grids_per_call = max(1, settings.max_batch_frames // self.layout.temporal_patch_size)
        self._fast = FastQwenTower(visual)
        self._graphs = GraphCache(self._fast.forward)

    # construction ------------------------------------------------------------------------------

    @classmethod
    def from_settings(cls, settings: EncoderSettings) -> VisionTower:
        device = resolve_device(settings.device)
        dtype = resolve_dtype(settings.dtype, device)
        if settings.vlm_model in QWEN_PRESETS:
            return cls.from_preset(settings.vlm_model, settings, device=device, dtype=dtype)
        return cls.from_pretrained(settings.vlm_model, settings, device=device, dtype=dtype)

    @classmethod
    def from_preset(
        cls, size: str, settings: EncoderSettings, *, device: torch.device, dtype: torch.dtype
    ) -> VisionTower:
        """Published Qwen2.5-VL tower shapes with random weights seeded by `settings.seed`."""
        from vidsight.model_configs import qwen25vl_config

        if size not in QWEN_PRESETS:
            raise ModelLoadError(f"Qwen2.5-VL preset must be one of {list(QWEN_PRESETS)}, got {size!r}")
        vision_config = qwen25vl_config(size).vision_config
        visual = build_seeded(
            lambda: _vision_class()._from_config(vision_config, attn_implementation="sdpa"),
            settings.seed,
            device,
            dtype,
        )
        return cls(visual, settings)

    @classmethod
    def from_pretrained(
        cls, model_id: str, settings: EncoderSettings, *, device: torch.device, dtype: torch.dtype
    ) -> VisionTower:
        """Only the tower's config and tensors are read from the checkpoint, not the LLM's."""
        from transformers import AutoConfig

        from ._checkpoint import load_prefixed_state

        try:
            config = AutoConfig.from_pretrained(model_id)
        except Exception as exc:  # transformers raises OSError/ValueError/HF errors alike
            raise ModelLoadError(f"cannot read the config of VLM {model_id!r}: {exc}") from exc
        vision_config = getattr(config, "vision_config", None)
        if getattr(vision_config, "model_type", None) != "qwen2_5_vl_vision":
            raise ModelLoadError(
                f"VLM {model_id!r} has no Qwen2.5-VL vision tower (config {type(config).__name__})"
            )
        visual = _vision_class()._from_config(vision_config, attn_implementation="sdpa")
        state = load_prefixed_state(model_id, prefixes=("model.visual.", "visual."))
        visual.load_state_dict(state, strict=True)
        return cls(visual.to(device=device, dtype=dtype), settings)

    @classmethod
    def from_module(cls, visual: Any, settings: EncoderSettings | None = None) -> VisionTower:
        """Wrap a tower built elsewhere, e.g. `Qwen2_5_VLForConditionalGeneration(...).model.visual`."""
        expected = _vision_class()
        if not isinstance(visual, expected):
            raise ModelLoadError(f"expected a {expected.__name__}, got {type(visual).__name__}")
        return cls(visual, settings)

    # properties --------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        device: torch.device = self.visual.patch_embed.proj.weight.device
        return device

    @property
    def dtype(self) -> torch.dtype:
        dtype: torch.dtype = self.visual.patch_embed.proj.weight.dtype
        return dtype

    @property
    def out_dim(self) -> int:
        return int(self.visual.config.out_hidden_size)

    # preprocessing and encoding ----------------------------------------------------------------

    def preprocess(
        self, frames: Sequence[np.ndarray], device: torch.device | str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One clip -> (pixel_values [n_patches, C*T*p*p] float32, grid_thw [1, 3]); see qwen_preprocess."""
        return preprocess(frames, self.layout, self.device if device is None else device)

    @torch.inference_mode()
    def encode(self, frames: Sequence[np.ndarray]) -> list[GridTokens]:
        """One clip of [H, W, 3] uint8 frames -> one GridTokens per temporal grid (pairs of frames)."""
        tp = self.layout.temporal_patch_size
        return self.encode_pairs([frames[i : i + tp] for i in range(0, len(frames), tp)])

    @torch.inference_mode()
    def encode_pairs(self, pairs: Sequence[Sequence[FrameArray]]) -> list[GridTokens]:
        """Temporal grids from anywhere (any streams, any sizes) -> GridTokens in the same order.

        Each entry is the 1 or 2 frames of one grid (a lone frame is repeated), on the host or
        already on the device. Grids of one size
        run together, at most `max_grids_per_call` per forward pass.
        """
        results: list[GridTokens | None] = [None] * len(pairs)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, pair in enumerate(pairs):
            by_size.setdefault(tuple(pair[0].shape[:2]), []).append(i)  # type: ignore[arg-type]
        for indices in by_size.values():
            for start in range(0, len(indices), self.max_grids_per_call):
                chunk = indices[start : start + self.max_grids_per_call]
                pixel_values, grid_hw = preprocess_pairs([pairs[i] for i in chunk], self.layout, self.device)
                tokens = self.forward_grids(pixel_values, len(chunk), grid_hw)
                merged_hw = (grid_hw[0] // self.layout.merge_size, grid_hw[1] // self.layout.merge_size)
                for i, grid_tokens in zip(chunk, tokens, strict=True):
                    results[i] = GridTokens(grid_tokens, merged_hw)
        return [r for r in results if r is not None]

    @torch.inference_mode()
    def forward_grids(self, pixel_values: torch.Tensor, grids: int, grid_hw: tuple[int, int]) -> torch.Tensor:
        """pixel_values [G * gh * gw, patch_dim] -> merged tokens [G, gh*gw/4, D_llm]."""
        if not self.settings.use_fast_attention:
            return self.stock_forward(pixel_values, grids, grid_hw)
        graph = self._graphs.get(grids, grid_hw)
        if graph is not None:
            return graph(pixel_values)
        larger = self._graphs.smallest_holding(grids, grid_hw)
        # A partial batch (static skipping leaves many) runs a warmed graph of up to twice its
        # grids, padded: compiled + graphed runs ~2.1x the eager frames/s (H100, 7B tower).
        if larger is not None and 2 * grids >= larger[0]:
            return larger[1].padded(pixel_values, grids)
        return self._fast.forward(pixel_values, grids, grid_hw)

    @torch.inference_mode()
    def stock_forward(self, pixel_values: torch.Tensor, grids: int, grid_hw: tuple[int, int]) -> torch.Tensor:
        """transformers' own forward (per-window attention), same output layout as forward_grids."""
        grid_thw = torch.tensor([[grids, *grid_hw]], device=pixel_values.device)
        out = self.visual(pixel_values, grid_thw=grid_thw)
        merged = out.pooler_output if hasattr(out, "pooler_output") else out
        return merged.view(grids, -1, merged.shape[-1])

    # warm-up -----------------------------------------------------------------------------------

    @torch.inference_mode()
    def warmup(self, grids: int | None = None, grid_hw: tuple[int, int] | None = None) -> None:
        """Build the tables, compile (if asked) and capture a CUDA graph for this batch shape.

        Defaults: `max_grids_per_call` grids of the fixed size (or 448x448 pixels). Call it once
        per batch shape to prepare; other shapes run the eager fast path. A compile that fails
        falls back to eager with a warning.
        """
        grids = grids or self.max_grids_per_call
        if grid_hw is None:
            height, width = self.layout.fixed_hw_px or (448, 448)
            grid_hw = (height // self.layout.patch_size, width // self.layout.patch_size)
        pixel_values = torch.zeros(grids * grid_hw[0] * grid_hw[1], self.layout.patch_dim, device=self.device)
        is_cuda = self.device.type == "cuda"
        if self.settings.use_fast_attention and self.settings.compile_blocks and is_cuda:
            self._fast.compile_plan(grids, grid_hw)
            try:
                self.forward_grids(pixel_values, grids, grid_hw)
            except Exception as exc:  # inductor/triton failures vary by host; eager is always there
                log.warning("torch.compile of the vision tower failed, running eager: %s", exc)
                self._fast.uncompile_plan(grids, grid_hw)
        for _ in range(2):
            self.forward_grids(pixel_values, grids, grid_hw)
        if self.settings.use_fast_attention and self.settings.use_cuda_graphs and is_cuda:
            self._graphs.capture(pixel_values, grids, grid_hw)
        log.info("vision tower warm for %d grids of %s patches", grids, grid_hw)
