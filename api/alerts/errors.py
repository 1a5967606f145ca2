"""Alert errors. Messages name the bad value and what was allowed."""

from __future__ import annotations


class AlertError(Exception):
    """Base class for everything the alert engine raises on purpose."""


class InvalidAlertError(AlertError, ValueError):
    """An alert definition that cannot be used as given (bad query, schedule, channel, time range)."""


class AlertNotFoundError(AlertError, KeyError):
    """An alert id that is not defined (never defined, or deleted)."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else "alert not found"


class AlertStoreError(AlertError):
    """Redis could not be read or written; nothing was changed."""


class EngineStateError(AlertError):
    """The engine was used in a state that does not allow it (stopped, not started, started twice)."""
