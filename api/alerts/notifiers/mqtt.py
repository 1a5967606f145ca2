"""MQTT channel (paho-mqtt): each message to `<topic_prefix>/<alert_id>` (or the alert's own topic),
as Frigate does it: a JSON envelope {"type": "new"|"update"|"end", "before": ..., "after": ...} plus
the alert's id and name.

paho runs its network loop in its own thread and reconnects with backoff by itself; `publish`
only queues (up to `max_queued` messages while the broker is away), so the engine never waits.
"""

from __future__ import annotations

import logging
from typing import Any

from ..config import MqttSettings
from ..models import Alert, AlertMessage
from .base import message_body

log = logging.getLogger(__name__)


class MqttNotifier:
    name = "mqtt"

    def __init__(self, settings: MqttSettings) -> None:
        if not settings.host:
            raise ValueError("MqttNotifier needs settings.host (None disables the MQTT channel)")
        self.settings = settings
        self._client: Any = None
        self.published = 0

    def topic(self, alert: Alert) -> str:
        channel = alert.channels.mqtt
        if channel is not None and channel.topic:
            return channel.topic
        return f"{self.settings.topic_prefix}/{alert.id}"

    async def start(self) -> None:
        import paho.mqtt.client as mqtt

        s = self.settings
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=s.client_id)
        if s.username:
            client.username_pw_set(s.username, s.password)
        client.max_queued_messages_set(s.max_queued)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        assert s.host is not None  # checked in __init__
        client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        client.loop_start()
        self._client = client

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning(
                "MQTT broker %s:%d refused the connection: %s", self.settings.host, self.settings.port, reason
            )

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning(
                "MQTT broker %s:%d lost (%s); paho reconnects", self.settings.host, self.settings.port, reason
            )

    def send(self, alert: Alert, message: AlertMessage) -> None:
        if alert.channels.mqtt is None or self._client is None:
            return
        info = self._client.publish(self.topic(alert), message_body(message), qos=self.settings.qos)
        if info.rc != 0:
            log.warning(
                "MQTT publish of a %s message for alert %s failed: rc=%s", message.type, alert.id, info.rc
            )
            return
        self.published += 1

    async def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
