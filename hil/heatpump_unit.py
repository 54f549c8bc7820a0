"""What the bench's heat pump is: its capacity, heating curve, COP and controller settings, and
its backup element's switch. :mod:`hil.heatpump_model` runs them through time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from hil.house import DhwTank

_KELVIN: Final = 273.15
_CAPACITY_RATING: Final = (7.0, -7.0)  # outdoor temperatures of the A7 and A-7 rating points, °C
_COP_BOUNDS: Final = (1.0, 7.0)


@dataclass(frozen=True, slots=True)
class HeatPump:
    """A 6 kW monobloc air-to-water heat pump with its controller."""

    nominal_heat_w: float = 6000.0  # maximum output at A7/W35
    capacity_at_minus7: float = 0.7  # fraction of nominal at A-7; linear between, flat outside
    min_modulation: float = 0.3  # minimum output as a fraction of the current maximum
    carnot_efficiency: float = 0.45
    condenser_approach_k: float = 3.0  # condensing temperature = supply + approach
    evaporator_approach_k: float = 6.0  # evaporating temperature = outdoor - approach
    curve_mild: tuple[float, float] = (10.0, 35.0)  # heating curve point (outdoor, supply) °C
    curve_cold: tuple[float, float] = (-10.0, 50.0)
    design_flow_lpm: float = 17.0  # ΔT ≈ 5 K at 6 kW
    standby_w: float = 15.0
    min_run_s: float = 600.0
    min_off_s: float = 600.0
    freq_min_hz: float = 20.0  # at minimum modulation
    freq_max_hz: float = 90.0  # at full output
    defrost_band: tuple[float, float] = (-7.0, 5.0)  # outdoor °C where the evaporator ices
    defrost_interval_s: tuple[float, float] = (2700.0, 3600.0)  # run time between defrosts
    defrost_duration_s: float = 300.0
    defrost_heat_w: float = -2000.0  # heat drawn from the heating water while defrosting
    controller_gain_w_per_k: float = 1000.0  # proportional correction on indoor error
    controller_reset_time_h: float = 6.0  # integral time of the indoor-temperature PI
    controller_integral_limit_w: float = 1000.0  # anti-windup clamp of the integral term
    cycling_band_wh: float = 150.0  # heat deficit/surplus that starts/stops the compressor
    max_supply_temp: float = 60.0  # °C: the highest supply the unit makes for heating
    backup_heater_w: float = 0.0  # electric element in the heating water (0: there is none)
    backup_release_temp: float = -10.0  # °C: the element may run only below this outdoor temp
    backup_start_wh: float = 600.0  # heat owed to the house at which the element switches on
    tank: DhwTank = field(default_factory=DhwTank)

    def max_heat_w(self, outdoor: float) -> float:
        """Maximum thermal output at ``outdoor`` °C (capacity drops as the air gets colder)."""
        warm, cold = _CAPACITY_RATING
        x = min(max(outdoor, cold), warm)
        drop = 1.0 - self.capacity_at_minus7
        return self.nominal_heat_w * (self.capacity_at_minus7 + drop * (x - cold) / (warm - cold))

    def heating_curve(self, outdoor: float) -> float:
        """Weather-compensated supply setpoint: linear between the two curve points, clamped."""
        (t_mild, s_mild), (t_cold, s_cold) = self.curve_mild, self.curve_cold
        x = min(max(outdoor, t_cold), t_mild)
        return s_cold + (s_mild - s_cold) * (x - t_cold) / (t_mild - t_cold)

    def cop(self, supply: float, outdoor: float) -> float:
        """COP = η·T_cond/(T_cond - T_evap) (Carnot heating COP times η), clamped to [1, 7]."""
        t_cond = supply + self.condenser_approach_k + _KELVIN
        t_evap = outdoor - self.evaporator_approach_k + _KELVIN
        lo, hi = _COP_BOUNDS
        lift = t_cond - t_evap
        if lift <= 0.0:
            return hi
        return min(max(self.carnot_efficiency * t_cond / lift, lo), hi)

    def compressor_freq_hz(self, modulation: float) -> float:
        """Frequency proportional to output between minimum modulation and full output."""
        span = (modulation - self.min_modulation) / (1.0 - self.min_modulation)
        span = min(max(span, 0.0), 1.0)
        return self.freq_min_hz + (self.freq_max_hz - self.freq_min_hz) * span



class BackupHeater:
    """The backup element's switch and meter.

    On while the heat owed to the house (the integral of what it lacked, never below 0) is above
    ``backup_start_wh``, off once it is paid; released only for space heating below
    ``backup_release_temp`` (the settings installers get wrong: a release far above the
    bivalent point, a start too close to the compressor's). Its heat is its electricity.
    """

    def __init__(self, unit: HeatPump) -> None:
        self.unit = unit
        self.on = False
        self.energy_j = 0.0
        self._owed_j = 0.0

    def heat(self, released: bool, outdoor: float, short_w: float, h: float) -> float:
        """Its heat over a sub-step of ``h`` s in which the house lacks ``short_w``, W."""
        unit = self.unit
        start_j = unit.backup_start_wh * 3600.0
        if not released or outdoor >= unit.backup_release_temp or self._owed_j <= 0.0:
            self.on = False
        elif self._owed_j >= start_j:
            self.on = True
        power = unit.backup_heater_w if self.on else 0.0
        self._owed_j = min(max(self._owed_j + (short_w - power) * h, 0.0), 2.0 * start_j)
        self.energy_j += power * h
        return power
