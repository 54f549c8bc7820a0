"""The outbox: signed messages waiting for their broker's acknowledgement, and stream chains.

A message is inserted in the same transaction as the sample it comes from and deleted only when
the broker has sent PUBACK for it. Sequence numbers and previous-message hashes live in
``chains``, updated in that same transaction, so a restart neither reuses a number nor breaks
a chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.delivery.messages import ChainState
from agent.delivery.store import Store


@dataclass(frozen=True, slots=True)
class Pending:
    id: int
    topic: str
    token: str


class Outbox:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db
        self._acked: list[int] = []  # acknowledged, not yet deleted

    def chain(self, destination: str, stream: str) -> ChainState:
        row = self.db.execute("SELECT seq, hash FROM chains WHERE destination=? AND stream=?",
                              (destination, stream)).fetchone()
        return ChainState(row[0], row[1]) if row else ChainState()

    def enqueue(self, destination: str, stream: str, seq: int, topic: str, token: str,
                chain_hash: str) -> int:
        """Add a message and advance its chain (inside the caller's transaction)."""
        self.db.execute("INSERT OR REPLACE INTO chains VALUES (?, ?, ?, ?)",
                        (destination, stream, seq, chain_hash))
        cur = self.db.execute("INSERT INTO outbox (destination, topic, token) VALUES (?, ?, ?)",
                              (destination, topic, token))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def pending(self, destination: str, after_id: int, limit: int) -> list[Pending]:
        """The oldest messages for ``destination`` after ``after_id``, in the order made."""
        rows = self.db.execute(
            "SELECT id, topic, token FROM outbox WHERE destination=? AND id>? ORDER BY id LIMIT ?",
            (destination, after_id, limit)).fetchall()
        return [Pending(*r) for r in rows]

    def acknowledged(self, outbox_id: int) -> None:
        """The broker has the message: delete it with the next transaction (or :meth:`flush`).

        Deleting rides on the next sample's commit instead of costing a transaction (and an
        fsync) of its own. Should the agent die first, the message is sent again: a duplicate,
        which the recipient recognises by its sequence number.
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
            with self.store.transaction():
                n = self.delete_acknowledged()
            self.forget(n)

    def backlog(self, destination: str | None = None) -> int:
        if destination is None:
            return int(self.db.execute("SELECT count(*) FROM outbox").fetchone()[0])
        return int(self.db.execute("SELECT count(*) FROM outbox WHERE destination=?",
                                   (destination,)).fetchone()[0])
