"""Errors of the encoder stage."""

from __future__ import annotations


class EncoderError(Exception):
    """Base of every error the encoder stage raises."""


class ModelLoadError(EncoderError):
    """A model id, preset or checkpoint could not be turned into a model."""


class FrameShapeError(EncoderError, ValueError):
    """Frames that the encoder cannot take (wrong dtype, rank, channels, or sizes that do not fit)."""
