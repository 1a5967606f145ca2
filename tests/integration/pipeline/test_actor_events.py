"""The compressor inside the encoder's Ray actor: only events cross the process boundary, and
they are the events the same processor makes in one process."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from compressor import CompressorSettings
from encoder import Encoder, EncoderSettings
from vidsight.processing import StreamProcessor
from vidsight.synth.video import moving_boxes_script, render_frame

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FPS = 2.0
SETTINGS = EncoderSettings(vlm_model="tiny", retrieval_model="tiny", device="cpu", seed=0)


def run(processor, frames, batch):
    events = []
    for start in range(0, len(frames), batch):
        events += processor.process(frames[start : start + batch])
    return events + processor.flush()


def test_events_from_the_actor_equal_events_made_in_process(ray_local):
    import ray

    from ingest import Frame
    from vidsight.pipeline import ActorEncoder, EncoderActor

    script = moving_boxes_script(224, 224, FPS, 10.0, cut_at_s=[5.0])
    frames = [
        Frame(s, k, round(k / FPS * 1000), Fraction(1, 1000), render_frame(script, k / FPS))
        for s in ("local", "remote")
        for k in range(19)
    ]
    local = run(StreamProcessor("local", Encoder(SETTINGS), CompressorSettings()), frames[:19], 4)
    actor = EncoderActor.remote(SETTINGS)  # type: ignore[attr-defined]
    try:
        processor = StreamProcessor("remote", ActorEncoder(actor), CompressorSettings(), max_in_flight=3)
        remote = run(processor, frames[19:], 4)
        # the plain encoder path of the same actor still hands back host records
        host = ActorEncoder(actor).encode(frames[:2])
    finally:
        ray.kill(actor)
    assert len(remote) == len(local) >= 2
    for a, b in zip(local, remote, strict=True):
        assert a.event_id.split(":")[1] == b.event_id.split(":")[1]
        assert isinstance(b.tokens, np.ndarray) and b.tokens.dtype == np.float16
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.tokens, b.tokens)
    assert processor.report.events == len(remote) and processor.report.encode_s > 0
    assert isinstance(host[0].tokens, np.ndarray) and host[0].tokens.dtype == np.float16
