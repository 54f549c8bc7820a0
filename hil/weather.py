"""Outdoor temperature for the bench: a Dutch climate, deterministic per seed.

The heat pump model needs an outdoor temperature at every simulated instant. A recorded weather
file would tie the bench to data we cannot ship, and a flat constant would hide exactly what the
bench exists to exercise (defrost in the 0-5 °C band, cycling in mild weather, capacity loss in a
cold spell). :class:`OutdoorCourse` therefore composes a plausible course from KNMI climate
normals, a diurnal cycle and a seeded, smooth weather anomaly. It is a pure function of
(time, seed): any call order gives the same numbers, so runs are reproducible.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

# KNMI 1991-2020 monthly mean air temperature at De Bilt, °C, January first.
DE_BILT_NORMALS: tuple[float, ...] = (
    3.6, 3.9, 6.5, 9.8, 13.4, 16.2, 18.3, 18.0, 14.9, 11.1, 7.1, 4.2,
)  # fmt: skip

_DAY_S = 86_400.0
_YEAR_S = 365.2425 * _DAY_S  # mean Gregorian year: leap days shift the season by < 1 day
_EPOCH_2000 = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
_TWO_PI = 2.0 * math.pi

# Diurnal cycle: minimum near sunrise, maximum mid-afternoon, in local standard time (CET).
# Daylight saving time is ignored on purpose: the atmosphere follows the sun, not the clock.
_CET_OFFSET_S = 3600.0
_DIURNAL_MIN_H = 5.0
_DIURNAL_MAX_H = 15.0
_DIURNAL_RISE_H = _DIURNAL_MAX_H - _DIURNAL_MIN_H  # 10 h warming, 14 h cooling
_DIURNAL_FALL_H = 24.0 - _DIURNAL_RISE_H
_DIURNAL_AMP_WINTER_K = 3.0  # low sun, frequent overcast: small daily swing
_DIURNAL_AMP_SUMMER_K = 4.5
_MID_JANUARY = 15.0 / 365.2425  # year fraction where the swing is smallest

# Anomaly: a sum of sinusoids with periods of synoptic weather systems (2-10 days).
_ANOMALY_WAVES = 8
_ANOMALY_PERIOD_DAYS = (2.0, 10.0)


@dataclass(frozen=True, slots=True)
class OutdoorCourse:
    """Outdoor air temperature (°C) as a function of a UTC instant.

    climate (monthly normals, Catmull-Rom interpolated through the middle of each twelfth of the
    year) + diurnal cycle (two half-cosines: minimum 05:00 CET, maximum 15:00 CET, amplitude
    3 K in January to 4.5 K in July, zero daily mean) + anomaly (eight sinusoids with seeded
    periods of 2-10 days and phases, standard deviation ``anomaly_std_k``). ``fixed`` replaces
    all of that by a constant, for tests.
    """

    seed: int = 0
    anomaly_std_k: float = 3.0
    fixed: float | None = None
    _waves: tuple[tuple[float, float], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        lo, hi = _ANOMALY_PERIOD_DAYS
        waves = tuple(
            (_TWO_PI / (rng.uniform(lo, hi) * _DAY_S), rng.uniform(0.0, _TWO_PI))
            for _ in range(_ANOMALY_WAVES)
        )
        object.__setattr__(self, "_waves", waves)

    @classmethod
    def constant(cls, temp: float) -> OutdoorCourse:
        """A course that is ``temp`` °C at every instant."""
        return cls(fixed=temp)

    def at(self, when: datetime) -> float:
        """Outdoor temperature at ``when`` (timezone-aware)."""
        if when.tzinfo is None:
            raise ValueError("outdoor course needs a timezone-aware datetime")
        return self.at_posix(when.timestamp())

    def at_posix(self, ts: float) -> float:
        """Outdoor temperature at POSIX time ``ts``: the model's fast path."""
        if self.fixed is not None:
            return self.fixed
        year_frac = ((ts - _EPOCH_2000) / _YEAR_S) % 1.0
        return self._climate(year_frac) + self._diurnal(ts, year_frac) + self._anomaly(ts)

    @staticmethod
    def _climate(year_frac: float) -> float:
        # Uniform Catmull-Rom spline through the normals, which sit at the middle of each
        # twelfth of the year: C1-smooth and it passes through every monthly value.
        x = year_frac * 12.0 - 0.5
        i = math.floor(x)
        u = x - i
        n = DE_BILT_NORMALS
        p0, p1, p2, p3 = n[(i - 1) % 12], n[i % 12], n[(i + 1) % 12], n[(i + 2) % 12]
        c2 = 2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3
        c3 = 3.0 * (p1 - p2) + p3 - p0
        return p1 + 0.5 * u * ((p2 - p0) + u * (c2 + u * c3))

    @staticmethod
    def _diurnal(ts: float, year_frac: float) -> float:
        mean_amp = 0.5 * (_DIURNAL_AMP_SUMMER_K + _DIURNAL_AMP_WINTER_K)
        half_range = 0.5 * (_DIURNAL_AMP_SUMMER_K - _DIURNAL_AMP_WINTER_K)
        amp = mean_amp - half_range * math.cos(_TWO_PI * (year_frac - _MID_JANUARY))
        hour = ((ts + _CET_OFFSET_S) % _DAY_S) / 3600.0
        if _DIURNAL_MIN_H <= hour < _DIURNAL_MAX_H:
            return -amp * math.cos(math.pi * (hour - _DIURNAL_MIN_H) / _DIURNAL_RISE_H)
        return amp * math.cos(math.pi * ((hour - _DIURNAL_MAX_H) % 24.0) / _DIURNAL_FALL_H)

    def _anomaly(self, ts: float) -> float:
        # Each sinusoid has variance a²/2, so a = std·sqrt(2/n) gives the requested std.
        t = ts - _EPOCH_2000
        total = 0.0
        for omega, phase in self._waves:
            total += math.sin(omega * t + phase)
        return total * self.anomaly_std_k * math.sqrt(2.0 / _ANOMALY_WAVES)


def daily_mean(course: OutdoorCourse, day: date) -> float:
    """Mean outdoor temperature of the UTC day ``day``: 24 samples at half past each hour."""
    midnight = datetime.combine(day, time(0, 30), tzinfo=UTC)
    return sum(course.at(midnight + timedelta(hours=h)) for h in range(24)) / 24.0
