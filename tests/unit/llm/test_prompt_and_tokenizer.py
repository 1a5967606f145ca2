"""Prompt assembly and the offline tokenizer."""

from __future__ import annotations

import numpy as np

from llm.positions import PositionTracker
from llm.prompt import ContextEvent, Specials, TextPiece, VisualPiece, format_time_range, lay_out, turn_pieces
from llm.tokenizer import QWEN_SPECIAL_IDS, OfflineTokenizer, StreamDecoder


def test_offline_tokenizer_round_trips_and_keeps_qwen_special_ids():
    tok = OfflineTokenizer()
    text = "What happened at 00:12? Ça bouge — 日本"
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode("<|im_start|>user")[0] == QWEN_SPECIAL_IDS["<|im_start|>"]
    assert tok.decode([QWEN_SPECIAL_IDS["<|video_pad|>"]]) == ""
    assert tok.decode([140000]) == "<140000>"  # ids past the offline vocabulary stay visible
    assert OfflineTokenizer().encode(text) == tok.encode(text)  # built deterministically


def test_stream_decoder_never_splits_a_character():
    tok = OfflineTokenizer()
    ids = tok.encode("日本 café")
    dec = StreamDecoder(tok)
    pieces = [dec.push(i) for i in ids]
    assert "".join(pieces) == "日本 café"
    assert all("\ufffd" not in p for p in pieces)


def test_turn_introduces_each_event_by_its_time_range(tiny_model, make_video):
    tok = OfflineTokenizer()
    specials = Specials.of(tiny_model.config)
    event, _, _ = make_video(4, 0.5)
    pieces = turn_pieces(tok, specials, [ContextEvent.whole(event)], "Why?", system_prompt="Be brief.")
    text = tok.decode([i for p in pieces if isinstance(p, TextPiece) for i in p.ids])
    assert "system\nBe brief." in text and "user\n" in text and text.endswith("Why?\nassistant\n")
    assert format_time_range(event) + ": " in text
    kinds = [type(p).__name__ for p in pieces]
    assert kinds == ["TextPiece", "TextPiece", "VisualPiece", "TextPiece", "TextPiece"]
    assert pieces[1].ids[-1] == specials.vision_start and pieces[3].ids == (specials.vision_end,)


def test_follow_up_turn_closes_the_previous_answer(tiny_model):
    tok = OfflineTokenizer()
    specials = Specials.of(tiny_model.config)
    cut = turn_pieces(tok, specials, [], "More?", system_prompt=None, pending_ids=[42])
    ended = turn_pieces(tok, specials, [], "More?", system_prompt=None, pending_ids=[specials.im_end])
    assert cut[0].ids[:2] == (42, specials.im_end)  # cut by the length limit: closed here
    assert ended[0].ids[0] == specials.im_end and ended[0].ids[1] != specials.im_end


def test_groups_cut_every_n_grids_across_events(make_video):
    first, _, _ = make_video(10, 0.5, seed=1)  # 5 grids
    second, _, _ = make_video(6, 0.5, seed=2)  # 3 grids
    pieces = [TextPiece((1, 2)), VisualPiece(ContextEvent.whole(first)), TextPiece((3,))]
    pieces += [VisualPiece(ContextEvent.whole(second)), TextPiece((4, 5))]
    layout = lay_out(pieces, PositionTracker(2.0), group_grids=3, seconds_per_grid={"cam": 1.0})
    per_grid = first.grid_hw[0] * first.grid_hw[1]
    visual_groups = layout.group[layout.is_visual]
    # 8 grids in groups of 3: the second event's first grid joins the first event's last two
    assert np.bincount(visual_groups).tolist() == [3 * per_grid, 3 * per_grid, 2 * per_grid]
    assert (np.diff(layout.group) >= 0).all()
