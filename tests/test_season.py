"""The bench season: a hybrid installation's recording and its ground truth.

The agent's ledger and metrics are judged against this truth ("SPF and heat coverage from the
recording within 1 % and 0.5 percentage points, the gas split within 3 %"), so the recording must
be a faithful device view of the very integrals the truth reports. Two weeks at 60 s steps are
checked throughout: a cold one in January (the boiler takes over below the bivalent point) and a
mild one in October (the heat pump alone, cycling).
"""

from __future__ import annotations

import io
import itertools
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from drivers.opentherm import TIMELINE
from drivers.recording import Record, read
from drivers.vocabulary import VOCABULARY, Kind
from hil.hybrid import HybridConfig, HybridInstallation
from hil.season import GAS_CAPTURE_S, SeasonTruth, main, run_season, truth_path
from hil.weather import OutdoorCourse

STEP = 60.0
WEEKS = {
    "cold": datetime(2026, 1, 17, tzinfo=UTC),  # seed 1: a day below -2 °C, most of it above 0
    "mild": datetime(2025, 10, 8, tzinfo=UTC),
}
CONFIG = HybridConfig()
COUNTERS = [name for name, q in VOCABULARY.items() if q.kind is Kind.COUNTER]


@dataclass
class Week:
    truth: SeasonTruth
    records: list[Record]
    json: dict[str, Any]

    def values(self, quantity: str) -> list[float]:
        return [float(r.q[quantity]) for r in self.records]

    def delta(self, quantity: str) -> float:
        return float(self.records[-1].q[quantity]) - float(self.records[0].q[quantity])


def simulate(out: Path, start: datetime, days: float, *, step: float = STEP, seed: int = 1,
             config: HybridConfig | None = None) -> Week:
    truth = run_season(out, start=start, end=start + timedelta(days=days), step=step, seed=seed,
                       config=config)
    return Week(truth, list(read(out)), orjson.loads(truth_path(out).read_bytes()))


@pytest.fixture(scope="module")
def weeks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Week]:
    folder = tmp_path_factory.mktemp("season")
    return {name: simulate(folder / f"{name}.jsonl", start, 7) for name, start in WEEKS.items()}


@pytest.fixture(params=sorted(WEEKS))
def week(request: pytest.FixtureRequest, weeks: dict[str, Week]) -> Week:
    return weeks[request.param]


def defrost_kwh(week: Week) -> float:
    """∫ hp.heat_power while hp.mode is defrost, each line's value held until the next line."""
    joules = sum(float(a.q["hp.heat_power"]) * (b.t - a.t)
                 for a, b in itertools.pairwise(week.records) if a.q["hp.mode"] == "defrost")
    return joules / 3.6e6


def burner_load(week: Week) -> dict[str, float]:
    """Full-load seconds of the burner by purpose, from line values and the event timeline.

    Modulation is % of the maximum input, so the load is modulation/100 while the flame burns.
    """
    state: dict[str, Any] = {}
    load = {"ch": 0.0, "dhw": 0.0, "other": 0.0}
    since: float | None = None

    def advance(t: float) -> None:
        nonlocal since
        if since is not None and state.get("boiler.flame"):
            purpose = ("dhw" if state.get("boiler.dhw_active")
                       else "ch" if state.get("boiler.ch_active") else "other")
            load[purpose] += float(state["boiler.modulation"]) / 100.0 * (t - since)
        since = t

    for record in week.records:
        for t, quantity, value in record.e:
            advance(t)
            state[quantity] = value
        advance(record.t)
        state.update({q: record.q[q] for q in TIMELINE})
    return load


# -- the recording ---------------------------------------------------------------------------------


def test_lines_parse_and_speak_the_vocabulary(week: Week) -> None:
    assert len(week.records) == week.truth.lines == 7 * 1440 + 1 == week.json["lines"]
    for a, b in itertools.pairwise(week.records):
        assert b.t - a.t == STEP
    seen_events = 0
    for record in week.records:
        assert record.at.keys() == {"gas.volume"}
        for name, value in record.q.items():
            q = VOCABULARY[name]
            if q.kind is Kind.STATE:
                assert value in q.states if q.states else isinstance(value, bool), name
            else:
                assert isinstance(value, int | float) and not isinstance(value, bool), name
        for _, name, value in record.e:
            assert name in TIMELINE
            assert isinstance(value, bool) if VOCABULARY[name].is_boolean else \
                isinstance(value, float)
            seen_events += 1
    assert seen_events == week.truth.events > 0
    assert {r.q["hp.mode"] for r in week.records} >= {"off", "heating", "dhw"}


def test_counters_never_decrease(week: Week) -> None:
    present = [name for name in COUNTERS if name in week.records[0].q]
    assert {"hp.heat_energy", "hp.electric_energy", "gas.volume", "grid.import_energy"} <= \
        set(present)
    for a, b in itertools.pairwise(week.records):
        for name in present:
            assert float(b.q[name]) >= float(a.q[name]), (name, b.t)


def test_events_are_in_order_within_their_step(week: Week) -> None:
    for a, b in itertools.pairwise(week.records):
        times = [t for t, _, _ in b.e]
        assert times == sorted(times)
        assert all(a.t <= t < b.t for t in times)
    assert not week.records[0].e


def test_state_after_the_events_is_what_the_line_shows(week: Week) -> None:
    state = {q: week.records[0].q[q] for q in TIMELINE}
    for record in week.records[1:]:
        for _, quantity, value in record.e:
            state[quantity] = value
        assert state == {q: record.q[q] for q in TIMELINE}, record.t


def test_gas_is_captured_every_five_minutes(week: Week) -> None:
    captures: dict[float, float] = {}
    for record in week.records:
        at, gas = record.at["gas.volume"], float(record.q["gas.volume"])
        assert at % GAS_CAPTURE_S == 0.0
        assert at <= record.t < at + GAS_CAPTURE_S
        assert captures.setdefault(at, gas) == gas  # the same capture, repeated as it was
        assert gas == round(gas, 3)  # litres
    times = sorted(captures)
    assert len(times) == 7 * 288 + 1
    assert all(b - a == GAS_CAPTURE_S for a, b in itertools.pairwise(times))
    values = [captures[t] for t in times]
    assert values == sorted(values)
    assert len(set(values)) > 20  # the index moves


def test_files_are_identical_for_the_same_seed(tmp_path: Path) -> None:
    start = WEEKS["cold"]
    first = simulate(tmp_path / "a.jsonl", start, 1.5)
    again = simulate(tmp_path / "b.jsonl", start, 1.5)
    other = simulate(tmp_path / "c.jsonl", start, 1.5, seed=2)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert first.json == {**again.json, "recording": "a.jsonl"}
    assert (tmp_path / "a.jsonl").read_bytes() != (tmp_path / "c.jsonl").read_bytes()
    assert other.truth.truth.spf != first.truth.truth.spf


def test_an_uneven_step_captures_gas_at_the_same_instants(tmp_path: Path) -> None:
    start = WEEKS["cold"] + timedelta(hours=5)  # through the morning shower and the reheat
    even = simulate(tmp_path / "even.jsonl", start, 0.5)
    uneven = simulate(tmp_path / "uneven.jsonl", start, 0.5, step=420.0)
    assert uneven.records[-1].t == even.records[-1].t  # a shorter last step ends at the end
    assert len(uneven.records) == math.ceil(43_200 / 420) + 1
    captured = {r.at["gas.volume"]: r.q["gas.volume"] for r in even.records}
    for record in uneven.records:
        assert captured[record.at["gas.volume"]] == record.q["gas.volume"]
    assert uneven.truth.truth.gas_m3 == pytest.approx(even.truth.truth.gas_m3, rel=1e-9)


# -- the truth -------------------------------------------------------------------------------------


def test_truth_is_self_consistent(week: Week) -> None:
    tr, js = week.truth.truth, week.json
    assert js["gas_m3"]["total"] == pytest.approx(js["gas_m3"]["ch"] + js["gas_m3"]["dhw"])
    assert js["heat_kwh"] == pytest.approx(sum(js["heat_kwh_by_mode"].values()))
    assert js["electricity_kwh"] == pytest.approx(sum(js["electricity_kwh_by_mode"].values()))
    assert js["heat_kwh_by_mode"]["defrost"] <= 0.0 < js["heat_kwh_by_mode"]["dhw"]
    assert js["spf"] == pytest.approx(js["heat_kwh"] / js["electricity_kwh"])
    assert 2.5 <= js["spf"] <= 4.5
    for share in js["heat_coverage"].values():
        assert 0.0 <= share <= 1.0
    hp = js["heat_kwh_by_mode"]
    space = hp["heating"] + hp["defrost"]
    assert js["heat_coverage"]["space_heating"] == pytest.approx(
        space / (space + js["boiler_heat_kwh"]["ch"]))
    assert js["heat_coverage"]["hot_water"] == pytest.approx(
        hp["dhw"] / (hp["dhw"] + js["boiler_heat_kwh"]["dhw"]))
    kwh_per_m3 = js["params"]["boiler"]["calorific_value_kwh_m3"] * \
        js["params"]["boiler"]["efficiency"]
    for use in ("ch", "dhw"):
        assert js["boiler_heat_kwh"][use] == pytest.approx(js["gas_m3"][use] * kwh_per_m3)
    assert js["grid_import_kwh"] == pytest.approx(
        js["household_kwh"] + js["electricity_kwh"] + js["boiler_electricity_kwh"])
    assert list(js["daily_mean_outdoor"]) == [
        (week.truth.start + timedelta(days=d)).date().isoformat() for d in range(7)]
    outdoor = week.values("hp.outdoor_temp")
    assert min(outdoor) < min(js["daily_mean_outdoor"].values())
    assert max(js["daily_mean_outdoor"].values()) < max(outdoor)
    assert js["params"]["boiler"]["modulation"] == "percent of maximum input"
    assert js["params"]["boiler"]["min_modulation_pct"] == CONFIG.boiler.min_modulation
    assert js["params"]["hybrid"]["bivalent_temp"] == CONFIG.bivalent_temp
    assert js["spf"] == tr.spf


def test_counters_of_the_recording_reproduce_the_truth(week: Week) -> None:
    js = week.json
    defrost = defrost_kwh(week)
    assert defrost == pytest.approx(js["heat_kwh_by_mode"]["defrost"], rel=0.005, abs=0.01)
    heat = week.delta("hp.heat_energy") + defrost
    assert heat == pytest.approx(js["heat_kwh"], rel=0.005)
    assert week.delta("hp.electric_energy") == pytest.approx(js["electricity_kwh"], rel=0.005)
    assert week.delta("hp.heat_energy_heating") + defrost == pytest.approx(
        js["heat_kwh_by_mode"]["heating"] + js["heat_kwh_by_mode"]["defrost"], rel=0.005)
    assert week.delta("hp.heat_energy_dhw") == pytest.approx(js["heat_kwh_by_mode"]["dhw"],
                                                             rel=0.005)
    assert week.delta("gas.volume") == pytest.approx(js["gas_m3"]["total"], abs=0.002)
    assert week.delta("grid.import_energy") == pytest.approx(js["grid_import_kwh"], abs=0.002)
    assert js["counters"] == {name: pytest.approx(week.delta(name)) for name in js["counters"]}


def test_burner_load_splits_the_gas_like_the_truth(week: Week) -> None:
    load = burner_load(week)
    gas = week.delta("gas.volume")
    share = load["dhw"] / sum(load.values())
    truth = week.json["gas_m3"]
    assert gas * share == pytest.approx(truth["dhw"], rel=0.01)
    assert gas * (1 - share) == pytest.approx(truth["ch"], rel=0.01, abs=0.01)
    assert load["other"] == 0.0  # the burner always burns for heating or for hot water


def test_boiler_below_the_bivalent_point_heat_pump_above(weeks: dict[str, Week]) -> None:
    cold = weeks["cold"]
    below = [r for r in cold.records if float(r.q["hp.outdoor_temp"]) < CONFIG.bivalent_temp]
    above = [r for r in cold.records if float(r.q["hp.outdoor_temp"])
             >= CONFIG.bivalent_temp + CONFIG.bivalent_hysteresis_k]
    assert len(below) > 600  # ten hours and more: the test is not vacuous
    assert len(above) > 5000
    hp_heating = sum(r.q["hp.mode"] in ("heating", "defrost") for r in below)
    assert hp_heating < 0.05 * len(below)  # only the minimum run after the switch
    assert sum(bool(r.q["boiler.ch_active"]) for r in below) > 0.9 * len(below)
    boiler_ch = sum(bool(r.q["boiler.flame"]) and not r.q["boiler.dhw_active"] for r in above)
    assert boiler_ch < 0.1 * len(above)  # topping up only
    assert sum(r.q["hp.mode"] in ("heating", "defrost") for r in above) > 0.6 * len(above)
    coverage = cold.json["heat_coverage"]["space_heating"]
    assert 0.5 < coverage < weeks["mild"].json["heat_coverage"]["space_heating"]


def test_defrosts_happen_in_the_icing_band(week: Week) -> None:
    lo, hi = CONFIG.heatpump.defrost_band
    defrosting = [r for r in week.records if r.q["hp.mode"] == "defrost"]
    for record in defrosting:
        assert lo - 0.2 <= float(record.q["hp.outdoor_temp"]) <= hi + 0.2
        assert float(record.q["hp.heat_power"]) < 0.0
    warm = [r for r in week.records if float(r.q["hp.outdoor_temp"]) > hi + 0.2]
    assert all(r.q["hp.mode"] != "defrost" for r in warm)
    if week.truth.start.month == 1:
        assert len(defrosting) >= 20
    assert (week.json["heat_kwh_by_mode"]["defrost"] < 0.0) is bool(defrosting)


def test_mild_weather_is_the_heat_pumps(weeks: dict[str, Week]) -> None:
    mild = weeks["mild"]
    assert mild.json["heat_coverage"]["space_heating"] > 0.95
    assert mild.json["compressor_starts"] > 10  # cycling at part load
    assert 0.2 < mild.json["heat_coverage"]["hot_water"] < 0.8  # the tank's shower, combi's bath


# -- the installation ------------------------------------------------------------------------------


def installation(temp: float | None = None, *, config: HybridConfig | None = None,
                 start: datetime = WEEKS["cold"]) -> HybridInstallation:
    course = OutdoorCourse(seed=1) if temp is None else OutdoorCourse.constant(temp)
    return HybridInstallation(config, outdoor=course, start=start, seed=1)


@pytest.mark.parametrize(("dhw", "coverage"), [("boiler", 0.0), ("heat_pump", 1.0),
                                               ("both", None)])
def test_who_makes_hot_water(dhw: str, coverage: float | None) -> None:
    inst = installation(5.0, config=HybridConfig(dhw=dhw))  # type: ignore[arg-type]
    inst.step(2 * 86_400.0)
    truth = inst.truth
    share = truth.heat_coverage["hot_water"]
    assert share is not None
    if coverage is None:
        assert 0.2 < share < 0.8
    else:
        assert share == coverage
    if dhw == "heat_pump":
        assert truth.gas_m3["total"] == 0.0  # mild enough that the boiler never tops up
        assert truth.heatpump.mode_seconds["dhw"] > 0.0


def test_bivalent_point_hands_space_heating_to_the_boiler() -> None:
    cold, mild = installation(-5.0), installation(3.0)
    cold.step(86_400.0)
    mild.step(86_400.0)
    assert not cold.heat_pump_released and mild.heat_pump_released
    assert cold.truth.heatpump.heat_kwh["heating"] == 0.0
    assert cold.truth.heat_coverage["space_heating"] == 0.0
    assert cold.truth.boiler_heat_kwh["ch"] > 50.0
    assert mild.truth.heat_coverage["space_heating"] == 1.0
    for inst in (cold, mild):
        assert abs(inst.heatpump.indoor_temp - CONFIG.house.setpoint) < 0.5


def test_boiler_heat_warms_the_same_house() -> None:
    inst = installation()
    house = CONFIG.house
    losses = 0.0
    for _ in range(round(86_400 / 10)):
        indoor = inst.heatpump.indoor_temp
        inst.step(10.0)
        losses += house.heat_loss_w_per_k * (indoor - inst.heatpump.outdoor_temp) * 10.0
    truth = inst.truth
    assert truth.heatpump.external_heat_kwh == pytest.approx(truth.boiler_heat_kwh["ch"])
    assert truth.boiler_heat_kwh["ch"] > 1.0
    delivered = (truth.heat_kwh_by_mode["heating"] + truth.heat_kwh_by_mode["defrost"]
                 + truth.boiler_heat_kwh["ch"]) * 3.6e6
    stored = house.thermal_mass_j_per_k * (inst.heatpump.indoor_temp - house.initial_temp)
    gains = house.gains_w * 86_400.0
    assert delivered + gains - losses == pytest.approx(stored, abs=1e-6 * delivered)


def test_the_recording_step_does_not_change_the_physics() -> None:
    fine, coarse = installation(), installation()
    for _ in range(8640):
        fine.step(10.0)
    for _ in range(1440):
        coarse.step(60.0)
    a, b = fine.truth, coarse.truth
    assert a.gas_m3 == pytest.approx(b.gas_m3, rel=1e-9)
    assert a.heat_kwh_by_mode == pytest.approx(b.heat_kwh_by_mode, rel=1e-9)
    assert a.electricity_kwh == pytest.approx(b.electricity_kwh, rel=1e-9)
    assert a.household_kwh == pytest.approx(b.household_kwh, rel=1e-12)
    assert a.gas_m3["total"] > 0.5


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    start = WEEKS["mild"]
    with pytest.raises(ValueError, match="timezone"):
        run_season(tmp_path / "x", start=datetime(2025, 10, 1), end=start, step=60.0)
    with pytest.raises(ValueError, match="end after"):
        run_season(tmp_path / "x", start=start, end=start, step=60.0)
    with pytest.raises(ValueError, match="step"):
        run_season(tmp_path / "x", start=start, end=start + timedelta(days=1), step=0.0)
    with pytest.raises(ValueError, match="dhw"):
        HybridConfig(dhw="solar")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-negative"):
        installation(5.0).step(-1.0)


# -- the command -----------------------------------------------------------------------------------


def test_main_prints_weekly_progress_and_a_summary(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    status = main(tmp_path / "s.jsonl", "2025-10-08", "2025-10-16T00:00:00Z", 300.0, 3,
                  stdout=out, stderr=err)
    assert status == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("hil season: 2025-10-08 00:00 .. 2025-10-16 00:00 UTC")
    assert lines[1].startswith("2025-10-15")  # one simulated week
    text = out.getvalue()
    for word in ("SPF", "heat coverage", "gas", "truth"):
        assert word in text
    truth = orjson.loads(truth_path(tmp_path / "s.jsonl").read_bytes())
    assert truth["seed"] == 3
    assert truth["lines"] == 8 * 288 + 1


@pytest.mark.parametrize(("start", "end", "step", "message"), [
    ("2025-13-01", "2026-05-01", 10.0, "not a date"),
    ("2025-10-01", "2025-10-01", 10.0, "not after"),
    ("2025-10-01", "2025-10-02", 0.0, "--step"),
    ("2025-10-01", "2025-10-02", 3600.0, "--step"),
])
def test_main_refuses_bad_arguments(tmp_path: Path, start: str, end: str, step: float,
                                    message: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(tmp_path / "s.jsonl", start, end, step, 1, stdout=out, stderr=err) == 2
    assert message in err.getvalue()
    assert not (tmp_path / "s.jsonl").exists()


def test_main_reports_an_unwritable_file(tmp_path: Path) -> None:
    err = io.StringIO()
    target = tmp_path / "missing" / "s.jsonl"
    assert main(target, "2025-10-01", "2025-10-02", 60.0, 1, stdout=io.StringIO(),
                stderr=err) == 1
    assert "cannot write" in err.getvalue()
