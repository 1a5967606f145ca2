"""What a URI names: a file, an http(s) file, an HLS playlist, an RTSP stream or a webcam."""

from __future__ import annotations

import enum
import hashlib
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from .errors import SourceOpenError, UnsupportedSourceError


class SourceKind(enum.StrEnum):
    FILE = "file"  # local path
    HTTP_FILE = "http_file"  # a whole file over http(s)
    HLS = "hls"  # an m3u8 playlist, local or over http(s)
    RTSP = "rtsp"
    WEBCAM = "webcam"  # a V4L2 device


@dataclass(frozen=True, slots=True)
class SourceSpec:
    uri: str
    kind: SourceKind
    target: str  # what av.open receives
    format: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    @property
    def is_network(self) -> bool:
        return self.kind in (SourceKind.HTTP_FILE, SourceKind.RTSP) or self.target.startswith(
            ("http:", "https:")
        )


_WEBCAM_PATH = re.compile(r"^/dev/video\d+$")


def parse_source(uri: str, *, allowed_schemes: list[str] | None = None) -> SourceSpec:
    """Classify `uri`; raise UnsupportedSourceError for schemes or forms we cannot open."""
    if not isinstance(uri, str) or not uri.strip():
        raise UnsupportedSourceError(f"source URI must be a non-empty string, got {uri!r}")
    uri = uri.strip()
    parsed = urllib.parse.urlparse(uri)
    scheme = parsed.scheme.lower() if len(parsed.scheme) > 1 else "file"  # "C:" is a drive, not a scheme
    allowed = allowed_schemes or ["file", "http", "https", "rtsp", "rtsps", "v4l2"]
    if scheme not in allowed:
        raise UnsupportedSourceError(
            f"unsupported scheme {scheme!r} in {uri!r}; allowed: {', '.join(sorted(allowed))}"
        )
    if scheme in ("rtsp", "rtsps"):
        if not parsed.hostname:
            raise UnsupportedSourceError(f"RTSP URI has no host: {uri!r}")
        return SourceSpec(uri, SourceKind.RTSP, uri, options={"rtsp_transport": "tcp"})
    if scheme == "v4l2":
        return SourceSpec(uri, SourceKind.WEBCAM, parsed.path or parsed.netloc, format="v4l2")
    if scheme in ("http", "https"):
        if not parsed.hostname:
            raise UnsupportedSourceError(f"URL has no host: {uri!r}")
        kind = SourceKind.HLS if parsed.path.lower().endswith(".m3u8") else SourceKind.HTTP_FILE
        return SourceSpec(uri, kind, uri)
    path = urllib.parse.unquote(parsed.path) if parsed.scheme.lower() == "file" else uri
    if _WEBCAM_PATH.match(path):
        return SourceSpec(uri, SourceKind.WEBCAM, path, format="v4l2")
    if not os.path.exists(path):
        raise SourceOpenError(f"no such file: {path}")
    if os.path.isdir(path):
        raise SourceOpenError(f"is a directory, not a video file: {path}")
    kind = SourceKind.HLS if path.lower().endswith(".m3u8") else SourceKind.FILE
    return SourceSpec(uri, kind, path)


def is_live_playlist(spec: SourceSpec, timeout_s: float) -> bool:
    """An HLS playlist without #EXT-X-ENDLIST is live; a master playlist is judged by its first variant."""
    text = _read_text(spec.target, timeout_s)
    if "#EXTM3U" not in text:
        raise SourceOpenError(f"not an HLS playlist (no #EXTM3U): {spec.target}")
    if "#EXT-X-STREAM-INF" in text:
        variant = next(
            (line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")), None
        )
        if variant is None:
            raise SourceOpenError(f"HLS master playlist lists no variant: {spec.target}")
        return is_live_playlist(
            SourceSpec(spec.uri, spec.kind, urllib.parse.urljoin(spec.target, variant)), timeout_s
        )
    return "#EXT-X-ENDLIST" not in text


def _read_text(target: str, timeout_s: float) -> str:
    try:
        if target.startswith(("http:", "https:")):
            with urllib.request.urlopen(target, timeout=timeout_s) as response:
                return str(response.read(1_000_000).decode("utf-8", errors="replace"))
        with open(target, encoding="utf-8", errors="replace") as f:
            return f.read(1_000_000)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise SourceOpenError(f"cannot read playlist {target}: {exc}") from exc


def default_stream_id(uri: str) -> str:
    """A readable, stable id: the file stem or host/path, plus a short hash of the whole URI."""
    parsed = urllib.parse.urlparse(uri)
    base = os.path.splitext(os.path.basename(parsed.path.rstrip("/")))[0] or parsed.hostname or "stream"
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", base).strip("-")[:40] or "stream"
    return f"{slug}-{hashlib.sha1(uri.encode()).hexdigest()[:6]}"
