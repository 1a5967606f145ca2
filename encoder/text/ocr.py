"""On-screen text with RapidOCR (PP-OCR detection + recognition ONNX models inside the package).

Slides change only at cuts, so `SlideTracker` reads a frame only when it differs from the last
frame it read (mean absolute grey-level difference on a small thumbnail, compared against the
last *read* frame so slow drift cannot sneak past), and merges consecutive reads whose text is
the same. Each slide is read once.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import numpy as np

from .config import OCRSettings
from .errors import ModelUnavailableError
from .records import ChannelReport, SlideRead, TextLine

_THUMB_SIZE = (160, 90)  # (width, height) of the change-detection thumbnail
_SAME_TEXT_RATIO = 0.9  # two reads this similar are the same slide (OCR jitter, cursor, animation)


class SlideOCR:
    """Text lines of one RGB frame. Frames larger than max_side_px are downscaled first."""

    def __init__(self, settings: OCRSettings) -> None:
        self.settings = settings
        self._engine: Any = None

    def _load(self) -> Any:
        if self._engine is None:
            try:
                from rapidocr import RapidOCR
            except ImportError as exc:
                raise ModelUnavailableError(
                    "rapidocr is not installed (pip install rapidocr onnxruntime)"
                ) from exc
            params: dict[str, Any] = {
                "Global.log_level": "error",
                "Global.use_cls": self.settings.use_angle_classifier,
                "Global.text_score": self.settings.min_confidence,
                # Detection cost grows with pixels; slide text stays legible at 960 px (recognition
                # still reads crops from the full-resolution frame).
                "Det.limit_type": "max",
                "Det.limit_side_len": self.settings.det_max_side_px,
            }
            if self.settings.threads:
                params["EngineConfig.onnxruntime.intra_op_num_threads"] = self.settings.threads
            self._engine = RapidOCR(params=params)
        return self._engine

    def warmup(self) -> None:
        blank = np.full((96, 320, 3), 255, np.uint8)
        blank[40:56, 20:300] = 0
        self.read_lines(blank)

    def read_lines(self, rgb: np.ndarray) -> list[TextLine]:
        return self.read(rgb)[0]

    def read(self, rgb: np.ndarray) -> tuple[list[TextLine], str]:
        """(lines in the source frame's pixels, a note such as a downscale). rgb: [H, W, 3] uint8."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"OCR expects [H, W, 3] uint8 RGB, got {rgb.shape} {rgb.dtype}")
        small, scale = _downscale(rgb, self.settings.max_side_px)
        note = ""
        if scale != 1.0:
            note = f"downscaled {rgb.shape[1]}x{rgb.shape[0]} -> {small.shape[1]}x{small.shape[0]} before OCR"
        # RapidOCR takes arrays as BGR (OpenCV order).
        out = self._load()(np.ascontiguousarray(small[..., ::-1]))
        if out.boxes is None or out.txts is None:
            return [], note
        lines = []
        for box, text, score in zip(out.boxes, out.txts, out.scores, strict=True):
            text = text.strip()
            # Pictures come back as lines of symbols ("●"); nothing in them can be searched.
            if score < self.settings.min_confidence or not re.search(r"[^\W_]", text):
                continue
            corners = tuple((round(float(x) / scale, 1), round(float(y) / scale, 1)) for x, y in box)
            lines.append(TextLine(text, round(float(score), 4), corners))
        return lines, note


class SlideTracker:
    """Feeds frames (or event keyframes) in time order; OCRs each new slide once.

    `observe` returns the slides that the frame closed (their end is this frame's time);
    `finish` closes the last one.
    """

    def __init__(self, ocr: SlideOCR, stream_id: str, *, thumbnails_dir: str | Path | None = None) -> None:
        self.ocr = ocr
        self.stream_id = stream_id
        self._level = ocr.settings.change_level
        self._fraction = ocr.settings.change_fraction
        self._thumbs = Path(thumbnails_dir) if thumbnails_dir is not None else None
        self._last_thumb: np.ndarray | None = None
        self._open: dict[str, Any] | None = None  # the slide being shown: start, lines, note, thumbnail
        self.frames_seen = 0
        self.reads = 0

    def observe(self, rgb: np.ndarray, pts_s: float, wall_s: float | None = None) -> list[SlideRead]:
        self.frames_seen += 1
        thumb = change_thumbnail(rgb)
        if self._last_thumb is not None and not self._changed(thumb, self._last_thumb):
            return []
        self._last_thumb = thumb
        lines, note = self.ocr.read(rgb)
        self.reads += 1
        if self._open is not None and _same_text(self._open["lines"], lines):
            return []  # a visual change that says the same thing: still the same slide
        closed = self._close(pts_s, wall_s)
        self._open = {
            "start": pts_s,
            "wall": wall_s,
            "lines": lines,
            "note": note,
            "thumb": self._save_thumbnail(rgb, pts_s),
        }
        return closed

    @property
    def showing(self) -> tuple[float, str] | None:
        """(start pts, text) of the slide on screen now, or None before the first frame."""
        if self._open is None:
            return None
        return self._open["start"], "\n".join(line.text for line in self._open["lines"])

    def _changed(self, thumb: np.ndarray, last: np.ndarray) -> bool:
        return float(np.mean(np.abs(thumb - last) > self._level)) > self._fraction

    def finish(self, end_pts_s: float, end_wall_s: float | None = None) -> list[SlideRead]:
        closed = self._close(end_pts_s, end_wall_s)
        self._open, self._last_thumb = None, None
        return closed

    def _close(self, end_pts_s: float, end_wall_s: float | None) -> list[SlideRead]:
        if self._open is None:
            return []
        o = self._open
        self._open = None
        return [
            SlideRead(
                stream_id=self.stream_id,
                start_pts_s=o["start"],
                end_pts_s=max(end_pts_s, o["start"]),
                lines=tuple(o["lines"]),
                start_wall_s=o["wall"],
                end_wall_s=end_wall_s,
                thumbnail_path=o["thumb"],
                note=o["note"],
            )
        ]

    def _save_thumbnail(self, rgb: np.ndarray, pts_s: float) -> str | None:
        if self._thumbs is None:
            return None
        from PIL import Image

        self._thumbs.mkdir(parents=True, exist_ok=True)
        path = self._thumbs / f"{_safe(self.stream_id)}_{pts_s:010.3f}.jpg"
        image = Image.fromarray(rgb)
        image.thumbnail((320, 320))
        image.save(path, quality=85)
        return str(path)


def read_slides(
    ocr: SlideOCR,
    frames: Any,
    stream_id: str,
    end_pts_s: float | None = None,
    thumbnails_dir: str | Path | None = None,
) -> tuple[list[SlideRead], SlideTracker]:
    """Every slide of an iterable of `ingest.Frame`s (or event keyframes), each read once."""
    tracker = SlideTracker(ocr, stream_id, thumbnails_dir=thumbnails_dir)
    slides: list[SlideRead] = []
    last_pts_s = 0.0
    for frame in frames:
        slides += tracker.observe(frame.rgb, frame.pts_s, frame.wall_time_s)
        last_pts_s = frame.pts_s
    slides += tracker.finish(end_pts_s if end_pts_s is not None else last_pts_s)
    return slides, tracker


def ocr_report(
    slides: list[SlideRead], tracker: SlideTracker | None = None, *, enabled: bool = True
) -> ChannelReport:
    if not enabled:
        return ChannelReport("ocr", "disabled", "OCR is disabled")
    with_text = [s for s in slides if s.has_text]
    counts: dict[str, float] = {
        "slides": len(slides),
        "slides_with_text": len(with_text),
        "lines": sum(len(s.lines) for s in slides),
    }
    if tracker is not None:
        counts.update(frames_seen=tracker.frames_seen, ocr_reads=tracker.reads)
    notes = tuple(sorted({s.note for s in slides if s.note}))
    if not slides:
        return ChannelReport("ocr", "absent", "no frames to read", counts, notes)
    if not with_text:
        return ChannelReport("ocr", "empty", f"{len(slides)} slides read, none has text", counts, notes)
    detail = (
        f"{len(slides)} slides read ({len(with_text)} with text, {len(slides) - len(with_text)} without), "
        f"{int(counts['lines'])} lines"
    )
    return ChannelReport("ocr", "found", detail, counts, notes)


def change_thumbnail(rgb: np.ndarray) -> np.ndarray:
    """[90, 160] float32 grey levels: area-averaged so compression noise fades, while a changed line of
    slide text still moves many pixels by tens of grey levels."""
    import cv2

    small = cv2.resize(rgb, _THUMB_SIZE, interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def normalize_text(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _same_text(a: list[TextLine], b: list[TextLine]) -> bool:
    if not a or not b:
        return False  # two different pictures without text are two slides
    ta, tb = normalize_text(" ".join(x.text for x in a)), normalize_text(" ".join(x.text for x in b))
    return ta == tb or difflib.SequenceMatcher(a=ta, b=tb, autojunk=False).ratio() >= _SAME_TEXT_RATIO


def _downscale(rgb: np.ndarray, max_side_px: int) -> tuple[np.ndarray, float]:
    h, w = rgb.shape[:2]
    if max(h, w) <= max_side_px:
        return rgb, 1.0
    import cv2

    scale = max_side_px / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80]
