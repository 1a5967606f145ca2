"""A real RTSP server for tests and `bench live`: GStreamer's gst-rtsp-server.

Run with the system interpreter that has GObject introspection (not the project venv):

    /usr/bin/python3 vidsight/synth/rtsp_server.py --port 8554 --mounts 4 --width 1280 --height 720

Serves live test patterns at rtsp://127.0.0.1:PORT/s0 ... /s{N-1} (H.264, 30 fps, a keyframe
every second). Prints "READY <port>" on stdout once it listens. `--no-keyframes` serves a
stream whose keyframe never comes (the encoder's only IDR is dropped), for the bad-input tests.
"""

import argparse
import sys
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def pipeline(width: int, height: int, fps: int, pattern: str) -> str:
    return (
        f"( videotestsrc is-live=true pattern={pattern} ! video/x-raw,width={width},height={height},"
        f"framerate={fps}/1 ! x264enc name=enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} "
        "bitrate=2000 ! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def drop_keyframes(_factory: Any, media: Any) -> None:
    """Drop every encoded buffer that is not a delta unit: clients never see a keyframe."""

    def probe(_pad: Any, info: Any) -> Any:
        buffer = info.get_buffer()
        if not buffer.has_flags(Gst.BufferFlags.DELTA_UNIT):
            return Gst.PadProbeReturn.DROP
        return Gst.PadProbeReturn.OK

    encoder = media.get_element().get_by_name("enc")
    encoder.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, probe)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8554)
    ap.add_argument("--mounts", type=int, default=1)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--pattern", default="ball")
    ap.add_argument("--no-keyframes", action="store_true")
    args = ap.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for i in range(args.mounts):
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(pipeline(args.width, args.height, args.fps, args.pattern))
        factory.set_shared(True)
        if args.no_keyframes:
            factory.connect("media-configure", drop_keyframes)
        mounts.add_factory(f"/s{i}", factory)
    if server.attach(None) == 0:
        print(f"FAILED to listen on {args.port}", flush=True)
        return 1
    print(f"READY {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
