"""Shared fixtures: one tiny random Qwen2.5-VL (float32, CPU) and small videos encoded by its own
vision tower."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compressor.records import Event
from encoder import VisionTower
from llm import LLMSettings, Runner, load_model
from llm.prompt import Layout
from llm.visual_input import event_from_tokens

FRAME_HW = (56, 84)  # tiny vision tower: 14-px patches, 2x2 merge -> 2 x 3 merged tokens per grid


@pytest.fixture(scope="session")
def tiny_model():
    return load_model(LLMSettings(model_preset="tiny", dtype="float32", device="cpu", seed=0))


@pytest.fixture(scope="session")
def make_runner(tiny_model):
    def make(**overrides) -> Runner:
        base = {"device": "cpu", "dtype": "float32", "max_context_tokens": 1024, "compile_decode": "none"}
        return Runner(LLMSettings(**{**base, **overrides}), model=tiny_model)

    return make


def random_frames(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *FRAME_HW, 3), dtype=np.uint8)


@pytest.fixture(scope="session")
def make_video(tiny_model):
    """(event, pixel values, grid_thw) of `frames` random frames sampled every `frame_s` seconds.
    Pixels come from the encoder's preprocessing (the processor's layout); tokens from the stock
    vision tower on those same pixels, kept in float32 so that any difference is the LLM path's."""
    tower = VisionTower.from_module(tiny_model.model.visual)

    def make(
        frames: int, frame_s: float, seed: int = 0, stream_id: str = "cam"
    ) -> tuple[Event, torch.Tensor, torch.Tensor]:
        rgb = random_frames(frames, seed)
        pixels, grid_thw = tower.preprocess(list(rgb), device="cpu")
        with torch.inference_mode():
            out = tiny_model.model.visual(pixels, grid_thw=grid_thw)
        tokens = (out.pooler_output if hasattr(out, "pooler_output") else out).numpy()
        gt, gh, gw = (int(x) for x in grid_thw[0])
        m = tower.layout.merge_size
        event = event_from_tokens(
            tokens,
            gt,
            (gh // m, gw // m),
            np.arange(frames) * frame_s,
            temporal_patch_size=tower.layout.temporal_patch_size,
            stream_id=stream_id,
            event_id=f"{stream_id}-{seed}",
        )
        return event, pixels, grid_thw

    return make


def reference_inputs(layout: Layout, video_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The stock model's input_ids (<|video_pad|> where our prompt holds visual tokens) and token types."""
    ids = torch.from_numpy(np.where(layout.ids < 0, video_token_id, layout.ids))[None]
    types = torch.from_numpy((layout.ids < 0).astype(np.int64) * 2)[None]
    return ids, types


def installed_text_resume(model) -> str:
    """Which rule the installed transformers' get_rope_index uses for text after a video."""
    cfg = model.config
    ids = torch.tensor([[cfg.vision_start_token_id] + [cfg.video_token_id] * 3 + [cfg.vision_end_token_id]])
    types = torch.tensor([[0, 2, 2, 2, 0]])
    pos, _ = model.model.get_rope_index(
        ids,
        mm_token_type_ids=types,
        video_grid_thw=torch.tensor([[3, 2, 2]]),
        second_per_grid_ts=torch.tensor([2.0]),
    )
    # t positions 1, 5, 9 (interval 4), h = w = 1: max rule resumes at 10, spatial rule at 1 + 1 = 2
    return "max_position" if int(pos[0, 0, -1]) == 10 else "spatial_extent"
