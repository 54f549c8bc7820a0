"""The house and its hot water tank, as the bench's heat pump and boiler models both heat them.

A Dutch terraced house is one thermal node (``C·dT/dt = Q + gains - H·(T_in - T_out)``; the
models integrate it); its radiators (:class:`Emitters`, optional) tie the heat they give to the
water temperature; the tank has a daily reheat and fixed daily draws. Both appliances of a hybrid
installation (:mod:`hil.hybrid`) share these, and :func:`first_daily_event` places their daily
schedules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

_DAY_S: Final = 86_400.0
WATER_CP: Final = 4186.0  # J/(kg·K); 1 l of water is taken as 1 kg


def first_daily_event(seconds: Sequence[float], t: float) -> tuple[float, int]:
    """(start of its UTC day, index) of the first daily event at or after Unix time ``t``.

    ``seconds`` are the events' seconds of the UTC day, in time order; without events the
    answer is (start of the next day, 0).
    """
    day = math.floor(t / _DAY_S) * _DAY_S
    for i, second in enumerate(seconds):
        if day + second >= t:
            return day, i
    return day + _DAY_S, 0


class Outdoor(Protocol):
    """Outdoor temperature (°C) at POSIX time ``ts``, e.g. :class:`hil.weather.OutdoorCourse`."""

    def at_posix(self, ts: float) -> float: ...


@dataclass(frozen=True, slots=True)
class Emitters:
    """The house's radiators, rated as EN 442-1 rates them.

    ``nominal_w`` is their heat output at a mean water temperature ``nominal_excess_k`` (50 K)
    above the room (75/65/20 °C); at other temperatures the output scales with the excess to the
    power ``exponent`` (EN 442-2's radiator exponent, 1.3 for panel radiators). The water's heat
    capacity is neglected: the heat that reaches the emitters is the heat they give.
    """

    nominal_w: float = 11_500.0
    exponent: float = 1.3
    nominal_excess_k: float = 50.0

    def supply_for(self, heat_w: float, room: float, water_w_per_k: float) -> float:
        """Supply temperature at which they give ``heat_w`` to a room at ``room`` °C, with a water
        flow of ``water_w_per_k`` (ṁ·cp): the mean water temperature plus half the spread."""
        if heat_w <= 0.0:
            return room
        excess = self.nominal_excess_k * math.pow(heat_w / self.nominal_w, 1.0 / self.exponent)
        return room + excess + heat_w / (2.0 * water_w_per_k)

    def heat_at(self, supply: float, room: float, water_w_per_k: float, guess: float) -> float:
        """Heat they give when the water arrives at ``supply`` °C: the root of
        Q = nominal·((supply - Q/(2·ṁcp) - room)/ΔT_n)^n, by Newton from ``guess`` (the previous
        answer: the root moves little between sub-steps)."""
        x = supply - room
        if x <= 0.0:
            return 0.0
        n, scale, half = self.exponent, self.nominal_w, 0.5 / water_w_per_k
        q = guess if 0.0 < guess < 2.0 * water_w_per_k * x else \
            scale * (x / self.nominal_excess_k) ** n
        for _ in range(4):
            mean = (x - q * half) / self.nominal_excess_k
            if mean <= 0.0:
                q = x / half * 0.5  # overshot past the spread: restart from half of it
                continue
            power = scale * mean**n
            slope = 1.0 + n * power / mean * half / self.nominal_excess_k
            q -= (q - power) / slope
        return max(q, 0.0)


@dataclass(frozen=True, slots=True)
class House:
    """A Dutch terraced house as a single thermal node.

    ``emitters``: its radiators, when the heating water's temperature should follow from the
    heat they give (None: ideal emitters, the water follows the heating curve).
    """

    heat_loss_w_per_k: float = 180.0  # H: transmission + ventilation
    thermal_mass_j_per_k: float = 180.0 * 40.0 * 3600.0  # C, so that tau = C/H = 40 h
    setpoint: float = 20.0  # °C
    initial_temp: float = 20.0  # °C
    gains_w: float = 300.0  # internal + solar, constant
    emitters: Emitters | None = None

    @property
    def time_constant_h(self) -> float:
        return self.thermal_mass_j_per_k / self.heat_loss_w_per_k / 3600.0

    def steady_demand_w(self, outdoor: float) -> float:
        """Heat demand (W) at ``outdoor`` °C in the steady state: H·(setpoint - outdoor) - gains.

        Negative when the gains exceed the loss; callers clamp it.
        """
        return self.heat_loss_w_per_k * (self.setpoint - outdoor) - self.gains_w


@dataclass(frozen=True, slots=True)
class DhwTank:
    """A 200 l hot water tank with a daily reheat and fixed daily draws (~2.5 kWh/day)."""

    volume_l: float = 200.0
    setpoint: float = 50.0  # °C: reheat stops here
    hysteresis_k: float = 5.0  # the scheduled reheat runs only below setpoint - hysteresis
    initial_temp: float = 48.0  # °C
    supply_temp: float = 55.0  # °C: supply target while reheating, hence the lower COP
    reheat_hour_utc: float = 4.0  # 05:00 CET
    extra_reheat_hours_utc: tuple[float, ...] = ()  # further daily reheat slots (hour UTC)
    draws: tuple[tuple[float, float], ...] = ((6.0, 1.0), (18.5, 0.6))  # (hour UTC, kWh)
    draw_spread: float = 0.3  # each draw is its nominal energy times U(1 - spread, 1 + spread)
    loss_w_per_k: float = 1.5
    ambient_temp: float = 15.0  # °C: the tank stands outside the heated zone
    cold_water_temp: float = 10.0  # °C: a draw cannot cool the tank below mains water

    @property
    def heat_capacity_j_per_k(self) -> float:
        return self.volume_l * WATER_CP
