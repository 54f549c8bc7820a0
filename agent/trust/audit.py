"""The consent audit log's chain: signed entries, numbered from 1, each naming its predecessor.

Pure. An entry is a JWS of type ``hpagent-audit`` whose payload carries ``seq`` (1, 2, …, no
gaps), ``prev`` (the chain hash of the entry before, null for the first) and ``device_id``.
Whoever holds the gateway's public key can check an exported log: nothing removed, inserted,
reordered or altered. A log that fails is reported with the first entry that breaks it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.trust.jws import AUDIT, BadToken, chain_hash, json_object, verify


@dataclass
class AuditCheck:
    """The outcome of checking a log: its entries' payloads, and the first problem if any."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None
    head: str | None = None  # the chain hash of the last good entry

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_log(tokens: Iterable[str], key: Ed25519PublicKey) -> AuditCheck:
    """Check every entry in order; stops at the first that breaks the chain."""
    result = AuditCheck()
    device: object = None
    for n, token in enumerate(tokens, start=1):
        try:
            entry = json_object(verify(token, key, AUDIT))
        except (BadToken, ValueError) as exc:
            result.problem = f"entry {n}: {exc}"
            return result
        if entry.get("seq") != n or isinstance(entry.get("seq"), bool):
            result.problem = f"entry {n}: seq is {entry.get('seq')!r}: an entry is missing, " \
                             "added or moved"
            return result
        if entry.get("prev") != result.head:
            result.problem = f"entry {n}: prev does not match entry {n - 1}"
            return result
        if device is None:
            device = entry.get("device_id")
        elif entry.get("device_id") != device:
            result.problem = f"entry {n}: another gateway's entry ({entry.get('device_id')!r})"
            return result
        result.entries.append(entry)
        result.head = chain_hash(token)
    return result
