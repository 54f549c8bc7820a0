"""The sample scan: what the diagnosis needs from the sequence of samples itself. Pure.

The ledger (:mod:`agent.figures.ledger`) turns samples into hour bins of energy, time and
averages. Some questions need the samples in order: compressor starts, a supply reading below
its return while heating, time a heat meter saw no flow while the heat pump ran and its sensors
showed a spread, each watched reading's lowest and highest value in an hour (a reading whose
hours stay flat has stopped changing; the tank's highest shows an anti-legionella cycle), and
single readings that jump away and come straight back (spikes). The scan answers them in one
pass, per hour where that is enough.

Like the ledger it reads no clock and no device, and it keeps values from one line to the next
(lines of several devices interleave in a recording), for at most ``max_gap``. Scans of
consecutive pieces of a recording merge into the scan of the whole: each piece is first
:meth:`Scan.prime`\\d with the lines just before it (the context its first lines need; exact
when every watched quantity appears among them), and hourly figures add up or take extremes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from drivers.reading import Value

HOUR: Final = 3600.0
_NUMBER: Final = (float, int)
POWER: Final = "hp.electric_power"
FREQUENCY: Final = "hp.compressor_freq"
MODE: Final = "hp.mode"
SUPPLY: Final = "hp.supply_temp"
RETURN: Final = "hp.return_temp"
METER_FLOW: Final = "heatmeter.flow"
METER_POWER: Final = "heatmeter.power"
METER_SUPPLY: Final = "heatmeter.supply_temp"
METER_RETURN: Final = "heatmeter.return_temp"


@dataclass(frozen=True)
class Watch:
    """What the scan looks at, and the thresholds it needs while it reads."""

    start_power: float = 100.0  # W: the compressor runs at or above this input
    max_gap: float = 900.0  # s: the longest a value is held from one line to the next
    below_k: float = 1.0  # supply below return by more than this is implausible
    meter_min_dt: float = 1.5  # K across the heat meter that shows heating
    spike_k: float = 15.0  # a reading this far from both neighbours is a spike
    readings: tuple[str, ...] = ()  # quantities whose extremes and spikes are watched


@dataclass(frozen=True, slots=True)
class Spike:
    t: float
    quantity: str
    before: float
    value: float
    after: float


class _Reading:
    """One watched reading: its hour's extremes, and the step that led to its last value."""

    __slots__ = ("hour", "hours", "jump", "mn", "mx", "quantity", "t1", "v1")

    def __init__(self, quantity: str) -> None:
        self.quantity = quantity
        self.hours: dict[int, tuple[float, float]] = {}  # hour -> (lowest, highest)
        self.hour = -1  # the hour now being collected
        self.mn = self.mx = 0.0
        self.v1 = 0.0  # the last value, seen at t1
        self.t1 = -1e18
        self.jump = 0.0  # the step to v1 when it exceeded spike_k (0: a small step)

    def flush(self) -> None:
        if self.hour >= 0:
            self.hours[self.hour] = (self.mn, self.mx)


class Scan:
    def __init__(self, watch: Watch) -> None:
        self.watch = watch
        self.starts: dict[int, int] = {}  # hour -> compressor starts
        self.below_s: dict[int, float] = {}  # hour -> seconds of supply below return, heating
        self.air_s: dict[int, float] = {}  # hour -> seconds the heat meter saw no flow, heating
        self.spikes: list[Spike] = []
        self.compressor_seen = False  # a line said whether the compressor ran
        self.meter_seen = False  # a line had the heat meter's flow (or power) and temperatures
        self._readings = [_Reading(q) for q in watch.readings]
        self._t: float | None = None  # the previous line
        self._running: bool | None = None
        self._running_t = 0.0
        self._mode: Value | None = None
        self._water: tuple[float, float, float] | None = None  # (t, supply, return)
        self._meter: tuple[float, float, float, float] | None = None  # (t, flow, supply, return)
        self._below = self._air = False  # the previous line's conditions

    # -- feeding ---------------------------------------------------------------------------------

    def prime(self, t: float, q: Mapping[str, Value]) -> None:
        """A line before this scan's piece: it sets the context, nothing is counted."""
        self._line(t, q, False)

    def add(self, t: float, q: Mapping[str, Value]) -> None:
        self._line(t, q, True)

    def _line(self, t: float, q: Mapping[str, Value], count: bool) -> None:
        """One line. Both halves run for every line of a season: kept flat on purpose."""
        self._state(t, q, count)
        self._readings_of(t, q, count)

    def _state(self, t: float, q: Mapping[str, Value], count: bool) -> None:
        """The compressor, mode and water side as held; starts; time of the conditions."""
        watch = self.watch
        gap = watch.max_gap
        get = q.get
        power = get(POWER)
        running: bool | None = None
        if isinstance(power, _NUMBER):
            running = power >= watch.start_power
        else:
            frequency = get(FREQUENCY)
            if isinstance(frequency, _NUMBER):
                running = frequency > 0.0
        if running is not None:
            self.compressor_seen = True
            if count and running and self._running is False and t - self._running_t <= gap:
                hour = int(t // HOUR)
                self.starts[hour] = self.starts.get(hour, 0) + 1
            self._running, self._running_t = running, t
        mode = get(MODE)
        if mode is not None:
            self._mode = mode
        supply, ret = get(SUPPLY), get(RETURN)
        if isinstance(supply, _NUMBER) and isinstance(ret, _NUMBER):
            self._water = (t, supply, ret)
        flow = get(METER_FLOW)
        if flow is None:
            flow = get(METER_POWER)
        m_supply, m_return = get(METER_SUPPLY), get(METER_RETURN)
        if (isinstance(flow, _NUMBER) and isinstance(m_supply, _NUMBER)
                and isinstance(m_return, _NUMBER)):
            self._meter = (t, flow, m_supply, m_return)
            self.meter_seen = True
        last = self._t
        if count and last is not None and t - last <= gap:
            if self._below:
                _spread(self.below_s, last, t)
            if self._air:
                _spread(self.air_s, last, t)
        self._t = t
        on = bool(self._running) and t - self._running_t <= gap
        water, meter = self._water, self._meter
        self._below = (on and self._mode == "heating" and water is not None
                       and t - water[0] <= gap and water[1] - water[2] < -watch.below_k)
        self._air = (on and self._mode in ("heating", "dhw") and meter is not None
                     and t - meter[0] <= gap and meter[1] <= 0.0
                     and meter[2] - meter[3] >= watch.meter_min_dt)

    def _readings_of(self, t: float, q: Mapping[str, Value], count: bool) -> None:
        """Each watched reading: its hour's extremes, and a spike when it jumped away from its
        previous value and straight back."""
        gap, k = self.watch.max_gap, self.watch.spike_k
        hour = int(t // HOUR)
        get = q.get
        for r in self._readings:
            v = get(r.quantity)
            if not isinstance(v, _NUMBER):
                continue
            if count:
                if hour != r.hour:
                    r.flush()
                    r.hour, r.mn, r.mx = hour, v, v
                elif v < r.mn:
                    r.mn = v
                elif v > r.mx:
                    r.mx = v
            step = v - r.v1
            if t - r.t1 > gap:
                r.jump = 0.0
            elif step > k or step < -k:
                jump = r.jump
                if count and jump and (jump > 0.0) != (step > 0.0):
                    self.spikes.append(Spike(r.t1, r.quantity, r.v1 - jump, r.v1, v))
                r.jump = step
            elif r.jump:
                r.jump = 0.0
            r.v1, r.t1 = v, t

    # -- combining and reading out ---------------------------------------------------------------

    def merge(self, later: Scan) -> None:
        """Append the scan of the piece that follows this one (primed with this one's end)."""
        for hour, starts in later.starts.items():
            self.starts[hour] = self.starts.get(hour, 0) + starts
        for mine, theirs in ((self.below_s, later.below_s), (self.air_s, later.air_s)):
            for hour, seconds in theirs.items():
                mine[hour] = mine.get(hour, 0.0) + seconds
        self.spikes += later.spikes
        self.compressor_seen |= later.compressor_seen
        self.meter_seen |= later.meter_seen
        for r, other in zip(self._readings, later._readings, strict=True):
            r.flush()
            other.flush()
            for hour, (mn, mx) in other.hours.items():
                had = r.hours.get(hour)
                r.hours[hour] = (mn, mx) if had is None else (min(had[0], mn), max(had[1], mx))
            if other.hour >= 0:  # go on collecting the last hour, merged
                r.hour = other.hour
                r.mn, r.mx = r.hours[other.hour]
            r.v1, r.t1, r.jump = other.v1, other.t1, other.jump
        self._t, self._running, self._running_t, self._mode = (
            later._t, later._running, later._running_t, later._mode)
        self._water, self._meter, self._below, self._air = (
            later._water, later._meter, later._below, later._air)

    def extremes(self, quantity: str) -> dict[int, tuple[float, float]]:
        """Hour -> (lowest, highest) of a watched reading."""
        for r in self._readings:
            if r.quantity == quantity:
                r.flush()
                return r.hours
        raise KeyError(f"{quantity!r} is not watched")


def _spread(bins: dict[int, float], t0: float, t1: float) -> None:
    """Add [t0, t1) to the hours it lies in (at most two: t1 - t0 is at most ``max_gap``)."""
    hour = int(t0 // HOUR)
    edge = (hour + 1) * HOUR
    if t1 <= edge:
        bins[hour] = bins.get(hour, 0.0) + (t1 - t0)
        return
    bins[hour] = bins.get(hour, 0.0) + (edge - t0)
    rest = t1 - edge
    while rest > 0.0:
        hour += 1
        bins[hour] = bins.get(hour, 0.0) + min(rest, HOUR)
        rest -= HOUR
