"""Text-channel errors. Messages name the bad value and what was allowed."""

from __future__ import annotations

from encoder.errors import EncoderError, ModelLoadError


class TextChannelError(EncoderError):
    """Base class for everything the text channels raise on purpose."""


class ModelUnavailableError(TextChannelError, ModelLoadError):
    """A model (OCR, VAD, ASR, embedding) is not installed or its weights cannot be found offline."""


class AudioFormatError(TextChannelError, ValueError):
    """Audio handed to VAD or ASR is not what they accept (rate, shape, dtype)."""
