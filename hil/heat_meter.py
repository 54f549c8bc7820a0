"""A heat meter on the heat pump's flow, for the bench: what an ultrasonic meter counts and shows.

It counts the heat pump's positive heat into its energy index (a meter's register counts heating
energy only), and shows the flow, the thermal power and its two temperature sensors' readings
(the heat pump's supply and return: the same pipes). Time advances through
:meth:`HeatMeterModel.advance`, once per tick of the installation, with the heat of that tick, so
the index is exact.

Air (a fault, :attr:`HeatMeter.air_every_days`): an ultrasonic flow sensor that is not filled
with water measures no flow, so the meter counts no energy and shows no flow or power, while its
temperature sensors still show the spread across the heat pump (Danfoss SonoMeter 40 installation
guide, flow sensor status 1: "no signal; the flow sensor is not filled with water").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from drivers.reading import Value

_DAY_S: Final = 86_400.0
_J_PER_KWH: Final = 3.6e6


@dataclass(frozen=True, slots=True)
class HeatMeter:
    """The meter, and when air in its flow sensor blinds it."""

    start_kwh: float = 4_210.0  # its index when the season starts
    air_every_days: int = 0  # an air episode on every n-th UTC day after the first (0: never)
    air_hour_utc: float = 13.0  # when an episode starts
    air_duration_s: float = 7_200.0

    def __post_init__(self) -> None:
        if self.air_every_days < 0 or self.air_duration_s < 0.0:
            raise ValueError("air_every_days and air_duration_s must not be negative")


class HeatMeterModel:
    """The meter's state: its index and whether its flow sensor sees water."""

    def __init__(self, meter: HeatMeter, start: float) -> None:
        self.meter = meter
        self._first_day = math.floor(start / _DAY_S) * _DAY_S
        self._energy_j = 0.0
        self.air = False
        self.air_seconds = 0.0  # time it was blind, for the ground truth
        self.missed_kwh = 0.0  # heat it did not count

    @property
    def energy_kwh(self) -> float:
        return self.meter.start_kwh + self._energy_j / _J_PER_KWH

    def blind_at(self, t: float) -> bool:
        """Whether the flow sensor is dry at Unix time ``t``."""
        meter = self.meter
        if not meter.air_every_days:
            return False
        day = int((t - self._first_day) // _DAY_S)
        into = t - self._first_day - day * _DAY_S - meter.air_hour_utc * 3600.0
        return day > 0 and day % meter.air_every_days == 0 and 0.0 <= into < meter.air_duration_s

    def advance(self, t: float, h: float, heat_w: float) -> None:
        """A tick of ``h`` seconds from ``t`` in which the heat pump gave ``heat_w``."""
        self.air = self.blind_at(t)
        heat_j = max(heat_w, 0.0) * h
        if self.air:
            self.air_seconds += h
            self.missed_kwh += heat_j / _J_PER_KWH
        else:
            self._energy_j += heat_j

    def snapshot(self, supply: float, ret: float, flow: float, heat_w: float) -> dict[str, Value]:
        """What the meter shows, under vocabulary names, given the heat pump's water side."""
        blind = self.air
        return {
            "heatmeter.energy": self.energy_kwh,
            "heatmeter.flow": 0.0 if blind else flow,
            "heatmeter.power": 0.0 if blind else max(heat_w, 0.0),
            "heatmeter.supply_temp": supply,
            "heatmeter.return_temp": ret,
        }
