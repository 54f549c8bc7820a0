"""Recordings: samples as JSON Lines, the format ``hpagent record`` writes and everything reads.

One JSON object per line, in time order::

    {"t": "2026-01-15T06:00:10.000Z", "q": {"hp.heat_energy": 1234.56, "hp.mode": "heating"}}

``t`` is the sample's time (RFC 3339, UTC) and ``q`` maps vocabulary names to values in the
vocabulary's units. Optional keys: ``src`` (the device), ``at`` (vocabulary name -> RFC 3339
time the device itself gave the value, e.g. the gas meter's capture time) and ``e`` (state
changes seen since the previous line: ``[RFC 3339 time, quantity, value]``).

Reading is the hot path of a season report (millions of lines): lines are parsed with orjson
and timestamps through a per-minute cache, and a file can be cut into byte ranges at line
boundaries so that several processes read it at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from agent.sample import Sample, rfc3339
from drivers.reading import Value


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


def from_sample(sample: Sample) -> Record:
    return Record(sample.t, sample.values, sample.source,
                  {r.quantity: r.measured_at.timestamp() for r in sample.readings
                   if r.measured_at is not None and r.good},
                  tuple((e.at.timestamp(), e.quantity, e.value) for e in sample.events))


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
    """RFC 3339 UTC -> Unix time, fast for the sorted, regular timestamps of a recording."""

    def __init__(self) -> None:
        self._minute = ""
        self._base = 0.0

    def __call__(self, text: str) -> float:
        # "2026-01-15T06:00:10.000Z": the minute prefix repeats for six lines in ten
        if text.endswith("Z") and len(text) >= 20 and text[16] == ":":
            if text[:16] != self._minute:
                self._minute = text[:16]
                self._base = datetime.fromisoformat(text[:16] + ":00+00:00").timestamp()
            return self._base + float(text[17:-1])
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            raise ValueError(f"{text!r} has no time zone")
        return dt.astimezone(UTC).timestamp()


Raw = tuple[float, dict[str, Value], dict[str, float] | None,
            list[tuple[float, str, Value]] | None, str | None]


def read_raw(path: Path, start: int = 0, end: int | None = None) -> Iterator[Raw]:
    """The lines of ``path`` (or of the byte range [start, end), cut at line boundaries) as
    plain tuples ``(t, q, at, e, src)``: the season report's hot loop."""
    times = TimeParser()
    loads = orjson.loads
    with path.open("rb") as f:
        if start:
            f.seek(start - 1)
            f.readline()  # the line that straddles 'start' belongs to the previous range
        position = f.tell()
        for number, raw in enumerate(f, 1):
            if end is not None and position >= end:
                return
            position += len(raw)
            try:
                obj = loads(raw)
                at = obj.get("at")
                e = obj.get("e")
                yield (times(obj["t"]), obj["q"],
                       {k: times(v) for k, v in at.items()} if at else None,
                       [(times(x[0]), x[1], x[2]) for x in e] if e else None, obj.get("src"))
            except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
                if not raw.strip():
                    continue
                where = f"line {number}" if not start else f"byte {position - len(raw)}"
                raise RecordingError(f"{path}: {where}: not a recording line ({exc})") from None


def read(path: Path, start: int = 0, end: int | None = None) -> Iterator[Record]:
    """The records of ``path`` (or of a byte range of it)."""
    for t, q, at, e, src in read_raw(path, start, end):
        yield Record(t, q, src, at or {}, tuple(e) if e else ())


def ranges(path: Path, parts: int) -> list[tuple[int, int]]:
    """Byte ranges that split ``path`` into ``parts`` pieces for :func:`read`."""
    size = os.path.getsize(path)
    cuts = [size * i // parts for i in range(parts + 1)]
    return [(cuts[i], cuts[i + 1]) for i in range(parts) if cuts[i] < cuts[i + 1]]
