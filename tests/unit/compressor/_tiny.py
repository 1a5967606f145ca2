"""Real tiny models (random weights) and the pair-wise encode loop the compressor tests feed from.

The Qwen2.5-VL vision tower and SigLIP are the transformers classes built from the tiny configs;
frames go through the encoder package's Qwen video preprocessing. A grid whose frames are all
static (RLT) is not encoded: its tokens and embeddings carry over, as the encoder stage does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import Qwen2_5_VLForConditionalGeneration, SiglipModel

from compressor import StaticPatchFilter
from encoder.qwen_preprocess import PatchLayout, preprocess
from encoder.records import EncodedFrame
from vidsight.model_configs import qwen25vl_config, siglip_config


@dataclass
class TinyEncoders:
    tower: torch.nn.Module
    siglip: SiglipModel
    layout: PatchLayout
    calls: int = 0  # tower forward passes (one per encoded grid)

    @classmethod
    def build(cls, seed: int = 0) -> TinyEncoders:
        torch.manual_seed(seed)
        tower = Qwen2_5_VLForConditionalGeneration(qwen25vl_config("tiny")).model.visual.eval()
        torch.manual_seed(seed + 1)
        siglip = SiglipModel(siglip_config("tiny")).eval()
        return cls(tower, siglip, PatchLayout())

    @torch.inference_mode()
    def tokens(self, pair: Sequence[np.ndarray]) -> tuple[np.ndarray, tuple[int, int]]:
        """[h*w, D] float16 merged tokens of one temporal grid, and (h, w)."""
        pixel_values, thw = preprocess(pair, self.layout)
        self.calls += 1
        merged = self.tower(pixel_values, grid_thw=thw).pooler_output
        _, gh, gw = (int(x) for x in thw[0])
        return merged.numpy().astype(np.float16), (gh // 2, gw // 2)

    @torch.inference_mode()
    def embedding(self, rgb: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 127.5 - 1.0
        x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
        e = self.siglip.get_image_features(pixel_values=x).pooler_output[0]
        return torch.nn.functional.normalize(e, dim=-1).numpy().astype(np.float32)


def encode_stream(
    encoders: TinyEncoders,
    frames: Sequence[np.ndarray],
    pts_s: Sequence[float],
    *,
    stream_id: str = "cam",
    patch_size: int = 14,
    tau: float = 0.1,
) -> list[EncodedFrame]:
    """Frames -> EncodedFrames in pairs, RLT masks attached, fully static grids not encoded."""
    static = StaticPatchFilter(patch_size, tau)
    out: list[EncodedFrame] = []
    tokens = embedding = None
    grid_hw = (0, 0)
    for g in range(0, len(frames), 2):
        pair = list(frames[g : g + 2])
        tests = [static.process(rgb) for rgb in pair]
        is_skipped = tokens is not None and all(t.is_frame_static for t in tests)
        if not is_skipped:
            tokens, grid_hw = encoders.tokens(pair)
        for i, (rgb, test) in enumerate(zip(pair, tests, strict=True)):
            if not test.is_frame_static or embedding is None:
                embedding = encoders.embedding(rgb)
            out.append(
                EncodedFrame(
                    stream_id=stream_id,
                    index=g + i,
                    pts_s=float(pts_s[g + i]),
                    wall_time_s=None,
                    embedding=embedding,
                    grid_index=g // 2,
                    tokens=tokens if i == 0 else None,
                    grid_hw=grid_hw,
                    is_encoder_skipped=is_skipped,
                    static_mask=test.mask,
                )
            )
    return out
