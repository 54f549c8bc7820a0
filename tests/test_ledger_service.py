"""The live ledger: hours closed into the table and onto the hourly stream, days onto the daily
stream; a restart loses nothing and repeats nothing; the store's report equals one pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.figures.installation import Installation
from agent.figures.ledger import ENERGY, Ledger
from agent.figures.metrics import compute, span, spec_for
from agent.sample import ClockState, Sample
from agent.service.ledger_service import UNTIL, ledger_from_store
from drivers.reading import Reading
from tests.pipeline import Pipeline

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
    """The ledger service in a pipeline whose one recipient is granted every figure."""

    def __init__(self, path: Path) -> None:
        self.pipeline = Pipeline(path, ("x",), key=KEY, now=T0)
        if not self.pipeline.dispatcher.states:
            self.pipeline.grant("x", ("hourly", "daily", "findings"), start=T0 - 3600)
        self.store = self.pipeline.store
        self.service = self.pipeline.ledger

    async def feed(self, batch: list[Sample]) -> None:
        self.pipeline.add(*batch)
        await self.pipeline.settle()

    def sent(self, stream: str) -> list[dict[str, Any]]:
        return self.pipeline.outlets["x"].bodies(stream)


KEY = Ed25519PrivateKey.generate()


async def test_hours_close_into_the_table_and_the_hourly_stream(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "db")
    await rig.feed(samples(27 * 60))  # 27 hours: a local day closes, plus the 2 h 6 min grace
    hourly = rig.sent("hourly")
    assert len(hourly) >= 24
    first = hourly[0]
    assert first["hour"] == "2025-12-31T23:00:00.000Z"
    assert first["energy"]["hp.heat_energy"]["heating|run"] == pytest.approx(3.0, abs=0.01)
    assert first["period"] == ["2025-12-31T23:00:00.000Z", "2026-01-01T00:00:00.000Z"]
    assert [b["seq"] for b in hourly] == list(range(1, len(hourly) + 1))
    findings = rig.sent("findings")
    assert [f["day"] for f in findings] == ["2026-01-01"]
    assert findings[0]["period"] == ["2025-12-31T23:00:00.000Z", "2026-01-01T23:00:00.000Z"]
    assert isinstance(findings[0]["findings"], list)
    assert {n["rule"] for n in findings[0]["not_checked"]} >= {"delta_t"}  # no flow measured
    daily = rig.sent("daily")
    assert [d["day"] for d in daily] == ["2026-01-01"]
    assert daily[0]["heat_kwh"] == pytest.approx(72.0, abs=0.1)
    assert daily[0]["spf"] == pytest.approx(4.0, abs=0.001)
    rows = rig.store.db.execute("SELECT count(DISTINCT hour) FROM ledger_hours").fetchone()[0]
    assert rows == len(hourly)
    assert int(rig.store.meta(UNTIL) or 0) == rig.service.until


async def test_a_restart_repeats_nothing_and_loses_nothing(tmp_path: Path) -> None:
    all_samples = samples(30 * 60)
    rig = Rig(tmp_path / "a")
    await rig.feed(all_samples[:900])
    before = rig.sent("hourly")
    rig.store.close()
    rig = Rig(tmp_path / "a")  # restarted: open hours rebuilt from the samples
    await rig.feed(all_samples[900:])
    sent_a = before + rig.sent("hourly")
    straight = Rig(tmp_path / "b")
    await straight.feed(all_samples)
    sent_b = straight.sent("hourly")
    assert [b["hour"] for b in sent_a] == [b["hour"] for b in sent_b], "every hour published once"
    for a, b in zip(sent_a, sent_b, strict=True):
        assert a["energy"] == b["energy"]


async def test_report_from_the_store_equals_one_pass(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "db")
    batch = samples(40 * 60)
    await rig.feed(batch)
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
