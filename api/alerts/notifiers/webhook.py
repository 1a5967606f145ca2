"""Webhook channel: POST each message as JSON, signed, with retries.

Request:
    POST <url>
    Content-Type: application/json
    X-Vidsight-Event: new | update | end
    X-Vidsight-Delivery: <id, the same on every retry of one message: receivers can drop repeats>
    X-Vidsight-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>
    body: {"type", "alert_id", "alert_name", "before", "after", "sent_s", ...} (AlertMessage)

To check a request, recompute the HMAC over the timestamp, a dot and the raw body with the alert's
secret, compare in constant time, and refuse timestamps older than a few minutes (replays):
`verify_signature(secret, body, header)` does exactly that. Each retry is signed afresh.

Retries: connection errors, timeouts, 408, 429 and 5xx are retried up to `max_attempts` tries with
exponential backoff (base * 2^n, capped) and jitter (half fixed, half random, so receivers that
come back are not hit by every sender at once); other 4xx are final. One worker per URL delivers
in order (new before update before end), so a slow or dead receiver delays only itself; its queue
is bounded and drops its oldest messages past `queue_size`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import time
import uuid
from dataclasses import dataclass

import httpx

from ..config import WebhookSettings
from ..models import Alert, AlertMessage, WebhookChannel
from .base import message_body

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Vidsight-Signature"
RETRIED_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def sign(secret: str, body: bytes, timestamp_s: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp_s}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp_s},v1={mac}"


def verify_signature(
    secret: str, body: bytes, header: str, *, tolerance_s: float = 300.0, now_s: float | None = None
) -> bool:
    """True when `header` is a valid signature of `body` made less than tolerance_s ago."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp_s = int(parts["t"])
    except (KeyError, ValueError):
        return False
    now_s = time.time() if now_s is None else now_s
    if abs(now_s - timestamp_s) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp_s).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def backoff_s(attempt: int, base_s: float, cap_s: float) -> float:
    """Delay before retry number `attempt` (1 = the first retry): half fixed, half random."""
    delay = min(cap_s, base_s * 2 ** (attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)


@dataclass
class WebhookStats:
    delivered: int = 0
    retries: int = 0
    failed: int = 0  # messages given up on after all tries or a final status
    dropped: int = 0  # messages lost to a full queue


class _Destination:
    """One URL: a bounded queue and the worker that drains it in order."""

    def __init__(self, notifier: WebhookNotifier, url: str) -> None:
        self.url = url
        self.queue: asyncio.Queue[tuple[WebhookChannel, AlertMessage, str]] = asyncio.Queue(
            maxsize=notifier.settings.queue_size
        )
        self.task = asyncio.get_running_loop().create_task(notifier._drain(self), name=f"webhook {url}")


class WebhookNotifier:
    name = "webhook"

    def __init__(self, settings: WebhookSettings, *, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._client = client
        self._owns_client = client is None
        self._destinations: dict[str, _Destination] = {}
        self.stats = WebhookStats()

    async def start(self) -> None:
        if self._client is None:
            timeout = httpx.Timeout(self.settings.timeout_s)
            self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    def send(self, alert: Alert, message: AlertMessage) -> None:
        for channel in alert.channels.webhooks:
            dest = self._destinations.get(channel.url)
            if dest is None:
                dest = self._destinations[channel.url] = _Destination(self, channel.url)
            if dest.queue.full():
                dest.queue.get_nowait()
                self.stats.dropped += 1
                log.warning("webhook %s: queue full, dropped its oldest message", channel.url)
            dest.queue.put_nowait((channel, message, uuid.uuid4().hex))

    async def _drain(self, dest: _Destination) -> None:
        while True:
            channel, message, delivery = await dest.queue.get()
            try:
                await self.deliver(channel, message, delivery)
            finally:
                dest.queue.task_done()

    async def deliver(self, channel: WebhookChannel, message: AlertMessage, delivery: str) -> bool:
        """POST with retries; True when the receiver answered 2xx."""
        assert self._client is not None, "start() first"
        body = message_body(message)
        s = self.settings
        for attempt in range(1, s.max_attempts + 1):
            headers = {"Content-Type": "application/json", "X-Vidsight-Event": message.type,
                       "X-Vidsight-Delivery": delivery, "User-Agent": "vidsight-alerts"}  # fmt: skip
            if channel.secret is not None:
                headers[SIGNATURE_HEADER] = sign(channel.secret.get_secret_value(), body, int(time.time()))
            try:
                response = await self._client.post(channel.url, content=body, headers=headers)
                outcome, retry = f"HTTP {response.status_code}", response.status_code in RETRIED_STATUS
                if response.is_success:
                    self.stats.delivered += 1
                    return True
            except httpx.HTTPError as exc:
                outcome, retry = f"{type(exc).__name__}: {exc}", True
            if not retry or attempt == s.max_attempts:
                break
            self.stats.retries += 1
            await asyncio.sleep(backoff_s(attempt, s.backoff_base_s, s.backoff_cap_s))
        self.stats.failed += 1
        log.warning("webhook %s: gave up on a %s message after %d tries (%s)",
                    channel.url, message.type, attempt, outcome)  # fmt: skip
        return False

    async def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until every queued message was delivered or given up on (tests, shutdown)."""
        await asyncio.wait_for(
            asyncio.gather(*(d.queue.join() for d in self._destinations.values())), timeout_s
        )

    async def close(self) -> None:
        for dest in self._destinations.values():
            dest.task.cancel()
        await asyncio.gather(*(d.task for d in self._destinations.values()), return_exceptions=True)
        self._destinations.clear()
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None
