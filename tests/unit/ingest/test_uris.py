import pytest

from ingest.errors import SourceOpenError, UnsupportedSourceError
from ingest.uris import SourceKind, default_stream_id, parse_source


def test_classifies_each_kind(tmp_path):
    video = tmp_path / "a.mp4"
    video.write_bytes(b"x")
    playlist = tmp_path / "p.m3u8"
    playlist.write_text("#EXTM3U\n")
    assert parse_source(str(video)).kind == SourceKind.FILE
    assert parse_source(f"file://{video}").kind == SourceKind.FILE
    assert parse_source(str(playlist)).kind == SourceKind.HLS
    assert parse_source("http://127.0.0.1:8000/v.mp4").kind == SourceKind.HTTP_FILE
    assert parse_source("https://cdn.example/live/index.m3u8").kind == SourceKind.HLS
    rtsp = parse_source("rtsp://cam.local:554/stream1")
    assert rtsp.kind == SourceKind.RTSP and rtsp.options["rtsp_transport"] == "tcp"
    cam = parse_source("/dev/video0")
    assert cam.kind == SourceKind.WEBCAM and cam.format == "v4l2"


@pytest.mark.parametrize("uri", ["ftp://host/v.mp4", "smb://share/v.mp4", "javascript:alert(1)"])
def test_unsupported_scheme_names_the_allowed_ones(uri):
    with pytest.raises(UnsupportedSourceError, match="allowed: file, http, https"):
        parse_source(uri)


def test_scheme_allow_list_is_enforced():
    with pytest.raises(UnsupportedSourceError, match="rtsp"):
        parse_source("rtsp://cam/1", allowed_schemes=["file"])


def test_missing_file_and_directory_are_clear(tmp_path):
    with pytest.raises(SourceOpenError, match="no such file"):
        parse_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(SourceOpenError, match="directory"):
        parse_source(str(tmp_path))


def test_empty_uri_and_hostless_urls_are_rejected():
    for uri in ["", "   ", "rtsp:///path", "http:///x.mp4"]:
        with pytest.raises(UnsupportedSourceError):
            parse_source(uri)


def test_default_stream_id_is_stable_and_readable():
    a = default_stream_id("rtsp://cam.local/gate camera")
    assert a == default_stream_id("rtsp://cam.local/gate camera")
    assert a.startswith("gate-camera-")
    assert default_stream_id("/v/a.mp4") != default_stream_id("/w/a.mp4")
