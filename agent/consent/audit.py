"""The consent audit log: every grant, revocation and expiry, signed, chained, append-only.

It is the one source of truth for consent. It lives in its own file (``<state_dir>/consent.log``,
one JWS per line), apart from the database: a damaged database is moved aside and started
afresh, but a revocation must never come back to life with it. The daemon and the ``consent``
commands both append, each under an exclusive lock, after checking the chain they extend; every
append is on disk (fsync) before it counts. The daemon notices another process's append by the
file's size and modification time, which it looks at before it makes or sends a message.

The state of every grant is a fold over the entries: ``grant`` makes it known, ``revoke`` and
``expire`` end it. A log that fails its check is not trusted at all: no grant is active.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.consent.grants import Grant
from agent.trust.audit import AuditCheck, check_log
from agent.trust.jws import AUDIT, Signer
from drivers.timestamps import parse_rfc3339, rfc3339

LOG_NAME: Final = "consent.log"
FORMAT_VERSION: Final = 1


class AuditLogError(Exception):
    """The audit log cannot be read, checked or extended; the message says which and why."""


@dataclass(frozen=True)
class GrantState:
    grant: Grant
    ended: str | None = None  # "revoked" or "expired"
    ended_at: float | None = None
    reason: str | None = None

    def active(self, t: float) -> bool:
        return self.ended is None and self.grant.valid_at(t)


class AuditLog:
    def __init__(self, path: Path, key: Ed25519PrivateKey, device_id: str) -> None:
        self.path = path
        self.device_id = device_id
        self._key = key
        self._signer = Signer(key, AUDIT)
        self._seen: tuple[int, int] | None = None

    def changed(self) -> bool:
        """Whether the file differs from when it was last read (cheap: one stat)."""
        return self._stamp() != self._seen

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_size, st.st_mtime_ns)

    def read(self) -> AuditCheck:
        """Every entry, checked; a torn last line (a power cut mid-append) is left out."""
        self._seen = self._stamp()
        try:
            text = self.path.read_text(encoding="ascii")
        except FileNotFoundError:
            return AuditCheck()
        except (OSError, UnicodeDecodeError) as exc:
            return AuditCheck(problem=f"{self.path}: cannot read: {exc}")
        complete = text.split("\n")[:-1]  # what follows the last newline is a torn append
        return check_log([line for line in complete if line], self._key.public_key())

    def states(self) -> dict[str, GrantState]:
        """Every grant the log knows, with how it ended; empty if the log fails its check."""
        check = self.read()
        if not check.ok:
            raise AuditLogError(f"{self.path}: {check.problem}: no grant is trusted until the "
                                "log is restored from a copy")
        try:
            return fold(check.entries)
        except (KeyError, ValueError, TypeError) as exc:
            raise AuditLogError(f"{self.path}: an entry this hpagent cannot read: {exc}") from None

    def append(self, action: str, at: float, **body: Any) -> dict[str, Any]:
        """Append one entry under the lock, after checking the chain it extends."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked() as f:
            check = self.read()
            if not check.ok:
                raise AuditLogError(f"{self.path}: {check.problem}: refusing to extend it")
            entry = {"v": FORMAT_VERSION, "device_id": self.device_id,
                     "seq": len(check.entries) + 1, "prev": check.head, "at": rfc3339(at),
                     "action": action, **body}
            token = self._signer.sign(json.dumps(entry, separators=(",", ":")).encode())
            _drop_torn_tail(f)
            f.write(token.encode("ascii") + b"\n")
            f.flush()
            os.fsync(f.fileno())
        return entry

    @contextmanager
    def _locked(self) -> Iterator[IO[bytes]]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "r+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield f
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def tokens(self) -> list[str]:
        """The log's lines as they are, for export."""
        try:
            return [line for line in self.path.read_text(encoding="ascii").splitlines() if line]
        except FileNotFoundError:
            return []


def _drop_torn_tail(f: IO[bytes]) -> None:
    """Cut a line a power cut left unfinished: it was never reported as done."""
    f.seek(0)
    data = f.read()
    keep = data.rfind(b"\n") + 1
    if keep != len(data):
        f.truncate(keep)


def fold(entries: list[dict[str, Any]]) -> dict[str, GrantState]:
    """Grant states after ``entries``, in order; an entry about an unknown grant is ignored."""
    states: dict[str, GrantState] = {}
    for e in entries:
        action = e.get("action")
        if action == "grant":
            grant = Grant.from_terms(e["grant"])
            states.setdefault(grant.id, GrantState(grant))
        elif action in ("revoke", "expire"):
            state = states.get(e.get("grant_id", ""))
            if state is not None and state.ended is None:
                states[state.grant.id] = GrantState(
                    state.grant, "revoked" if action == "revoke" else "expired",
                    parse_rfc3339(e["at"]), e.get("reason"))
    return states


def reconcile(audit: AuditLog, config_grants: list[Grant], now: float) -> list[str]:
    """Make the log agree with the config's grants: new ones are granted, ones the config no
    longer holds are revoked. A grant the resident revoked stays revoked. Returns what changed."""
    states = audit.states()
    wanted = {g.id for g in config_grants}
    changes = []
    for g in config_grants:
        if g.id not in states:
            audit.append("grant", now, grant=g.terms(), by="config")
            changes.append(f"granted {g.id} to {g.recipient}")
    for gid, state in states.items():
        if state.grant.source == "config" and state.ended is None and gid not in wanted:
            audit.append("revoke", now, grant_id=gid, by="config",
                         reason="removed from the configuration")
            changes.append(f"revoked {gid} (removed from the configuration)")
    return changes
