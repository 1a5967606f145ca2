"""The notifier interface and the dispatcher that fans a message out to every channel of an alert.

`send` only enqueues: delivery (and its retries) happens in the notifier's own worker, so the
engine never waits on a network, and a failing channel never delays another.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Protocol

from ..models import Alert, AlertMessage

log = logging.getLogger(__name__)


class Notifier(Protocol):
    name: str

    def send(self, alert: Alert, message: AlertMessage) -> None:
        """Enqueue `message` for the alert's channels of this kind; never blocks, never raises."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def message_body(message: AlertMessage) -> bytes:
    """The JSON every channel delivers (secrets never appear in a firing)."""
    return json.dumps(message.model_dump(mode="json"), separators=(",", ":"), sort_keys=True).encode()


class Dispatcher:
    def __init__(self, notifiers: Sequence[Notifier]) -> None:
        self.notifiers = list(notifiers)

    async def start(self) -> None:
        for n in self.notifiers:
            await n.start()

    def dispatch(self, alert: Alert, message: AlertMessage) -> None:
        for n in self.notifiers:
            try:
                n.send(alert, message)
            except Exception as exc:  # one broken channel must not stop the others
                log.warning(
                    "alert %s: %s channel refused a %s message: %s", alert.id, n.name, message.type, exc
                )

    async def close(self) -> None:
        for n in self.notifiers:
            try:
                await n.close()
            except Exception as exc:
                log.warning("closing the %s channel failed: %s", n.name, exc)
