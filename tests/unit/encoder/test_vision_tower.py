"""The Qwen2.5-VL tower: our forward equals transformers' own, on the same weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encoder._qwen_layout import grid_layout
from encoder.config import EncoderSettings
from encoder.errors import ModelLoadError
from encoder.qwen_preprocess import smart_resize
from encoder.vision_tower import VisionTower

from .conftest import SETTINGS, random_frames

FLOAT32_TOLERANCE = 1e-5


def _stock_and_fast(tower: VisionTower, frames: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    pixel_values, grid_thw = tower.preprocess(frames)
    t, gh, gw = grid_thw[0].tolist()
    with torch.inference_mode():
        return tower.stock_forward(pixel_values, t, (gh, gw)), tower.forward_grids(pixel_values, t, (gh, gw))


@pytest.mark.parametrize(
    ("height", "width", "n_frames"),
    [(448, 448, 4), (308, 392, 2), (200, 640, 3), (56, 56, 2)],
    ids=["uniform-windows", "ragged-windows", "wide-odd-frames", "one-block"],
)
def test_fast_forward_equals_stock_tower_in_float32(
    tower: VisionTower, height: int, width: int, n_frames: int
) -> None:
    stock, fast = _stock_and_fast(tower, random_frames(n_frames, height, width))
    assert fast.shape == stock.shape
    assert (fast - stock).abs().max().item() <= FLOAT32_TOLERANCE * max(1.0, stock.abs().max().item())


def test_window_order_is_a_permutation_and_windows_cover_every_patch() -> None:
    layout = grid_layout(22, 28, merge=2, window_size_px=112, patch_size=14)
    units = 11 * 14
    assert sorted(layout.window_perm.tolist()) == list(range(units))
    assert sum(layout.window_lengths) == units * 4
    assert torch.equal(layout.window_perm[layout.inverse_perm], torch.arange(units))
    assert not layout.has_uniform_windows  # 11 x 14 blocks do not tile into 4 x 4 windows


def test_encode_gives_one_token_grid_per_frame_pair_row_major(tower: VisionTower) -> None:
    frames = random_frames(5, 360, 640)
    grids = tower.encode(frames)
    h, w = (s // 28 for s in smart_resize(360, 640, 28, SETTINGS.min_pixels, SETTINGS.max_pixels))
    assert len(grids) == 3
    assert all(g.grid_hw == (h, w) and g.tokens.shape == (h * w, tower.out_dim) for g in grids)
    _, fast = _stock_and_fast(tower, frames)
    assert torch.equal(torch.stack([g.tokens for g in grids]), fast)


def test_encode_pairs_keeps_input_order_across_sizes(tower: VisionTower) -> None:
    small, large = random_frames(4, 112, 168, seed=1), random_frames(2, 224, 224, seed=2)
    pairs = [small[0:2], large[0:2], small[2:4]]
    together = tower.encode_pairs(pairs)
    alone = [tower.encode(pair)[0] for pair in pairs]
    assert [g.grid_hw for g in together] == [(4, 6), (8, 8), (4, 6)]
    for a, b in zip(together, alone, strict=True):
        assert torch.allclose(a.tokens, b.tokens, atol=1e-6)


def test_same_seed_same_weights_other_seed_other_weights(tower: VisionTower) -> None:
    frames = random_frames(2)
    again = VisionTower.from_settings(SETTINGS).encode(frames)[0].tokens
    other = VisionTower.from_settings(SETTINGS.model_copy(update={"seed": 1})).encode(frames)[0].tokens
    assert torch.equal(tower.encode(frames)[0].tokens, again)
    assert not torch.allclose(again, other)


def test_from_module_wraps_the_vlm_tower_with_its_weights() -> None:
    from transformers import Qwen2_5_VLForConditionalGeneration

    from vidsight.model_configs import qwen25vl_config

    torch.manual_seed(3)
    vlm = Qwen2_5_VLForConditionalGeneration(qwen25vl_config("tiny")).eval()
    wrapped = VisionTower.from_module(vlm.model.visual, SETTINGS)
    frames = random_frames(2, 224, 224)
    pixel_values, grid_thw = wrapped.preprocess(frames)
    with torch.inference_mode():
        expected = vlm.model.visual(pixel_values, grid_thw=grid_thw).pooler_output
    assert torch.allclose(wrapped.encode(frames)[0].tokens, expected, atol=FLOAT32_TOLERANCE)


def test_from_pretrained_reads_only_the_tower_from_a_checkpoint(tmp_path) -> None:
    from transformers import Qwen2_5_VLForConditionalGeneration

    from vidsight.model_configs import qwen25vl_config

    torch.manual_seed(4)
    vlm = Qwen2_5_VLForConditionalGeneration(qwen25vl_config("tiny")).eval()
    vlm.save_pretrained(tmp_path, max_shard_size="2MB")
    loaded = VisionTower.from_settings(SETTINGS.model_copy(update={"vlm_model": str(tmp_path)}))
    for name, tensor in vlm.model.visual.state_dict().items():
        assert torch.equal(loaded.visual.state_dict()[name], tensor), name


def test_from_module_refuses_other_modules_and_unknown_presets() -> None:
    with pytest.raises(ModelLoadError, match="Qwen2_5_VisionTransformerPretrainedModel"):
        VisionTower.from_module(torch.nn.Linear(2, 2))
    with pytest.raises(ModelLoadError):
        VisionTower.from_settings(EncoderSettings(device="cpu", vlm_model="/nonexistent/model"))
