"""The gateway's SQLite database: samples, stream chains and the outbox, in one WAL file.

One file so that a sample and the messages made from it commit in one transaction: after a
power cut either both exist or neither does. ``synchronous=FULL`` makes every commit durable
before the agent moves on; the schema is versioned and migrated in place.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from agent.sample import ClockState, Sample
from drivers.reading import Value

_SCHEMA_1: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: ids order samples for good
    source TEXT NOT NULL,
    t REAL NOT NULL,               -- Unix time of the poll (wall clock)
    clock TEXT NOT NULL,           -- 'synced' or 'unsynced'
    boot TEXT NOT NULL,            -- kernel boot id, with uptime to re-date unsynced samples
    uptime REAL NOT NULL,
    q TEXT NOT NULL,               -- JSON {quantity: value} of good values
    bad TEXT,                      -- JSON {quantity: quality} of the others
    at TEXT                        -- JSON {quantity: RFC 3339} device timestamps (gas)
);
CREATE INDEX IF NOT EXISTS samples_t ON samples (t);
CREATE TABLE IF NOT EXISTS chains (
    destination TEXT NOT NULL,
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    hash TEXT,
    PRIMARY KEY (destination, stream)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: publishers track the last id sent
    destination TEXT NOT NULL,
    topic TEXT NOT NULL,
    token TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_destination ON outbox (destination, id);
"""

# State changes in each sample (the timeline), and the ledger's closed hours: what hourly and
# daily figures and store reports are made of
_SCHEMA_2: Final = """
ALTER TABLE samples ADD COLUMN events TEXT;  -- JSON [[RFC 3339, quantity, value], ...]
CREATE TABLE IF NOT EXISTS ledger_hours (
    hour INTEGER NOT NULL,         -- Unix time // 3600
    kind TEXT NOT NULL,            -- agent.ledger: E energy, C covered, G gauge, H held, ...
    quantity TEXT NOT NULL,
    label TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (hour, kind, quantity, label)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_gaps (
    quantity TEXT NOT NULL, label TEXT NOT NULL, start REAL NOT NULL, end REAL NOT NULL,
    energy REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_anomalies (
    t REAL NOT NULL, quantity TEXT NOT NULL, kind TEXT NOT NULL, before REAL NOT NULL,
    after REAL NOT NULL
);
"""

MIGRATIONS: Final = (_SCHEMA_1, _SCHEMA_2)  # MIGRATIONS[n] takes schema n to n + 1
SCHEMA_VERSION: Final = len(MIGRATIONS)


class StoreError(Exception):
    """The database cannot be opened or is from a newer hpagent."""


@dataclass(frozen=True, slots=True)
class StoredSample:
    id: int
    source: str
    t: float
    clock: ClockState
    values: dict[str, Value]
    qualities: dict[str, str]
    measured_at: dict[str, str]
    events: list[list[Any]]


class Store:
    """The connection and the sample table; :class:`~agent.delivery.outbox.Outbox` shares it."""

    def __init__(self, path: Path, durable: bool = True) -> None:
        """``durable=False`` (no fsync) only for databases that can be made again (replay)."""
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
            self.db.execute("PRAGMA busy_timeout=5000")
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the database {path}: {exc}") from None
        except OSError as exc:
            raise StoreError(f"cannot create {path.parent}: {exc.strerror}") from None

    def _migrate(self) -> None:
        row = self.db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        version = 0
        if row is not None:
            found = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            version = int(found[0]) if found else 0
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema {version}; this hpagent knows up to "
                             f"{SCHEMA_VERSION}: upgrade hpagent, do not downgrade")
        if version == SCHEMA_VERSION:
            return
        with self.transaction():
            for script in MIGRATIONS[version:]:
                for statement in script.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)",
                            (str(SCHEMA_VERSION),))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def add_sample(self, sample: Sample) -> int:
        """Insert (inside the caller's transaction); returns the sample's id."""
        qualities = sample.qualities
        measured = sample.measured_at
        cur = self.db.execute(
            "INSERT INTO samples (source, t, clock, boot, uptime, q, bad, at, events) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (sample.source, sample.t, sample.clock.value, sample.boot, sample.uptime,
             _json(sample.values), _json(qualities) if qualities else None,
             _json(measured) if measured else None,
             _json(sample.timeline) if sample.events else None))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def samples(self, after_id: int = 0, limit: int = 1000) -> list[StoredSample]:
        rows = self.db.execute(
            "SELECT id, source, t, clock, q, bad, at, events FROM samples WHERE id > ? "
            "ORDER BY id LIMIT ?", (after_id, limit)).fetchall()
        return [StoredSample(r[0], r[1], r[2], ClockState(r[3]), json.loads(r[4]),
                             json.loads(r[5]) if r[5] else {}, json.loads(r[6]) if r[6] else {},
                             json.loads(r[7]) if r[7] else []) for r in rows]

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Inside the caller's transaction."""
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def sample_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM samples").fetchone()[0])

    def close(self) -> None:
        self.db.close()


def _json(obj: dict[str, Any] | list[Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
