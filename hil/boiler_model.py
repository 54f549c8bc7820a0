"""Physical model of a gas combi boiler (central heating + instantaneous hot water) for the bench.

A hybrid heat pump's savings are measured against the gas the boiler burns, split into space
heating and hot water. The bench's OpenTherm Gateway emulator shows this model's state to the
agent, and the bench then holds the agent's gas split against this model's ground truth. As for
:mod:`hil.heatpump_model`: the model is deterministic (time advances only through
:meth:`BoilerModel.step`; randomness comes from one seeded ``random.Random``), and the ground
truth integrates the very sub-step values the counters integrate.

Physics and control, deliberately simple but with what a gas ledger has to get right:

* Gas. Modulation is the burner's input as a percentage of its maximum input, so the gas rate
  is ``modulation · max input / calorific value``; the burner cannot modulate below
  ``min_modulation`` (typically 20-30 %). Inputs are stated on the upper (gross) calorific
  value, which for Dutch natural gas of Groningen quality is :data:`CALORIFIC_VALUE_MJ_M3` =
  35.17 MJ/m³(n), the value Dutch gas bills use. Note that the OpenTherm specification defines
  data-id 17 differently, as the position between minimum (0 %) and maximum (100 %)
  modulation; boilers differ in which they report, and a ledger weighting gas by modulation
  must know which (id 15 gives the boiler's minimum modulation level).
* Space heating. The house asks for ``heat_demand(t)`` watts. While that is above the burner's
  minimum output the boiler modulates to it; below, it cycles: it burns at minimum until it has
  delivered a band of surplus heat, stops, and may not reignite for heating before its
  anti-cycling time has passed (the short cycling a performance check looks for).
* Hot water. Tap draws (a daily schedule) have priority: the burner fires at once, modulating
  to heat the drawn water from mains to the hot water setpoint, and heating waits.
* Temperatures follow first-order lags (supply toward the control setpoint while burning,
  toward the room when idle); return = supply - Q/(ṁ·cp).

The OpenTherm state flags follow the specification's meaning: ``ch_active`` and ``dhw_active``
say which mode the boiler is in, ``flame`` whether the burner burns. Gas burned while
``dhw_active`` is hot water; all other gas is space heating.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from drivers.reading import Value
from hil.house import House, first_daily_event

CALORIFIC_VALUE_MJ_M3: Final = 35.17  # Hs of Groningen-quality natural gas, MJ per m³(n)
MAX_SUBSTEP_S: Final = 2.0
_J_PER_M3 = CALORIFIC_VALUE_MJ_M3 * 1e6
_J_PER_KWH = 3.6e6
_WATER_CP = 4186.0  # J/(kg·K); 1 l of water is taken as 1 kg
_DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class Boiler:
    """A 24 kW condensing combi boiler as found in Dutch terraced houses."""

    max_input_w: float = 24_000.0  # gas input at 100 % modulation (upper calorific value)
    min_modulation: float = 25.0  # % of max input
    efficiency: float = 0.88  # heat to water per gas input (upper calorific value basis)
    ch_flow_lpm: float = 12.0  # central heating pump flow
    anti_cycle_s: float = 300.0  # minimum off time before reigniting for heating
    cycling_band_wh: float = 150.0  # surplus/deficit of heat that stops/starts a heating burn
    correction_s: float = 600.0  # time over which modulation works off a heat deficit
    curve: tuple[tuple[float, float], tuple[float, float]] = ((15.0, 30.0), (-10.0, 75.0))
    idle_setpoint: float = 10.0  # control setpoint a thermostat sends without heat demand
    dhw_setpoint: float = 55.0  # °C at the tap
    cold_water_temp: float = 10.0  # °C mains water
    supply_tau_s: float = 60.0  # supply sensor settles within minutes once burning
    idle_tau_s: float = 600.0  # standing water cools toward the room
    dhw_tau_s: float = 15.0  # the plate heat exchanger follows the burner quickly
    pressure_bar: float = 1.5  # cold system pressure
    expansion_bar_per_k: float = 0.004  # pressure rise as the water warms
    room_temp: float = 20.0  # °C, where idle water cools to
    room_setpoint: float = 20.0  # °C, the thermostat's setpoint

    def control_setpoint(self, outdoor: float) -> float:
        """The weather-compensated supply setpoint a modulating thermostat sends (id 1)."""
        (t_mild, s_mild), (t_cold, s_cold) = self.curve
        x = min(max(outdoor, t_cold), t_mild)
        return s_cold + (s_mild - s_cold) * (x - t_cold) / (t_mild - t_cold)

    @property
    def min_heat_w(self) -> float:
        return self.max_input_w * self.min_modulation / 100.0 * self.efficiency

    def gas_rate_m3_per_h(self, modulation: float) -> float:
        """Gas flow at ``modulation`` % of the maximum input."""
        return self.max_input_w * modulation / 100.0 * 3600.0 / _J_PER_M3


@dataclass(frozen=True, slots=True)
class TapDraw:
    """A hot water draw that recurs daily at ``hour`` (UTC)."""

    hour: float
    seconds: float
    flow_lpm: float


# A shower in the morning, two kitchen taps and a bath in the evening.
DEFAULT_DRAWS: Final = (TapDraw(6.5, 420.0, 7.0), TapDraw(12.25, 45.0, 5.0),
                        TapDraw(18.0, 60.0, 5.0), TapDraw(20.5, 480.0, 9.0))


def house_demand(outdoor: Callable[[float], float], house: House) -> Callable[[float], float]:
    """Heat demand (W) of ``house`` at Unix time ``t``: its steady demand, never negative."""

    def demand(t: float) -> float:
        return max(house.steady_demand_w(outdoor(t)), 0.0)

    return demand


@dataclass(frozen=True, slots=True)
class BoilerTruth:
    """Exact integrals since the model's start."""

    gas_m3: float
    gas_ch_m3: float
    gas_dhw_m3: float
    heat_ch_kwh: float
    heat_dhw_kwh: float
    burner_starts: int
    dhw_burner_starts: int
    burner_seconds: float
    dhw_burner_seconds: float


class BoilerModel:
    """The boiler and its thermostat, advanced by :meth:`step`.

    Public state describes the last sub-step: temperatures at its end, modulation and flags as
    held during it. :attr:`timeline` lists every change of flame, CH mode and DHW mode as
    ``(Unix time, quantity, value)``, its initial state included, for judging an agent's
    timeline. Setting :attr:`fault` raises the OpenTherm fault flag (the bench's lockout).
    """

    def __init__(self, boiler: Boiler | None = None, *, start: datetime,
                 outdoor: Callable[[float], float], heat_demand: Callable[[float], float] | None
                 = None, draws: tuple[TapDraw, ...] = DEFAULT_DRAWS, draw_spread: float = 0.2,
                 seed: int = 0) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be a timezone-aware datetime")
        self.boiler = boiler or Boiler()
        self.outdoor = outdoor
        # The terraced house of hil.heatpump_model, kept at the thermostat's setpoint.
        self.house = House(setpoint=self.boiler.room_setpoint)
        self.heat_demand = heat_demand or house_demand(outdoor, self.house)
        self.draws = tuple(sorted(draws, key=lambda d: d.hour))
        self.draw_spread = draw_spread
        self._rng = random.Random(seed)
        self._start = start.astimezone(UTC)
        self._t0 = self._start.timestamp()
        self._elapsed = 0.0
        b = self.boiler

        self.now: datetime = self._start
        self.fault = False
        self.outdoor_temp: float = outdoor(self._t0)
        self.demand_w: float = self.heat_demand(self._t0)
        self.ch_enabled: bool = self.demand_w > 0.0
        self.control_setpoint: float = self._setpoint()
        self.flame = False
        self.ch_active = self.ch_enabled
        self.dhw_active = False
        self.modulation: float = 0.0
        self.supply_temp: float = b.room_temp
        self.return_temp: float = b.room_temp
        self.dhw_temp: float = b.room_temp
        self.dhw_flow: float = 0.0
        self.heat_w: float = 0.0

        self._deficit_j = 0.0
        self._ch_stopped_at = -math.inf  # no anti-cycling pending at power-up
        self._draw_until = -math.inf
        self._draw_flow = 0.0
        # The next draw to start: (start of its UTC day, index into draws).
        self._next_draw = first_daily_event([d.hour * 3600.0 for d in self.draws], self._t0)

        self._gas_m3 = [0.0, 0.0]  # [space heating, hot water]
        self._heat_j = [0.0, 0.0]
        self.burner_starts = 0
        self.dhw_burner_starts = 0
        self.burner_seconds = 0.0
        self.dhw_burner_seconds = 0.0
        self.timeline: list[tuple[float, str, bool]] = [
            (self._t0, "boiler.flame", False), (self._t0, "boiler.ch_active", self.ch_active),
            (self._t0, "boiler.dhw_active", False)]

    # -- what the boiler shows ------------------------------------------------------------------

    @property
    def next_draw_at(self) -> float:
        """Unix time at which the next tap draw starts (inf without draws)."""
        if not self.draws:
            return math.inf
        day, i = self._next_draw
        return day + self.draws[i].hour * 3600.0

    @property
    def gas_m3(self) -> float:
        return self._gas_m3[0] + self._gas_m3[1]

    @property
    def gas_rate_m3_per_h(self) -> float:
        return self.boiler.gas_rate_m3_per_h(self.modulation) if self.flame else 0.0

    @property
    def truth(self) -> BoilerTruth:
        return BoilerTruth(
            gas_m3=self.gas_m3, gas_ch_m3=self._gas_m3[0], gas_dhw_m3=self._gas_m3[1],
            heat_ch_kwh=self._heat_j[0] / _J_PER_KWH, heat_dhw_kwh=self._heat_j[1] / _J_PER_KWH,
            burner_starts=self.burner_starts, dhw_burner_starts=self.dhw_burner_starts,
            burner_seconds=self.burner_seconds, dhw_burner_seconds=self.dhw_burner_seconds)

    @property
    def pressure(self) -> float:
        b = self.boiler
        return b.pressure_bar + b.expansion_bar_per_k * (self.supply_temp - b.room_temp)

    @property
    def room_temp(self) -> float:
        """The room sags while heat is owed and overshoots while surplus is delivered."""
        return self.boiler.room_setpoint - self._deficit_j / self.house.thermal_mass_j_per_k

    def snapshot(self) -> dict[str, Value]:
        """What the boiler and thermostat show over OpenTherm, under vocabulary names."""
        return {
            "boiler.flame": self.flame,
            "boiler.ch_active": self.ch_active,
            "boiler.dhw_active": self.dhw_active,
            "boiler.ch_enabled": self.ch_enabled,
            "boiler.dhw_enabled": True,
            "boiler.fault": self.fault,
            "boiler.modulation": self.modulation,
            "boiler.control_setpoint": self.control_setpoint,
            "boiler.supply_temp": self.supply_temp,
            "boiler.return_temp": self.return_temp,
            "boiler.dhw_temp": self.dhw_temp,
            "boiler.outdoor_temp": self.outdoor_temp,
            "boiler.pressure": self.pressure,
            "boiler.dhw_flow": self.dhw_flow,
            "boiler.burner_starts": self.burner_starts,
            "boiler.burner_hours": int(self.burner_seconds // 3600),
            "boiler.dhw_burner_starts": self.dhw_burner_starts,
            "boiler.dhw_burner_hours": int(self.dhw_burner_seconds // 3600),
            "room.temp": self.room_temp,
            "room.setpoint": self.boiler.room_setpoint,
        }

    # -- time -----------------------------------------------------------------------------------

    def step(self, dt: float) -> None:
        """Advance ``dt`` seconds, in equal sub-steps of at most ``MAX_SUBSTEP_S``."""
        if not dt >= 0.0 or math.isinf(dt):
            raise ValueError(f"step needs a finite, non-negative duration, got {dt!r}")
        if dt == 0.0:
            return
        n = max(math.ceil(dt / MAX_SUBSTEP_S), 1)
        h = dt / n
        for _ in range(n):
            self.substep(h)
        self.now = self._start + timedelta(seconds=self._elapsed)

    def _start_due_draws(self, t: float) -> None:
        while self.next_draw_at <= t:
            day, i = self._next_draw
            draw = self.draws[i]
            spread = self.draw_spread
            seconds = draw.seconds * self._rng.uniform(1.0 - spread, 1.0 + spread)
            self._draw_until = max(self._draw_until, t + seconds)
            self._draw_flow = draw.flow_lpm
            self._next_draw = (day, i + 1) if i + 1 < len(self.draws) else (day + _DAY_S, 0)

    def _setpoint(self) -> float:
        b = self.boiler
        return b.control_setpoint(self.outdoor_temp) if self.ch_enabled else b.idle_setpoint

    def substep(self, h: float) -> None:
        """Advance one sub-step of ``h`` seconds, however long (:meth:`step` keeps them short).

        For a coupled simulation (:mod:`hil.hybrid`) that reads the state after every sub-step
        and runs an idle stretch as one sub-step.
        """
        b = self.boiler
        t = self._t0 + self._elapsed
        self._start_due_draws(t)
        self.outdoor_temp = self.outdoor(t)
        self.demand_w = demand = self.heat_demand(t)
        self.ch_enabled = demand > 0.0
        self.control_setpoint = self._setpoint()
        band_j = b.cycling_band_wh * 3600.0

        dhw = t < self._draw_until
        flame_was = self.flame
        if dhw:
            need = self._draw_flow / 60.0 * _WATER_CP * (b.dhw_setpoint - b.cold_water_temp)
            flame = True
            heat_target = need
        else:
            if self.flame:  # burning for heating, or a draw ended and heating takes the flame over
                flame = self.ch_enabled and self._deficit_j > -band_j
            else:
                rested = t - self._ch_stopped_at >= b.anti_cycle_s
                flame = self.ch_enabled and self._deficit_j >= band_j and rested
            heat_target = demand + self._deficit_j / b.correction_s
        if self.fault:
            flame = False
        modulation = 0.0
        if flame:
            input_w = heat_target / b.efficiency
            modulation = min(max(input_w / b.max_input_w * 100.0, b.min_modulation), 100.0)
        if flame_was and not flame and not self.dhw_active:
            self._ch_stopped_at = t
        if flame and not flame_was:
            self.burner_starts += 1
            if dhw:
                self.dhw_burner_starts += 1
        ch_active = self.ch_enabled and not dhw
        self._set_flags(t, flame, ch_active, dhw)
        self.modulation = modulation
        self.heat_w = heat = b.max_input_w * modulation / 100.0 * b.efficiency if flame else 0.0
        self._temperatures(h, heat, dhw)
        self._integrate(h, heat, demand, dhw, band_j)

    def _set_flags(self, t: float, flame: bool, ch_active: bool, dhw_active: bool) -> None:
        for quantity, old, new in (("boiler.flame", self.flame, flame),
                                   ("boiler.ch_active", self.ch_active, ch_active),
                                   ("boiler.dhw_active", self.dhw_active, dhw_active)):
            if old != new:
                self.timeline.append((t, quantity, new))
        self.flame, self.ch_active, self.dhw_active = flame, ch_active, dhw_active

    def _temperatures(self, h: float, heat: float, dhw: bool) -> None:
        b = self.boiler
        idle = 1.0 - math.exp(-h / b.idle_tau_s)
        if self.flame:
            target = b.dhw_setpoint + 10.0 if dhw else self.control_setpoint
            self.supply_temp += (target - self.supply_temp) * (1.0 - math.exp(-h / b.supply_tau_s))
        else:
            self.supply_temp += (b.room_temp - self.supply_temp) * idle
        if self.flame and not dhw:
            drop = heat / (b.ch_flow_lpm / 60.0 * _WATER_CP)
            self.return_temp = max(self.supply_temp - drop, b.room_temp)
        else:
            self.return_temp += (self.supply_temp - self.return_temp) * idle
        if dhw:
            self.dhw_flow = self._draw_flow
            self.dhw_temp += (b.dhw_setpoint - self.dhw_temp) * (1.0 - math.exp(-h / b.dhw_tau_s))
        else:
            self.dhw_flow = 0.0
            self.dhw_temp += (b.room_temp - self.dhw_temp) * idle

    def _integrate(self, h: float, heat: float, demand: float, dhw: bool, band_j: float) -> None:
        """Gas, heat and counters over the sub-step; the heating deficit (forward Euler)."""
        if self.flame:
            gas = self.boiler.gas_rate_m3_per_h(self.modulation) * h / 3600.0
            use = 1 if dhw else 0
            self._gas_m3[use] += gas
            self._heat_j[use] += heat * h
            self.burner_seconds += h
            if dhw:
                self.dhw_burner_seconds += h
        to_house = 0.0 if dhw else heat
        deficit = self._deficit_j + (demand - to_house) * h
        self._deficit_j = min(max(deficit, -band_j), band_j)
        self._elapsed += h
