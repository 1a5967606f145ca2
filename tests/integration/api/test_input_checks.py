"""What clients hand the server is checked before anything opens it: paths stay under the allowed
roots (symlinks resolved), URL schemes come from the allow-list, bodies have size limits; errors are
JSON with the right 4xx code and no stack trace."""

import os

import pytest

pytestmark = pytest.mark.integration


def error(r):
    body = r.json()
    assert set(body) == {"error"} and "Traceback" not in r.text
    return body["error"]


def test_path_traversal_and_symlinks_out_of_the_roots_are_forbidden(server, tmp_path):
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"not for you")
    link = server.data_dir / "videos" / "escape.mp4"
    if not link.exists():
        os.symlink(secret, link)
    with server.client("ingest") as c:
        for path in ["../../../etc/passwd", "/etc/passwd", str(secret), "escape.mp4", "sub/../../x.mp4"]:
            r = c.post("/v1/videos", json={"path": path})
            assert r.status_code == 403, (path, r.text)
            assert "outside the allowed roots" in error(r)["message"]
        r = c.post("/v1/videos", json={"path": "nothing-here.mp4"})
        assert r.status_code == 404 and error(r)["code"] == "not_found"


def test_disallowed_url_schemes_are_rejected(server):
    with server.client("ingest") as c:
        for url in ["file:///etc/passwd", "ftp://example.com/v.mp4", "gopher://x/", "data:text/plain,hi"]:
            r = c.post("/v1/streams", json={"url": url})
            assert r.status_code == 400 and "is not allowed" in error(r)["message"], (url, r.text)
        r = c.post("/v1/videos", json={"url": "rtsp://127.0.0.1/s0"})  # videos take http(s) only
        assert r.status_code == 400 and "is not allowed" in error(r)["message"]
        r = c.post("/v1/streams", json={"url": "https://example.com/video.mp4"})
        assert r.status_code == 400 and "not a live stream" in error(r)["message"]
        r = c.post("/v1/streams", json={"url": "rtsp:///nohost"})
        assert r.status_code == 400


def test_oversized_bodies_get_413(server):
    with server.client("ingest") as c:
        big = b"\0" * (3 << 20)
        r = c.post("/v1/videos/upload", files={"file": ("big.mp4", big, "video/mp4")})
        assert r.status_code == 413 and error(r)["code"] == "payload_too_large"
        r = c.post(
            "/v1/search",
            content=b'{"query": "' + b"a" * (2 << 20) + b'"}',
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 413


def test_malformed_requests_are_422_or_404_json(server):
    with server.client("admin") as c:
        r = c.post("/v1/search", json={"query": "x", "since": 5, "until": 1})
        assert r.status_code == 422 and "before until" in error(r)["message"]
        r = c.post("/v1/search", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 422
        r = c.get("/v1/nothing")
        assert r.status_code == 404 and error(r)["code"] == "not_found"
        r = c.post("/v1/search", json={"query": "x", "streams": ["no-such-stream"]})
        assert r.status_code == 404 and "unknown stream" in error(r)["message"]
        r = c.get("/v1/events/no-such:1")
        assert r.status_code == 404
        r = c.get("/v1/alerts/no-such-alert")
        assert r.status_code == 404
