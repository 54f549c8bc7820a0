"""The outbox: signed messages waiting for their broker's acknowledgement, and stream chains.

A message is inserted in the transaction that makes it, before anyone sends it, and deleted
only when the broker has sent PUBACK for it, so a resend after a crash is the same message.
Sequence numbers, previous-message hashes and epochs live in ``chains``, and what each grant's
streams have been made from in ``cursors``, updated in that same transaction, so a restart
neither reuses a number nor breaks a chain nor sends a sample twice under new numbers.

A message of samples is not stored whole: it is its *recipe* (the stored samples it was made of,
its place in the chain and its hash), because Ed25519 signatures are deterministic and the
samples are in the same database: made again, it is the same bytes (the hash is checked). That
keeps what the gateway writes to its SD card near what it stores; everything else (hourly and
daily figures, heartbeats, notices) is stored as the token itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from agent.delivery.messages import ChainState, new_epoch
from agent.delivery.store import Store


@dataclass(frozen=True, slots=True)
class Recipe:
    """How to make a message of samples again: the samples, its place in the chain, its hash."""

    first_id: int
    last_id: int
    epoch: str
    seq: int
    prev: str | None
    hash: str


@dataclass(frozen=True, slots=True)
class Pending:
    id: int
    topic: str
    token: str | None  # None: made again from ``recipe`` before it is sent
    grant: str | None = None
    stream: str = ""
    recipe: Recipe | None = None


class Outbox:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db
        self._acked: list[int] = []  # acknowledged, not yet deleted

    @contextmanager
    def writing(self) -> Iterator[None]:
        """A write transaction that also deletes what the brokers have acknowledged."""
        with self.store.transaction():
            n = self.delete_acknowledged()
            yield
        self.forget(n)

    # -- chains and cursors (inside the caller's transaction) ----------------------------------

    def chain(self, recipient: str, stream: str) -> ChainState:
        """Where the stream stands; a stream seen for the first time starts a new epoch."""
        row = self.db.execute("SELECT epoch, seq, hash FROM chains WHERE recipient=? AND "
                              "stream=?", (recipient, stream)).fetchone()
        return ChainState(row[0], row[1], row[2]) if row else ChainState(new_epoch())

    def chains(self, recipient: str) -> dict[str, ChainState]:
        return {r[0]: ChainState(r[1], r[2], r[3]) for r in self.db.execute(
            "SELECT stream, epoch, seq, hash FROM chains WHERE recipient=?", (recipient,))}

    def cursor(self, recipient: str, grant: str, stream: str) -> float | None:
        row = self.db.execute("SELECT position FROM cursors WHERE recipient=? AND grant_id=? "
                              "AND stream=?", (recipient, grant, stream)).fetchone()
        return None if row is None else float(row[0])

    def set_cursor(self, recipient: str, grant: str, stream: str, position: float) -> None:
        self.db.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?, ?, ?)",
                        (recipient, grant, stream, position))

    def noticed(self, grant: str, kind: str) -> bool:
        return self.db.execute("SELECT 1 FROM notices WHERE grant_id=? AND kind=?",
                               (grant, kind)).fetchone() is not None

    def note(self, grant: str, kind: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO notices VALUES (?, ?)", (grant, kind))

    # -- messages -------------------------------------------------------------------------------

    def enqueue(self, recipient: str, stream: str, grant: str | None, topic: str, token: str,
                head: ChainState, recipe: Recipe | None = None) -> Pending:
        """Add a message and advance its chain to ``head`` (inside the caller's transaction);
        with a ``recipe``, the token is not stored but made again when needed."""
        self.db.execute("INSERT OR REPLACE INTO chains VALUES (?, ?, ?, ?, ?)",
                        (recipient, stream, head.epoch, head.seq, head.hash))
        if recipe is None:
            cur = self.db.execute("INSERT INTO outbox (recipient, stream, grant_id, topic, "
                                  "token, epoch, seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                  (recipient, stream, grant, topic, token, head.epoch, head.seq))
        else:
            r = recipe
            cur = self.db.execute(
                "INSERT INTO outbox (recipient, stream, grant_id, topic, epoch, seq, prev, hash, "
                "first_id, last_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (recipient, stream, grant, topic, r.epoch, r.seq, r.prev, r.hash, r.first_id,
                 r.last_id))
        assert cur.lastrowid is not None
        return Pending(cur.lastrowid, topic, token, grant, stream, recipe)

    def pending(self, recipient: str, after_id: int, limit: int) -> list[Pending]:
        """The oldest messages for ``recipient`` after ``after_id``, in the order made."""
        rows = self.db.execute(
            "SELECT id, topic, token, grant_id, stream, first_id, last_id, epoch, seq, prev, hash "
            "FROM outbox WHERE recipient=? AND id>? ORDER BY id LIMIT ?",
            (recipient, after_id, limit)).fetchall()
        return [Pending(r[0], r[1], r[2], r[3], r[4],
                        None if r[2] is not None else Recipe(*r[5:])) for r in rows]

    def oldest_recipe(self) -> int | None:
        """The first sample a queued message will be made again from: retention keeps it."""
        row = self.db.execute("SELECT min(first_id) FROM outbox").fetchone()
        return None if row[0] is None else int(row[0])

    def drop_grant(self, grant: str) -> dict[str, dict[str, Any]]:
        """Delete what was queued under ``grant`` and not yet acknowledged, and where its
        streams stood (a revocation or expiry); returns the sequence numbers that went, per
        stream with its epoch, so the recipient can be told they will never come."""
        self.db.execute("DELETE FROM cursors WHERE grant_id=?", (grant,))
        gone: dict[str, dict[str, Any]] = {}
        for stream, epoch, seq in self.db.execute(
                "DELETE FROM outbox WHERE grant_id=? AND stream != 'consent' "
                "RETURNING stream, epoch, seq", (grant,)).fetchall():
            gone.setdefault(stream, {"epoch": epoch, "seqs": []})["seqs"].append(seq)
        for entry in gone.values():
            entry["seqs"].sort()
        return gone

    def exists(self, outbox_id: int) -> bool:
        return self.db.execute("SELECT 1 FROM outbox WHERE id=?",
                               (outbox_id,)).fetchone() is not None

    def acknowledged(self, outbox_id: int) -> None:
        """The broker has the message: delete it with the next transaction (or :meth:`flush`).

        Deleting rides on the next commit instead of costing a transaction (and an fsync) of
        its own. Should the agent die first, the message is sent again: a duplicate, which the
        recipient recognises by its sequence number and bytes.
        """
        self._acked.append(outbox_id)

    @property
    def unflushed(self) -> int:
        return len(self._acked)

    def delete_acknowledged(self) -> int:
        """Delete the acknowledged messages inside the caller's transaction; returns how many.

        Call :meth:`forget` with that number once the transaction has committed.
        """
        n = len(self._acked)
        if n:
            self.db.executemany("DELETE FROM outbox WHERE id=?", [(i,) for i in self._acked[:n]])
        return n

    def forget(self, n: int) -> None:
        del self._acked[:n]

    def flush(self) -> None:
        """Delete the acknowledged messages now, in a transaction of their own."""
        if self._acked:
            with self.writing():
                pass

    def backlog(self, recipient: str | None = None) -> int:
        if recipient is None:
            return int(self.db.execute("SELECT count(*) FROM outbox").fetchone()[0])
        return int(self.db.execute("SELECT count(*) FROM outbox WHERE recipient=?",
                                   (recipient,)).fetchone()[0])
