"""Compressor errors. Messages name the bad value and what was allowed."""

from __future__ import annotations


class CompressorError(Exception):
    """Base class for everything the compressor raises on purpose."""


class CompressorInputError(CompressorError, ValueError):
    """An input has the wrong shape, order or stream: a caller bug, not a data problem."""
