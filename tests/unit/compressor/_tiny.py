"""The real encoder stage with tiny presets (random weights) feeding the compressor tests.

`encode_stream` runs the RLT pixel test before the encoder, as the pipeline does: a frame whose
patches are all static is marked skip, and its mask travels on the EncodedFrame.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from compressor import StaticPatchFilter
from encoder import Encoder, EncoderSettings
from encoder.records import EncodedFrame
from ingest import Frame


class CountingEncoder:
    """encoder.Encoder with a count of vision-tower grids actually computed."""

    def __init__(self) -> None:
        self.encoder = Encoder(EncoderSettings(vlm_model="tiny", retrieval_model="tiny", device="cpu"))
        self.tower_grids = 0
        encode_pairs = self.encoder.tower.encode_pairs

        def counted(pairs):
            self.tower_grids += len(pairs)
            return encode_pairs(pairs)

        self.encoder.tower.encode_pairs = counted  # type: ignore[method-assign]


def encode_stream(
    counting: CountingEncoder,
    frames: Sequence[np.ndarray],
    pts_s: Sequence[float],
    *,
    stream_id: str = "cam",
    patch_size: int = 14,
    tau: float = 0.1,
) -> list[EncodedFrame]:
    static = StaticPatchFilter(patch_size, tau)
    encoder = counting.encoder
    encoder.forget(stream_id)
    out: list[EncodedFrame] = []
    for index, (rgb, t) in enumerate(zip(frames, pts_s, strict=True)):
        frame = Frame(stream_id, index, round(t * 1000), Fraction(1, 1000), rgb)
        test = static.process(rgb)
        out.extend(encoder.encode([frame], skip=[test.is_frame_static], static_masks=[test.mask]))
    return out + encoder.flush(stream_id)
