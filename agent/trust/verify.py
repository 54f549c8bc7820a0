"""Checks received messages: signature, and each stream's sequence and hash chain.

Pure: feed tokens in the order they arrived, read the report. A message is *good* when its
signature verifies and it links to what came before; *bad* when the signature fails, the payload
is malformed, it sits on a topic that is not its own, its ``prev`` does not match the message
before it, or another message already used its sequence number. *Missing* are the sequence
numbers never seen between the first and the last; *duplicates* (the same message twice, as
at-least-once delivery allows) are counted but not held against the stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.trust.jws import BadToken, chain_hash, verify


@dataclass
class StreamReport:
    device_id: str
    stream: str
    good: int = 0
    bad: int = 0
    duplicates: int = 0
    reordered: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    hashes: dict[int, str] = field(default_factory=dict, repr=False)

    @property
    def missing(self) -> list[int]:
        if self.first_seq is None or self.last_seq is None:
            return []
        return [s for s in range(self.first_seq, self.last_seq + 1) if s not in self.hashes]


@dataclass(frozen=True)
class Problem:
    index: int  # position of the message in what was received, from 1
    topic: str | None
    reason: str


@dataclass
class Report:
    streams: dict[tuple[str, str], StreamReport] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    received: int = 0
    skipped: int = 0  # status messages and the like: not signed samples

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
    def ok(self) -> bool:
        return self.received > 0 and self.bad == 0 and self.missing == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "received": self.received, "good": self.good, "bad": self.bad,
            "missing": self.missing, "skipped": self.skipped,
            "streams": [{"device_id": s.device_id, "stream": s.stream, "good": s.good,
                         "bad": s.bad, "duplicates": s.duplicates, "reordered": s.reordered,
                         "first_seq": s.first_seq, "last_seq": s.last_seq,
                         "missing": s.missing} for s in self.streams.values()],
            "problems": [{"index": p.index, "topic": p.topic, "reason": p.reason}
                         for p in self.problems],
        }


class Verifier:
    def __init__(self, key: Ed25519PublicKey) -> None:
        self.key = key
        self.report = Report()
        self._prev_of: dict[tuple[str, str, int], str | None] = {}  # what each message links to

    def check(self, token: str, topic: str | None = None) -> bool:
        """Check one received message; True if it is good (duplicates count as good)."""
        self.report.received += 1
        index = self.report.received
        try:
            payload = json.loads(verify(token, self.key))
            device_id, stream, seq, prev = (payload["device_id"], payload["stream"],
                                            payload["seq"], payload["prev"])
            if not isinstance(seq, int) or seq < 1:
                raise ValueError(f"seq {seq!r} is not a positive integer")
        except BadToken as exc:
            return self._bad(index, topic, None, str(exc))
        except (ValueError, KeyError, TypeError) as exc:
            return self._bad(index, topic, None, f"malformed payload: {exc!r}")
        s = self.report.streams.get((device_id, stream))
        if s is None:
            s = self.report.streams[(device_id, stream)] = StreamReport(device_id, stream)
        if topic is not None and not topic.endswith(f"/{device_id}/{stream}"):
            return self._bad(index, topic, s, f"seq {seq}: published on {topic}, but it is "
                             f"{device_id}'s {stream}")
        digest = chain_hash(token)
        seen = s.hashes.get(seq)
        if seen is not None:
            if seen == digest:
                s.duplicates += 1
                return True
            return self._bad(index, topic, s, f"seq {seq} used by two different messages")
        before = s.hashes.get(seq - 1)
        if seq == 1 and prev is not None:
            return self._bad(index, topic, s, "seq 1 must have prev null")
        if before is not None and prev != before:
            return self._bad(index, topic, s, f"seq {seq}: prev does not match message {seq - 1}")
        after = s.hashes.get(seq + 1)
        s.hashes[seq] = digest
        if after is not None and self._prev_of.get((device_id, stream, seq + 1)) != digest:
            del s.hashes[seq]
            return self._bad(index, topic, s, f"seq {seq}: message {seq + 1} does not link to it")
        self._prev_of[(device_id, stream, seq)] = prev
        if s.last_seq is not None and seq < s.last_seq:
            s.reordered += 1
        s.first_seq = seq if s.first_seq is None else min(s.first_seq, seq)
        s.last_seq = seq if s.last_seq is None else max(s.last_seq, seq)
        s.good += 1
        return True

    def _bad(self, index: int, topic: str | None, s: StreamReport | None, reason: str) -> bool:
        if s is not None:
            s.bad += 1
        self.report.problems.append(Problem(index, topic, reason))
        return False

    def skip(self) -> None:
        self.report.skipped += 1
