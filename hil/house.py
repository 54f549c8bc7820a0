"""The house and its hot water tank, as the bench's heat pump and boiler models both heat them.

A Dutch terraced house is one thermal node (``C·dT/dt = Q + gains - H·(T_in - T_out)``; the
models integrate it); the tank has a daily reheat and fixed daily draws. Both appliances of
a hybrid installation (:mod:`hil.hybrid`) share these, and :func:`first_daily_event` places
their daily schedules.
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
class House:
    """A Dutch terraced house as a single thermal node."""

    heat_loss_w_per_k: float = 180.0  # H: transmission + ventilation
    thermal_mass_j_per_k: float = 180.0 * 40.0 * 3600.0  # C, so that tau = C/H = 40 h
    setpoint: float = 20.0  # °C
    initial_temp: float = 20.0  # °C
    gains_w: float = 300.0  # internal + solar, constant

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
