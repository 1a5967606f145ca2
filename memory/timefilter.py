"""Search windows: checking them, and reading them from text (the CLI and the API).

A window is [since, until) on each stream's own clock (see memory.records): presentation seconds
for files, Unix seconds for live streams. Either end may be open (None).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from .errors import TimeRangeError

MAX_K = 1000
_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")  # [h:]m:s
_AGO = re.compile(r"^-?(\d+(?:\.\d*)?)\s*(s|m|h|d)(?:\s+ago)?$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def check_window(since: float | None, until: float | None) -> tuple[float | None, float | None]:
    for name, value in (("since", since), ("until", until)):
        if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise TimeRangeError(f"{name} must be a finite number of seconds or None, got {value!r}")
    if since is not None and until is not None and since >= until:
        raise TimeRangeError(f"empty window: since ({since}) must be before until ({until})")
    return (None if since is None else float(since)), (None if until is None else float(until))


def check_k(k: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be an integer in [1, {MAX_K}], got {k!r}")
    return k


def parse_time(text: str, now_wall_s: float) -> float:
    """Seconds from text:
    - "90", "90.5": taken as they are (pts seconds for a file, Unix seconds for a live stream);
    - "1:30", "1:02:03.5": a clock position in a file (pts seconds);
    - "2024-05-01T10:00:00[+02:00]": a date and time (Unix seconds; UTC unless it names a zone);
    - "15m ago", "-2h", "3d": that long before now (Unix seconds).
    """
    value = text.strip()
    try:
        return float(value) if math.isfinite(float(value)) else _bad(text)
    except ValueError:
        pass
    clock = _CLOCK.match(value)
    if clock:
        hours, minutes, seconds = clock.groups()
        return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    ago = _AGO.match(value.lower())
    if ago:
        return now_wall_s - float(ago.group(1)) * _UNIT_S[ago.group(2)]
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return _bad(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _bad(text: str) -> float:
    raise TimeRangeError(
        f"cannot read a time from {text!r}; use seconds (90), a clock position (1:30), "
        "an ISO date-time (2024-05-01T10:00:00) or a duration ago (15m ago, -2h)"
    )
