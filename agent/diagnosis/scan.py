"""The sample scan: what the diagnosis needs from the sequence of samples itself. Pure.

The ledger (:mod:`agent.figures.ledger`) turns samples into hour bins of energy, time and
averages. Some questions need the samples in order: compressor starts; a supply reading below
its return while heating; time a heat meter saw no flow while the heat pump ran and its sensors
showed a spread; the hourly time means of supply and return while the compressor heats and of
the room temperature; each watched reading's lowest and highest value in an hour (a reading
whose hours stay flat has stopped changing; the tank's highest shows an anti-legionella cycle);
and single readings that jump away and come straight back (spikes). The scan answers them in
one pass, per hour where that is enough.

Like the ledger it reads no clock and no device, and it keeps values from one line to the next
(lines of several devices interleave in a recording), for at most ``max_gap``. Scans of
consecutive pieces of a recording merge into the scan of the whole: each piece is first primed
(:meth:`Scan.prime`) with the lines just before it, the context its first lines need (exact
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
ROOM: Final = "room.temp"
WATER: Final = (SUPPLY, RETURN, METER_SUPPLY, METER_RETURN)  # change while the compressor runs
_HEATING_MODES: Final = frozenset(("heating", "dhw"))  # the heat meter sees these
_CONTEXT: Final = ("_t", "_running", "_running_t", "_mode", "_supply", "_return", "_room",
                   "_water_t", "_room_t", "_meter_t", "_flow", "_spread_k", "_heats", "_below",
                   "_air", "_warm")


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
        # hour -> [seconds, ∫supply, ∫return] while the compressor ran for space heating
        self.heating: dict[int, list[float]] = {}
        self.room: dict[int, list[float]] = {}  # hour -> [seconds, ∫room temperature]
        self.spikes: list[Spike] = []
        self.compressor_seen = False  # a line said whether the compressor ran
        self.water_seen = False  # a line had the heat pump's supply and return
        self.meter_seen = False  # a line had the heat meter's flow (or power) and temperatures
        self._readings = [_Reading(q) for q in watch.readings]
        self._gap, self._start_power = watch.max_gap, watch.start_power
        self._below_k = -watch.below_k  # supply - return below this is implausible
        self._min_dt, self._spike_k = watch.meter_min_dt, watch.spike_k
        self._t: float | None = None  # the previous line
        self._running = False
        self._running_t = -1e18  # when a line last said whether the compressor ran
        self._mode: Value | None = None
        self._supply = self._return = self._room = 0.0  # held values, and when they were seen
        self._water_t = self._room_t = self._meter_t = -1e18
        self._flow = self._spread_k = 0.0  # the heat meter's flow and ΔT
        # The previous line's state, which holds over the interval to this line.
        self._heats = self._below = self._air = self._warm = False

    # -- feeding ---------------------------------------------------------------------------------

    def prime(self, t: float, q: Mapping[str, Value]) -> None:
        """A line before this scan's piece: it sets the context, nothing is counted."""
        self._t = t
        self._state(t, q, False)
        self._readings_of(t, q, False)

    def add(self, t: float, q: Mapping[str, Value]) -> None:
        """One line. Each part runs for every line of a season: kept flat on purpose."""
        last = self._t
        if last is not None and t - last <= self._gap:
            self._held(last, t)
        self._t = t
        self._state(t, q, True)
        self._readings_of(t, q, True)

    def _held(self, last: float, t: float) -> None:
        """The previous line's state held over [last, t): heating means, room, conditions."""
        hour = int(last // HOUR)
        if t > (hour + 1) * HOUR:  # rarely: the interval crosses an hour
            self._across(last, t)
            return
        dt = t - last
        if self._heats:
            sums = self.heating.get(hour)
            if sums is None:
                self.heating[hour] = [dt, self._supply * dt, self._return * dt]
            else:
                sums[0] += dt
                sums[1] += self._supply * dt
                sums[2] += self._return * dt
        if self._warm:
            sums = self.room.get(hour)
            if sums is None:
                self.room[hour] = [dt, self._room * dt, 0.0]
            else:
                sums[0] += dt
                sums[1] += self._room * dt
        if self._below:
            self.below_s[hour] = self.below_s.get(hour, 0.0) + dt
        if self._air:
            self.air_s[hour] = self.air_s.get(hour, 0.0) + dt

    def _state(self, t: float, q: Mapping[str, Value], count: bool) -> None:
        """The compressor, mode, water side, room and heat meter as held; starts; the state the
        next interval holds. Values are numbers, as the vocabulary says."""
        gap = self._gap
        get = q.get
        power = get(POWER)
        if power is None:
            power = get(FREQUENCY)
            running = None if power is None else power > 0.0  # type: ignore[operator]
        else:
            running = power >= self._start_power  # type: ignore[operator]
        if running is None:
            running = self._running and t - self._running_t <= gap
        else:
            if count and running and not self._running and t - self._running_t <= gap:
                hour = int(t // HOUR)
                self.starts[hour] = self.starts.get(hour, 0) + 1
            self._running, self._running_t = running, t
            self.compressor_seen = True
        mode = get(MODE)
        if mode is None:
            mode = self._mode
        else:
            self._mode = mode
        supply, ret = get(SUPPLY), get(RETURN)
        if supply is not None and ret is not None:
            self._supply, self._return, self._water_t = supply, ret, t  # type: ignore[assignment]
            self.water_seen = True
        room = get(ROOM)
        if room is not None:
            self._room, self._room_t = room, t  # type: ignore[assignment]
        flow = get(METER_FLOW)
        if flow is None:
            flow = get(METER_POWER)
        if flow is not None:
            m_supply, m_return = get(METER_SUPPLY), get(METER_RETURN)
            if m_supply is not None and m_return is not None:
                self._flow, self._meter_t = flow, t  # type: ignore[assignment]
                self._spread_k = m_supply - m_return  # type: ignore[operator]
                self.meter_seen = True
        self._warm = t - self._room_t <= gap
        if running and mode == "heating" and t - self._water_t <= gap:
            self._heats = True
            self._below = self._supply - self._return < self._below_k
        else:
            self._heats = self._below = False
        self._air = (running and mode in _HEATING_MODES and t - self._meter_t <= gap
                     and self._flow <= 0.0 and self._spread_k >= self._min_dt)

    def _across(self, last: float, t: float) -> None:
        """The previous line's state over an interval that crosses an hour."""
        if self._heats:
            _add(self.heating, last, t, self._supply, self._return)
        if self._warm:
            _add(self.room, last, t, self._room, 0.0)
        if self._below:
            _spread(self.below_s, last, t)
        if self._air:
            _spread(self.air_s, last, t)

    def _readings_of(self, t: float, q: Mapping[str, Value], count: bool) -> None:
        """Each watched reading: its hour's extremes, and a spike when it jumped away from its
        previous value and straight back."""
        gap, k = self._gap, self._spike_k
        hour = int(t // HOUR)
        get = q.get
        for r in self._readings:
            v = get(r.quantity)
            if not isinstance(v, _NUMBER):
                continue
            if v == r.v1 and hour == r.hour and t - r.t1 <= gap:  # the common case: no change
                r.t1 = t
                if r.jump:
                    r.jump = 0.0
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
        for into, sums in ((self.heating, later.heating), (self.room, later.room)):
            for hour, values in sums.items():
                total = into.setdefault(hour, [0.0] * len(values))
                for i, value in enumerate(values):
                    total[i] += value
        self.spikes += later.spikes
        self.compressor_seen |= later.compressor_seen
        self.water_seen |= later.water_seen
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
            if other.t1 > r.t1:
                r.v1, r.t1, r.jump = other.v1, other.t1, other.jump
        for name in _CONTEXT:  # the state the later piece ended in
            setattr(self, name, getattr(later, name))

    def extremes(self, quantity: str) -> dict[int, tuple[float, float]]:
        """Hour -> (lowest, highest) of a watched reading."""
        for r in self._readings:
            if r.quantity == quantity:
                r.flush()
                return r.hours
        raise KeyError(f"{quantity!r} is not watched")


def _add(bins: dict[int, list[float]], t0: float, t1: float, a: float, b: float) -> None:
    """Add [t0, t1) and a·dt, b·dt over it to the hours it lies in."""
    hour = int(t0 // HOUR)
    while t0 < t1:
        end = min(t1, (hour + 1) * HOUR)
        dt = end - t0
        sums = bins.get(hour)
        if sums is None:
            bins[hour] = [dt, a * dt, b * dt]
        else:
            sums[0] += dt
            sums[1] += a * dt
            sums[2] += b * dt
        t0, hour = end, hour + 1


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
