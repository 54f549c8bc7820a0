"""A grant: what one recipient may receive, for what purpose, from when until when. Pure.

Compare Green Button Connect My Data, whose authorisation names function blocks, interval
duration, history length and subscription period: a grant here names streams, fields, a
resolution, a purpose in words and a validity period, and the gateway itself enforces it. A
grant never changes; a change is a new grant, and the old one is revoked. Its validity is
half-open, ``[start, until)``; data measured before ``start`` is history the grant gives too, as
far as the gateway still holds it, when ``start`` lies in the past.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Final

from agent.consent.fields import RESOLUTIONS, STREAM_RESOLUTION, STREAMS, resolve
from drivers.timestamps import parse_rfc3339, rfc3339

ROLES: Final = ("installer", "manufacturer", "designated", "resident", "other")


@dataclass(frozen=True)
class Grant:
    id: str
    recipient: str
    streams: tuple[str, ...]
    fields: tuple[str, ...]  # as given: field names and set names
    resolution: str
    purpose: str
    start: float  # Unix time
    until: float | None  # None: until revoked
    source: str = "cli"  # "cli" (the resident, on the gateway) or "config" (commissioning)
    allowed: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for problem in problems(self.streams, self.fields, self.resolution, self.purpose,
                                self.start, self.until):
            raise ValueError(problem)
        object.__setattr__(self, "allowed", resolve(self.fields))

    def valid_at(self, t: float) -> bool:
        return self.start <= t and (self.until is None or t < self.until)

    def covers(self, start: float, end: float) -> bool:
        """Whether data of [start, end) lies wholly within the validity."""
        return self.start <= start and (self.until is None or end <= self.until)

    def terms(self) -> dict[str, Any]:
        """The grant as notices and the audit log state it: fields resolved, times RFC 3339."""
        return {"id": self.id, "recipient": self.recipient, "streams": list(self.streams),
                "fields": sorted(self.allowed), "given_as": list(self.fields),
                "resolution": self.resolution, "purpose": self.purpose,
                "from": rfc3339(self.start),
                "until": None if self.until is None else rfc3339(self.until),
                "source": self.source}

    @classmethod
    def from_terms(cls, terms: dict[str, Any]) -> Grant:
        until = terms["until"]
        return cls(terms["id"], terms["recipient"], tuple(terms["streams"]),
                   tuple(terms["given_as"]), terms["resolution"], terms["purpose"],
                   parse_rfc3339(terms["from"]),
                   None if until is None else parse_rfc3339(until), terms["source"])


def problems(streams: tuple[str, ...], fields: tuple[str, ...], resolution: str,
             purpose: str, start: float, until: float | None) -> list[str]:
    """What is wrong with a grant's terms, each as ``term: what``."""
    out = []
    if not streams:
        out.append("streams: grant at least one stream")
    for s in streams:
        if s not in STREAMS:
            out.append(f"streams: {s!r} is not a stream ({', '.join(STREAMS)})")
    if len(set(streams)) != len(streams):
        out.append("streams: a stream is named twice")
    if not fields:
        out.append("fields: grant at least one field or set of fields")
    try:
        resolve(fields)
    except ValueError as exc:
        out.append(f"fields: {exc}")
    if resolution not in RESOLUTIONS:
        out.append(f"resolution: {resolution!r} is not one of {', '.join(RESOLUTIONS)}")
    else:
        for s in streams:
            finest = STREAM_RESOLUTION.get(s)
            if finest is not None and RESOLUTIONS[finest] < RESOLUTIONS[resolution]:
                out.append(f"streams: the {s} stream is finer than the granted resolution "
                           f"{resolution!r}")
    if not purpose.strip():
        out.append("purpose: say in words what the data is for")
    if until is not None and until <= start:
        out.append("until: the grant would end before it starts")
    return out


def new_id() -> str:
    """An id for a grant given on the gateway: unique without coordination."""
    return f"g-{secrets.token_hex(5)}"


def config_id(recipient: str, name: str, terms: dict[str, Any]) -> str:
    """A config grant's id: its name and a digest of its terms, so changed terms make a new
    grant (the old one is revoked) and an unchanged config makes none."""
    digest = hashlib.sha256(json.dumps(terms, sort_keys=True).encode()).hexdigest()[:8]
    return f"cfg-{recipient}-{name}-{digest}"
