"""Local servers for tests, benchmarks and the demo: GStreamer RTSP and static HTTP (for HLS/http files)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"  # has GObject introspection for gst-rtsp-server
_RTSP_SCRIPT = Path(__file__).with_name("rtsp_server.py")


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rtsp_server_available() -> bool:
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode == 0


class RtspServer:
    """gst-rtsp-server in a child process, serving live test patterns at rtsp://127.0.0.1:PORT/s0.."""

    def __init__(
        self,
        port: int | None = None,
        *,
        mounts: int = 1,
        width: int = 640,
        height: int = 360,
        fps: int = 30,
        no_keyframes: bool = False,
    ) -> None:
        self.port = port or free_port()
        self.args = [
            "--port",
            str(self.port),
            "--mounts",
            str(mounts),
            "--width",
            str(width),
            "--height",
            str(height),
            "--fps",
            str(fps),
        ]
        if no_keyframes:
            self.args.append("--no-keyframes")
        self.process: subprocess.Popen[str] | None = None

    def url(self, mount: int = 0) -> str:
        return f"rtsp://127.0.0.1:{self.port}/s{mount}"

    def start(self, timeout_s: float = 15.0) -> RtspServer:
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(_RTSP_SCRIPT), *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        deadline = time.monotonic() + timeout_s
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("READY") or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"RTSP server did not start on port {self.port}: {line!r}")
        return self

    def stop(self) -> None:
        """Kill the server at once (as a crash would)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single byte-range support (FFmpeg seeks in mp4 over http), no logging."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        header = self.headers.get("Range", "")
        path = self.translate_path(self.path)
        if not header.startswith("bytes=") or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        first, _, last = header[len("bytes=") :].partition("-")
        start = int(first) if first else max(0, size - int(last))
        end = min(int(last), size - 1) if first and last else size - 1
        if start >= size:
            self.send_error(416, "Requested Range Not Satisfiable")
            return None
        f = open(path, "rb")  # noqa: SIM115 (closed by copyfile's caller)
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return _Limited(f, end - start + 1)


class _Limited:
    """A file object that reads at most `remaining` bytes (the requested range)."""

    def __init__(self, f: object, remaining: int) -> None:
        self.f, self.remaining = f, remaining

    def read(self, n: int = -1) -> bytes:
        n = self.remaining if n < 0 else min(n, self.remaining)
        data = self.f.read(n)  # type: ignore[attr-defined]
        self.remaining -= len(data)
        return data

    def close(self) -> None:
        self.f.close()  # type: ignore[attr-defined]


class StaticHttpServer:
    """Serves a directory over http on loopback, in a thread."""

    def __init__(self, root: str | Path) -> None:
        handler = functools.partial(_RangeHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def __enter__(self) -> StaticHttpServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def make_hls(source: str | Path, out_dir: str | Path, *, segment_s: float = 2.0, live: bool = False) -> Path:
    """Cut a video into an HLS playlist with ffmpeg (copying the H.264 stream). live=True writes a
    playlist without #EXT-X-ENDLIST, as a live event playlist looks before it ends."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is not installed (scripts/setup.sh installs it)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    playlist = out / "index.m3u8"
    flags = (
        ["-hls_playlist_type", "event", "-hls_flags", "omit_endlist"]
        if live
        else ["-hls_playlist_type", "vod"]
    )
    subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-y",
            "-i",
            str(source),
            "-c:v",
            "copy",
            "-an",
            "-f",
            "hls",
            "-hls_time",
            str(segment_s),
            *flags,
            str(playlist),
        ],
        check=True,
    )
    return playlist
