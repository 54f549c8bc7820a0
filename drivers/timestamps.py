"""RFC 3339 timestamps, as every message, recording and terminal line of hpagent writes them."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(t: float) -> str:
    """``2026-11-25T22:14:03.120Z``: UTC, millisecond precision."""
    dt = datetime.fromtimestamp(t, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_rfc3339(text: str) -> float:
    """Unix time of an RFC 3339 timestamp; ValueError if it carries no offset."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone offset")
    return dt.timestamp()
