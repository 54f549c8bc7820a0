"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import structlog

REPO = Path(__file__).resolve().parent.parent
CASES = Path(__file__).resolve().parent / "cases"

LogEvents = list[structlog.typing.EventDict]


def events(captured: LogEvents, name: str) -> LogEvents:
    """The captured log events called ``name``."""
    return [e for e in captured if e.get("event") == name]
