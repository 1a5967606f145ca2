"""Errors of the llm stage. Messages name the bad value and what is allowed."""

from __future__ import annotations


class LLMError(Exception):
    """Base of every error the llm stage raises."""


class ModelLoadError(LLMError):
    """A model or tokenizer could not be built or loaded."""


class ContextOverflowError(LLMError):
    """A prompt does not fit in the session's preallocated KV cache."""


class PromptError(LLMError):
    """A prompt could not be assembled from the given events."""
