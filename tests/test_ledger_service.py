"""The live ledger: hours closed into the table and onto the hourly stream, days onto the daily
stream; a restart loses nothing and repeats nothing; the store's report equals one pass."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.delivery.ingest import Ingest, Route
from agent.delivery.outbox import Outbox, Pending
from agent.delivery.store import Store
from agent.figures.installation import Installation
from agent.figures.ledger import ENERGY, Ledger
from agent.figures.metrics import compute, span, spec_for
from agent.sample import ClockState, Sample
from agent.service.ledger_service import UNTIL, LedgerService, ledger_from_store
from agent.trust.jws import Signer
from drivers.reading import Reading
from tests.support import payload

T0 = 1_767_222_000.0  # 2025-12-31T23:00:00Z = 2026-01-01 00:00 local time
STEP = 60.0


def samples(n: int, start: float = T0) -> list[Sample]:
    out = []
    for i in range(n):
        t = start + i * STEP
        heat, elec = 100 + (t - T0) / 3600 * 3.0, 25 + (t - T0) / 3600 * 0.75
        out.append(Sample("hp", t, ClockState.SYNCED, (
            Reading("hp.heat_energy", round(heat, 4)),
            Reading("hp.electric_energy", round(elec, 4)),
            Reading("hp.mode", "heating"), Reading("hp.electric_power", 750.0),
            Reading("hp.outdoor_temp", 4.0))))
    return out


class Rig:
    def __init__(self, path: Path, sent: list[tuple[str, dict[str, Any]]]) -> None:
        self.store = Store(path)
        routes = [Route("x", stream, f"t/{stream}", self._offer(stream))
                  for stream in ("hourly", "daily")]
        self.ingest = Ingest(self.store, Outbox(self.store), Signer(KEY), "gw", routes)
        self.service = LedgerService(self.store, self.ingest, Installation())
        self.sent = sent

    def _offer(self, stream: str) -> Callable[[Pending], None]:
        def offer(message: Pending) -> None:
            self.sent.append((stream, payload(message.token)))
        return offer

    def feed(self, batch: list[Sample]) -> None:
        for sample in batch:
            assert self.ingest.commit(sample)
            self.service.add(sample)


KEY = Ed25519PrivateKey.generate()


def test_hours_close_into_the_table_and_the_hourly_stream(tmp_path: Path) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    rig = Rig(tmp_path / "db", sent)
    rig.feed(samples(27 * 60))  # 27 hours: a local day closes, plus the 2 h 6 min grace
    hourly = [body for stream, body in sent if stream == "hourly"]
    assert len(hourly) >= 24
    first = hourly[0]
    assert first["hour"] == "2025-12-31T23:00:00.000Z"
    assert first["energy"]["hp.heat_energy"]["heating|run"] == pytest.approx(3.0, abs=0.01)
    assert [b["seq"] for b in hourly] == list(range(1, len(hourly) + 1))
    daily = [body for stream, body in sent if stream == "daily"]
    assert [d["day"] for d in daily] == ["2026-01-01"]
    assert daily[0]["heat_kwh"] == pytest.approx(72.0, abs=0.1)
    assert daily[0]["spf"] == pytest.approx(4.0, abs=0.001)
    rows = rig.store.db.execute("SELECT count(DISTINCT hour) FROM ledger_hours").fetchone()[0]
    assert rows == len(hourly)
    assert int(rig.store.meta(UNTIL) or 0) == rig.service.until


def test_a_restart_repeats_nothing_and_loses_nothing(tmp_path: Path) -> None:
    all_samples = samples(30 * 60)
    sent_a: list[tuple[str, dict[str, Any]]] = []
    rig = Rig(tmp_path / "a", sent_a)
    rig.feed(all_samples[:900])
    rig.store.close()
    rig = Rig(tmp_path / "a", sent_a)  # restarted: open hours rebuilt from the samples
    rig.feed(all_samples[900:])
    sent_b: list[tuple[str, dict[str, Any]]] = []
    straight = Rig(tmp_path / "b", sent_b)
    straight.feed(all_samples)
    hours_a = [b["hour"] for s, b in sent_a if s == "hourly"]
    hours_b = [b["hour"] for s, b in sent_b if s == "hourly"]
    assert hours_a == hours_b, "every hour published once"
    for (_, a), (_, b) in zip([x for x in sent_a if x[0] == "hourly"],
                              [x for x in sent_b if x[0] == "hourly"], strict=True):
        assert a["energy"] == b["energy"]


def test_report_from_the_store_equals_one_pass(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "db", [])
    batch = samples(40 * 60)
    rig.feed(batch)
    inst = Installation()
    spec = spec_for(inst)
    one = Ledger(spec)
    for s in batch:
        one.add(s.t, s.values)
    period = span([batch[0].t, batch[-1].t])
    from_store = compute(ledger_from_store(rig.store, spec, period), inst, period)
    direct = compute(one, inst, period)
    for key in ("heat_kwh", "electricity_kwh", "spf", "degree_days"):
        assert from_store[key] == pytest.approx(direct[key]), key
    stored = ledger_from_store(rig.store, spec, None)
    assert stored.total(ENERGY, "hp.heat_energy") == pytest.approx(
        one.total(ENERGY, "hp.heat_energy"))
