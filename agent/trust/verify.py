"""A recipient's check of what it received: signatures, chains, epochs, heartbeats and grants.

Pure: feed tokens in the order they arrived, read the report. Streams are told apart by gateway,
audience and stream name; each has its own chain of sequence numbers and ``prev`` hashes, in an
*epoch* that changes whenever the gateway restarted the chain without its history (its database
was lost or replaced). A message is *good* when its signature verifies and it links to what came
before; *bad* when the signature fails, the payload is malformed, it sits on a topic that is not
its own, it is meant for another audience, its ``prev`` does not match the message before it,
another message already used its sequence number, or it breaks the terms of the grant it names.
*Missing* are the sequence numbers never seen between the first and the last of an epoch, and the
newest ones that a signed heartbeat on the ``status`` stream announced but that never came.
*Duplicates* (the same message twice, as at-least-once delivery allows) are counted but not held
against the stream.

The checks of a grant use the signed ``granted`` notice the gateway sends on the ``consent``
stream: after it, every message under that grant must keep to its streams, fields, resolution
and validity; after its ``revoked`` or ``expired`` notice, none may come at all.

Nothing here raises on hostile input: every field is type-checked before use, and
:func:`printable` makes received text safe to print.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.trust.jws import BadToken, chain_hash, json_object, verify

FORMAT_VERSION: Final = 2
STATUS: Final = "status"
CONSENT: Final = "consent"
_SHOWN: Final = 80  # characters of a received value quoted in a reason


def printable(text: str) -> str:
    """``text`` without control or format characters (escaped as ``\\x..``/``\\u....``), so that
    what a hostile sender put in a topic or a field cannot move the cursor, recolour or reorder
    a terminal (bidirectional overrides are format characters)."""
    out = []
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000
                       else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def _quote(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return repr(text[:_SHOWN] + ("..." if len(text) > _SHOWN else ""))


@dataclass
class Epoch:
    """One run of a stream's chain."""

    epoch: str
    good: int = 0
    duplicates: int = 0
    reordered: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    announced: int | None = None  # the newest seq a heartbeat said exists
    withdrawn: set[int] = field(default_factory=set)  # made, then withdrawn by a revocation
    hashes: dict[int, str] = field(default_factory=dict, repr=False)
    prev_of: dict[int, str | None] = field(default_factory=dict, repr=False)

    @property
    def gaps(self) -> list[int]:
        if self.first_seq is None or self.last_seq is None:
            return []
        return [s for s in range(self.first_seq, self.last_seq + 1)
                if s not in self.hashes and s not in self.withdrawn]

    @property
    def lost_newest(self) -> list[int]:
        """Sequence numbers a heartbeat announced after the newest one received."""
        if self.announced is None or self.last_seq is None:
            return []
        return [s for s in range(self.last_seq + 1, self.announced + 1)
                if s not in self.withdrawn]

    @property
    def missing(self) -> list[int]:
        return self.gaps + self.lost_newest


@dataclass
class StreamReport:
    device_id: str
    audience: str
    stream: str
    bad: int = 0
    epochs: list[Epoch] = field(default_factory=list)

    def epoch(self, name: str) -> Epoch | None:
        return next((e for e in self.epochs if e.epoch == name), None)

    @property
    def good(self) -> int:
        return sum(e.good for e in self.epochs)

    @property
    def duplicates(self) -> int:
        return sum(e.duplicates for e in self.epochs)

    @property
    def missing(self) -> list[tuple[str, int]]:
        return [(e.epoch, s) for e in self.epochs for s in e.missing]

    @property
    def restarts(self) -> int:
        """How often the chain began again without its history."""
        return max(len(self.epochs) - 1, 0)


@dataclass(frozen=True)
class Problem:
    index: int  # position of the message in what was received, from 1
    topic: str | None
    reason: str


@dataclass(frozen=True)
class GrantTerms:
    """What a ``granted`` notice promised; None where the notice did not say."""

    streams: frozenset[str]
    fields: frozenset[str]
    resolution: str
    start: str
    until: str | None


@dataclass
class Report:
    streams: dict[tuple[str, str, str], StreamReport] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    received: int = 0
    skipped: int = 0  # presence messages and the like: not signed messages

    @property
    def good(self) -> int:
        return sum(s.good for s in self.streams.values())

    @property
    def bad(self) -> int:
        return len(self.problems)

    @property
    def missing(self) -> int:
        return sum(len(s.missing) for s in self.streams.values())

    @property
    def restarts(self) -> int:
        return sum(s.restarts for s in self.streams.values())

    @property
    def ok(self) -> bool:
        return self.received > 0 and self.bad == 0 and self.missing == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "received": self.received, "good": self.good, "bad": self.bad,
            "missing": self.missing, "restarts": self.restarts, "skipped": self.skipped,
            "streams": [{
                "device_id": s.device_id, "audience": s.audience, "stream": s.stream,
                "good": s.good, "bad": s.bad, "duplicates": s.duplicates,
                "epochs": [{"epoch": e.epoch, "first_seq": e.first_seq, "last_seq": e.last_seq,
                            "good": e.good, "duplicates": e.duplicates,
                            "reordered": e.reordered, "gaps": e.gaps,
                            "lost_newest": e.lost_newest, "announced": e.announced}
                           for e in s.epochs]}
                for s in self.streams.values()],
            "problems": [{"index": p.index, "topic": p.topic, "reason": p.reason}
                         for p in self.problems],
        }


class _Bad(Exception):
    """A message is bad for the reason given; raised inside :meth:`Verifier.check` only."""


def _text(payload: dict[str, Any], key: str, *, optional: bool = False) -> Any:
    value = payload.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > 256:
        raise _Bad(f"malformed payload: {key} {_quote(value)} is not a short string")
    return value


class Verifier:
    def __init__(self, key: Ed25519PublicKey, audience: str | None = None) -> None:
        self.key = key
        self.audience = audience
        self.report = Report()
        self._grants: dict[tuple[str, str], GrantTerms] = {}  # (device, grant id) -> terms
        self._ended: dict[tuple[str, str], str] = {}  # (device, grant id) -> revoked/expired

    def check(self, token: str, topic: str | None = None) -> bool:
        """Check one received message; True if it is good (duplicates count as good)."""
        self.report.received += 1
        index = self.report.received
        stream: StreamReport | None = None
        try:
            try:
                payload = json_object(verify(token, self.key))
            except BadToken as exc:
                raise _Bad(str(exc)) from None
            except ValueError as exc:
                raise _Bad(f"malformed payload: {exc}") from None
            if payload.get("v") != FORMAT_VERSION:
                raise _Bad(f"format version {_quote(payload.get('v'))} is not {FORMAT_VERSION}")
            device, aud, name = (_text(payload, "device_id"), _text(payload, "aud"),
                                 _text(payload, "stream"))
            stream = self._stream(device, aud, name)
            self._placed(payload, topic, device, aud, name)
            ok = self._chain(stream, payload, token)
            if ok:
                self._content(payload, device, name)
            return True
        except _Bad as exc:
            if stream is not None:
                stream.bad += 1
            self.report.problems.append(Problem(index, topic, str(exc)))
            return False

    def skip(self) -> None:
        self.report.skipped += 1

    def _stream(self, device: str, aud: str, name: str) -> StreamReport:
        key = (device, aud, name)
        s = self.report.streams.get(key)
        if s is None:
            s = self.report.streams[key] = StreamReport(device, aud, name)
        return s

    def _placed(self, payload: dict[str, Any], topic: str | None, device: str, aud: str,
                name: str) -> None:
        seq = payload.get("seq")
        if self.audience is not None and aud != self.audience:
            raise _Bad(f"seq {_quote(seq)}: meant for {_quote(aud)}, not for "
                       f"{_quote(self.audience)}")
        if topic is not None and not topic.endswith(f"/{device}/{aud}/{name}"):
            raise _Bad(f"seq {_quote(seq)}: published on {_quote(topic)}, but it is "
                       f"{_quote(device)}'s {_quote(name)} for {_quote(aud)}")

    def _chain(self, s: StreamReport, payload: dict[str, Any], token: str) -> bool:
        """Place the message in its epoch's chain; False for a duplicate."""
        epoch_name = _text(payload, "epoch")
        seq, prev = payload.get("seq"), payload.get("prev")
        if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq < 2**53:
            raise _Bad(f"malformed payload: seq {_quote(seq)} is not a positive integer")
        if prev is not None and not isinstance(prev, str):
            raise _Bad(f"malformed payload: prev {_quote(prev)} is not a string or null")
        e = s.epoch(epoch_name)
        if e is None:
            e = Epoch(epoch_name)
            s.epochs.append(e)
        digest = chain_hash(token)
        seen = e.hashes.get(seq)
        if seen is not None:
            if seen == digest:
                e.duplicates += 1
                return False
            raise _Bad(f"seq {seq} used by two different messages")
        if seq == 1 and prev is not None:
            raise _Bad("seq 1 must have prev null")
        before = e.hashes.get(seq - 1)
        if before is not None and prev != before:
            raise _Bad(f"seq {seq}: prev does not match message {seq - 1}")
        after = e.prev_of.get(seq + 1, "")
        if seq + 1 in e.hashes and after != digest:
            raise _Bad(f"seq {seq}: message {seq + 1} does not link to it")
        e.hashes[seq] = digest
        e.prev_of[seq] = prev
        if e.last_seq is not None and seq < e.last_seq:
            e.reordered += 1
        e.first_seq = seq if e.first_seq is None else min(e.first_seq, seq)
        e.last_seq = seq if e.last_seq is None else max(e.last_seq, seq)
        e.good += 1
        return True

    def _content(self, payload: dict[str, Any], device: str, name: str) -> None:
        """What the stream's content says about others: heartbeats, notices, grant terms."""
        aud = payload["aud"]
        kind = payload.get("kind")
        if name == STATUS and kind == "heartbeat":
            self._heartbeat(device, aud, payload.get("streams"))
            return
        grant = _text(payload, "grant", optional=True)
        if name == CONSENT:
            if grant is not None:
                self._notice(device, grant, kind, payload.get("terms"))
                self._withdrawn(device, aud, payload.get("withdrawn"))
            return
        if grant is None:
            return
        ended = self._ended.get((device, grant))
        if ended is not None:
            raise _Bad(f"seq {payload['seq']}: sent under grant {_quote(grant)} after its "
                       f"{ended} notice")
        terms = self._grants.get((device, grant))
        if terms is not None:
            _keeps_terms(terms, name, payload)

    def _heartbeat(self, device: str, aud: str, streams: object) -> None:
        if not isinstance(streams, dict):
            raise _Bad("malformed heartbeat: streams is not an object")
        for name, head in streams.items():
            if not isinstance(head, dict):
                raise _Bad(f"malformed heartbeat: {_quote(name)} is not an object")
            epoch, seq = head.get("epoch"), head.get("seq")
            if not isinstance(epoch, str) or isinstance(seq, bool) or not isinstance(seq, int):
                raise _Bad(f"malformed heartbeat: {_quote(name)} needs epoch and seq")
            e = self._stream(device, aud, name).epoch(epoch)
            if e is None:
                e = Epoch(epoch)
                self._stream(device, aud, name).epochs.append(e)
            e.announced = seq if e.announced is None else max(e.announced, seq)

    def _withdrawn(self, device: str, aud: str, withdrawn: object) -> None:
        """Messages a revocation withdrew before they were sent: not missing."""
        if withdrawn is None:
            return
        if not isinstance(withdrawn, dict):
            raise _Bad("malformed notice: withdrawn is not an object")
        for name, entry in withdrawn.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("epoch"), str) \
                    or not _ints(entry.get("seqs")):
                raise _Bad(f"malformed notice: withdrawn {_quote(name)} needs epoch and seqs")
            s = self._stream(device, aud, name)
            e = s.epoch(entry["epoch"])
            if e is None:
                e = Epoch(entry["epoch"])
                s.epochs.append(e)
            e.withdrawn.update(entry["seqs"])

    def _notice(self, device: str, grant: str, kind: object, terms: object) -> None:
        if kind in ("revoked", "expired"):
            self._ended[(device, grant)] = str(kind)
        elif kind == "granted":
            if not isinstance(terms, dict):
                raise _Bad("malformed granted notice: terms is not an object")
            streams, fields = terms.get("streams"), terms.get("fields")
            resolution, start, until = (terms.get("resolution"), terms.get("from"),
                                        terms.get("until"))
            if not (_strings(streams) and _strings(fields) and isinstance(resolution, str)
                    and isinstance(start, str) and (until is None or isinstance(until, str))):
                raise _Bad("malformed granted notice: terms need streams, fields, resolution, "
                           "from and until")
            self._grants[(device, grant)] = GrantTerms(
                frozenset(streams), frozenset(fields), resolution, start, until)  # type: ignore[arg-type]


def _ints(value: object) -> bool:
    return isinstance(value, list) and len(value) <= 100_000 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value)


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _keeps_terms(terms: GrantTerms, stream: str, payload: dict[str, Any]) -> None:
    """Raise :class:`_Bad` where a message breaks the terms of the grant it names."""
    seq = payload["seq"]
    if stream not in terms.streams:
        raise _Bad(f"seq {seq}: stream {_quote(stream)} was not granted")
    if stream == "samples" and payload.get("resolution") != terms.resolution:
        raise _Bad(f"seq {seq}: resolution {_quote(payload.get('resolution'))}, granted "
                   f"{_quote(terms.resolution)}")
    extra = sorted(set(_fields_in(stream, payload)) - terms.fields)
    if extra:
        raise _Bad(f"seq {seq}: fields not granted: {_quote(', '.join(extra))}")
    for start, end in _periods(stream, payload):
        if start < terms.start or (terms.until is not None and end > terms.until):
            raise _Bad(f"seq {seq}: data of {_quote(start)} lies outside the grant's validity")


def _fields_in(stream: str, payload: dict[str, Any]) -> Iterable[str]:
    """The field names a message carries, by stream."""
    if stream == "samples":
        for item in _list(payload.get("samples")) + _list(payload.get("intervals")):
            for section in ("quantities", "quality", "measured_at", "counters", "gauges",
                            "states"):
                yield from _dict(item.get(section))
            for event in _list(item.get("events")):
                if isinstance(event, list) and len(event) == 3 and isinstance(event[1], str):
                    yield event[1]
    elif stream == "hourly":
        for section in ("energy", "covered_s", "gauge_x_s", "held_s", "state_s"):
            yield from _dict(payload.get(section))
    elif stream == "daily":
        yield from (k for k in payload if k not in _HEADER and k not in ("day", "period"))


_HEADER: Final = frozenset({"v", "device_id", "aud", "grant", "stream", "epoch", "seq", "prev",
                            "kind"})


def _periods(stream: str, payload: dict[str, Any]) -> Iterable[tuple[str, str]]:
    """(start, end) RFC 3339 times of the data a message carries; comparable as text (UTC)."""
    if stream == "samples":
        for item in _list(payload.get("samples")):
            ts = item.get("ts")
            if isinstance(ts, str):
                yield ts, ts
        for item in _list(payload.get("intervals")):
            start, end = item.get("from"), item.get("to")
            if isinstance(start, str) and isinstance(end, str):
                yield start, end
    else:
        period = payload.get("period")
        if isinstance(period, list) and len(period) == 2 and all(isinstance(p, str)
                                                                 for p in period):
            yield period[0], period[1]


def _list(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _dict(value: object) -> list[str]:
    return [k for k in value if isinstance(k, str)] if isinstance(value, dict) else []
