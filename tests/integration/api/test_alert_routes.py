"""/v1/alerts on a real server: define (admin), list, get, firings, backtest of a stored or draft
alert over the recorded sample, delete; webhook secrets never come back. The tiny random SigLIP
cannot make a visual alert fire (its probabilities are noise far below the floors), so the sample
video's backtest must come back empty: an alert that must not fire."""

import pytest

pytestmark = pytest.mark.integration

SPEC = {
    "id": "boxes",
    "name": "Boxes",
    "query": "a red box moving left",
    "streams": ["sample"],
    "cooldown_s": 5,
    "channels": {"webhooks": [{"url": "http://127.0.0.1:9/hook", "secret": "a-secret-of-16-chars"}]},
}


def test_alert_definition_lifecycle(server, ingested):
    with server.client("read") as reader:
        assert reader.post("/v1/alerts", json=SPEC).status_code == 403
    with server.client("admin") as c:
        r = c.post("/v1/alerts", json=SPEC)
        assert r.status_code == 201, r.text
        alert = r.json()
        assert alert["id"] == "boxes" and alert["cooldown_s"] == 5 and alert["created_s"] > 0
        assert "a-secret-of-16-chars" not in r.text
        assert c.get("/v1/alerts/boxes").json()["query"] == SPEC["query"]
        assert "boxes" in {a["id"] for a in c.get("/v1/alerts").json()["alerts"]}
        assert c.get("/v1/alerts/boxes/firings").json() == {"firings": []}
        assert isinstance(c.get("/v1/firings?limit=5").json()["firings"], list)

        backtest = c.post("/v1/alerts/boxes/backtest", json={"streams": ["sample"], "since": 0, "until": 12})
        assert backtest.status_code == 200 and backtest.json() == {"firings": []}
        draft = c.post(
            "/v1/alerts/backtest", json={"alert": {"query": "anything at all"}, "streams": ["sample"]}
        )
        assert draft.status_code == 200 and draft.json() == {"firings": []}

        bad = c.post("/v1/alerts", json={**SPEC, "schedule": {"timezone": "Mars/Olympus"}})
        assert bad.status_code == 422 and "time zone" in bad.json()["error"]["message"]
        assert c.post("/v1/alerts/backtest", json={"alert": {"query": "  "}}).status_code == 422
        assert c.post("/v1/alerts/nope/backtest", json={}).status_code == 404

        assert c.delete("/v1/alerts/boxes").status_code == 204
        assert c.get("/v1/alerts/boxes").status_code == 404
        assert c.delete("/v1/alerts/boxes").status_code == 404
