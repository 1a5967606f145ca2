"""`vidsight search` end to end: a real bank (system Redis) and the tiny retrieval encoder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from api.commands import search as search_cmd
from encoder import EncoderSettings, RetrievalEncoder
from memory import MemoryBank
from tests.unit.memory.factories import make_event
from vidsight.settings import Settings

pytestmark = pytest.mark.integration
QUESTION = "a red box stops near the door"


@pytest.fixture(scope="module")
def retrieval():
    return RetrievalEncoder.from_settings(EncoderSettings(device="cpu"))


@pytest.fixture
def app_settings(tmp_path, settings):
    return Settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:6379/0", memory=settings)


def _fill(app_settings: Settings, retrieval) -> None:
    query = retrieval.embed_texts([QUESTION])[0]
    rng = np.random.default_rng(0)
    events = []
    for i in range(12):
        emb = rng.standard_normal(retrieval.dim).astype(np.float32)
        if i == 7:  # the event the text is about
            emb = query + 0.05 * emb / np.linalg.norm(emb)
        events.append(
            make_event(i, "lobby", dim=retrieval.dim, embedding=emb, start_s=10.0 * i, duration_s=10.0)
        )
    with MemoryBank(
        app_settings.memory, data_dir=app_settings.data_dir, redis_url=app_settings.redis_url
    ) as bank:
        bank.register_stream("lobby", clock="pts")
        bank.add_many(events)


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    search_cmd.add_parser(parser.add_subparsers())
    return parser.parse_args(["search", *argv])


def test_search_prints_the_matching_event_first_with_its_range_score_and_thumbnail(
    app_settings, retrieval, capsys
):
    _fill(app_settings, retrieval)
    args = _args(QUESTION, "--k", "3", "--json")
    assert args.handler(args, app_settings) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    hits, summary = lines[:-1], lines[-1]
    assert len(hits) == 3 and summary["hits"] == 3 and summary["search_ms"] >= 0
    assert hits[0]["event_id"] == "lobby:7" and hits[0]["score"] > 0.9
    assert (hits[0]["start_pts_s"], hits[0]["end_pts_s"]) == (70.0, 80.0)
    assert Path(hits[0]["thumbnail_path"]).read_bytes().startswith(b"\xff\xd8")
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)

    args = _args(QUESTION, "--stream", "lobby", "--since", "1:00", "--until", "1:10")
    assert args.handler(args, app_settings) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "lobby:6" in out[0] and "1:00.0-1:10.0" in out[0]


def test_search_refuses_bad_windows_and_unknown_streams(app_settings, retrieval, capsys):
    _fill(app_settings, retrieval)
    args = _args(QUESTION, "--since", "2:00", "--until", "1:00")
    assert args.handler(args, app_settings) == 1
    assert "empty window" in capsys.readouterr().err
    args = _args(QUESTION, "--stream", "attic", "--json")
    assert args.handler(args, app_settings) == 1
    assert "unknown stream 'attic'" in json.loads(capsys.readouterr().err)["error"]


def test_search_on_an_empty_bank_says_nothing_matches(app_settings, capsys):
    args = _args("anything")
    assert args.handler(args, app_settings) == 0
    assert "No events in memory match." in capsys.readouterr().out


def test_search_fuses_the_text_channels_and_channel_narrows_them(app_settings, retrieval, capsys):
    from encoder.text import TextChunk, TextEmbedder
    from memory.text_index import TextIndex
    from vidsight.recorded import TEXT_INDEX_DIR

    _fill(app_settings, retrieval)
    embedder = TextEmbedder(app_settings.text.index)
    chunks = [
        TextChunk("lobby", "ocr", 20.0, 30.0, "Visitor badges are issued at reception"),
        TextChunk("lobby", "speech", 40.0, 50.0, "please remember to sign the visitor log"),
    ]
    index = TextIndex(Path(app_settings.data_dir) / TEXT_INDEX_DIR, embedder.dim)
    index.add(chunks, embedder.encode([c.text for c in chunks]))

    args = _args("visitor badges", "--k", "3", "--json")
    assert args.handler(args, app_settings) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    hits, summary = lines[:-1], lines[-1]
    assert summary["channels"] == ["visual", "ocr", "speech"]
    by_range = {(h["start_pts_s"], h["end_pts_s"]): h for h in hits}
    slide = by_range[(20.0, 30.0)]  # found by its words, whatever the random visual ranks are
    assert slide["channel"] in ("ocr", "fused") and "**badges**" in slide["snippet"]
    assert any(h["event_id"].startswith("lobby:") for h in hits)  # the visual bank's hits take part

    args = _args("visitor", "--channel", "speech", "--json")
    assert args.handler(args, app_settings) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()][:-1]
    assert hits and {h["channel"] for h in hits} == {"speech"}
    assert (hits[0]["start_pts_s"], hits[0]["end_pts_s"]) == (40.0, 50.0)

    args = _args(QUESTION, "--channel", "visual", "--k", "2", "--json")
    assert args.handler(args, app_settings) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()][:-1]
    assert [h["channel"] for h in hits] == ["visual", "visual"] and hits[0]["event_id"] == "lobby:7"
