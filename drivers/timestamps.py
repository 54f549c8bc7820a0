"""RFC 3339 timestamps, as every message, recording and terminal line of hpagent writes them."""

from __future__ import annotations

import math
import time
from datetime import datetime


def rfc3339(t: float) -> str:
    """``2026-11-25T22:14:03.120Z``: UTC, millisecond precision (the milliseconds of the time
    rounded to microseconds, as :meth:`datetime.fromtimestamp` does; a backlog formats
    thousands a second, so this avoids making a datetime)."""
    frac, whole = math.modf(t)
    us = round(frac * 1e6)
    if us < 0:
        whole, us = whole - 1, us + 1_000_000
    if us >= 1_000_000:
        whole, us = whole + 1, us - 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(whole)) + f"{us // 1000:03d}Z"


def parse_rfc3339(text: str) -> float:
    """Unix time of an RFC 3339 timestamp; ValueError if it carries no offset."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone offset")
    return dt.timestamp()
