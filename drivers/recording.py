"""Recordings: samples as JSON Lines, the format ``hpagent record`` writes and everything reads.

One JSON object per line, in time order::

    {"t": "2026-01-15T06:00:10.000Z", "q": {"hp.heat_energy": 1234.56, "hp.mode": "heating"}}

``t`` is the sample's time (RFC 3339, UTC) and ``q`` maps vocabulary names to values in the
vocabulary's units. Optional keys: ``src`` (the device), ``at`` (vocabulary name -> RFC 3339
time the device itself gave the value, e.g. the gas meter's capture time) and ``e`` (state
changes seen since the previous line: ``[RFC 3339 time, quantity, value]``).

It lives among the drivers because both sides write it: the agent (``record``, read back by
``report`` and ``replay``) and the bench (``hil season``), and a recording is a device's own
account of what it reported.

Reading is the hot path of a season report (millions of lines): lines are parsed with orjson
and timestamps through a per-minute cache, and a file can be cut into byte ranges at line
boundaries so that several processes read it at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson

from drivers.reading import Value
from drivers.timestamps import parse_rfc3339, rfc3339


class RecordingError(ValueError):
    """A line that is not a recording line; the message names file and line number."""


@dataclass(frozen=True, slots=True)
class Record:
    t: float
    q: Mapping[str, Value]
    src: str | None = None
    at: Mapping[str, float] = field(default_factory=dict)
    e: tuple[tuple[float, str, Value], ...] = ()


def record_line(record: Record) -> bytes:
    body: dict[str, Any] = {"t": rfc3339(record.t), "q": dict(record.q)}
    if record.src is not None:
        body["src"] = record.src
    if record.at:
        body["at"] = {k: rfc3339(v) for k, v in record.at.items()}
    if record.e:
        body["e"] = [[rfc3339(t), q, v] for t, q, v in record.e]
    return orjson.dumps(body) + b"\n"


class Writer:
    """Appends records to a file, flushing each line (a recording survives being cut short)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] = path.open("ab")
        self.lines = 0

    def write(self, record: Record) -> None:
        self._file.write(record_line(record))
        self._file.flush()
        self.lines += 1

    def close(self) -> None:
        self._file.close()


class TimeParser:
    """RFC 3339 UTC -> Unix time, fast for the regular timestamps of a recording.

    A recording repeats itself: the same minute on six lines in ten, the same gas capture time
    on thirty lines; both are remembered (a few thousand entries at most).
    """

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._minutes: dict[str, float] = {}

    def __call__(self, text: str) -> float:
        """A time that recurs (a device's capture time): remembered whole."""
        value = self._seen.get(text)
        if value is None:
            if len(self._seen) > 4096:
                self._seen.clear()
            value = self._seen[text] = self.fresh(text)
        return value

    def fresh(self, text: str) -> float:
        """A time seen once (a sample's own time): only its minute is remembered."""
        if text.endswith("Z") and len(text) >= 20 and text[16] == ":":
            minute = text[:16]
            base = self._minutes.get(minute)
            if base is None:
                if len(self._minutes) > 4096:
                    self._minutes.clear()
                base = self._minutes[minute] = datetime.fromisoformat(
                    minute + ":00+00:00").timestamp()
            return base + float(text[17:-1])
        return parse_rfc3339(text)


Raw = tuple[float, dict[str, Value], dict[str, float] | None,
            list[tuple[float, str, Value]] | None, str | None]


def _line_start(f: IO[bytes], offset: int) -> int:
    """The first line start at or after ``offset``."""
    if offset == 0:
        return 0
    f.seek(offset - 1)
    f.readline()
    return f.tell()


def read_raw(path: Path, start: int = 0, end: int | None = None) -> Iterator[Raw]:
    """The lines of ``path`` (or of the byte range [start, end), cut at line boundaries) as
    plain tuples ``(t, q, at, e, src)``: the season report's hot loop, read in large blocks."""
    times = TimeParser()
    fresh = times.fresh
    loads = orjson.loads
    last_at: Any = None
    parsed_at: dict[str, float] | None = None
    with path.open("rb") as f:
        first = _line_start(f, start)
        stop = _line_start(f, end) if end is not None else os.path.getsize(path)
        f.seek(first)
        left = stop - first
        carry = b""
        number = 0
        while left > 0 or carry:
            block = f.read(min(left, 1 << 22)) if left > 0 else b""
            left -= len(block)
            lines = (carry + block).split(b"\n")
            carry = lines.pop() if left > 0 else b""
            for raw in lines:
                number += 1
                try:
                    obj = loads(raw)
                    at = obj.get("at")
                    if at is not None and at != last_at:  # a capture time repeats for minutes
                        last_at, parsed_at = at, {k: times(v) for k, v in at.items()}
                    e = obj.get("e")
                    yield (fresh(obj["t"]), obj["q"], parsed_at if at is not None else None,
                           [(times(x[0]), x[1], x[2]) for x in e] if e else None, obj.get("src"))
                except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
                    if not raw.strip():
                        continue
                    where = f"line {number}" if not first else f"line {number} of a part"
                    raise RecordingError(f"{path}: {where}: not a recording line ({exc})") \
                        from None


def read(path: Path, start: int = 0, end: int | None = None) -> Iterator[Record]:
    """The records of ``path`` (or of a byte range of it)."""
    for t, q, at, e, src in read_raw(path, start, end):
        yield Record(t, q, src, at or {}, tuple(e) if e else ())


def ranges(path: Path, parts: int) -> list[tuple[int, int]]:
    """Byte ranges that split ``path`` into ``parts`` pieces for :func:`read`."""
    size = os.path.getsize(path)
    cuts = [size * i // parts for i in range(parts + 1)]
    return [(cuts[i], cuts[i + 1]) for i in range(parts) if cuts[i] < cuts[i + 1]]
