"""The LLM path on CUDA: captured / compiled decode equals eager decode; bf16 prefill with pruning."""

from __future__ import annotations

import pytest
import torch

from compressor.records import Event
from llm import ContextEvent, LLMSettings, Runner, load_model

from ._events import grid_event

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.fixture(scope="module")
def cuda_model():
    return load_model(LLMSettings(device="cuda", dtype="float32"))


def _tokens(model, mode: str, event: Event, n: int = 24) -> tuple[list[int], str]:
    runner = Runner(
        LLMSettings(device="cuda", dtype="float32", compile_decode=mode, max_context_tokens=1024), model=model
    )
    with runner.session() as s:
        logits, _ = s.prefill_turn("What happens?", [ContextEvent.whole(event)])
        return list(s.generate(logits, n)), runner.decode_mode


@pytest.mark.parametrize("mode", ["cudagraph", "inductor"])
def test_captured_decode_equals_eager_decode(cuda_model, mode):
    event = grid_event(cuda_model.config.text_config.hidden_size)
    eager, _ = _tokens(cuda_model, "none", event)
    captured, used = _tokens(cuda_model, mode, event)
    assert used == mode  # no silent fallback
    assert captured == eager


def test_bf16_group_prefill_with_keynorm_holds_the_keep_ratio():
    model = load_model(LLMSettings(device="cuda", dtype="bfloat16"))
    runner = Runner(LLMSettings(device="cuda", kv_keep_ratio=0.5, kv_group_grids=2), model=model)
    event = grid_event(model.config.text_config.hidden_size, grids=6)
    answer = runner.answer("Where?", [ContextEvent.whole(event)], max_new_tokens=8)
    text = answer.prefill_tokens - answer.visual_tokens
    assert answer.kv_tokens == text + answer.visual_tokens // 2
    assert answer.generated_tokens == 8


def test_flash_prefill_equals_sdpa(cuda_model):
    pytest.importorskip("flash_attn")
    model = load_model(LLMSettings(device="cuda", dtype="bfloat16"))
    event = grid_event(model.config.text_config.hidden_size)
    logits = []
    for attention in ("sdpa", "flash"):
        runner = Runner(LLMSettings(device="cuda", attention=attention, kv_group_grids=2), model=model)
        with runner.session() as s:
            logits.append(s.prefill_turn("Where?", [ContextEvent.whole(event)])[0])
    torch.testing.assert_close(logits[0], logits[1], atol=3e-2, rtol=3e-2)
