"""Standing alert queries: each new event of the memory bank is scored against every active query
(retrieval-encoder and text evidence, calibrated per stream), candidates are notified at once,
verified by the VLM in the background, updated and closed. Channels: webhook, MQTT, WebSocket.

The engine is plain asyncio (no web framework): the API wires `AlertEngine` into its routes and
/v1/live, and `subscribe()` feeds WebSocket clients.
"""

from .config import AlertSettings, MqttSettings, ScoringSettings, VerifySettings, WebhookSettings
from .engine import AlertEngine
from .errors import AlertError, AlertNotFoundError, AlertStoreError, EngineStateError, InvalidAlertError
from .hub import AlertHub, Subscription
from .models import (
    Alert,
    AlertMessage,
    AlertSpec,
    Channels,
    Evidence,
    Firing,
    MqttChannel,
    Schedule,
    TimeWindow,
    WebhookChannel,
)
from .notifiers import SIGNATURE_HEADER, sign, verify_signature
from .scoring import QueryTower
from .verify import LLMVerifier, Verifier, VerifierResult

__all__ = [
    "SIGNATURE_HEADER",
    "Alert",
    "AlertEngine",
    "AlertError",
    "AlertHub",
    "AlertMessage",
    "AlertNotFoundError",
    "AlertSettings",
    "AlertSpec",
    "AlertStoreError",
    "Channels",
    "EngineStateError",
    "Evidence",
    "Firing",
    "InvalidAlertError",
    "LLMVerifier",
    "MqttChannel",
    "MqttSettings",
    "QueryTower",
    "Schedule",
    "ScoringSettings",
    "Subscription",
    "TimeWindow",
    "Verifier",
    "VerifierResult",
    "VerifySettings",
    "WebhookChannel",
    "WebhookSettings",
    "sign",
    "verify_signature",
]
