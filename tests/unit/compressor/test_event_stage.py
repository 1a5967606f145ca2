"""The compressor next to the encoder (vidsight.processing.EventStage) gives the events of the
compressor fed directly, whatever side of the device boundary the tokens are on."""

import threading
import time

import numpy as np
import pytest

from compressor import Compressor, CompressorSettings
from encoder import Encoder
from vidsight.event_stage import _Turns
from vidsight.processing import StreamProcessor
from vidsight.synth.video import moving_boxes_script, render_frame

from ._tiny import CountingEncoder, encode_stream

FPS = 2.0


@pytest.fixture(scope="module")
def clip():
    script = moving_boxes_script(224, 224, FPS, 9.0, cut_at_s=[4.5])
    return [render_frame(script, k / FPS) for k in range(17)]  # odd: the last grid is a lone frame


@pytest.fixture(scope="module")
def counting():
    return CountingEncoder()


@pytest.fixture(scope="module")
def expected(counting, clip):
    """Pixel test, encoder and Compressor called one frame at a time, in the test."""
    encoded = encode_stream(counting, clip, [k / FPS for k in range(len(clip))])
    compressor = Compressor(CompressorSettings())
    events = []
    for frame, rgb in zip(encoded, clip, strict=True):
        events += compressor.process(frame, rgb)
    return events + compressor.flush()


def through_processor(counting, clip, *, tokens_on_device, max_in_flight=1, batch=5):
    from fractions import Fraction

    from ingest import Frame

    models = counting.encoder  # the same tiny models, with a stream state of its own
    encoder = Encoder(
        models.settings, tower=models.tower, retrieval=models.retrieval, tokens_on_device=tokens_on_device
    )
    processor = StreamProcessor(
        "cam",
        encoder,
        CompressorSettings(),
        max_in_flight=max_in_flight,
    )
    frames = [Frame("cam", k, round(k / FPS * 1000), Fraction(1, 1000), rgb) for k, rgb in enumerate(clip)]
    events = []
    for start in range(0, len(frames), batch):
        events += processor.process(frames[start : start + batch])
    return events + processor.flush(), processor.report


def assert_same_events(a, b):
    assert [e.event_id for e in a] == [e.event_id for e in b]
    for x, y in zip(a, b, strict=True):
        assert y.tokens.dtype == np.float16
        np.testing.assert_array_equal(x.positions, y.positions)
        np.testing.assert_array_equal(x.counts, y.counts)
        np.testing.assert_array_equal(x.tokens, y.tokens)
        assert x.thumbnails == y.thumbnails and x.stats == y.stats


@pytest.mark.parametrize("tokens_on_device", [False, True])
def test_processor_events_equal_the_compressor_fed_directly(counting, clip, expected, tokens_on_device):
    events, report = through_processor(counting, clip, tokens_on_device=tokens_on_device)
    assert_same_events(expected, events)
    assert report.events == len(events) and report.frames == len(clip)
    assert report.tokens_kept == sum(e.stats.tokens_kept for e in events)


def test_batches_in_flight_change_when_events_come_back_not_which(counting, clip, expected):
    events, _ = through_processor(counting, clip, tokens_on_device=True, max_in_flight=3, batch=3)
    assert_same_events(expected, events)


def test_a_streams_calls_take_each_step_in_their_order_whatever_order_they_start_in():
    turns, ran = _Turns(3), []

    def call(seq):
        for step in range(3):
            turns.enter(seq, step)
            ran.append((step, seq))
            turns.leave(seq, step)

    threads = [threading.Thread(target=call, args=(seq,)) for seq in (3, 1, 2, 0)]
    for thread in threads:
        thread.start()
        time.sleep(0.01)
    for thread in threads:
        thread.join(timeout=5)
    for step in range(3):
        assert [seq for s, seq in ran if s == step] == [0, 1, 2, 3]


def test_shrunk_frames_are_area_means_with_the_longer_side_at_the_thumbnail_size():
    import torch

    from vidsight.event_stage import shrink_frames

    frame = np.zeros((96, 64, 3), np.uint8)
    frame[:48] = 200  # top half bright: a 2x reduction keeps the edge sharp, each side its value
    small = shrink_frames(torch.from_numpy(np.stack([frame, 255 - frame])), 48)
    assert small.shape == (2, 48, 32, 3)
    assert (small[0, :24] == 200).all() and (small[0, 24:] == 0).all()
    assert (small[1, :24] == 55).all() and (small[1, 24:] == 255).all()
    same = shrink_frames(torch.from_numpy(frame[None]), 128)  # already small enough: unchanged
    np.testing.assert_array_equal(same[0], frame)
