"""Physical model of an air-to-water heat pump heating a Dutch terraced house.

The hardware-in-the-loop bench exposes this model's state as device registers and then checks
what the agent measured against the model's ground truth. That only works if the model is
deterministic (time advances solely through :meth:`HeatPumpModel.step`, randomness comes from
one seeded ``random.Random`` owned by the model) and if its ground truth is exact: every counter
integrates the very sub-step values that the ground truth integrates.

Physics, deliberately simple but with the effects a performance meter has to get right:

* House: one thermal node, ``C·dT/dt = Q_hp + gains - H·(T_in - T_out)`` (forward Euler on
  sub-steps of at most 10 s, far below the ~40 h time constant).
* Heat pump: capacity falls with outdoor temperature; COP is a fixed fraction of the Carnot COP
  between the condensing and evaporating temperatures; the supply temperature follows a
  weather-compensated heating curve; the compressor modulates down to a minimum and below that
  cycles on and off, with minimum run and off times.
* Emitters (when the house has :class:`~hil.house.Emitters`): the controller holds at least the
  heating curve's supply temperature, so the unit gives what the radiators take at that
  temperature, or more when the house asks for more (its room correction raises the supply);
  the water temperatures are the ones at which the radiators give that heat. A curve steeper
  than the radiators need therefore overheats in runs and cycles; radiators too small for the
  curve need a hotter supply. Without emitters the supply simply follows the curve.
* Backup heater (``backup_heater_w`` > 0): an electric element in the heating water that
  switches on while the heat owed to the house exceeds ``backup_start_wh`` and the outdoor
  temperature is below ``backup_release_temp``; its electricity has a counter of its own.
* Domestic hot water: a tank reheated once a day (higher supply temperature, lower COP), or at
  further scheduled hours.
* Defrost: in the icing band of outdoor temperatures, after some accumulated run time, the unit
  reverses and pulls heat out of the space-heating water for a few minutes. A real unit's heat
  counter ignores that negative heat; the ground truth records it separately.

In a hybrid installation (:mod:`hil.hybrid`) an outer controller commands the unit between
steps: :attr:`HeatPumpModel.heating_enabled` and :attr:`HeatPumpModel.dhw_enabled` release space
heating and hot water (a compressor already running stops once its minimum run time is over),
and :attr:`HeatPumpModel.external_heat_w` is heat another appliance (the gas boiler) puts into
the house node. That heat only reaches the unit's controller through the indoor temperature
(the PI correction of :attr:`HeatPumpModel.demand_w`), not through the unit's own degree-minute
account. With the defaults (both released, no external heat) the model is a stand-alone unit.

The water circuit's heat capacity is neglected in the energy balance: supply and return
temperatures are what the sensors show, with first-order lags for realism, while the heat flow
goes straight into the house node (or the tank).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from hil.heatpump_unit import BackupHeater, HeatPump
from hil.house import WATER_CP, House, Outdoor, first_daily_event

MODES: Final = ("off", "heating", "dhw", "defrost", "cooling")
_OFF, _HEATING, _DHW, _DEFROST = 0, 1, 2, 3  # indices into MODES; cooling is never produced

MAX_SUBSTEP_S: Final = 10.0
_J_PER_KWH = 3.6e6
_DAY_S = 86_400.0
_SUPPLY_TAU_RUNNING_S = 120.0  # supply sensor settles within minutes once the compressor runs
_WATER_TAU_IDLE_S = 900.0  # standing water cools toward the room in a quarter of an hour


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """Exact integrals since the model's start, per mode (keys are :data:`MODES`).

    ``heat_kwh["defrost"]`` is negative: heat pulled out of the heating water. ``spf`` is the
    seasonal performance factor (heating + dhw + defrost heat, i.e. positive heat minus the
    defrost heat) / (all electricity, standby included); NaN before any electricity was used.
    ``external_heat_kwh`` is the heat other appliances put into the house node
    (:attr:`HeatPumpModel.external_heat_w`); it is not the heat pump's. ``backup_kwh`` is the
    backup element's electricity (and heat): outside the unit's heat and electricity above.
    """

    heat_kwh: dict[str, float]
    electric_kwh: dict[str, float]
    mode_seconds: dict[str, float]
    compressor_starts: int
    running_seconds: float
    external_heat_kwh: float = 0.0
    backup_kwh: float = 0.0

    @property
    def positive_heat_kwh(self) -> float:
        return self.heat_kwh["heating"] + self.heat_kwh["dhw"]

    @property
    def net_heat_kwh(self) -> float:
        return sum(self.heat_kwh.values())

    @property
    def electric_total_kwh(self) -> float:
        return sum(self.electric_kwh.values())

    @property
    def spf(self) -> float:
        electric = self.electric_total_kwh
        return self.net_heat_kwh / electric if electric > 0.0 else math.nan


class HeatPumpModel:
    """The heat pump, its controller, the house and the tank, advanced by :meth:`step`.

    Public state (read after :meth:`step`) describes the last sub-step: temperatures at its end,
    powers as held during it, ``outdoor_temp`` as the value that drove it. ``heat_power`` is
    signed: negative while defrosting, as a device computing flow·cp·ΔT reports it.
    ``cop`` is None unless the compressor delivers heat (off, defrost). Energy counters are what
    a device's registers show: the heat counters count positive heat only, and defrost
    electricity is booked on the mode the defrost interrupted. :attr:`truth` has the exact
    integrals, negative defrost heat included.

    Commands an outer controller may change between steps (see the module docstring):
    ``heating_enabled``, ``dhw_enabled`` and ``external_heat_w``. ``demand_w`` is the heat the
    house asked for in the last sub-step (the heating controller's output, whoever supplies it).
    """

    def __init__(
        self,
        house: House,
        heatpump: HeatPump,
        outdoor: Outdoor,
        start: datetime,
        seed: int = 0,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be a timezone-aware datetime")
        self.house = house
        self.heatpump = heatpump
        self.outdoor = outdoor
        self._rng = random.Random(seed)
        self._start = start.astimezone(UTC)
        self._t0 = self._start.timestamp()
        self._elapsed = 0.0

        self.outdoor_temp: float = outdoor.at_posix(self._t0)
        self.indoor_temp: float = house.initial_temp
        self.supply_temp: float = house.initial_temp
        self.return_temp: float = house.initial_temp
        self.dhw_temp: float = heatpump.tank.initial_temp
        self.flow: float = 0.0
        self.compressor_freq: float = 0.0
        self.heat_power: float = 0.0
        self.electric_power: float = heatpump.standby_w
        self.cop: float | None = None
        # The house's need before the first sub-step: the steady state, without PI correction.
        self.demand_w: float = max(house.steady_demand_w(self.outdoor_temp), 0.0)

        # Commands of an outer (hybrid) controller.
        self.heating_enabled = True  # space heating released
        self.dhw_enabled = True  # hot water released
        self.external_heat_w = 0.0  # heat from other appliances into the house node, W

        # Controller state.
        self._mode = _OFF
        self._resume = _HEATING  # the mode a defrost returns to
        self._started_at = -math.inf
        self._stopped_at = -math.inf  # no pending minimum off time at power-up
        self._integral_w = 0.0  # integral term of the indoor-temperature PI
        self._deficit_j = 0.0  # ∫(demand - delivered): the "degree-minutes" of real controllers
        self._frost_s = 0.0  # run time in the icing band since the last defrost
        self._defrost_after_s = self._rng.uniform(*heatpump.defrost_interval_s)
        self._defrost_started = -math.inf
        self._defrost_el_w = self._defrost_freq = 0.0  # held through a defrost
        # Constants of the hot path: the cycling band and the tank's heat capacity, in joules.
        self._band_j, self._tank_capacity_j_per_k = (heatpump.cycling_band_wh * 3600.0,
                                                     heatpump.tank.heat_capacity_j_per_k)
        # Water temperature decay factors (idle, running) for sub-steps of _decay_h seconds.
        self._decay_h, self._decay_idle, self._decay_running = math.nan, 0.0, 0.0
        self._dhw_pending = False
        self._events = self._daily_events()
        self._event_day, self._event_idx = first_daily_event(
            [second for second, _ in self._events], self._t0)
        self._next_event_t = self._event_day + self._events[self._event_idx][0]

        # Integrals, in joules and seconds, indexed by mode.
        self._heat_j = [0.0] * len(MODES)
        self._el_j = [0.0] * len(MODES)
        self._mode_s = [0.0] * len(MODES)
        self._starts = 0
        self._running_s = 0.0
        self._external_j = 0.0
        self.backup = BackupHeater(heatpump)
        # The water's flow as heat per kelvin; what the emitters take at the curve's supply.
        self._water_w_per_k, self._curve_heat = heatpump.design_flow_lpm / 60.0 * WATER_CP, 0.0
        # Device counters: positive heat only; electricity per the mode a defrost interrupted.
        self._dev_heat_j = self._dev_el_j = 0.0
        self._dev_heat_mode_j = [0.0] * len(MODES)
        self._dev_el_mode_j = [0.0] * len(MODES)

    @property
    def now(self) -> datetime:
        """The model's time: start plus the simulated seconds."""
        return self._start + timedelta(seconds=self._elapsed)

    @property
    def mode(self) -> str:
        return MODES[self._mode]

    @property
    def heat_energy_kwh(self) -> float:
        return self._dev_heat_j / _J_PER_KWH

    @property
    def electric_energy_kwh(self) -> float:
        return self._dev_el_j / _J_PER_KWH

    @property
    def heat_energy_heating_kwh(self) -> float:
        return self._dev_heat_mode_j[_HEATING] / _J_PER_KWH

    @property
    def heat_energy_dhw_kwh(self) -> float:
        return self._dev_heat_mode_j[_DHW] / _J_PER_KWH

    @property
    def electric_energy_heating_kwh(self) -> float:
        return self._dev_el_mode_j[_HEATING] / _J_PER_KWH

    @property
    def electric_energy_dhw_kwh(self) -> float:
        return self._dev_el_mode_j[_DHW] / _J_PER_KWH

    @property
    def truth(self) -> GroundTruth:
        """A snapshot of the exact integrals since start."""
        return GroundTruth(
            heat_kwh={m: j / _J_PER_KWH for m, j in zip(MODES, self._heat_j, strict=True)},
            electric_kwh={m: j / _J_PER_KWH for m, j in zip(MODES, self._el_j, strict=True)},
            mode_seconds=dict(zip(MODES, self._mode_s, strict=True)),
            compressor_starts=self._starts,
            running_seconds=self._running_s,
            external_heat_kwh=self._external_j / _J_PER_KWH,
            backup_kwh=self.backup.energy_j / _J_PER_KWH,
        )

    def snapshot(self) -> dict[str, float | str]:
        """The state under vocabulary names, in vocabulary units (°C, W, l/min, Hz, kWh); the
        backup element's counter and switch only on a unit that has one."""
        values: dict[str, float | str] = {
            "hp.supply_temp": self.supply_temp,
            "hp.return_temp": self.return_temp,
            "hp.outdoor_temp": self.outdoor_temp,
            "hp.flow": self.flow,
            "hp.compressor_freq": self.compressor_freq,
            "hp.mode": self.mode,
            "hp.heat_power": self.heat_power,
            "hp.electric_power": self.electric_power,
            "hp.heat_energy": self.heat_energy_kwh,
            "hp.electric_energy": self.electric_energy_kwh,
            "hp.heat_energy_heating": self.heat_energy_heating_kwh,
            "hp.heat_energy_dhw": self.heat_energy_dhw_kwh,
            "hp.electric_energy_heating": self.electric_energy_heating_kwh,
            "hp.electric_energy_dhw": self.electric_energy_dhw_kwh,
            "hp.dhw_temp": self.dhw_temp,
            "room.temp": self.indoor_temp,
        }
        if self.heatpump.backup_heater_w > 0.0:
            values["hp.backup_heater_energy"] = self.backup.energy_j / _J_PER_KWH
            values["hp.backup_heater"] = self.backup.on
        return values

    def step(self, dt: float) -> None:
        """Advance ``dt`` seconds, in equal sub-steps of at most ``MAX_SUBSTEP_S``."""
        if not 0.0 <= dt < math.inf:
            raise ValueError(f"step needs a finite, non-negative duration, got {dt!r}")
        if dt <= MAX_SUBSTEP_S:  # the hot path of a coupled simulation: one sub-step
            if dt > 0.0:
                self._substep(dt)
            return
        n = math.ceil(dt / MAX_SUBSTEP_S)
        h = dt / n
        for _ in range(n):
            self._substep(h)

    # -- internals -----------------------------------------------------------------------------

    def _daily_events(self) -> tuple[tuple[float, float | None], ...]:
        """(second of the UTC day, draw kWh or None for the reheat request), in time order."""
        tank = self.heatpump.tank
        reheats = (tank.reheat_hour_utc, *tank.extra_reheat_hours_utc)
        events: list[tuple[float, float | None]] = [(hour * 3600.0, None) for hour in reheats]
        events += [(hour * 3600.0, kwh) for hour, kwh in tank.draws]
        return tuple(sorted(events, key=lambda event: event[0]))

    def _run_events(self, t: float) -> None:
        tank = self.heatpump.tank
        while self._next_event_t <= t:
            kwh = self._events[self._event_idx][1]
            if kwh is None:
                due = self.dhw_enabled and self.dhw_temp < tank.setpoint - tank.hysteresis_k
                self._dhw_pending = self._dhw_pending or due
            else:
                spread = tank.draw_spread
                energy = kwh * _J_PER_KWH * self._rng.uniform(1.0 - spread, 1.0 + spread)
                cooled = self.dhw_temp - energy / self._tank_capacity_j_per_k
                self.dhw_temp = max(cooled, tank.cold_water_temp)
            self._event_idx += 1
            if self._event_idx == len(self._events):
                self._event_idx = 0
                self._event_day += _DAY_S
            self._next_event_t = self._event_day + self._events[self._event_idx][0]

    def _demand(self, t_out: float, h: float) -> float:
        """Heat the house needs now, W.

        Steady-state loss minus gains (the feed-forward a heating curve encodes) plus a PI
        correction on the indoor temperature, which absorbs what defrosts, hot water runs and
        on/off cycling take from the house.
        """
        house, hp = self.house, self.heatpump
        error = house.setpoint - self.indoor_temp
        gain = hp.controller_gain_w_per_k
        limit = hp.controller_integral_limit_w
        integral = self._integral_w + gain * error * h / (hp.controller_reset_time_h * 3600.0)
        self._integral_w = integral = min(max(integral, -limit), limit)
        return max(house.steady_demand_w(t_out) + gain * error + integral, 0.0)

    def _next_mode(self, t: float) -> int:
        """Controller transitions at the start of a sub-step."""
        hp = self.heatpump
        band_j = self._band_j
        mode = self._mode
        if mode == _DEFROST and t - self._defrost_started >= hp.defrost_duration_s:
            mode = self._resume
        if not self.dhw_enabled:
            self._dhw_pending = False
        if mode == _DHW and (self.dhw_temp >= hp.tank.setpoint or not self.dhw_enabled):
            mode = _HEATING  # hands over; the heating rules below decide whether to stop
        if mode == _OFF:
            if t - self._stopped_at >= hp.min_off_s:
                if self._dhw_pending:
                    mode = _DHW
                elif self.heating_enabled and self._deficit_j >= band_j:
                    mode = _HEATING
                if mode != _OFF:
                    self._starts += 1
                    self._started_at = t
        elif mode == _HEATING:
            if self._dhw_pending:
                mode = _DHW
            elif ((self._deficit_j <= -band_j or not self.heating_enabled)
                  and t - self._started_at >= hp.min_run_s):
                mode = _OFF
                self._stopped_at = t
        if mode == _DHW:
            self._dhw_pending = False
        return mode

    def _maybe_defrost(self, mode: int, t: float, t_out: float, heat: float, p_max: float) -> int:
        """Enter a defrost if the air is in the icing band; the caller found the run time due."""
        hp = self.heatpump
        lo, hi = hp.defrost_band
        if not lo <= t_out <= hi:
            return mode
        self._resume = mode
        self._defrost_started = t
        self._frost_s = 0.0
        self._defrost_after_s = self._rng.uniform(*hp.defrost_interval_s)
        # The reversed cycle runs the compressor as the interrupted mode would have.
        supply = hp.heating_curve(t_out) if mode == _HEATING else hp.tank.supply_temp
        self._defrost_el_w = heat / hp.cop(supply, t_out)
        self._defrost_freq = hp.compressor_freq_hz(heat / p_max)
        return _DEFROST

    def _operate(self, mode: int, h: float, t_out: float, heat: float, p_max: float) -> None:
        """Set the unit's outputs for a sub-step in ``mode`` delivering ``heat`` W."""
        hp = self.heatpump
        t_in = self.indoor_temp
        if h != self._decay_h:
            self._decay_h = h
            self._decay_idle = 1.0 - math.exp(-h / _WATER_TAU_IDLE_S)
            self._decay_running = 1.0 - math.exp(-h / _SUPPLY_TAU_RUNNING_S)
        if mode == _OFF:
            # Standing water relaxes toward the room.
            a = self._decay_idle
            self.supply_temp += (t_in - self.supply_temp) * a
            self.return_temp += (t_in - self.return_temp) * a
            self.flow = 0.0
            self.cop = None
            self.electric_power = hp.standby_w
            self.compressor_freq = 0.0
        else:
            # Supply approaches its target (heating curve, hot water, or the room while the
            # reversed cycle chills the loop); return = supply - Q/(ṁ·cp).
            emitters = self.house.emitters
            if mode == _HEATING and emitters is not None:
                target = emitters.supply_for(heat, t_in, self._water_w_per_k)
            elif mode == _HEATING:
                target = hp.heating_curve(t_out)
            elif mode == _DHW:
                target = hp.tank.supply_temp
            else:
                target = t_in
            a = self._decay_running
            self.supply_temp += (target - self.supply_temp) * a
            self.flow = hp.design_flow_lpm
            self.return_temp = self.supply_temp - heat / (hp.design_flow_lpm / 60.0 * WATER_CP)
            if mode == _DEFROST:
                self.cop = None
                self.electric_power = self._defrost_el_w + hp.standby_w
                self.compressor_freq = self._defrost_freq
            else:
                cop = hp.cop(self.supply_temp, t_out)
                self.cop = cop
                self.electric_power = heat / cop + hp.standby_w
                self.compressor_freq = hp.compressor_freq_hz(heat / p_max)
                lo, hi = hp.defrost_band
                if lo <= t_out <= hi:
                    self._frost_s += h
        self.heat_power = heat
        self.outdoor_temp = t_out

    def _integrate(self, mode: int, h: float, t_out: float, demand: float) -> None:
        """Advance house, tank and integrals over the sub-step (forward Euler)."""
        house = self.house
        tank = self.heatpump.tank
        heat = self.heat_power
        # Defrost heat comes out of the heating water, hence out of the house.
        to_house = heat if mode in (_HEATING, _DEFROST) else 0.0
        to_tank = heat if mode == _DHW else 0.0
        if self.heatpump.backup_heater_w > 0.0:
            released = self.heating_enabled and mode != _DHW
            to_house += self.backup.heat(released, t_out, demand - to_house, h)
        external = self.external_heat_w
        t_in = self.indoor_temp
        balance = (to_house + external + house.gains_w
                   - house.heat_loss_w_per_k * (t_in - t_out))
        self.indoor_temp = t_in + balance * h / house.thermal_mass_j_per_k
        tank_balance = to_tank - tank.loss_w_per_k * (self.dhw_temp - tank.ambient_temp)
        self.dhw_temp += tank_balance * h / self._tank_capacity_j_per_k
        band_j = self._band_j
        deficit = self._deficit_j + (demand - to_house) * h
        self._deficit_j = min(max(deficit, -band_j), band_j)

        # The same sub-step energies feed the ground truth and the device counters.
        heat_j = heat * h
        el_j = self.electric_power * h
        self._heat_j[mode] += heat_j
        self._el_j[mode] += el_j
        self._mode_s[mode] += h
        self._external_j += external * h
        self._dev_el_j += el_j
        if mode != _OFF:
            self._running_s += h
            booked = self._resume if mode == _DEFROST else mode
            self._dev_el_mode_j[booked] += el_j
        if heat_j > 0.0:
            self._dev_heat_j += heat_j
            self._dev_heat_mode_j[mode] += heat_j
        self._elapsed += h

    def _heating_want(self, demand: float, t_out: float) -> float:
        """Heat the unit aims to give while heating: the house's demand, but with emitters at
        least what they take at the curve's supply, and no more than at the highest supply."""
        emitters = self.house.emitters
        if emitters is None:
            return demand
        hp, room, water = self.heatpump, self.indoor_temp, self._water_w_per_k
        self._curve_heat = emitters.heat_at(hp.heating_curve(t_out), room, water,
                                            self._curve_heat)
        want = max(demand, self._curve_heat)
        if emitters.supply_for(want, room, water) > hp.max_supply_temp:
            want = emitters.heat_at(hp.max_supply_temp, room, water, want)
        return want

    def _substep(self, h: float) -> None:
        hp = self.heatpump
        t = self._t0 + self._elapsed
        if t >= self._next_event_t:
            self._run_events(t)
        t_out = self.outdoor.at_posix(t)
        self.demand_w = demand = self._demand(t_out, h)
        p_max = hp.max_heat_w(t_out)
        mode = self._next_mode(t)
        # Modulate to the demand within [minimum modulation, capacity]; hot water runs flat out.
        if mode == _HEATING:
            heat = min(max(self._heating_want(demand, t_out), p_max * hp.min_modulation), p_max)
        elif mode == _DHW:
            heat = p_max
        else:
            heat = 0.0
        if mode in (_HEATING, _DHW) and self._frost_s >= self._defrost_after_s:
            mode = self._maybe_defrost(mode, t, t_out, heat, p_max)
        if mode == _DEFROST:
            heat = hp.defrost_heat_w
        self._mode = mode
        self._operate(mode, h, t_out, heat, p_max)
        self._integrate(mode, h, t_out, demand)
