"""`vidsight ask` end to end: a real memory bank (system Redis), the tiny retrieval encoder, selection
and the tiny random Qwen2.5-VL. It must stream an answer and cite only events it retrieved."""

from __future__ import annotations

import argparse
import json
import uuid

import numpy as np
import pytest
import redis

from api.commands import ask as ask_cmd
from compressor.records import Event, EventStats
from encoder import EncoderSettings, RetrievalEncoder
from memory import MemoryBank, MemorySettings
from vidsight.settings import Settings

pytestmark = pytest.mark.integration
SYSTEM_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def settings(tmp_path):
    prefix = f"vstest-ask:{uuid.uuid4().hex[:8]}:"
    memory = MemorySettings(redis_key_prefix=prefix, maintenance_interval_s=0, min_free_disk_bytes=0)
    yield Settings(data_dir=tmp_path, redis_url=SYSTEM_URL, memory=memory)
    client = redis.Redis.from_url(SYSTEM_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


def _events(n: int, d_ret: int, d_llm: int, question_embedding: np.ndarray) -> list[Event]:
    rng = np.random.default_rng(0)
    events = []
    for g in range(n):
        emb = rng.standard_normal(d_ret).astype(np.float32)
        if g == 3:  # the event the question is about
            emb = question_embedding + 0.05 * emb
        emb /= np.linalg.norm(emb)
        hw = np.stack(np.meshgrid(np.arange(2), np.arange(3), indexing="ij"), -1).reshape(-1, 2)
        positions = np.concatenate([np.full((6, 1), g), hw], 1).astype(np.int32)
        events.append(
            Event(
                f"cam1-{g}", "cam1", 2.0 * g, 2.0 * g + 2.0, None, None, emb,
                rng.standard_normal((6, d_llm)).astype(np.float16), positions, np.ones(6, np.int32), g,
                np.array([2.0 * g]), (2, 3), EventStats(2, 1, 6, 6),
            )
        )  # fmt: skip
    return events


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    ask_cmd.add_parser(parser.add_subparsers())
    return parser.parse_args(["ask", *argv])


def test_ask_streams_an_answer_and_lists_the_events_it_used(settings, capsys):
    question = "When did the red box stop?"
    retrieval = RetrievalEncoder.from_settings(EncoderSettings(device="cpu"))
    query = retrieval.embed_texts([question])[0]
    events = _events(12, retrieval.dim, 64, query)
    with MemoryBank(settings.memory, data_dir=settings.data_dir, redis_url=settings.redis_url) as bank:
        bank.register_stream("cam1", clock="pts")
        bank.add_many(events)
    args = _args(question, "--stream", "cam1", "--events", "4", "--max-new-tokens", "6", "--json")
    assert args.handler(args, settings) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    pieces, answer = lines[:-1], lines[-1]
    assert "".join(p["piece"] for p in pieces) == answer["text"]
    assert answer["generated_tokens"] == 6 and answer["ttft_s"] > 0
    cited = [c["event_id"] for c in answer["cited"]]
    assert len(cited) == 4 and "cam1-3" in cited
    starts = [c["start_pts_s"] for c in answer["cited"]]
    assert starts == sorted(starts)  # time order


def test_ask_with_a_window_that_matches_nothing_says_so(settings, capsys):
    retrieval = RetrievalEncoder.from_settings(EncoderSettings(device="cpu"))
    events = _events(3, retrieval.dim, 64, retrieval.embed_texts(["x"])[0])
    with MemoryBank(settings.memory, data_dir=settings.data_dir, redis_url=settings.redis_url) as bank:
        bank.register_stream("cam1", clock="pts")
        bank.add_many(events)
    args = _args("Anything?", "--since", "1:00", "--until", "2:00")
    assert args.handler(args, settings) == 0
    assert "No events in memory match." in capsys.readouterr().out


def test_ask_on_an_empty_bank_says_nothing_matches(settings, capsys):
    args = _args("Anything?", "--json")
    assert args.handler(args, settings) == 0
    assert json.loads(capsys.readouterr().out) == {"answer": None, "cited": []}


def test_ask_over_footage_with_text_puts_its_slides_and_speech_in_the_prompt(settings, capsys):
    from encoder.text import TextChunk, TextEmbedder
    from llm.tokenizer import OfflineTokenizer
    from memory.text_index import TextIndex
    from vidsight.recorded import TEXT_INDEX_DIR

    question = "When did the red box stop?"
    retrieval = RetrievalEncoder.from_settings(EncoderSettings(device="cpu"))
    events = _events(12, retrieval.dim, 64, retrieval.embed_texts([question])[0])
    with MemoryBank(settings.memory, data_dir=settings.data_dir, redis_url=settings.redis_url) as bank:
        bank.register_stream("cam1", clock="pts")
        bank.add_many(events)
    argv = (question, "--stream", "cam1", "--events", "4", "--max-new-tokens", "2", "--json")

    def ask() -> dict:
        args = _args(*argv)
        assert args.handler(args, settings) == 0
        return json.loads(capsys.readouterr().out.splitlines()[-1])

    visual_only = ask()
    slide = "Red box stops at the loading dock"
    embedder = TextEmbedder(settings.text.index)
    chunks = [
        TextChunk("cam1", "ocr", 6.0, 8.0, slide),
        TextChunk("cam1", "speech", 6.5, 7.5, "it halts here"),
    ]
    TextIndex(settings.data_dir / TEXT_INDEX_DIR, embedder.dim).add(
        chunks, np.asarray(embedder.encode([c.text for c in chunks]))
    )
    with_text = ask()
    assert [c["event_id"] for c in with_text["cited"]] == [c["event_id"] for c in visual_only["cited"]]
    added = with_text["prefill_tokens"] - visual_only["prefill_tokens"]
    assert added >= len(OfflineTokenizer().encode(slide))  # the slide line, its time and the speech line
