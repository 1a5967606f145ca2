"""Alert channels: webhook (signed, retried), MQTT (Frigate-style envelope), WebSocket (the hub)."""

from .base import Dispatcher, Notifier, message_body
from .mqtt import MqttNotifier
from .webhook import SIGNATURE_HEADER, WebhookNotifier, sign, verify_signature
from .websocket import WebSocketNotifier

__all__ = [
    "SIGNATURE_HEADER",
    "Dispatcher",
    "MqttNotifier",
    "Notifier",
    "WebSocketNotifier",
    "WebhookNotifier",
    "message_body",
    "sign",
    "verify_signature",
]
