"""The encoder on CUDA: our tower equals the stock one within bf16 tolerance, on every attention path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encoder._qwen_attention import PaddedAttention, VarlenAttention, has_varlen
from encoder.config import EncoderSettings
from encoder.retrieval import RetrievalEncoder
from encoder.vision_tower import VisionTower

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

SETTINGS = EncoderSettings(device="cuda", vlm_model="tiny", retrieval_model="tiny", seed=0)


def _frames(n: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(n)]


def _assert_bf16_close(ours: torch.Tensor, stock: torch.Tensor) -> None:
    scale = stock.float().abs().max().item()
    delta = (ours.float() - stock.float()).abs()
    assert delta.max().item() <= 2e-2 * scale, (delta.max().item(), scale)
    assert delta.mean().item() <= 2e-3 * scale, (delta.mean().item(), scale)


@pytest.fixture(scope="module")
def tower() -> VisionTower:
    return VisionTower.from_settings(SETTINGS)


@pytest.mark.parametrize(("height", "width"), [(448, 448), (308, 392)], ids=["uniform", "ragged"])
def test_fast_tower_equals_stock_in_bf16(tower: VisionTower, height: int, width: int) -> None:
    assert tower.dtype == torch.bfloat16
    pixel_values, grid_thw = tower.preprocess(_frames(8, height, width))
    t, gh, gw = grid_thw[0].tolist()
    _assert_bf16_close(
        tower.forward_grids(pixel_values, t, (gh, gw)), tower.stock_forward(pixel_values, t, (gh, gw))
    )


def test_cuda_graph_replay_equals_eager(tower: VisionTower) -> None:
    graphed = VisionTower.from_module(tower.visual, SETTINGS.model_copy(update={"compile_blocks": False}))
    pixel_values, grid_thw = tower.preprocess(_frames(4, 448, 448, seed=1))
    t, gh, gw = grid_thw[0].tolist()
    graphed.warmup(t, (gh, gw))
    assert graphed._graphs.get(t, (gh, gw)) is not None
    eager = tower.forward_grids(pixel_values, t, (gh, gw))
    first = graphed.forward_grids(pixel_values, t, (gh, gw))
    other, _ = tower.preprocess(_frames(4, 448, 448, seed=2))
    graphed.forward_grids(other, t, (gh, gw))  # a replay in between must not change the first result
    assert torch.allclose(first, eager, atol=1e-3, rtol=1e-3)


def test_compiled_and_graphed_tower_equals_stock_in_bf16(tower: VisionTower) -> None:
    warmed = VisionTower.from_module(tower.visual, SETTINGS)  # compile_blocks and CUDA graphs on
    pixel_values, grid_thw = tower.preprocess(_frames(4, 448, 448, seed=4))
    t, gh, gw = grid_thw[0].tolist()
    warmed.warmup(t, (gh, gw))
    _assert_bf16_close(
        warmed.forward_grids(pixel_values, t, (gh, gw)), tower.stock_forward(pixel_values, t, (gh, gw))
    )


@pytest.mark.skipif(not has_varlen(), reason="torch without nn.attention.varlen")
def test_varlen_and_padded_attention_agree_on_ragged_segments() -> None:
    lengths = [64, 16, 48, 4, 64]
    q, k, v = (torch.randn(sum(lengths), 4, 64, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    varlen = VarlenAttention(lengths, 0.125, torch.device("cuda"))(q, k, v)
    padded = PaddedAttention(lengths, 0.125, torch.device("cuda"))(q, k, v)
    assert torch.allclose(varlen.float(), padded.float(), atol=2e-2)


@pytest.mark.parametrize(("height", "width"), [(360, 640), (1080, 1920)])
def test_cuda_preprocess_equals_transformers_video_processor_on_cuda(
    tower: VisionTower, height: int, width: int
) -> None:
    pytest.importorskip("torchvision")
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    frames = _frames(3, height, width, seed=3)
    layout = tower.layout
    processor = Qwen2VLVideoProcessor(min_pixels=layout.min_pixels, max_pixels=layout.max_pixels)
    reference = processor(
        videos=[np.stack(frames)], return_tensors="pt", device="cuda", cap_pixels_per_frame=False
    )
    pixel_values, grid_thw = tower.preprocess(frames)
    assert pixel_values.device.type == "cuda"
    assert grid_thw.tolist() == reference["video_grid_thw"].tolist()
    assert torch.allclose(pixel_values, reference["pixel_values_videos"].to(pixel_values), atol=1e-5)


def test_retrieval_embeddings_on_cuda_are_unit_norm() -> None:
    retrieval = RetrievalEncoder.from_settings(SETTINGS)
    emb = retrieval.embed_images(_frames(3, 240, 320))
    assert emb.dtype == np.float32 and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-3)
