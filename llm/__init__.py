"""llm stage: the Qwen2.5-VL runner over selected visual tokens, with original mRoPE positions,
KV-cache pruning, a static cache with a compiled decode step, streamed answers and session reuse."""

from .config import LLMSettings
from .errors import ContextOverflowError, LLMError, ModelLoadError, PromptError
from .prompt import ContextEvent, context_from_selection
from .records import Answer, AnswerPiece
from .runner import Runner, load_model
from .session import Session
from .streaming import AnswerStream
from .tokenizer import HFTokenizer, OfflineTokenizer, TextTokenizer

__all__ = [
    "Answer",
    "AnswerPiece",
    "AnswerStream",
    "ContextEvent",
    "ContextOverflowError",
    "HFTokenizer",
    "LLMError",
    "LLMSettings",
    "ModelLoadError",
    "OfflineTokenizer",
    "PromptError",
    "Runner",
    "Session",
    "TextTokenizer",
    "context_from_selection",
    "load_model",
]
