"""A hybrid installation for the bench: one house, an air-to-water heat pump and a gas combi boiler.

From 2026 a Dutch boiler replacement must be at least a hybrid heat pump, and its performance
assurance is judged on the heat pump's seasonal performance and on its share of the heat (heat
coverage). :class:`HybridInstallation` couples the bench's two physical models so that a season
can be simulated with an exact ground truth for both: :class:`hil.heatpump_model.HeatPumpModel`
owns the house node, the heat pump, its hot water tank and its defrosts;
:class:`hil.boiler_model.BoilerModel` owns the burner, its gas and its tap draws. Besides them the
house has a household electricity load (:class:`hil.p1_meter.HouseholdLoad`) and the boiler's own
electrics (fan and pump), so that the smart meter's import counter can be modelled exactly.

The hybrid controller (what Dutch hybrid units do, simplified):

* Space heating is the heat pump's. The heating controller inside the heat pump model (feed-forward
  on the outdoor temperature plus a PI on the indoor temperature) acts as the house thermostat:
  its output :attr:`~hil.heatpump_model.HeatPumpModel.demand_w` is what the house needs.
* Below the **bivalent point** (outdoor < ``bivalent_temp``; back above ``bivalent_temp +
  bivalent_hysteresis_k``) the heat pump's space heating is switched off (a running compressor
  finishes its minimum run time) and the boiler is asked for the whole demand.
* Above it the boiler **tops up**: it is asked for ``demand - maximum heat pump output`` whenever
  that is positive, i.e. when the heat pump at full output cannot meet the demand (deep cold,
  recovery after a hot water run or a defrost).
* The boiler's space-heating heat goes into the house node
  (:attr:`~hil.heatpump_model.HeatPumpModel.external_heat_w`), so both appliances heat one house.
  The boiler modulates and cycles on its own (minimum modulation, anti-cycling time), which makes
  its top-up runs the short cycles a performance check looks for.
* Hot water (``dhw``): ``"boiler"`` -- the combi serves every tap draw and the heat pump has no
  tank duty; ``"heat_pump"`` -- a heat pump tank (300 l, reheated at 05:00 and 15:00 CET) serves
  every draw and the boiler makes no hot water; ``"both"`` (default) -- the heat pump's 200 l tank,
  reheated once a day at 05:00 CET, feeds the morning shower (the draws at ``tank_draw_hours``)
  and the combi serves the other taps and the evening bath. Each draw is served by exactly one
  appliance; a tank draw takes the draw's nominal heat (mains to the combi's hot water setpoint).
* Defrosts happen in the heat pump as modelled: heat is pulled out of the space-heating water.

Time advances only through :meth:`HybridInstallation.step`, in ticks of at most
:data:`MAX_TICK_S` (the heat pump's sub-step); within a tick the boiler runs its own sub-steps of
at most :data:`~hil.boiler_model.MAX_SUBSTEP_S` and the heat it delivers to the house in the tick
is handed to the heat pump model for the same tick, so energy is conserved exactly. While the
boiler is idle (no heat asked, no flame, no draw) it is not advanced tick by tick: the idle
stretch is run as one sub-step when it ends, which is exact for an idle boiler (its state only
relaxes exponentially) and keeps a season fast. Randomness comes from the seeded models.

Ground truth (:class:`HybridTruth`): exact integrals of the very sub-step values that the
counters integrate. Definitions:

* ``spf`` = (heat pump heat for heating + dhw + defrost, the last negative) / (heat pump
  electricity in all modes, standby included).
* heat coverage, space heating = heat pump (heating + defrost) heat / (that + boiler CH heat);
  hot water = heat pump DHW heat / (that + boiler DHW heat); None without any such heat.
* gas for hot water is the gas burned while the boiler's ``dhw_active`` flag is set; all other
  gas is space heating. Boiler heat is gas input times efficiency, on the upper calorific value.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal, get_args

from drivers.reading import Value
from drivers.vocabulary import VOCABULARY
from hil import boiler_model, heatpump_model, house
from hil.boiler_model import DEFAULT_DRAWS, Boiler, BoilerModel, BoilerTruth, TapDraw
from hil.heat_meter import HeatMeter, HeatMeterModel
from hil.heatpump_model import GroundTruth, HeatPumpModel
from hil.heatpump_unit import HeatPump
from hil.house import DhwTank, Emitters, House, Outdoor
from hil.p1_meter import HouseholdLoad

DhwSource = Literal["boiler", "heat_pump", "both"]

MAX_TICK_S: Final = heatpump_model.MAX_SUBSTEP_S  # the coupling interval: a heat pump sub-step
OUTDOOR_KNOT_S: Final = 300.0  # the outdoor course is evaluated this often and interpolated
MODULATION_STEP: Final = 1.0  # % : the boiler reports its modulation in whole percent
_J_PER_KWH = 3.6e6
_WATER_CP = 4186.0  # J/(kg·K), as in the two models
_DAY_S = 86_400.0
_SLOT_S = 600.0  # HouseholdLoad is constant within each 10-minute slot of Unix time

# A hybrid's heat pump is smaller than an all-electric one: 4 kW at A7/W35 (flow for ΔT ≈ 5 K);
# its heating curve is the one the house's radiators need (HYBRID_HOUSE): 50 °C at -10 °C.
HYBRID_HEAT_PUMP: Final = HeatPump(nominal_heat_w=4000.0, design_flow_lpm=11.5,
                                   curve_mild=(10.0, 32.0))
# Radiators of 11.5 kW at 75/65/20 °C: the house's 5.1 kW at -10 °C with 50 °C supply and the
# hybrid's flow, i.e. the Dutch "low temperature ready" design (ISSO 51 heat loss, 50 °C design
# supply); HYBRID_HEAT_PUMP's straight curve matches them within 0.5 K from -10 to +15 °C.
HYBRID_HOUSE: Final = House(emitters=Emitters(nominal_w=11_500.0))


def draw_kwh(draw: TapDraw, boiler: Boiler) -> float:
    """Nominal heat of a tap draw: its water heated from mains to the hot water setpoint."""
    litres = draw.flow_lpm * draw.seconds / 60.0
    return litres * _WATER_CP * (boiler.dhw_setpoint - boiler.cold_water_temp) / _J_PER_KWH


@dataclass(frozen=True, slots=True)
class HybridConfig:
    """The installation: appliances, the hybrid controller's settings and who makes hot water."""

    house: House = HYBRID_HOUSE
    heatpump: HeatPump = HYBRID_HEAT_PUMP
    boiler: Boiler = field(default_factory=Boiler)
    bivalent_temp: float = -2.0  # °C: below it the boiler takes over space heating
    bivalent_hysteresis_k: float = 1.0  # the heat pump is released again at bivalent + this
    dhw: DhwSource = "both"
    draws: tuple[TapDraw, ...] = DEFAULT_DRAWS  # the household's daily hot water use
    tank_draw_hours: tuple[float, ...] = (6.5,)  # "both": the draws the heat pump tank serves
    draw_spread: float = 0.2  # each draw varies by U(1 - spread, 1 + spread)
    tank: DhwTank | None = None  # None: 200 l ("both") or 300 l reheated twice ("heat_pump")
    boiler_standby_w: float = 3.0  # the boiler's electronics
    boiler_burner_w: float = 45.0  # fan and pump while the flame burns
    heat_meter: HeatMeter | None = None  # a heat meter on the heat pump's flow
    frozen_sensor: str | None = None  # a quantity whose reading stops changing (a dead sensor)
    frozen_after_s: float = 0.0  # ... this long after the start

    def __post_init__(self) -> None:
        if self.dhw not in get_args(DhwSource):
            raise ValueError(f"dhw must be one of {get_args(DhwSource)}, not {self.dhw!r}")
        if self.frozen_sensor is not None and self.frozen_sensor not in VOCABULARY:
            raise ValueError(f"frozen_sensor {self.frozen_sensor!r} is not a quantity")
        if self.bivalent_hysteresis_k < 0.0:
            raise ValueError("bivalent_hysteresis_k must not be negative")

    def split_draws(self) -> tuple[tuple[TapDraw, ...], tuple[TapDraw, ...]]:
        """(draws the heat pump tank serves, draws the combi boiler serves)."""
        if self.dhw == "boiler":
            return (), self.draws
        if self.dhw == "heat_pump":
            return self.draws, ()
        tank = tuple(d for d in self.draws if d.hour in self.tank_draw_hours)
        return tank, tuple(d for d in self.draws if d.hour not in self.tank_draw_hours)

    def heat_pump_with_tank(self) -> HeatPump:
        """The heat pump with its tank, whose draws are the ones :meth:`split_draws` gives it."""
        tank_draws, _ = self.split_draws()
        tank = self.tank
        if tank is None:
            tank = (DhwTank(volume_l=300.0, extra_reheat_hours_utc=(14.0,))
                    if self.dhw == "heat_pump" else DhwTank())
        draws = tuple((d.hour, draw_kwh(d, self.boiler)) for d in tank_draws)
        return replace(self.heatpump, tank=replace(tank, draws=draws,
                                                   draw_spread=self.draw_spread))


@dataclass(frozen=True, slots=True)
class HybridTruth:
    """Exact integrals since the installation's start (kWh, m³, seconds)."""

    heatpump: GroundTruth
    boiler: BoilerTruth
    household_kwh: float
    boiler_electricity_kwh: float
    seconds: float
    daily_mean_outdoor: dict[date, float]  # time mean of the outdoor temperature the models ran on

    @property
    def heat_kwh(self) -> float:
        """Heat pump heat, all modes, defrost (negative) included."""
        return self.heatpump.net_heat_kwh

    @property
    def heat_kwh_by_mode(self) -> dict[str, float]:
        h = self.heatpump.heat_kwh
        return {"heating": h["heating"], "dhw": h["dhw"], "defrost": h["defrost"]}

    @property
    def electricity_kwh(self) -> float:
        """Heat pump electricity, all modes, standby included."""
        return self.heatpump.electric_total_kwh

    @property
    def electricity_kwh_by_mode(self) -> dict[str, float]:
        """Per mode; ``standby`` is the use while off (running modes include the unit's standby)."""
        e = self.heatpump.electric_kwh
        return {"heating": e["heating"], "dhw": e["dhw"], "defrost": e["defrost"],
                "standby": e["off"]}

    @property
    def spf(self) -> float:
        return self.heatpump.spf

    @property
    def boiler_heat_kwh(self) -> dict[str, float]:
        return {"ch": self.boiler.heat_ch_kwh, "dhw": self.boiler.heat_dhw_kwh}

    @property
    def gas_m3(self) -> dict[str, float]:
        b = self.boiler
        return {"total": b.gas_m3, "ch": b.gas_ch_m3, "dhw": b.gas_dhw_m3}

    @property
    def heat_coverage(self) -> dict[str, float | None]:
        h = self.heatpump.heat_kwh
        return {"space_heating": _share(h["heating"] + h["defrost"], self.boiler.heat_ch_kwh),
                "hot_water": _share(h["dhw"], self.boiler.heat_dhw_kwh)}

    @property
    def grid_import_kwh(self) -> float:
        """Household + heat pump + boiler electricity: what the smart meter counts."""
        return self.household_kwh + self.electricity_kwh + self.boiler_electricity_kwh


def _share(heat_pump: float, boiler: float) -> float | None:
    total = heat_pump + boiler
    return heat_pump / total if total > 0.0 else None


class _TickOutdoor:
    """The outdoor course as both models see it: interpolated between knots, once per tick.

    The course is evaluated every :data:`OUTDOOR_KNOT_S` seconds of Unix time and linearly
    interpolated in between: its curvature (a diurnal swing of at most 4.5 K, weather systems of
    two days and more) keeps the error below 0.001 K, and a season needs 30x fewer evaluations.
    """

    __slots__ = ("_knot", "_slope", "_v0", "course", "t", "value")

    def __init__(self, course: Outdoor) -> None:
        self.course = course
        self.t = math.nan
        self.value = math.nan
        self._knot = math.nan  # start of the knot interval in use
        self._v0 = self._slope = 0.0

    def at_posix(self, ts: float) -> float:
        if ts != self.t:
            knot = ts // OUTDOOR_KNOT_S * OUTDOOR_KNOT_S
            if knot != self._knot:
                v0 = (self._v0 + self._slope * OUTDOOR_KNOT_S
                      if knot == self._knot + OUTDOOR_KNOT_S else self.course.at_posix(knot))
                v1 = self.course.at_posix(knot + OUTDOOR_KNOT_S)
                self._knot, self._v0, self._slope = knot, v0, (v1 - v0) / OUTDOOR_KNOT_S
            self.t, self.value = ts, self._v0 + self._slope * (ts - knot)
        return self.value

    def current(self, _ts: float) -> float:
        """The boiler's outdoor sensor: the value of the tick being simulated."""
        return self.value


class HybridInstallation:
    """Heat pump + combi boiler + household in one house, advanced by :meth:`step`.

    After a step, :attr:`heatpump` and :attr:`boiler` describe the last sub-step like the
    stand-alone models do; :meth:`snapshot` is what the two appliances report;
    :meth:`take_events` hands over the boiler's state changes (flame, CH, DHW, modulation in
    steps of :data:`MODULATION_STEP`) with their times; :attr:`truth` has the exact integrals.
    ``household`` gives the household's electricity use (W) at a time; it is read once per
    10-minute slot of Unix time, within which :class:`~hil.p1_meter.HouseholdLoad` (the default,
    seeded from ``seed``) is constant.
    """

    def __init__(self, config: HybridConfig | None = None, *, outdoor: Outdoor, start: datetime,
                 seed: int = 0, household: Callable[[datetime], float] | None = None) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be a timezone-aware datetime")
        self.config = cfg = config or HybridConfig()
        rng = random.Random(seed)
        hp_seed, boiler_seed, household_seed = (rng.getrandbits(32) for _ in range(3))
        self._start = start.astimezone(UTC)
        self._t0 = self._start.timestamp()
        self._elapsed = 0.0
        self.now: datetime = self._start
        self._outdoor = _TickOutdoor(outdoor)
        self._outdoor.at_posix(self._t0)
        self.household = household or HouseholdLoad(household_seed)

        self.heatpump = HeatPumpModel(cfg.house, cfg.heat_pump_with_tank(), self._outdoor,
                                      self._start, seed=hp_seed)
        self.heatpump.dhw_enabled = cfg.dhw != "boiler"
        _, boiler_draws = cfg.split_draws()
        self.boiler_demand_w = 0.0  # what the hybrid controller asks of the boiler, W
        boiler = replace(cfg.boiler, room_setpoint=cfg.house.setpoint)
        self.boiler = BoilerModel(boiler, start=self._start, outdoor=self._outdoor.current,
                                  heat_demand=self._boiler_demand, draws=boiler_draws,
                                  draw_spread=cfg.draw_spread, seed=boiler_seed)
        self.heatpump.heating_enabled = self._outdoor.value >= cfg.bivalent_temp
        self.heat_meter = (None if cfg.heat_meter is None
                           else HeatMeterModel(cfg.heat_meter, self._t0))
        self._frozen: Value | None = None  # the dead sensor's last reading

        self._idle_s = 0.0  # boiler time owed: an idle stretch not yet simulated
        self._draw_seconds = [d.hour * 3600.0 for d in boiler_draws]  # the draws' second of day
        self._next_draw = self._draw_from(self._t0)
        self._timeline_seen = len(self.boiler.timeline)
        self._modulation = 0.0
        self._events: list[tuple[float, str, Value]] = []
        self._household_j = 0.0
        self._slot = -1
        self._slot_w = 0.0
        self._days: dict[int, tuple[float, float]] = {}  # UTC day number -> (∫T dt, seconds)
        self._day = int(self._t0 // _DAY_S)  # the day being summed up
        self._day_end = (self._day + 1) * _DAY_S
        self._day_integral = self._day_seconds = 0.0
        # The controller's thresholds.
        self._release_below = cfg.bivalent_temp
        self._release_at = cfg.bivalent_temp + cfg.bivalent_hysteresis_k

    # -- reading ---------------------------------------------------------------------------------

    @property
    def t(self) -> float:
        """Unix time of :attr:`now`."""
        return self._t0 + self._elapsed

    @property
    def heat_pump_released(self) -> bool:
        """Whether the hybrid controller lets the heat pump heat the house (above bivalent)."""
        return self.heatpump.heating_enabled

    @property
    def modulation(self) -> float:
        """The boiler's modulation as reported: % of maximum input, in whole percent."""
        return self._modulation

    @property
    def household_kwh(self) -> float:
        return self._household_j / _J_PER_KWH

    @property
    def household_w(self) -> float:
        """The household's electricity use at :attr:`now`."""
        return self._household_w(self.t)

    @property
    def boiler_electricity_kwh(self) -> float:
        cfg = self.config
        joules = (cfg.boiler_standby_w * self._elapsed
                  + cfg.boiler_burner_w * self.boiler.burner_seconds)
        return joules / _J_PER_KWH

    @property
    def boiler_electric_w(self) -> float:
        cfg = self.config
        return cfg.boiler_standby_w + (cfg.boiler_burner_w if self.boiler.flame else 0.0)

    @property
    def grid_import_kwh(self) -> float:
        """Exact electricity import so far: household + heat pump + boiler."""
        return self.household_kwh + self.heatpump.electric_energy_kwh + self.boiler_electricity_kwh

    @property
    def grid_power_w(self) -> float:
        return self.household_w + self.heatpump.electric_power + self.boiler_electric_w

    @property
    def truth(self) -> HybridTruth:
        days = {**self._days, self._day: (self._day_integral, self._day_seconds)}
        means = {datetime.fromtimestamp(day * _DAY_S, UTC).date(): s / n
                 for day, (s, n) in sorted(days.items()) if n > 0.0}
        return HybridTruth(self.heatpump.truth, self.boiler.truth, self.household_kwh,
                           self.boiler_electricity_kwh, self._elapsed, means)

    def snapshot(self) -> dict[str, Value]:
        """What the heat pump (Modbus) and the boiler (OpenTherm) report, in the vocabulary.

        ``room.temp`` is the house's; ``boiler.modulation`` is :attr:`modulation`; a heat meter
        adds its ``heatmeter.*`` readings; a dead sensor (``frozen_sensor``) keeps the reading it
        had at ``frozen_after_s``.
        """
        hp = self.heatpump
        heatpump = hp.snapshot()
        values: dict[str, Value] = {**heatpump, **self.boiler.snapshot()}
        values["room.temp"] = heatpump["room.temp"]  # the house's, not the boiler's estimate
        values["boiler.modulation"] = self._modulation
        if self.heat_meter is not None:
            values.update(self.heat_meter.snapshot(hp.supply_temp, hp.return_temp, hp.flow,
                                                   hp.heat_power))
        frozen = self.config.frozen_sensor
        if frozen is not None and self._elapsed >= self.config.frozen_after_s:
            if self._frozen is None:
                self._frozen = values[frozen]
            values[frozen] = self._frozen
        return values

    def take_events(self) -> list[tuple[float, str, Value]]:
        """Boiler state changes since the last call: (Unix time, quantity, value), in order."""
        events, self._events = self._events, []
        return events

    # -- time ------------------------------------------------------------------------------------

    def step(self, dt: float) -> None:
        """Advance ``dt`` seconds, in equal ticks of at most :data:`MAX_TICK_S`."""
        if not dt >= 0.0 or math.isinf(dt):
            raise ValueError(f"step needs a finite, non-negative duration, got {dt!r}")
        if dt == 0.0:
            return
        t_begin = self.t
        n = max(math.ceil(dt / MAX_TICK_S), 1)
        h = dt / n
        for _ in range(n):
            self._tick(h)
        if self._idle_s:
            self._coast()
        self._household_j += self._household_energy(t_begin, self.t)
        self.now = self._start + timedelta(seconds=self._elapsed)
        self.boiler.now = self.now  # the boiler's substeps do not set it

    def _boiler_demand(self, _t: float) -> float:
        return self.boiler_demand_w

    def _draw_from(self, t: float) -> float:
        """Unix time of the first boiler tap draw that starts at or after ``t`` (inf: none)."""
        if not self._draw_seconds:
            return math.inf
        day, i = house.first_daily_event(self._draw_seconds, t)
        return day + self._draw_seconds[i]

    def _tick(self, h: float) -> None:
        hp = self.heatpump
        boiler = self.boiler
        t = self._t0 + self._elapsed
        t_out = self._outdoor.at_posix(t)

        # The hybrid controller: who heats the house in this tick.
        if hp.heating_enabled:
            if t_out < self._release_below:
                hp.heating_enabled = False
        elif t_out >= self._release_at:
            hp.heating_enabled = True
        demand = hp.demand_w  # the house's need as the heating controller saw it last
        if not hp.heating_enabled:
            residual = demand
        else:
            residual = max(demand - hp.heatpump.max_heat_w(t_out), 0.0)

        if t > self._next_draw:
            self._next_draw = self._draw_from(t)
        if (residual == 0.0 and not boiler.flame and not boiler.dhw_active
                and t + h <= self._next_draw):
            self._idle_s += h
            hp.external_heat_w = 0.0
        else:
            if self._idle_s:
                self._coast()
            self.boiler_demand_w = residual
            hp.external_heat_w = self._run_boiler(h)

        hp.step(h)
        if self.heat_meter is not None:
            self.heat_meter.advance(t, h, hp.heat_power)
        self._elapsed += h
        if t >= self._day_end:  # a tick counts for the UTC day it starts in
            self._days[self._day] = (self._day_integral, self._day_seconds)
            self._day = int(t // _DAY_S)
            self._day_end = (self._day + 1) * _DAY_S
            self._day_integral = self._day_seconds = 0.0
        self._day_integral += t_out * h
        self._day_seconds += h

    def _run_boiler(self, h: float) -> float:
        """Run the boiler through a tick; the mean heat it put into the heating circuit, W."""
        boiler = self.boiler
        n = max(math.ceil(h / boiler_model.MAX_SUBSTEP_S), 1)
        hb = h / n
        t = self._t0 + self._elapsed
        to_house_j = 0.0
        for i in range(n):
            boiler.substep(hb)
            if boiler.flame and not boiler.dhw_active:
                to_house_j += boiler.heat_w * hb
            self._observe(t + i * hb)
        return to_house_j / h

    def _coast(self) -> None:
        """Simulate the owed idle stretch of the boiler in one sub-step (nothing asked of it)."""
        boiler = self.boiler
        self.boiler_demand_w = 0.0
        start = self._t0 + self._elapsed - self._idle_s
        boiler.substep(self._idle_s)
        self._idle_s = 0.0
        self._observe(start)

    def _observe(self, t: float) -> None:
        """Collect the boiler's flag changes and a changed modulation of the sub-step at t."""
        timeline = self.boiler.timeline
        if len(timeline) != self._timeline_seen:
            self._events.extend(timeline[self._timeline_seen:])
            self._timeline_seen = len(timeline)
        modulation = round(self.boiler.modulation / MODULATION_STEP) * MODULATION_STEP
        if modulation != self._modulation:
            self._modulation = modulation
            self._events.append((t, "boiler.modulation", modulation))

    def _household_w(self, t: float) -> float:
        slot = int(t // _SLOT_S)
        if slot != self._slot:
            self._slot = slot
            self._slot_w = self.household(datetime.fromtimestamp(slot * _SLOT_S, UTC))
        return self._slot_w

    def _household_energy(self, t0: float, t1: float) -> float:
        """Exact ∫ household power over [t0, t1): the load is constant within each slot."""
        energy = 0.0
        t = t0
        while t < t1:
            end = min(t1, (int(t // _SLOT_S) + 1) * _SLOT_S)
            energy += self._household_w(t) * (end - t)
            t = end
        return energy
