"""Scores on real models: MiniLM (real weights) for text, the tiny random SigLIP for the visual channel."""

import numpy as np
import pytest

from api.alerts.calibration import ScoreWindow
from api.alerts.config import ScoringSettings
from api.alerts.decision import StreamState, judge
from api.alerts.models import Alert
from api.alerts.scoring import Scorer, keyword_overlap, query_terms, text_chunks, words


def test_quoted_phrases_are_the_keywords_else_content_words():
    assert query_terms('a sign that says "evacuate now"') == (("evacuate", "now"),)
    assert query_terms("a person with a red car in the video") == (("person",), ("red",), ("car",))


def test_keyword_overlap_counts_whole_phrases_in_ocr_text():
    terms = query_terms('"evacuate now" or "fire exit"')
    share, found = keyword_overlap(terms, words("EVACUATE NOW\nKeep calm"))
    assert share == 0.5 and found == ["evacuate now"]
    assert keyword_overlap(terms, words("evacuate the building now"))[0] == 0.0  # not as a phrase


def test_text_is_scored_per_line_and_as_a_whole():
    chunks = text_chunks("EXIT\nEVACUATE NOW. Keep calm!", 8)
    assert chunks == ["EXIT", "EVACUATE NOW.", "Keep calm!", "EXIT EVACUATE NOW. Keep calm!"]


def test_matching_text_scores_high_and_unrelated_text_low(minilm):
    scorer = Scorer(ScoringSettings(), passages=minilm)
    queries = scorer.prepare(["a sign telling people to evacuate", "a dog playing with a ball"])
    evac, dog = scorer.score(np.zeros(4, np.float32), "Platform 3\nEVACUATE NOW", queries)
    assert evac.text_cosine is not None and evac.text_cosine > 0.6
    assert evac.snippet == "EVACUATE NOW"
    assert dog.text_score is not None and dog.text_score < 0.3
    assert evac.visual_logit is None  # no visual encoder given


def test_an_event_without_text_has_no_text_score(minilm):
    scorer = Scorer(ScoringSettings(), passages=minilm)
    (s,) = scorer.score(np.zeros(4, np.float32), "  ", scorer.prepare(["fire"]))
    assert s.text_score is None and s.matched_terms == []


def test_visual_probability_is_the_encoders_match_probability(tiny_siglip):
    scorer = Scorer(ScoringSettings(), visual=tiny_siglip)
    queries = scorer.prepare(["a red car", "a person running"])
    frame = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    emb = tiny_siglip.embed_images([frame])[0]
    scores = scorer.score(emb, "", queries)
    expected = tiny_siglip.match_probability(emb, np.stack([q.visual for q in queries]))[0]
    assert [s.visual_probability for s in scores] == pytest.approx(expected.tolist(), abs=1e-6)


def test_a_query_tower_from_parts_scores_like_the_encoder(tiny_siglip):
    from api.alerts import QueryTower

    tower = QueryTower(tiny_siglip.embed_texts, tiny_siglip.logit_scale, tiny_siglip.logit_bias)
    emb = tiny_siglip.embed_images([np.full((32, 32, 3), 90, np.uint8)])[0]
    direct, parts = Scorer(ScoringSettings(), visual=tiny_siglip), Scorer(ScoringSettings(), visual=tower)
    a = direct.score(emb, "", direct.prepare(["a red car"]))[0]
    b = parts.score(emb, "", parts.prepare(["a red car"]))[0]
    assert a.visual_probability == pytest.approx(b.visual_probability)


def test_random_weight_visual_scores_never_fire(tiny_siglip):
    """The tiny SigLIP's scores are noise; neither the warm-up floor nor calibration may let noise through."""
    settings = ScoringSettings(min_samples=20)
    scorer = Scorer(settings, visual=tiny_siglip)
    prepared = scorer.prepare(["a red car"])
    frames = np.random.default_rng(1).integers(0, 256, (200, 48, 48, 3), dtype=np.uint8)
    embeddings = tiny_siglip.embed_images(list(frames))
    alert = Alert(id="a", query="a red car", cooldown_s=0.0, created_s=0.0, updated_s=0.0)
    state = StreamState(ScoreWindow(settings.window_events))
    from .conftest import view

    fired = 0
    for i, emb in enumerate(embeddings):
        v = view(f"e{i}", float(i))
        v = type(v)(v.event_id, v.stream_id, v.start_pts_s, v.end_pts_s, None, None, emb, "")
        fired += (
            judge(alert, v, scorer.score(emb, "", prepared)[0], state, settings, now_s=0).firing is not None
        )
    assert fired == 0
