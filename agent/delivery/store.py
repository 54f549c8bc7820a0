"""The gateway's SQLite database: samples, stream chains and the outbox, in one WAL file.

One file so that samples and the messages made from them commit in one transaction: after a
power cut either both exist or neither does. ``synchronous=FULL`` makes every commit durable
before the agent moves on; the schema is versioned and migrated in place.

At the daemon's start the database is checked (``PRAGMA quick_check``). A damaged one is never
silently replaced: it is moved aside as ``hpagent.db.damaged-<time>`` (with its WAL), the move
is logged, and the new database remembers it (meta ``replaced``) so that the status stream
reports it. A new database uses 1 KiB pages: a commit writes each page it touches whole into
the WAL, and small pages keep what a gateway writes to its SD card close to what it stores.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
import structlog

from agent.sample import ClockState, Sample
from drivers.reading import Value
from drivers.recording import TimeParser
from drivers.timestamps import rfc3339

log = structlog.get_logger("hpagent.store")

PAGE_SIZE: Final = 1024

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

# Recipients and grants: per-recipient stream chains with an epoch, an outbox that knows the grant
# of each message, cursors of what each grant's streams have been made from, notices given.
# Format 1 messages (no audience, no epoch) are not carried over: their samples stay and are
# made anew under the grants that cover them.
_SCHEMA_3: Final = """
DROP TABLE outbox;
DROP TABLE chains;
CREATE TABLE chains (
    recipient TEXT NOT NULL,
    stream TEXT NOT NULL,
    epoch TEXT NOT NULL,           -- random, new whenever the chain starts without its history
    seq INTEGER NOT NULL,
    hash TEXT,
    PRIMARY KEY (recipient, stream)
) WITHOUT ROWID;
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: publishers track the last id sent
    recipient TEXT NOT NULL,
    stream TEXT NOT NULL,
    grant_id TEXT,
    topic TEXT NOT NULL,
    token TEXT,                    -- NULL: made again from the samples first_id..last_id
    epoch TEXT, seq INTEGER, prev TEXT, hash TEXT,  -- its place in the chain, and its hash
    first_id INTEGER, last_id INTEGER
);
CREATE TABLE cursors (
    recipient TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    stream TEXT NOT NULL,          -- 'samples' (raw: the last sample id made) or 'intervals'
    position REAL NOT NULL,        -- (aggregates: the end of the last interval made)
    PRIMARY KEY (recipient, grant_id, stream)
) WITHOUT ROWID;
CREATE TABLE notices (
    grant_id TEXT NOT NULL,
    kind TEXT NOT NULL,            -- granted, revoked, expired
    PRIMARY KEY (grant_id, kind)
) WITHOUT ROWID;
CREATE TABLE evictions (
    t REAL NOT NULL,               -- when
    samples INTEGER NOT NULL,      -- how many raw samples went
    first REAL NOT NULL, last REAL NOT NULL,  -- the time span they covered
    reason TEXT NOT NULL           -- 'age' or 'size'
);
"""

MIGRATIONS: Final = (_SCHEMA_1, _SCHEMA_2, _SCHEMA_3)  # MIGRATIONS[n] takes schema n to n + 1
SCHEMA_VERSION: Final = len(MIGRATIONS)


class StoreError(Exception):
    """The database cannot be opened or is from a newer hpagent."""


class Damaged(Exception):
    """The database failed its check; the message says what SQLite found."""


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
    boot: str = ""
    uptime: float = 0.0


class Store:
    """The connection and the sample table; :class:`~agent.delivery.outbox.Outbox` shares it."""

    def __init__(self, path: Path, durable: bool = True, check: bool = False) -> None:
        """``durable=False`` (no fsync) only for databases that can be made again (replay);
        ``check``: the daemon's start, which moves a damaged database aside."""
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._open(durable, check)
            except Damaged as exc:
                moved = self._move_aside(str(exc))
                self._open(durable, check=False)
                with self.transaction():
                    self.set_meta("replaced", json.dumps(
                        {"at": rfc3339(time.time()), "moved_to": str(moved),
                         "problem": str(exc)}))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the database {path}: {exc}") from None
        except OSError as exc:
            raise StoreError(f"cannot create {path.parent}: {exc.strerror}") from None

    def _open(self, durable: bool, check: bool) -> None:
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            if fresh:
                self.db.execute(f"PRAGMA page_size={PAGE_SIZE}")
            self.db.execute("PRAGMA journal_mode=WAL")
            if check:
                found = [r[0] for r in self.db.execute("PRAGMA quick_check(5)")]
                if found != ["ok"]:
                    raise Damaged("; ".join(found))
        except sqlite3.DatabaseError as exc:
            if not check or isinstance(exc, sqlite3.OperationalError):
                raise
            self.db.close()
            raise Damaged(str(exc)) from None
        except Damaged:
            self.db.close()
            raise
        self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
        self.db.execute("PRAGMA busy_timeout=5000")
        self._migrate()

    def _move_aside(self, problem: str) -> Path:
        """Keep a damaged database for whoever can rescue it; never delete it."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        moved = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            old = Path(f"{self.path}{suffix}")
            if old.exists():
                os.replace(old, f"{moved}{suffix}")
        log.error("store.damaged", path=str(self.path), moved_to=str(moved), problem=problem)
        return moved

    def _version(self) -> int:
        row = self.db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        if row is None:
            return 0
        found = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        return int(found[0]) if found else 0

    def _migrate(self) -> None:
        """Take the schema to the current version. Another process (the daemon and a command
        started together) may be doing the same: the version is read again under the write
        lock, so each migration runs once."""
        if self._version() == SCHEMA_VERSION:
            return
        with self.transaction():
            version = self._version()
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path} has schema {version}; this hpagent knows up to "
                                 f"{SCHEMA_VERSION}: upgrade hpagent, do not downgrade")
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
        """The samples after ``after_id``, in the order they were stored."""
        rows = self.db.execute(
            "SELECT id, source, t, clock, q, bad, at, events, boot, uptime FROM samples "
            "WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)).fetchall()
        loads = orjson.loads
        return [StoredSample(r[0], r[1], r[2], ClockState(r[3]), loads(r[4]),
                             loads(r[5]) if r[5] else {}, loads(r[6]) if r[6] else {},
                             loads(r[7]) if r[7] else [], r[8], r[9]) for r in rows]

    def last_id(self) -> int:
        """The id of the newest sample (0: none yet)."""
        row = self.db.execute("SELECT max(id) FROM samples").fetchone()
        return int(row[0] or 0)

    def first_id_from(self, t: float) -> int | None:
        """The smallest id of a sample taken at or after ``t`` (None: none yet)."""
        row = self.db.execute("SELECT min(id) FROM samples WHERE t >= ?", (t,)).fetchone()
        return None if row[0] is None else int(row[0])

    def oldest_time(self) -> float | None:
        row = self.db.execute("SELECT min(t) FROM samples").fetchone()
        return None if row[0] is None else float(row[0])

    def newest_time(self) -> float | None:
        row = self.db.execute("SELECT max(t) FROM samples").fetchone()
        return None if row[0] is None else float(row[0])

    def ledger_rows(self, start: float, end: float | None = None
                    ) -> Iterator[tuple[float, dict[str, Any], dict[str, float],
                                        list[tuple[float, str, Any]]]]:
        """Samples taken in [start, end) in time order, as the ledger takes them."""
        times = TimeParser()
        cursor = self.db.execute("SELECT t, q, at, events FROM samples WHERE t >= ? AND t < ? "
                                 "ORDER BY t", (start, end if end is not None else 1e18))
        while rows := cursor.fetchmany(4096):
            for t, q, at, events in rows:
                yield (t, orjson.loads(q),
                       {k: times(v) for k, v in orjson.loads(at).items()} if at else {},
                       [(times(e[0]), e[1], e[2]) for e in orjson.loads(events)]
                       if events else [])

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
