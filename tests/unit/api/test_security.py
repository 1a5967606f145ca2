"""Keys, scopes, rate limits and allow-lists: the checks before a request touches anything."""

import os

import pytest

from api.errors import BadRequestError, ForbiddenError, NotFoundError, UnauthorizedError
from api.security import (
    ApiKey,
    PathPolicy,
    RateLimiter,
    bearer_token,
    check_scopes,
    check_url,
    hash_token,
    require,
    split_token,
)


def key(*scopes: str) -> ApiKey:
    return ApiKey("0123456789ab", "k", frozenset(scopes), 0.0)


def test_hash_is_stable_and_never_the_token():
    token = "vsk_0123456789ab_secret"
    assert hash_token(token) == hash_token(token)
    assert token not in hash_token(token) and "secret" not in hash_token(token)
    assert hash_token(token) != hash_token(token + "x")


def test_token_splits_into_id_and_secret_and_malformed_ones_are_unauthorized():
    assert split_token("vsk_0123456789ab_s3cr_et") == ("0123456789ab", "s3cr_et")
    for bad in ["", "0123456789ab_x", "vsk_0123_x", "vsk_0123456789ab_", "vsk_0123456789AZ_x", "Bearer x"]:
        with pytest.raises(UnauthorizedError):
            split_token(bad)


def test_admin_implies_every_scope_and_others_only_their_own():
    assert all(key("admin").allows(s) for s in ("read", "ingest", "admin"))
    assert key("read").allows("read") and not key("read").allows("ingest")
    assert key("ingest").allows("ingest") and not key("ingest").allows("read")
    with pytest.raises(ForbiddenError, match="lacks scope 'ingest'"):
        require(key("read"), "ingest")


def test_scopes_must_be_known_and_not_empty():
    assert check_scopes(["read", "read", "ingest"]) == {"read", "ingest"}
    for bad in ([], ["root"], ["read", "write"]):
        with pytest.raises(BadRequestError, match="one or more of read, ingest, admin"):
            check_scopes(bad)


def test_bearer_token_from_header_or_query_and_clear_errors_otherwise():
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token(None, "q") == "q"
    assert bearer_token("Bearer h", "q") == "h"  # the header wins
    with pytest.raises(UnauthorizedError, match="Bearer"):
        bearer_token("Basic dXNlcjpwYXNz")
    with pytest.raises(UnauthorizedError, match="required"):
        bearer_token(None, None)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_allows_a_burst_then_refills_at_the_rate():
    clock = Clock()
    limiter = RateLimiter(rate_per_s=2.0, burst=3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [None, None, None]
    wait = limiter.acquire("a")
    assert wait == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.acquire("a") is None
    assert limiter.acquire("a") == pytest.approx(0.5)
    clock.now += 100  # refill is capped at the burst
    assert [limiter.acquire("a") for _ in range(4)][-1] is not None


def test_rate_limits_are_per_key():
    limiter = RateLimiter(rate_per_s=1.0, burst=1, clock=Clock())
    assert limiter.acquire("a") is None
    assert limiter.acquire("a") is not None
    assert limiter.acquire("b") is None


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "videos"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.mp4").write_bytes(b"x")
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(b"s")
    os.symlink(outside, root / "link-out.mp4")
    os.symlink(root / "sub" / "a.mp4", root / "link-in.mp4")
    return root, outside


def test_paths_inside_the_root_resolve(tree):
    root, _ = tree
    policy = PathPolicy([root])
    assert policy.resolve("sub/a.mp4") == (root / "sub" / "a.mp4").resolve()
    assert policy.resolve(str(root / "sub" / "a.mp4")) == (root / "sub" / "a.mp4").resolve()
    assert policy.resolve("link-in.mp4") == (root / "sub" / "a.mp4").resolve()
    assert policy.resolve("sub/../sub/a.mp4") == (root / "sub" / "a.mp4").resolve()


def test_traversal_absolute_paths_and_symlinks_out_of_the_root_are_forbidden(tree):
    root, outside = tree
    policy = PathPolicy([root])
    for bad in ["../secret.mp4", "sub/../../secret.mp4", str(outside), "link-out.mp4", "/etc/passwd", "~/x"]:
        with pytest.raises(ForbiddenError, match="outside the allowed roots"):
            policy.resolve(bad)


def test_missing_files_and_directories_inside_the_root_are_not_found(tree):
    root, _ = tree
    policy = PathPolicy([root])
    for missing in ["nope.mp4", "sub"]:
        with pytest.raises(NotFoundError):
            policy.resolve(missing)
    with pytest.raises(BadRequestError, match="NUL"):
        policy.resolve("a\x00.mp4")


def test_a_root_that_is_a_prefix_of_a_sibling_does_not_admit_the_sibling(tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos-private").mkdir()
    (tmp_path / "videos-private" / "p.mp4").write_bytes(b"p")
    with pytest.raises(ForbiddenError):
        PathPolicy([tmp_path / "videos"]).resolve(str(tmp_path / "videos-private" / "p.mp4"))


def test_url_schemes_come_from_the_allow_list():
    allowed = ["rtsp", "https"]
    assert check_url(" rtsp://cam.local/s0 ", allowed) == "rtsp://cam.local/s0"
    assert check_url("HTTPS://example.com/v.m3u8", allowed)
    for bad in [
        "file:///etc/passwd",
        "http://example.com/a.mp4",
        "ftp://x/y",
        "/etc/passwd",
        "javascript:alert(1)",
    ]:
        with pytest.raises(BadRequestError, match="not allowed; allowed: https, rtsp"):
            check_url(bad, allowed)
    with pytest.raises(BadRequestError, match="names no host"):
        check_url("rtsp:///path", allowed)
