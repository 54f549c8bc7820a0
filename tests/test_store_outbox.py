"""Samples and their messages commit together; chains survive restarts; ids are never reused;
a damaged database is moved aside, never silently replaced."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.delivery.store import SCHEMA_VERSION, Store, StoreError
from agent.sample import ClockState, Sample
from agent.trust.jws import chain_hash
from drivers.reading import Event, Quality, Reading
from tests.pipeline import Pipeline
from tests.support import payload


def sample(t: float, supply: float = 35.0) -> Sample:
    return Sample("heatpump", t, ClockState.SYNCED, (
        Reading("hp.supply_temp", supply), Reading("hp.flow", None, Quality.UNAVAILABLE,
                                                   detail="tcp 1.2.3.4:502 unit 1 timeout")))


async def test_samples_and_their_messages_commit_together(tmp_path: Path) -> None:
    p = Pipeline(tmp_path, now=0.0)
    p.grant("a")
    p.grant("b")
    p.add(sample(1000.0))
    await p.settle()
    assert p.store.sample_count() == 1
    stored = p.store.samples()[0]
    assert stored.values == {"hp.supply_temp": 35.0}
    assert stored.qualities == {"hp.flow": "unavailable"}
    body = p.outlets["a"].bodies("samples")[0]
    assert body["seq"] == 1 and body["prev"] is None and body["aud"] == "a"
    assert body["samples"] == [{"ts": "1970-01-01T00:16:40.000Z", "clock": "synced",
                                "source": "heatpump", "quantities": {"hp.supply_temp": 35.0},
                                "quality": {"hp.flow": "unavailable"}}]
    assert p.outlets["b"].bodies("samples")[0]["aud"] == "b"


async def test_chains_continue_across_restarts(tmp_path: Path) -> None:
    p = Pipeline(tmp_path, ("a",), now=0.0)
    p.grant("a")
    p.add(sample(1.0))
    p.add(sample(2.0))
    await p.settle()
    before = p.outlets["a"].tokens("samples")
    p.close()
    p = Pipeline(tmp_path, ("a",), key=p.key, now=0.0)
    p.add(sample(3.0))
    await p.settle()
    tokens = before + p.outlets["a"].tokens("samples")
    bodies = [payload(t) for t in tokens]
    assert [b["seq"] for b in bodies] == [1, 2, 3]
    assert len({b["epoch"] for b in bodies}) == 1
    assert bodies[2]["prev"] == chain_hash(tokens[1])  # across the restart


async def test_a_failed_commit_keeps_the_samples_and_the_chain(tmp_path: Path) -> None:
    p = Pipeline(tmp_path, ("a",), now=0.0)
    p.grant("a")
    p.add(sample(1.0))
    p.store.db.execute("CREATE TRIGGER refuse BEFORE INSERT ON outbox "
                       "BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    p.add(sample(2.0))
    assert p.store.sample_count() == 1  # the sample rolled back with its messages...
    assert p.ingest.buffered == 1  # ...and waits in memory for the disk
    p.store.db.execute("DROP TRIGGER refuse")
    p.add(sample(3.0))
    await p.settle()
    assert p.store.sample_count() == 3
    got = p.outlets["a"].bodies("samples")
    assert [b["seq"] for b in got] == [1, 2]
    assert [s["ts"][-7:] for b in got for s in b["samples"]] == ["01.000Z", "02.000Z",
                                                                   "03.000Z"]
    assert got[1]["prev"] == chain_hash(p.outlets["a"].tokens("samples")[0])


async def test_outbox_ids_are_never_reused(tmp_path: Path) -> None:
    p = Pipeline(tmp_path, ("a",), now=0.0)
    p.grant("a")
    p.add(sample(1.0))
    await p.settle()
    p.outbox.flush()
    assert p.outbox.backlog() == 0
    first = max(m.id for m in p.outlets["a"].received)
    p.add(sample(2.0))
    await p.settle()
    assert p.outlets["a"].received[-1].id > first


async def test_a_recipient_offline_gets_its_backlog_in_few_messages(tmp_path: Path) -> None:
    p = Pipeline(tmp_path, ("a",), now=0.0)
    p.grant("a")
    p.dispatcher.batch_samples = 100
    p.outlets["a"].live = False
    for t in range(1, 251):
        p.add(sample(float(t)))
    await p.settle()
    assert {m.stream for m in p.outbox.pending("a", 0, 10)} == {"consent"}  # nothing made
    p.outlets["a"].live = True
    p.outlets["a"].drain()
    samples = p.outlets["a"].bodies("samples")
    assert [len(b["samples"]) for b in samples] == [100, 100, 50]
    assert [s["ts"] for b in samples for s in b["samples"]] == \
        [f"1970-01-01T00:{t // 60:02d}:{t % 60:02d}.000Z" for t in range(1, 251)]


def test_a_damaged_database_is_moved_aside_and_remembered(tmp_path: Path) -> None:
    path = tmp_path / "hpagent.db"
    Store(path).close()
    with path.open("r+b") as f:  # the file header's magic: SQLite no longer knows the file
        f.write(b"garbage garbage!")
    store = Store(path, check=True)
    replaced = json.loads(store.meta("replaced") or "{}")
    moved = Path(replaced["moved_to"])
    assert moved.exists() and moved.read_bytes().startswith(b"garbage garbage!")
    assert moved.name.startswith("hpagent.db.damaged-")
    assert store.sample_count() == 0
    store.close()
    path.write_bytes(b"garbage garbage!" * 64)
    with pytest.raises(StoreError):  # a report (no check) says so instead of moving it
        Store(path)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Store(tmp_path / "db").close()
    db = sqlite3.connect(tmp_path / "db")
    db.execute("UPDATE meta SET value=? WHERE key='schema'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="upgrade hpagent"):
        Store(tmp_path / "db")


# Schema 1 as the first release created it (frozen here: the migrations must take it forward).
SCHEMA_1_AS_SHIPPED = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, t REAL NOT NULL,
    clock TEXT NOT NULL, boot TEXT NOT NULL, uptime REAL NOT NULL, q TEXT NOT NULL, bad TEXT,
    at TEXT);
CREATE INDEX samples_t ON samples (t);
CREATE TABLE chains (destination TEXT NOT NULL, stream TEXT NOT NULL, seq INTEGER NOT NULL,
    hash TEXT, PRIMARY KEY (destination, stream)) WITHOUT ROWID;
CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, destination TEXT NOT NULL,
    topic TEXT NOT NULL, token TEXT NOT NULL);
CREATE INDEX outbox_destination ON outbox (destination, id);
"""


def test_a_database_of_schema_1_is_migrated_with_its_samples(tmp_path: Path) -> None:
    """A gateway upgraded in the field keeps its samples and stores the new columns."""
    db = sqlite3.connect(tmp_path / "db")
    db.executescript(SCHEMA_1_AS_SHIPPED)
    db.execute("INSERT INTO meta VALUES ('schema', '1')")
    db.execute("INSERT INTO samples (source, t, clock, boot, uptime, q) "
               "VALUES ('heatpump', 1.0, 'synced', '', 0, '{\"hp.supply_temp\": 30.0}')")
    db.commit()
    db.close()
    store = Store(tmp_path / "db")
    flame = Event("boiler.flame", True, datetime(2026, 1, 1, tzinfo=UTC))
    store.add_sample(Sample("boiler", 2.0, ClockState.SYNCED, (), events=(flame,)))
    old, new = store.samples()
    assert old.values == {"hp.supply_temp": 30.0} and old.events == []
    assert new.events == [["2026-01-01T00:00:00.000Z", "boiler.flame", True]]
    assert store.meta("schema") == str(SCHEMA_VERSION)


def test_an_unwritable_state_dir_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot"):
        Store(blocker / "sub" / "db")
