"""The bench's heat pump model and outdoor course: physics, control and bookkeeping.

The bench judges the agent against this model's ground truth, so the model itself must be
right: energy conserved, COP physical, control behaving like a real unit (modulating when cold,
cycling when mild, defrosting only when the evaporator can ice), counters exact and runs
reproducible.
"""

from __future__ import annotations

import functools
import itertools
import math
import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.heatpump_model import MODES, HeatPumpModel
from hil.heatpump_unit import HeatPump
from hil.house import DhwTank, House
from hil.weather import DE_BILT_NORMALS, OutdoorCourse, daily_mean

JANUARY = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = 3600.0
DAY = 24 * HOUR
COUNTERS = (
    "hp.heat_energy",
    "hp.electric_energy",
    "hp.heat_energy_heating",
    "hp.heat_energy_dhw",
    "hp.electric_energy_heating",
    "hp.electric_energy_dhw",
)


def model_at(
    temp: float, *, start: datetime = JANUARY, hp: HeatPump | None = None
) -> HeatPumpModel:
    return HeatPumpModel(House(), hp or HeatPump(), OutdoorCourse.constant(temp), start)


def counters(model: HeatPumpModel) -> dict[str, float]:
    """The energy counters of the model's snapshot."""
    snapshot = model.snapshot()
    return {key: float(snapshot[key]) for key in COUNTERS}


def modes_every_10s(model: HeatPumpModel, seconds: float) -> list[str]:
    modes = []
    for _ in range(round(seconds / 10.0)):
        model.step(10.0)
        modes.append(model.mode)
    return modes


def runs(modes: list[str]) -> list[tuple[bool, int]]:
    """(compressor running, length in samples) for each run of equal running state."""
    out: list[tuple[bool, int]] = []
    for mode in modes:
        running = mode != "off"
        if out and out[-1][0] == running:
            out[-1] = (running, out[-1][1] + 1)
        else:
            out.append((running, 1))
    return out


# -- outdoor course ------------------------------------------------------------------------------


def test_course_is_a_pure_function_of_time_and_seed() -> None:
    instants = [JANUARY + timedelta(hours=7 * k + 0.25) for k in range(200)]
    forward = [OutdoorCourse(seed=3).at(t) for t in instants]
    course = OutdoorCourse(seed=3)
    backward = [course.at(t) for t in reversed(instants)]
    assert forward == backward[::-1]
    assert forward != [OutdoorCourse(seed=4).at(t) for t in instants]


def test_course_follows_the_de_bilt_normals() -> None:
    course = OutdoorCourse(seed=0)
    for month, normal in enumerate(DE_BILT_NORMALS, start=1):
        first = date(2023, month, 1)
        days = [
            first + timedelta(days=d)
            for d in range(31)
            if (first + timedelta(days=d)).month == month
        ]
        mean = statistics.fmean(daily_mean(course, d) for d in days)
        assert mean == pytest.approx(normal, abs=1.5), month


def test_diurnal_cycle_peaks_mid_afternoon_and_bottoms_before_dawn() -> None:
    calm = OutdoorCourse(anomaly_std_k=0.0)
    for day, swing in ((date(2024, 1, 15), 3.0), (date(2024, 7, 15), 4.5)):
        hours = [
            datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=h)
            for h in range(24)
        ]
        temps = [calm.at(t) for t in hours]
        assert hours[temps.index(min(temps))].hour == 4  # 05:00 CET
        assert hours[temps.index(max(temps))].hour == 14  # 15:00 CET
        assert max(temps) - min(temps) == pytest.approx(2 * swing, abs=0.3)


def test_anomaly_has_the_intended_spread_and_is_smooth() -> None:
    course, calm = OutdoorCourse(seed=11), OutdoorCourse(seed=11, anomaly_std_k=0.0)
    hourly = [JANUARY + timedelta(hours=h) for h in range(365 * 24)]
    anomaly = [course.at(t) - calm.at(t) for t in hourly]
    assert 2.0 < statistics.pstdev(anomaly) < 4.0
    assert abs(statistics.fmean(anomaly)) < 1.0
    assert max(abs(b - a) for a, b in itertools.pairwise(anomaly)) < 1.0  # K per hour


def test_constant_course_and_naive_datetimes() -> None:
    course = OutdoorCourse.constant(5.0)
    assert course.at(JANUARY) == course.at(JANUARY + timedelta(days=180)) == 5.0
    assert daily_mean(course, date(2024, 3, 1)) == 5.0
    with pytest.raises(ValueError, match="timezone"):
        OutdoorCourse().at(datetime(2024, 1, 1))


# -- heat pump characteristics -------------------------------------------------------------------


@given(
    supply=st.floats(20.0, 60.0),
    outdoor=st.floats(-20.0, 20.0),
    more=st.floats(0.1, 20.0),
)
def test_cop_is_physical_and_falls_with_lift(supply: float, outdoor: float, more: float) -> None:
    hp = HeatPump()
    cop = hp.cop(supply, outdoor)
    assert 1.0 <= cop <= 7.0
    carnot = (supply + 3 + 273.15) / (supply + 3 - (outdoor - 6))
    assert cop <= carnot
    assert hp.cop(supply + more, outdoor) <= cop  # hotter supply: more lift
    assert hp.cop(supply, outdoor - more) <= cop  # colder air: more lift


def test_rating_points_and_curves() -> None:
    hp = HeatPump()
    assert 3.0 < hp.cop(35.0, 7.0) < 4.5  # A7/W35 of a typical unit
    assert 1.8 < hp.cop(hp.heating_curve(-7.0), -7.0) < 2.8
    assert hp.max_heat_w(7.0) == 6000.0
    assert hp.max_heat_w(-7.0) == pytest.approx(4200.0)
    assert hp.max_heat_w(-15.0) == hp.max_heat_w(-7.0)
    assert hp.heating_curve(10.0) == 35.0
    assert hp.heating_curve(-10.0) == 50.0
    assert hp.heating_curve(0.0) == pytest.approx(42.5)
    assert hp.compressor_freq_hz(0.3) == 20.0
    assert hp.compressor_freq_hz(1.0) == 90.0
    assert House().time_constant_h == pytest.approx(40.0)


# -- control -------------------------------------------------------------------------------------


def test_cycles_at_mild_temperatures_respecting_min_run_and_off_times() -> None:
    model = model_at(12.0)
    modes = modes_every_10s(model, 3 * DAY)
    segments = runs(modes)
    on = [n for running, n in segments[:-1] if running]
    off = [n for running, n in segments[1:-1] if not running]
    assert len(on) >= 5
    assert min(on) * 10 >= HeatPump().min_run_s
    assert min(off) * 10 >= HeatPump().min_off_s
    assert model.truth.compressor_starts == sum(1 for running, _ in segments if running)


def test_modulates_without_cycling_in_the_cold() -> None:
    model = model_at(-3.0)
    hp = model.heatpump
    modes = modes_every_10s(model, 2 * DAY)
    assert model.truth.compressor_starts == 1
    assert "off" not in modes[modes.index("heating") :]
    model.step(10.0)
    while model.mode != "heating":
        model.step(10.0)
    assert hp.max_heat_w(-3.0) * hp.min_modulation < model.heat_power <= hp.max_heat_w(-3.0)
    assert hp.freq_min_hz < model.compressor_freq < hp.freq_max_hz


@pytest.mark.parametrize(
    ("temp", "ices"),
    [(-12.0, False), (-7.5, False), (-6.0, True), (0.0, True), (4.5, True), (6.0, False)],
)
def test_defrosts_only_in_the_icing_band(temp: float, ices: bool) -> None:
    model = model_at(temp)
    previous = model.heat_energy_kwh
    for _ in range(round(12 * HOUR / 10)):
        model.step(10.0)
        assert model.heat_energy_kwh >= previous
        previous = model.heat_energy_kwh
        if model.mode == "defrost":
            assert model.heat_power < 0.0
            assert model.cop is None
            assert model.flow > 0.0
            assert model.return_temp > model.supply_temp  # the reversed cycle chills the water
    truth = model.truth
    assert (truth.mode_seconds["defrost"] > 0.0) is ices
    assert (truth.heat_kwh["defrost"] < 0.0) is ices
    assert truth.running_seconds > 6 * HOUR


def test_house_cools_when_the_cold_outruns_the_capacity() -> None:
    model = model_at(-12.0)
    model.step(2 * DAY)
    assert model.heat_power == model.heatpump.max_heat_w(-12.0)
    assert model.indoor_temp < model.house.setpoint - 1.0


def test_hot_water_is_reheated_daily_at_lower_cop() -> None:
    hp = HeatPump(tank=DhwTank(initial_temp=40.0))
    model = model_at(3.0, hp=hp)
    seen_dhw = []
    for _ in range(round(2 * DAY / 60)):
        model.step(60.0)
        if model.mode == "dhw":
            seen_dhw.append(model.now)
            assert model.flow > 0.0
            assert model.heat_power == hp.max_heat_w(3.0)
    assert {t.date() for t in seen_dhw} == {date(2024, 1, 1), date(2024, 1, 2)}
    assert all(4 <= t.hour < 6 for t in seen_dhw)  # the 05:00 CET slot
    truth = model.truth
    assert 1.5 < truth.heat_kwh["dhw"] / 2 < 4.0  # kWh per day
    dhw_cop = truth.heat_kwh["dhw"] / truth.electric_kwh["dhw"]
    assert dhw_cop < 0.9 * truth.heat_kwh["heating"] / truth.electric_kwh["heating"]


def test_idle_in_summer_warmth() -> None:
    model = model_at(22.0)  # warmer outside than the setpoint: no heat demand
    model.step(10.0)
    assert model.mode == "off"
    assert (model.flow, model.compressor_freq, model.cop) == (0.0, 0.0, None)
    assert model.heat_power == 0.0
    assert model.electric_power == model.heatpump.standby_w
    model.step(DAY - 10.0)  # a full tank (48 °C) needs no reheat on day one
    assert model.truth.compressor_starts == 0
    assert model.indoor_temp > model.house.setpoint
    assert model.supply_temp == pytest.approx(model.indoor_temp, abs=0.1)
    assert model.electric_energy_kwh == pytest.approx(model.heatpump.standby_w * 24 / 1000)


# -- commands of a hybrid controller -------------------------------------------------------------


def test_withheld_space_heating_is_taken_over_by_external_heat() -> None:
    model = model_at(-3.0, hp=HeatPump(tank=DhwTank(initial_temp=40.0)))
    model.heating_enabled = False
    house = model.house
    losses = 0.0
    for _ in range(round(DAY / 10)):
        indoor = model.indoor_temp
        model.external_heat_w = model.demand_w  # another appliance meets the demand
        model.step(10.0)
        assert model.mode in ("off", "dhw")  # hot water is still the heat pump's
        losses += house.heat_loss_w_per_k * (indoor - model.outdoor_temp) * 10.0
    truth = model.truth
    assert truth.heat_kwh["heating"] == 0.0
    assert truth.heat_kwh["dhw"] > 0.0
    assert abs(model.indoor_temp - house.setpoint) < 0.3  # the demand is still the thermostat's
    stored = house.thermal_mass_j_per_k * (model.indoor_temp - house.initial_temp)
    external = truth.external_heat_kwh * 3.6e6
    assert external + house.gains_w * DAY - losses == pytest.approx(stored, abs=1e-6 * external)
    assert model_at(-3.0).truth.external_heat_kwh == 0.0


def test_a_running_compressor_stops_after_its_minimum_run_when_heating_is_withheld() -> None:
    model = model_at(-3.0)
    while model.mode != "heating":
        model.step(10.0)
    started = model.now
    model.heating_enabled = False
    while model.mode == "heating":
        model.step(10.0)
    assert model.mode == "off"
    assert (model.now - started).total_seconds() == pytest.approx(model.heatpump.min_run_s,
                                                                  abs=20.0)
    model.heating_enabled = True
    model.step(HOUR)
    assert model.mode in ("heating", "defrost")


def test_withheld_hot_water_is_not_made() -> None:
    model = model_at(3.0, hp=HeatPump(tank=DhwTank(initial_temp=40.0)))
    model.dhw_enabled = False
    modes = modes_every_10s(model, DAY)
    assert "dhw" not in modes
    assert model.truth.heat_kwh["dhw"] == 0.0
    model.dhw_enabled = True
    modes = modes_every_10s(model, DAY)  # the next scheduled reheat runs
    assert "dhw" in modes


def test_extra_reheat_slots() -> None:
    tank = DhwTank(initial_temp=40.0, extra_reheat_hours_utc=(14.0,),
                   draws=((6.0, 3.0), (12.0, 3.0)))
    model = model_at(3.0, hp=HeatPump(tank=tank))
    hours = set()
    for _ in range(round(DAY / 60)):
        model.step(60.0)
        if model.mode == "dhw":
            hours.add(model.now.hour)
    assert {4, 14} <= hours
    assert all(4 <= h < 6 or 14 <= h < 16 for h in hours)


def test_demand_is_what_a_modulating_heat_pump_delivers() -> None:
    model = model_at(0.0)
    steady = model.house.heat_loss_w_per_k * 20.0 - model.house.gains_w
    assert model.demand_w == steady  # before the first step: no PI correction yet
    hp = model.heatpump
    modulating = 0
    for _ in range(round(DAY / 10)):
        model.step(10.0)
        if model.mode == "heating" and hp.min_modulation * hp.max_heat_w(0.0) < model.demand_w:
            assert model.heat_power == model.demand_w
            modulating += 1
    assert modulating > DAY / 10 / 2


# -- a realistic winter --------------------------------------------------------------------------


@dataclass
class Trace:
    model: HeatPumpModel
    indoor_before: list[float]
    outdoor: list[float]
    snapshots: list[dict[str, float | str]]
    counters: list[dict[str, float]]


@pytest.fixture(scope="module")
def winter_week() -> Trace:
    """The first week of January on the De Bilt course, in 10 s steps (one sub-step each)."""
    model = HeatPumpModel(House(), HeatPump(), OutdoorCourse(seed=0), JANUARY)
    trace = Trace(model, [], [], [], [])
    for _ in range(round(7 * DAY / 10)):
        trace.indoor_before.append(model.indoor_temp)
        model.step(10.0)
        trace.outdoor.append(model.outdoor_temp)
        trace.snapshots.append(model.snapshot())
        trace.counters.append(counters(model))
    return trace


def test_house_energy_balance(winter_week: Trace) -> None:
    model, house = winter_week.model, winter_week.model.house
    truth = model.truth
    delivered = (truth.heat_kwh["heating"] + truth.heat_kwh["defrost"]) * 3.6e6
    gains = house.gains_w * 7 * DAY
    losses = sum(
        house.heat_loss_w_per_k * (t_in - t_out) * 10.0
        for t_in, t_out in zip(winter_week.indoor_before, winter_week.outdoor, strict=True)
    )
    stored = house.thermal_mass_j_per_k * (model.indoor_temp - house.initial_temp)
    assert delivered + gains - losses == pytest.approx(stored, abs=1e-6 * delivered)
    assert delivered > 0.8 * losses  # the heat pump, not the gains, heats the house


def test_indoor_temperature_held_near_setpoint(winter_week: Trace) -> None:
    settled = [s["room.temp"] for s in winter_week.snapshots[round(DAY / 10) :]]
    assert all(isinstance(t, float) and abs(t - 20.0) <= 1.0 for t in settled)


def test_counters_are_monotonic_and_match_the_truth(winter_week: Trace) -> None:
    for before, after in itertools.pairwise(winter_week.counters):
        for key in COUNTERS:
            assert after[key] >= before[key], key
    model = winter_week.model
    truth = model.truth
    assert set(truth.heat_kwh) == set(truth.electric_kwh) == set(MODES)
    assert truth.heat_kwh["defrost"] < 0.0 < truth.heat_kwh["dhw"]
    assert truth.heat_kwh["cooling"] == truth.heat_kwh["off"] == 0.0
    assert model.heat_energy_kwh == pytest.approx(truth.positive_heat_kwh, rel=1e-12)
    assert model.heat_energy_heating_kwh == truth.heat_kwh["heating"]
    assert model.heat_energy_dhw_kwh == truth.heat_kwh["dhw"]
    assert model.electric_energy_kwh == pytest.approx(truth.electric_total_kwh, rel=1e-12)
    booked = model.electric_energy_heating_kwh + model.electric_energy_dhw_kwh
    assert booked + truth.electric_kwh["off"] == pytest.approx(model.electric_energy_kwh)
    assert truth.running_seconds + truth.mode_seconds["off"] == pytest.approx(7 * DAY)
    assert truth.net_heat_kwh == pytest.approx(truth.positive_heat_kwh + truth.heat_kwh["defrost"])


def test_snapshot_uses_the_vocabulary(winter_week: Trace) -> None:
    snapshot = winter_week.snapshots[-1]
    assert set(snapshot) == {
        *COUNTERS,
        "hp.supply_temp",
        "hp.return_temp",
        "hp.outdoor_temp",
        "hp.flow",
        "hp.compressor_freq",
        "hp.mode",
        "hp.heat_power",
        "hp.electric_power",
        "hp.dhw_temp",
        "room.temp",
    }
    assert {s["hp.mode"] for s in winter_week.snapshots} == {"off", "heating", "dhw", "defrost"}
    assert winter_week.model.now == JANUARY + timedelta(days=7)


def test_winter_month_spf_is_realistic() -> None:
    model = HeatPumpModel(House(), HeatPump(), OutdoorCourse(seed=5), JANUARY, seed=5)
    model.step(31 * DAY)
    truth = model.truth
    assert 2.5 <= truth.spf <= 5.0
    assert truth.spf < truth.positive_heat_kwh / truth.electric_total_kwh  # defrost costs
    heating_cop = truth.heat_kwh["heating"] / truth.electric_kwh["heating"]
    dhw_cop = truth.heat_kwh["dhw"] / truth.electric_kwh["dhw"]
    assert dhw_cop < heating_cop


def test_spf_is_nan_before_anything_ran() -> None:
    assert math.isnan(model_at(5.0).truth.spf)


# -- determinism and stepping --------------------------------------------------------------------


def test_same_seed_same_trajectory() -> None:
    def trajectory(seed: int) -> list[dict[str, float | str]]:
        model = HeatPumpModel(House(), HeatPump(), OutdoorCourse(seed=2), JANUARY, seed=seed)
        out = []
        for _ in range(2 * 24 * 60):
            model.step(60.0)
            out.append(model.snapshot())
        return out

    first = trajectory(7)
    assert first == trajectory(7)
    assert first != trajectory(8)  # the model's own randomness: draws and defrost intervals


def test_rejects_bad_steps_and_naive_start() -> None:
    model = model_at(5.0)
    model.step(0.0)
    assert model.now == JANUARY
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="non-negative"):
            model.step(bad)
    with pytest.raises(ValueError, match="timezone"):
        model_at(5.0, start=datetime(2024, 1, 1))


SPAN_MS = 6 * 3_600_000  # 02:00-08:00 UTC: a start, the 05:00 CET reheat, a draw, defrosts
_TANK = DhwTank(initial_temp=40.0)


def _six_hours(steps: list[float]) -> HeatPumpModel:
    model = model_at(2.0, start=JANUARY + timedelta(hours=2), hp=HeatPump(tank=_TANK))
    for dt in steps:
        model.step(dt)
    return model


@functools.cache
def _reference() -> HeatPumpModel:
    return _six_hours([10.0] * round(SPAN_MS / 10_000))


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, SPAN_MS - 1), max_size=40, unique=True))
def test_step_partition_does_not_change_the_result(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), SPAN_MS]
    model = _six_hours([(b - a) / 1000.0 for a, b in itertools.pairwise(points)])
    reference = _reference()
    assert reference.truth.mode_seconds["dhw"] > 0.0
    assert reference.truth.mode_seconds["defrost"] > 0.0
    assert (model.now - reference.now).total_seconds() == pytest.approx(0.0, abs=1e-3)
    # Mode switches land on sub-step boundaries, so they may shift by up to one sub-step.
    for key in COUNTERS:
        assert counters(model)[key] == pytest.approx(counters(reference)[key], rel=0.01, abs=0.05)
    assert model.indoor_temp == pytest.approx(reference.indoor_temp, abs=0.05)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0.0, 7200.0), min_size=1, max_size=20))
def test_counters_never_decrease(steps: list[float]) -> None:
    model = HeatPumpModel(House(), HeatPump(), OutdoorCourse(seed=1), JANUARY)
    previous = counters(model)
    for dt in steps:
        model.step(dt)
        current = counters(model)
        for key in COUNTERS:
            assert current[key] >= previous[key], key
        previous = current
    assert (model.now - JANUARY).total_seconds() == pytest.approx(sum(steps), abs=1e-3)
