"""Memory bank errors. Messages name the bad value and what was allowed."""

from __future__ import annotations


class MemoryBankError(Exception):
    """Base class for everything the memory bank raises on purpose."""


class InvalidEventError(MemoryBankError):
    """An event the bank cannot store as given (bad id, non-finite embedding, clock mismatch)."""


class DimensionMismatchError(InvalidEventError):
    """An embedding or query whose dimension differs from the bank's."""


class UnknownStreamError(MemoryBankError):
    """A stream id that was never registered."""


class UnknownEventError(MemoryBankError):
    """An event id the bank does not hold (never added, or deleted)."""


class TimeRangeError(MemoryBankError):
    """A malformed search window (NaN, infinite, or since >= until)."""


class StoreUnavailableError(MemoryBankError):
    """Redis could not be reached within the bounded retries; nothing was written."""


class DiskFullError(MemoryBankError):
    """The disk (or the configured free-space floor) has no room; nothing was written."""


class CorruptStoreError(MemoryBankError):
    """A snapshot or log record failed its checksum somewhere other than the torn tail."""


class BankClosedError(MemoryBankError):
    """The bank (or writer) was used after close()."""
