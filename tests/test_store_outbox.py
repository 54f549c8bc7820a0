"""Samples and their messages commit together; chains survive restarts; ids are never reused."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.delivery.ingest import Ingest, Route
from agent.delivery.outbox import Outbox, Pending
from agent.delivery.store import SCHEMA_VERSION, Store, StoreError
from agent.sample import ClockState, Sample
from agent.trust.jws import Signer, chain_hash
from drivers.reading import Event, Quality, Reading
from tests.support import payload

KEY = Ed25519PrivateKey.generate()


def sample(t: float, supply: float = 35.0) -> Sample:
    return Sample("heatpump", t, ClockState.SYNCED, (
        Reading("hp.supply_temp", supply), Reading("hp.flow", None, Quality.UNAVAILABLE,
                                                   detail="tcp 1.2.3.4:502 unit 1 timeout")))


def open_ingest(path: Path, offered: list[Pending]) -> tuple[Store, Ingest]:
    store = Store(path)
    routes = [Route("installer", "samples", "hpagent/v1/gw/samples", offered.append),
              Route("resident", "samples", "hpagent/v1/gw/samples", offered.append)]
    return store, Ingest(store, Outbox(store), Signer(KEY), "gw", routes)


def test_sample_and_messages_commit_together(tmp_path: Path) -> None:
    offered: list[Pending] = []
    store, ingest = open_ingest(tmp_path / "db", offered)
    assert ingest.commit(sample(1000.0))
    assert store.sample_count() == 1
    assert Outbox(store).backlog() == 2
    stored = store.samples()[0]
    assert stored.values == {"hp.supply_temp": 35.0}
    assert stored.qualities == {"hp.flow": "unavailable"}
    body = payload(offered[0].token)
    assert body["seq"] == 1 and body["prev"] is None and body["ts"] == "1970-01-01T00:16:40.000Z"
    assert body["quantities"] == {"hp.supply_temp": 35.0}
    assert body["quality"] == {"hp.flow": "unavailable"}


def test_chains_continue_across_restarts(tmp_path: Path) -> None:
    offered: list[Pending] = []
    store, ingest = open_ingest(tmp_path / "db", offered)
    ingest.commit(sample(1.0))
    ingest.commit(sample(2.0))
    store.close()
    store, ingest = open_ingest(tmp_path / "db", offered)
    ingest.commit(sample(3.0))
    installer = [payload(p.token) for p in offered[0::2]]
    assert [b["seq"] for b in installer] == [1, 2, 3]
    tokens = [p.token for p in offered[0::2]]
    assert installer[1]["prev"] == chain_hash(tokens[0])
    assert installer[2]["prev"] == chain_hash(tokens[1])  # across the restart


def test_a_failed_commit_leaves_nothing_and_chains_unbroken(tmp_path: Path) -> None:
    offered: list[Pending] = []
    store, ingest = open_ingest(tmp_path / "db", offered)
    ingest.commit(sample(1.0))
    store.db.execute("CREATE TRIGGER refuse BEFORE INSERT ON outbox "
                     "BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    assert not ingest.commit(sample(2.0))
    assert store.sample_count() == 1  # the sample rolled back with its messages
    store.db.execute("DROP TRIGGER refuse")
    assert ingest.commit(sample(3.0))
    installer = [payload(p.token) for p in offered[0::2]]
    assert [b["seq"] for b in installer] == [1, 2]
    assert installer[1]["prev"] == chain_hash(offered[0].token)


def test_outbox_ids_are_never_reused(tmp_path: Path) -> None:
    offered: list[Pending] = []
    store, ingest = open_ingest(tmp_path / "db", offered)
    ingest.commit(sample(1.0))
    outbox = Outbox(store)
    for p in offered:
        outbox.acknowledged(p.id)
    outbox.flush()
    assert outbox.backlog() == 0
    ingest.commit(sample(2.0))
    assert min(p.id for p in offered[2:]) > max(p.id for p in offered[:2])


def test_pending_is_in_order_per_destination(tmp_path: Path) -> None:
    offered: list[Pending] = []
    store, ingest = open_ingest(tmp_path / "db", offered)
    for t in range(5):
        ingest.commit(sample(float(t)))
    outbox = Outbox(store)
    mine = outbox.pending("resident", 0, 3)
    assert [payload(p.token)["seq"] for p in mine] == [1, 2, 3]
    assert [payload(p.token)["seq"] for p in outbox.pending("resident", mine[-1].id, 10)] == [4, 5]


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
