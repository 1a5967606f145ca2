"""API keys on a real server: 401 without a (valid) key, 403 with the wrong scope, revocation by the
CLI takes effect at once, rate limits answer 429 with Retry-After, /healthz needs nothing."""

import httpx
import pytest
import websockets

pytestmark = pytest.mark.integration


def test_healthz_needs_no_key_and_every_api_route_does(server):
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    with server.client(scope=None) as c:
        for method, path in [
            ("GET", "/readyz"),
            ("GET", "/metrics"),
            ("GET", "/v1/streams"),
            ("POST", "/v1/search"),
            ("GET", "/v1/alerts"),
            ("GET", "/v1/events/x:1"),
        ]:
            r = c.request(method, path, json={"query": "x"} if method == "POST" else None)
            assert r.status_code == 401, (path, r.text)
            assert r.json()["error"]["code"] == "unauthorized"
            assert r.headers["www-authenticate"].startswith("Bearer")


def test_bad_keys_are_401_with_a_clear_message(server):
    for header, message in [
        ("Bearer vsk_0123456789ab_notakey", "unknown API key"),
        ("Bearer something-else", "start with 'vsk_'"),
        ("Basic dXNlcjpwYXNz", "required"),
    ]:
        r = httpx.get(server.url + "/v1/streams", headers={"Authorization": header})
        assert r.status_code == 401 and message in r.json()["error"]["message"], r.text


def test_wrong_scope_is_403_and_the_right_one_passes(server):
    with server.client("read") as c:
        r = c.post("/v1/streams", json={"url": "rtsp://127.0.0.1:9/none"})
        assert r.status_code == 403 and "lacks scope 'ingest'" in r.json()["error"]["message"]
        assert c.post("/v1/alerts", json={"query": "a dog"}).status_code == 403
        assert c.get("/v1/streams").status_code == 200
    with server.client("ingest") as c:
        assert c.get("/v1/streams").status_code == 403  # ingest does not imply read
        assert c.post("/v1/videos", json={"path": "missing.mp4"}).status_code == 404  # past the scope check
    with server.client("admin") as c:
        assert c.get("/v1/streams").status_code == 200
        assert c.get("/v1/keys").status_code == 200


def test_keys_made_by_the_cli_are_listed_hashed_and_revocation_is_immediate(server):
    token = server.new_key("read")
    key_id = token.split("_")[1]
    assert (
        httpx.get(server.url + "/v1/streams", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    listing = server.cli("keys", "list", "--json")
    assert key_id in listing.stdout and token not in listing.stdout
    assert server.cli("keys", "revoke", key_id).returncode == 0
    r = httpx.get(server.url + "/v1/streams", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


def test_rate_limit_is_per_key_and_says_when_to_retry(server):
    token = server.fresh_key("read")
    statuses, retry_after = [], None
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
        for _ in range(150):
            r = c.get("/v1/alerts")
            statuses.append(r.status_code)
            if r.status_code == 429:
                retry_after = r.headers.get("retry-after")
                break
    assert 429 in statuses and retry_after is not None and int(retry_after) >= 1
    with server.client("read") as other:  # another key is not affected
        assert other.get("/v1/alerts").status_code == 200


async def test_websocket_needs_a_read_key_by_header_subprotocol_or_query(server):
    refusals = [
        ({}, 401),
        ({"uri": "?token=vsk_0123456789ab_nope"}, 401),
        ({"uri": f"?token={server.keys['ingest']}"}, 403),
        ({"subprotocols": ["vidsight", f"bearer.{server.keys['ingest']}"]}, 403),
        ({"additional_headers": {"Authorization": "Bearer vsk_0123456789ab_nope"}}, 401),
    ]
    for options, status in refusals:
        uri = server.ws_url + options.pop("uri", "")
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(uri, **options):
                pass
        assert refused.value.response.status_code == status, options
    read = server.keys["read"]
    for uri, options in [
        (server.ws_url, {"additional_headers": {"Authorization": f"Bearer {read}"}}),
        (server.ws_url, {"subprotocols": ["vidsight", f"bearer.{read}"]}),
        (f"{server.ws_url}?token={read}", {}),
    ]:
        async with websockets.connect(uri, **options) as ws:
            assert ws.subprotocol == ("vidsight" if "subprotocols" in options else None)
            await ws.send('{"type": "cancel", "id": "none"}')
            assert '"not_found"' in await ws.recv()
