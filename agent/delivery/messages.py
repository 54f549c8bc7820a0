"""The envelope of a published message, its topic, and the chain that links a stream's messages.

Pure. A payload is JSON (documented in the README, "Message format"): the envelope names the
gateway, the audience (the recipient), the grant it was sent under, the stream, the chain's
epoch, the sequence number and the hash of the stream's previous message, so that a recipient
can prove nothing was dropped, reordered, altered or meant for someone else. The stream's
content follows the envelope.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Final

import orjson

FORMAT_VERSION: Final = 2


@dataclass(frozen=True, slots=True)
class ChainState:
    """Where a stream stands: its epoch, the last sequence number used and that message's hash."""

    epoch: str
    seq: int = 0
    hash: str | None = None


def new_epoch() -> str:
    """A chain's epoch: random, so a chain restarted without its history is told apart."""
    return secrets.token_urlsafe(12)


def payload(device_id: str, audience: str, grant: str | None, stream: str, chain: ChainState,
            content: dict[str, Any]) -> bytes:
    """The signed JSON of the message after ``chain``: the envelope, then the content."""
    body: dict[str, Any] = {"v": FORMAT_VERSION, "device_id": device_id, "aud": audience,
                            "grant": grant, "stream": stream, "epoch": chain.epoch,
                            "seq": chain.seq + 1, "prev": chain.hash, **content}
    return orjson.dumps(body)


def topic(prefix: str, device_id: str, recipient: str, stream: str) -> str:
    return f"{prefix}/{device_id}/{recipient}/{stream}"
