"""Delivery over real channels: a local HTTP receiver (checks the HMAC, fails the first try), the
local Mosquitto broker, and the WebSocket hub, with the tiny Qwen2.5-VL verifying in between."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from aiohttp import web

from api.alerts import SIGNATURE_HEADER, verify_signature

from .conftest import MQTT_HOST, MQTT_PORT, free_port, make_event

pytestmark = pytest.mark.integration
SECRET = "test-secret-0123456789"


class Receiver:
    """A webhook endpoint on loopback: answers 503 to the first `fail_first` requests, 204 after."""

    def __init__(self, fail_first: int = 1) -> None:
        self.fail_first = fail_first
        self.attempts: list[dict] = []  # every request: delivery id, type, signature ok, status
        self.accepted: list[dict] = []  # bodies of requests answered 2xx
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        ok = verify_signature(SECRET, body, request.headers.get(SIGNATURE_HEADER, ""))
        status = 503 if len(self.attempts) < self.fail_first else (204 if ok else 401)
        delivery, kind = request.headers["X-Vidsight-Delivery"], request.headers["X-Vidsight-Event"]
        self.attempts.append({"delivery": delivery, "type": kind, "signed": ok, "status": status})
        if status == 204:
            self.accepted.append(json.loads(body))
        return web.Response(status=status)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


class MqttSubscriber:
    def __init__(self, topic: str) -> None:
        self.messages: queue.Queue[dict] = queue.Queue()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.put(json.loads(m.payload))
        self.client.connect(MQTT_HOST, MQTT_PORT)
        self.client.loop_start()
        assert self._subscribed.wait(10), "no SUBACK from the local Mosquitto"

    def take(self, n: int, timeout_s: float) -> list[dict]:
        return [self.messages.get(timeout=timeout_s) for _ in range(n)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def wait_for(predicate, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_firing_reaches_webhook_mqtt_and_websocket_as_new_update_end(make_engine, bank, llm_dim):
    alert_id = f"evac-{uuid.uuid4().hex[:8]}"
    sub = MqttSubscriber(f"vidsight/alerts/{alert_id}")
    bank.register_stream("cam")
    async with Receiver(fail_first=1) as receiver:
        engine = make_engine()
        await engine.start(follow=False)
        channels = {"webhooks": [{"url": receiver.url, "secret": SECRET}], "mqtt": {}}
        engine.define({"id": alert_id, "query": 'a sign saying "evacuate now"', "channels": channels})
        live = engine.subscribe()
        bank.add(make_event("cam", 0, 0.0, "Platform 2\nEVACUATE NOW", llm_dim=llm_dim))
        (firing,) = await engine.process_event("cam:0")
        ws = [await asyncio.wait_for(anext(live), 30) for _ in range(3)]
        await wait_for(lambda: len(receiver.accepted) == 3, 10)
        mq = await asyncio.to_thread(sub.take, 3, 10)
    sub.close()

    assert firing.channel == "text" and firing.evidence.matched_terms == ["evacuate now"]
    assert firing.evidence.snippet == "EVACUATE NOW"
    for got in ([m.type for m in ws], [m["type"] for m in receiver.accepted], [m["type"] for m in mq]):
        assert got == ["new", "update", "end"]
    # the first try failed with 503 and the same delivery was retried; every request was signed
    assert receiver.attempts[0]["status"] == 503 and receiver.attempts[1]["status"] == 204
    assert receiver.attempts[0]["delivery"] == receiver.attempts[1]["delivery"]
    assert all(a["signed"] for a in receiver.attempts) and len(receiver.attempts) == 4
    # Frigate-style envelope: each message's `before` is the previous message's `after`
    new, update, end = mq
    assert new["before"] is None and new["after"]["state"] == "new" and new["after"]["id"] == firing.id
    assert update["before"] == new["after"] and update["after"]["verdict"] in ("confirmed", "rejected")
    assert update["after"]["explanation"]  # what the (random-weight) model said
    assert end["before"] == update["after"] and end["after"]["state"] == "ended"
    stored = engine.firings(alert_id)
    assert [f.id for f in stored] == [firing.id] and stored[0].state == "ended"
    assert stored[0].verdict == update["after"]["verdict"]
    assert bank.redis.event_fields("cam:0")["pinned"] == "1"  # evidence pinned against retention


async def test_a_dead_webhook_does_not_delay_the_other_channels(make_engine, bank, llm_dim):
    bank.register_stream("cam")
    dead_url = f"http://127.0.0.1:{free_port()}/nobody-listens"
    async with Receiver(fail_first=0) as receiver:
        engine = make_engine(
            verifier=None, webhook={"backoff_base_s": 1.0, "backoff_cap_s": 2.0, "max_attempts": 4}
        )
        await engine.start(follow=False)
        hooks = [{"url": dead_url, "secret": SECRET}, {"url": receiver.url, "secret": SECRET}]
        engine.define({"query": '"evacuate now"', "channels": {"webhooks": hooks}})
        live = engine.subscribe()
        bank.add(make_event("cam", 0, 0.0, "EVACUATE NOW", llm_dim=llm_dim))
        started = time.monotonic()
        await engine.process_event("cam:0")
        ws = [await asyncio.wait_for(anext(live), 5) for _ in range(2)]
        await wait_for(lambda: len(receiver.accepted) == 2, 5)
        elapsed_s = time.monotonic() - started
    assert [m.type for m in ws] == ["new", "end"]  # no verifier: new, then end
    assert [m["type"] for m in receiver.accepted] == ["new", "end"]
    assert elapsed_s < 1.0  # the dead URL is still in its first backoff (>= 0.5 s) by now
    webhook = engine.dispatcher.notifiers[0]
    assert webhook.stats.delivered == 2 and webhook.stats.retries >= 1
