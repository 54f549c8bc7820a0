"""Retention: raw samples go by age and by size, oldest first; hourly figures, the open hours'
samples and a queued message's samples stay; every eviction is recorded, logged and reported
on the status stream, with what a recipient had not yet received."""

from __future__ import annotations

from pathlib import Path

from agent.delivery.retention import Retention
from agent.sample import ClockState, Sample
from drivers.reading import Reading
from tests.pipeline import Pipeline
from tests.support import LogEvents, events

T0 = 1_767_222_000.0
STEP = 60.0


def samples(n: int, start: float = T0) -> list[Sample]:
    return [Sample("hp", start + i * STEP, ClockState.SYNCED, (
        Reading("hp.heat_energy", 100 + i * 0.05), Reading("hp.electric_energy", 25 + i * 0.01),
        Reading("hp.outdoor_temp", 4.0), Reading("hp.supply_temp", 35.0 + i % 5)))
        for i in range(n)]


def retention(p: Pipeline, max_age: float = 1e9, max_size: int = 10**12) -> Retention:
    return Retention(p.outbox, max_age, max_size, p.ledger.keep_from, lambda: p.now)


async def test_old_samples_go_hourly_figures_stay(tmp_path: Path, logs: LogEvents) -> None:
    p = Pipeline(tmp_path, ("a",), now=T0)
    p.grant("a", ("samples", "hourly", "status"), start=T0)
    p.add(*samples(30 * 60))  # 30 hours
    await p.settle()
    hours_before = p.store.db.execute("SELECT count(*) FROM ledger_hours").fetchone()[0]
    p.now = T0 + 30 * 3600
    done = retention(p, max_age=12 * 3600).enforce()
    assert [e.reason for e in done] == ["age"]
    left = p.store.db.execute("SELECT min(t), count(*) FROM samples").fetchone()
    assert left[0] >= T0 + 18 * 3600 - STEP and left[1] < 30 * 60
    assert done[0].samples == 30 * 60 - left[1]
    assert done[0].undelivered == {}, "the recipient had them all"
    assert p.store.db.execute("SELECT count(*) FROM ledger_hours").fetchone()[0] == hours_before
    assert events(logs, "retention.evicted")[0]["reason"] == "age"
    p.dispatcher.status = retention(p).summary
    p.dispatcher.heartbeat()
    await p.settle()
    beat = p.outlets["a"].bodies("status")[-1]
    assert beat["evictions"] == 1 and beat["samples"] == done[0].samples
    assert beat["last"]["reason"] == "age"


async def test_the_ledger_keeps_the_samples_of_its_open_hours(tmp_path: Path) -> None:
    p = Pipeline(tmp_path, ("a",), now=T0)
    p.add(*samples(60))  # one hour: nothing closed yet
    p.now = T0 + 400 * 86400
    assert retention(p, max_age=3600).enforce() == []
    assert p.store.sample_count() == 60


async def test_too_large_evicts_the_oldest_down_to_nine_tenths(tmp_path: Path) -> None:
    p = Pipeline(tmp_path, ("a",), now=T0)
    p.add(*samples(30 * 60))
    r = retention(p)
    used = r.used_bytes()
    r.max_size = used // 2
    done = r.enforce()
    assert done and all(e.reason == "size" for e in done)
    assert r.used_bytes() <= used // 2
    oldest = p.store.db.execute("SELECT min(id) FROM samples").fetchone()[0]
    assert oldest > 1, "the oldest went first"


async def test_what_a_recipient_had_not_received_is_counted_and_warned(
        tmp_path: Path, logs: LogEvents) -> None:
    p = Pipeline(tmp_path, ("a",), now=T0)
    p.grant("a", start=T0)
    p.outlets["a"].live = False  # away: nothing made for it
    p.add(*samples(30 * 60))
    p.now = T0 + 30 * 3600
    done = retention(p, max_age=20 * 3600).enforce()
    assert done[0].undelivered["a"] == done[0].samples
    evicted = [e for e in logs if e.get("event") == "retention.evicted"]
    assert evicted[0]["log_level"] == "warning"
    p.outlets["a"].live = True
    p.outlets["a"].drain()
    times = [s["ts"] for s in p.outlets["a"].samples()]
    assert times == sorted(times) and len(times) == p.store.sample_count()


async def test_a_queued_messages_samples_stay_until_it_is_acknowledged(tmp_path: Path) -> None:
    p = Pipeline(tmp_path, ("a",), now=T0)
    p.grant("a", start=T0)
    p.outlets["a"].live = False
    p.add(*samples(30 * 60))
    made = p.dispatcher.refill("a", 1)  # made (a recipe of samples), not yet acknowledged
    recipe = made[0].recipe
    assert recipe is not None
    p.now = T0 + 400 * 86400
    retention(p, max_age=3600).enforce()
    first = p.store.db.execute("SELECT min(id) FROM samples").fetchone()[0]
    assert first <= recipe.first_id
    assert p.dispatcher.remake(made[0]) == made[0].token, "made again: the same bytes"
