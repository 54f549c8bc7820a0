"""Faults planted in the bench season are found: the right code (and so the right cause), with
evidence that shows what was planted; nothing else above info but the fault's known
consequences. Two weeks a sample a minute per fault, in weather that shows it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.commands.report import read_recording
from agent.diagnosis import engine
from agent.diagnosis.catalogue import CATALOGUE
from agent.diagnosis.findings import Diagnosis, Finding, Severity
from agent.figures.installation import Installation
from agent.figures.metrics import span
from hil.faults import FAULTS
from hil.season import run_season, truth_path
from tests.support import BENCH, BENCH_DESIGN, hpagent

MILD = datetime(2025, 10, 20, tzinfo=UTC)  # seed 1: 2 to 16 °C
WINTER = datetime(2025, 12, 20, tzinfo=UTC)  # seed 1: mostly -2 to +6 °C
METERED = Installation.model_validate({  # the heat meter is the heat counter, the unit's checks it
    **BENCH.model_dump(), "heat_pump": {**BENCH.heat_pump.model_dump(),
                                        "heat": "heatmeter.energy",
                                        "compare_heat_with": "hp.heat_energy"}})


@dataclass(frozen=True)
class Planted:
    code: str  # the finding that names the fault's cause
    start: datetime = MILD
    consequences: frozenset[str] = field(default_factory=frozenset)  # other findings it causes
    installation: Installation = BENCH


PLANTED = {
    "steep_curve": Planted("heating_curve_too_steep"),
    "undersized_radiators": Planted("emitters_undersized"),
    "oversized_pump": Planted("delta_t_low"),
    "short_cycling": Planted("short_cycling"),
    "bivalent_high": Planted("boiler_above_bivalent", WINTER),
    "backup_mild": Planted("backup_heater_mild", consequences=frozenset({"backup_heater_share"})),
    "heat_meter_air": Planted("heat_meter_air", installation=METERED),
    "frozen_sensor": Planted("sensor_frozen", consequences=frozenset({"supply_below_return"})),
}


def test_every_fault_of_the_bench_is_tested() -> None:
    assert set(PLANTED) == set(FAULTS)


@pytest.fixture(scope="module")
def seasons(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Diagnosis, Any]]:
    """Each fault's two weeks, simulated and diagnosed once (lazily, as the tests ask)."""
    folder = tmp_path_factory.mktemp("faults")

    class Lazy(dict[str, tuple[Diagnosis, Any]]):
        def __missing__(self, name: str) -> tuple[Diagnosis, Any]:
            planted = PLANTED[name]
            out = folder / f"{name}.jsonl"
            run_season(out, start=planted.start, end=planted.start + timedelta(days=14),
                       step=60.0, faults=[name])
            inst = planted.installation
            ledger, scan = read_recording(out, engine.spec(inst),
                                          engine.watch(inst, BENCH_DESIGN))
            assert ledger.start is not None and ledger.end is not None and scan is not None
            found = engine.diagnose(ledger, scan, inst, BENCH_DESIGN,
                                    span([ledger.start, ledger.end]))
            self[name] = (found, json.loads(truth_path(out).read_text()))
            return self[name]

    return Lazy()


def the(found: Diagnosis, code: str) -> Finding:
    matching = [f for f in found.findings if f.code == code]
    assert matching, f"no {code}: {[f.code for f in found.findings]}"
    return matching[0]


def evidence(finding: Finding) -> dict[str, Any]:
    return {e.name: e.value for e in finding.evidence}


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_a_planted_fault_is_found_with_its_cause(
        name: str, seasons: dict[str, tuple[Diagnosis, Any]]) -> None:
    found, truth = seasons[name]
    planted = PLANTED[name]
    finding = the(found, planted.code)
    assert finding.severity.rank >= Severity.WARNING.rank
    assert finding.cause == CATALOGUE[planted.code].cause
    others = {f.code for f in found.findings if f.severity.rank >= Severity.WARNING.rank}
    assert others - {planted.code} <= planted.consequences, others
    assert [f["name"] for f in truth["faults"]] == [name]


def test_steep_curve_evidence(seasons: dict[str, tuple[Diagnosis, Any]]) -> None:
    e = evidence(the(seasons["steep_curve"][0], "heating_curve_too_steep"))
    assert e["above_need"] > 3.0 and e["above_design"] > 3.0
    assert e["heating_share"] < 90.0  # runs hot in bursts, off in between


def test_undersized_radiators_evidence(seasons: dict[str, tuple[Diagnosis, Any]]) -> None:
    e = evidence(the(seasons["undersized_radiators"][0], "emitters_undersized"))
    planted = FAULTS["undersized_radiators"].changes["emitters"]["nominal_w"]
    assert e["emitters_at_50k"] == pytest.approx(planted, rel=0.05)  # the radiators, measured
    assert e["emitters_needed_at_50k"] > 1.3 * planted


def test_oversized_pump_evidence(seasons: dict[str, tuple[Diagnosis, Any]]) -> None:
    e = evidence(the(seasons["oversized_pump"][0], "delta_t_low"))
    planted = FAULTS["oversized_pump"].changes["heatpump"]["design_flow_lpm"]
    assert e["flow"] == pytest.approx(planted, rel=0.03)
    assert e["delta_t_at_rated_output"] == pytest.approx(4000 / (planted / 60 * 4186), abs=0.1)


def test_short_cycling_evidence(seasons: dict[str, tuple[Diagnosis, Any]]) -> None:
    worst = max((f for f in seasons["short_cycling"][0].findings if f.code == "short_cycling"),
                key=lambda f: evidence(f)["starts_per_hour"])
    e = evidence(worst)
    assert worst.severity is Severity.FAULT and e["starts_per_hour"] > 6.0
    assert e["mean_run"] < 10.0


def test_bivalent_evidence(seasons: dict[str, tuple[Diagnosis, Any]]) -> None:
    e = evidence(the(seasons["bivalent_high"][0], "boiler_above_bivalent"))
    planted = FAULTS["bivalent_high"].changes["hybrid"]["bivalent_temp"]
    assert -1.0 <= e["outdoor_mean"] < planted  # between the design's and the planted point
    assert e["warmest"] < planted + 1.0 + 0.5  # the controller's hysteresis, hourly means


def test_backup_evidence(seasons: dict[str, tuple[Diagnosis, Any]]) -> None:
    found, truth = seasons["backup_mild"]
    e = evidence(the(found, "backup_heater_share"))
    assert e["backup_heat"] == pytest.approx(truth["backup_heater_kwh"], rel=0.01)
    assert evidence(the(found, "backup_heater_mild"))["warmest"] > 5.0


def test_heat_meter_air_evidence(seasons: dict[str, tuple[Diagnosis, Any]]) -> None:
    found, truth = seasons["heat_meter_air"]
    e = evidence(the(found, "heat_meter_air"))
    assert e["heat_missed_by_meter"] == pytest.approx(truth["heat_meter"]["missed_kwh"],
                                                      rel=0.02)
    assert e["episodes"] == 6  # every second day from day 2 of 14, each while the unit ran


def test_frozen_sensor_evidence(seasons: dict[str, tuple[Diagnosis, Any]]) -> None:
    e = evidence(the(seasons["frozen_sensor"][0], "sensor_frozen"))
    assert e["quantity"] == "hp.return_temp"
    assert e["unchanged"] >= (14 - 3) * 24 - 1  # from day 3 to the end, whole hours


def test_cli_plants_faults_and_the_truth_lists_them(tmp_path: Path) -> None:
    out = tmp_path / "day.jsonl"
    result = hpagent("hil", "season", "--out", str(out), "--from", "2025-10-20",
                     "--to", "2025-10-21", "--step", "300", "--fault", "steep_curve,short_cycling",
                     "--fault", "steep_curve")
    assert result.returncode == 0, result.stderr
    assert "fault planted  steep_curve" in result.stdout
    truth = json.loads(truth_path(out).read_text())
    assert [f["name"] for f in truth["faults"]] == ["steep_curve", "short_cycling"]
    assert truth["params"]["heat_pump"]["min_run_s"] == 120.0
    bad = hpagent("hil", "season", "--out", str(out), "--fault", "leaky_roof")
    assert bad.returncode == 2
    assert "'leaky_roof' is not a fault of the bench" in bad.stderr
    help_text = hpagent("hil", "season", "--help").stdout
    assert all(name in help_text for name in FAULTS)
