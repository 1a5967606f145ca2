"""The slow-client policy of /v1/live: pushes never wait; a client that falls behind loses the
messages that later ones supersede, and is cut off when a message that must arrive does not fit."""

import asyncio

from api.config import ApiSettings
from api.live import LiveClient, LiveHub
from api.metrics import Metrics


def make_client(queue: int = 8) -> tuple[LiveClient, Metrics]:
    metrics = Metrics()
    return LiveClient(None, ApiSettings(ws_queue_messages=queue), metrics), metrics  # type: ignore[arg-type]


def dropped(metrics: Metrics, kind: str) -> float:
    return metrics.registry.get_sample_value("vidsight_ws_dropped_messages_total", {"type": kind}) or 0.0


async def test_supersedable_pushes_are_dropped_once_the_queue_is_half_full():
    client, metrics = make_client(8)
    accepted = [client.push({"type": "stream_health", "n": i}) for i in range(10)]
    assert accepted == [True] * 4 + [False] * 6
    assert dropped(metrics, "stream_health") == 6
    assert not client.failed.is_set()
    assert client.push({"type": "token", "text": "a"})  # answers still get through


async def test_a_full_queue_cuts_the_client_off_instead_of_waiting():
    client, metrics = make_client(8)
    assert all(client.push({"type": "token", "n": i}) for i in range(8))
    assert not client.push({"type": "answer_done"})
    assert client.failed.is_set() and "8 messages behind" in client.reason
    assert not client.push({"type": "token"})  # nothing more is queued for a client being closed
    assert metrics.registry.get_sample_value("vidsight_ws_slow_disconnects_total") == 1.0


async def test_a_broadcast_reaches_subscribers_of_the_topic_and_a_slow_one_does_not_hold_the_rest():
    hub = LiveHub(ApiSettings(ws_queue_messages=8), Metrics())
    slow, _ = make_client(8)
    fast, _ = make_client(8)
    other, _ = make_client(8)
    other.topics = {"events"}
    hub.clients = {slow, fast, other}
    for i in range(20):
        hub.broadcast("alerts", {"type": "alert", "n": i})
        while not fast.queue.empty():  # the fast client keeps up
            fast.queue.get_nowait()
    assert slow.failed.is_set()
    assert not fast.failed.is_set()
    assert other.queue.empty()


async def test_send_timeout_fails_the_client():
    class StuckSocket:
        async def send_text(self, _text: str) -> None:
            await asyncio.sleep(10)

    metrics = Metrics()
    client = LiveClient(StuckSocket(), ApiSettings(ws_send_timeout_s=0.05), metrics)  # type: ignore[arg-type]
    client.push({"type": "token"})
    await asyncio.wait_for(client.send_loop(), 2)
    assert client.failed.is_set() and "longer than 0.05 s" in client.reason


async def test_alert_engine_messages_reach_subscribed_clients_as_alert_pushes():
    from api.alerts import AlertHub, AlertMessage, Evidence, Firing
    from api.live import relay_alerts

    hub = LiveHub(ApiSettings(), Metrics())
    watching, _ = make_client()
    ignoring, _ = make_client()
    ignoring.topics = {"events"}
    hub.clients = {watching, ignoring}
    alerts = AlertHub(queue_size=16)
    relay = asyncio.create_task(relay_alerts(alerts.subscribe(), hub))
    await asyncio.sleep(0)
    firing = Firing(
        id="f1",
        alert_id="door",
        event_id="cam:1",
        stream_id="cam",
        start_pts_s=0.0,
        end_pts_s=2.0,
        score=0.9,
        channel="text",
        evidence=Evidence(text_score=0.9),
        created_s=1.0,
        updated_s=1.0,
    )
    alerts.publish(AlertMessage(type="new", alert_id="door", alert_name="Door", after=firing, sent_s=1.0))
    message = await asyncio.wait_for(watching.queue.get(), 1)
    relay.cancel()
    assert message["type"] == "alert" and message["kind"] == "new" and message["alert_name"] == "Door"
    assert message["firing"]["event_id"] == "cam:1" and message["firing"]["evidence"]["text_score"] == 0.9
    assert ignoring.queue.empty()
