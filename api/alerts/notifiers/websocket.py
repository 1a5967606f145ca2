"""WebSocket channel: messages of alerts with `channels.websocket` go to the hub, whose subscribers
are the /v1/live clients (the API sends each message as JSON with its `type`)."""

from __future__ import annotations

from ..hub import AlertHub
from ..models import Alert, AlertMessage


class WebSocketNotifier:
    name = "websocket"

    def __init__(self, hub: AlertHub) -> None:
        self.hub = hub

    async def start(self) -> None:
        return None

    def send(self, alert: Alert, message: AlertMessage) -> None:
        if alert.channels.websocket:
            self.hub.publish(message)

    async def close(self) -> None:
        self.hub.close()
