"""The API's answer path keeps working after the alert verifier used the model: Runner.choose_option
makes (and pools) a KV cache inside torch.inference_mode, which a turn outside it cannot write."""

import time

from api.config import ApiSettings
from api.metrics import Metrics
from api.questions import Questions
from compressor import CompressorSettings
from llm import LLMSettings, Runner


async def test_answers_stream_after_a_verification_pooled_an_inference_mode_cache():
    runner = Runner(LLMSettings(device="cpu", dtype="float32", compile_decode="none", max_context_tokens=256))
    questions = Questions(
        ApiSettings(),
        memory=None,
        embed_texts=None,
        runner=runner,  # type: ignore[arg-type]
        compressor_settings=CompressorSettings(),
        ask_events=4,
        metrics=Metrics(),
    )
    runner.choose_option("Is there a sign?", ["yes", "no"], [])  # what the verifier does first
    pieces = []
    stream = questions._stream("What happened?", [], 3, time.perf_counter())
    async for piece in stream:
        pieces.append(piece)
    assert stream.answer is not None and stream.answer.generated_tokens == 3
    assert len(pieces) >= 1
