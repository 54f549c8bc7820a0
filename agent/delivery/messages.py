"""The payload of a published message, and the chain that links a stream's messages.

Pure. A payload is JSON (documented in the README, "Message format"); it is signed as a JWS and
carries its stream's sequence number and the hash of the stream's previous message, so that a
recipient can prove nothing was dropped, reordered or altered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from agent.sample import ClockState, Sample
from drivers.timestamps import rfc3339

FORMAT_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class ChainState:
    """Where a stream stands: the last sequence number used and that message's hash."""

    seq: int = 0
    hash: str | None = None


def payload(device_id: str, stream: str, seq: int, prev: str | None,
            content: dict[str, Any]) -> bytes:
    """The signed JSON: the chain header, then the stream's own content."""
    body: dict[str, Any] = {"v": FORMAT_VERSION, "device_id": device_id, "stream": stream,
                            "seq": seq, "prev": prev, **content}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def sample_content(sample: Sample) -> dict[str, Any]:
    """What a ``samples`` message says about one sample."""
    body: dict[str, Any] = {
        "ts": rfc3339(sample.t),
        "clock": sample.clock.value,
        "source": sample.source,
        "quantities": sample.values,
    }
    if sample.clock is ClockState.UNSYNCED:
        body["boot"] = sample.boot
        body["uptime"] = round(sample.uptime, 3)
    qualities = sample.qualities
    if qualities:
        body["quality"] = qualities
    measured = sample.measured_at
    if measured:
        body["measured_at"] = measured
    if sample.events:
        body["events"] = sample.timeline
    return body


def topic(prefix: str, device_id: str, stream: str) -> str:
    return f"{prefix}/{device_id}/{stream}"
