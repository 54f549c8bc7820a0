"""The energy ledger: readings over time -> energy, time and averages per hour, by mode. Pure.

It reads no clock and no device: it is a function of samples with their own timestamps, so the
same code runs live, on a recording and on the bench.

Rules (the README's "Definitions" states them for residents and auditors):

* **Counters are the truth for energy.** The energy of an interval is the difference between two
  consecutive readings of a counter. A reading with the device's own timestamp (a gas meter's
  capture time) is placed at that time, and the same capture seen again is one reading, not two.
* **Resets, rollovers, swaps.** A counter that goes down is a reset when its new value is small
  enough to have been counted since zero within the interval (the interval's energy is then the
  new value); otherwise the meter was swapped or misread, the interval's energy is unknown (0)
  and the new value is the new baseline. A rise faster than the quantity's ``max_rate`` (plus one
  unit of resolution) is the same: a swap to a higher index. Each is recorded as an anomaly.
* **Gaps.** Energy is spread over the hours of its interval in proportion to time only when the
  interval is at most ``max_gap`` long. Across a longer gap the counter difference is still
  energy that happened, but not when: it is kept as *unattributed* energy of the gap, counted in
  totals over periods that contain the whole gap, never in hourly figures.
* **Gauges and states** hold their value from one observation to the next, for at most
  ``max_gap``. Gauges are kept as value x seconds, states as seconds per state.
* **Labels.** An interval of a labelled quantity takes the label (e.g. ``hp.mode``) that the
  sample which started it carried.
* **Burner load.** For a boiler on OpenTherm, the burner's full-load fraction (flame x (minimum
  power + the rest x relative modulation)) is a gauge labelled by what the burner heats, updated
  at every state change of the timeline and every sample: its time integral divides gas between
  hot water and space heating.

Every figure lives in hour bins that add up (or bins of another width, ``Spec.width``: the
1-minute and 15-minute aggregates a grant may ask for are the same arithmetic). Ledgers built
over consecutive pieces of a recording and merged in time order equal the ledger built in one
go, which lets a season be computed in parallel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from drivers.reading import Value

HOUR: Final = 3600.0

# Kinds of bin entries, the first element of a key
ENERGY: Final = "E"  # counter difference (quantity, label)
COVERED: Final = "C"  # seconds covered by valid intervals (quantity, label)
GAUGE: Final = "G"  # value x seconds (quantity, label)
HELD: Final = "H"  # seconds a gauge was held (quantity, label)
STATE: Final = "S"  # seconds in a state (quantity, str(value))

Key = tuple[str, str, str]
Bins = dict[int, dict[Key, float]]  # hour number (Unix time // 3600) -> figures


@dataclass(frozen=True, slots=True)
class Track:
    """How one quantity is accounted for."""

    quantity: str
    kind: str  # "counter", "gauge" or "state"
    labelled: bool = False  # intervals carry the sample's label (operating mode, running)
    max_rate: float = 0.0  # counters: largest plausible rise per hour, in the quantity's unit
    slack: float = 1.0  # counters: resolution allowance on top of max_rate
    max_gap: float | None = None  # instead of the ledger's, e.g. for an hourly gas meter


@dataclass(frozen=True, slots=True)
class Labels:
    """The label of a sample: ``<mode>|run`` or ``<mode>|idle``.

    The mode is the heat pump's operating mode; "run" means its electrical input was at least
    ``start_power`` watts (the compressor runs), which is what a running COP counts.
    """

    mode: str = "hp.mode"
    power: str = "hp.electric_power"
    start_power: float = 100.0
    _made: dict[tuple[Value | None, bool], str] = field(default_factory=dict, compare=False,
                                                         repr=False)

    def __call__(self, values: Mapping[str, Value]) -> str:
        power = values.get(self.power)
        running = isinstance(power, int | float) and power >= self.start_power
        key = (values.get(self.mode), running)
        label = self._made.get(key)
        if label is None:
            mode = "" if key[0] is None else key[0]
            label = self._made[key] = f"{mode}|{'run' if running else 'idle'}"
        return label


@dataclass(frozen=True, slots=True)
class FlowHeat:
    """Thermal power from the water side, where a device has no heat counter: flow x cp x dT."""

    name: str = "hp.heat_power.flow"
    supply: str = "hp.supply_temp"
    ret: str = "hp.return_temp"
    flow: str = "hp.flow"  # l/min

    def __call__(self, values: Mapping[str, Value]) -> float | None:
        s, r, f = values.get(self.supply), values.get(self.ret), values.get(self.flow)
        if s is None or r is None or f is None:
            return None
        return f * 69.7666 * (s - r)  # type: ignore[operator]  # l/min / 60 s x 4186 J/(kg K)


@dataclass(frozen=True, slots=True)
class Burner:
    """Which quantities describe the boiler's burner, and its minimum power (0..1 of maximum).

    Its state becomes a gauge, ``boiler.load``: the burner's full-load fraction, labelled by
    what it heats. Hot water has priority (a combi's diverter valve): a boiler heating its
    tank or tap water is not heating the house.
    """

    flame: str = "boiler.flame"
    ch: str = "boiler.ch_active"
    dhw: str = "boiler.dhw_active"
    modulation: str = "boiler.modulation"
    min_power: float = 0.25
    name: str = "boiler.load"

    @property
    def fields(self) -> tuple[str, str, str, str]:
        return (self.flame, self.ch, self.dhw, self.modulation)

    def load(self, state: Mapping[str, Value]) -> tuple[float, str]:
        """(full-load fraction, "ch" | "dhw" | "other" | "off") of a burner state."""
        if not state.get(self.flame):
            return 0.0, "off"
        modulation = state.get(self.modulation)
        m = float(modulation) / 100 if isinstance(modulation, int | float) else 0.0
        load = self.min_power + (1 - self.min_power) * max(0.0, min(m, 1.0))
        return load, "dhw" if state.get(self.dhw) else "ch" if state.get(self.ch) else "other"


@dataclass(frozen=True, slots=True)
class Anomaly:
    t: float
    quantity: str
    kind: str  # "reset", "swap" or "jump"
    before: float
    after: float


@dataclass(frozen=True, slots=True)
class Gap:
    quantity: str
    label: str
    start: float
    end: float
    energy: float  # the counter difference across the gap: real, but not placed in time


@dataclass(slots=True)
class _Last:
    t: float
    value: Value
    label: str


class _Series:
    """One quantity: its latest observation and its open *run*.

    A run sums the intervals that share one label and lie within one hour; it goes into the
    hour bins when the label or the hour changes. A season has millions of samples but only
    thousands of runs, so the hot path is a few float additions.
    """

    __slots__ = ("counter", "gauge", "keys", "labelled", "last", "max_gap", "quantity", "rate",
                 "run_a", "run_b", "run_end", "run_label", "run_start", "slack", "track")

    def __init__(self, track: Track, max_gap: float) -> None:
        self.track = track
        self.max_gap = track.max_gap if track.max_gap is not None else max_gap
        self.quantity = track.quantity
        self.counter = track.kind == "counter"
        self.gauge = track.kind == "gauge"
        self.labelled = track.labelled
        self.rate = track.max_rate / HOUR  # plausible rise per second
        self.slack = track.slack
        self.last: _Last | None = None
        self.keys: dict[str, tuple[Key, Key]] = {}  # label -> its two keys
        self.run_label: str | None = None
        self.run_start = 0.0  # the run covers [run_start, run_end) at most: one hour
        self.run_end = -1.0
        self.run_a = 0.0  # counters: energy; gauges: value x seconds; states: seconds
        self.run_b = 0.0  # counters: seconds covered; gauges: seconds held

    def pair(self, label: str) -> tuple[Key, Key]:
        keys = self.keys.get(label)
        if keys is None:
            q = self.quantity
            if self.counter:
                keys = ((ENERGY, q, label), (COVERED, q, label))
            elif self.gauge:
                keys = ((GAUGE, q, label), (HELD, q, label))
            else:
                keys = ((STATE, q, label), (STATE, q, label))
            self.keys[label] = keys
        return keys


@dataclass(frozen=True)
class Spec:
    tracks: tuple[Track, ...]
    max_gap: float = 900.0
    burner: Burner | None = None
    labels: Labels = field(default_factory=Labels)
    flow_heat: FlowHeat | None = None
    width: float = HOUR  # seconds per bin


class Ledger:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self._w = spec.width
        self._bins: Bins = {}
        self.gaps: list[Gap] = []
        self.anomalies: list[Anomaly] = []
        self.first: dict[str, _Last] = {}  # each quantity's first observation (for merging)
        self.start: float | None = None
        self.end: float | None = None
        tracks = list(spec.tracks)
        if spec.flow_heat is not None:
            tracks.append(Track(spec.flow_heat.name, "gauge", labelled=True))
        self._series = {t.quantity: _Series(t, spec.max_gap) for t in tracks}
        self._sampled = [self._series[t.quantity] for t in spec.tracks]
        self._burner = spec.burner
        self._burner_state: dict[str, Value] = {}  # flame, CH, DHW, modulation as last seen
        if spec.burner is not None:
            self._series[spec.burner.name] = _Series(Track(spec.burner.name, "gauge"),
                                                     spec.max_gap)
        self._labels = spec.labels
        self._flow_heat = spec.flow_heat

    @property
    def bins(self) -> Bins:
        """Figures per bin (Unix time // width: hours unless the spec says otherwise)."""
        self._settle()
        return self._bins

    # -- feeding ---------------------------------------------------------------------------------

    def add(self, t: float, values: Mapping[str, Value], measured_at: Mapping[str, float] | None
            = None, events: Iterable[tuple[float, str, Value]] = ()) -> None:
        """One sample: its time, its values, device times of values, state changes before it."""
        if self.start is None:
            self.start = t
        self.end = t
        burner = self._burner
        if events:
            for at, quantity, change in events:
                series = self._series.get(quantity)
                if series is not None:
                    self._observe(series, at, change, "")
                if burner is not None and quantity in burner.fields:
                    self._burner_state[quantity] = change
                    self._observe_burner(burner, at)
        label = self._labels(values)
        observe = self._observe
        get = values.get
        for series in self._sampled:
            value = get(series.quantity)
            if value is not None:
                when = measured_at.get(series.quantity, t) if measured_at else t
                observe(series, when, value, label if series.labelled else "")
        if self._flow_heat is not None:
            power = self._flow_heat(values)
            if power is not None:
                observe(self._series[self._flow_heat.name], t, power, label)
        if burner is not None and burner.flame in values:
            state = self._burner_state
            for q in burner.fields:
                value = get(q)
                if value is not None:
                    state[q] = value
            self._observe_burner(burner, t)

    def _observe_burner(self, burner: Burner, t: float) -> None:
        load, purpose = burner.load(self._burner_state)
        self._observe(self._series[burner.name], t, load, purpose)

    def _observe(self, series: _Series, t: float, value: Value, label: str) -> None:
        """The hot path (millions of calls for a season): kept flat on purpose."""
        last = series.last
        if last is None:
            self.first[series.quantity] = _Last(t, value, label)
            series.last = _Last(t, value, label)
            return
        t0 = last.t
        if t <= t0:
            if t == t0 and not series.counter:  # two changes at one instant: the later holds
                last.value, last.label = value, label
            return  # a counter's same capture again (a gas meter's hourly value, every 10 s)
        dt = t - t0
        if series.counter:
            c0 = last.value
            amount = value - c0  # type: ignore[operator]
            if not 0.0 <= amount <= series.rate * dt + series.slack:
                amount = self._counter_anomaly(series.track, t, float(c0), float(value), dt)
            if dt > series.max_gap:
                if amount:
                    self.gaps.append(Gap(series.quantity, last.label, t0, t, amount))
                last.t, last.value, last.label = t, value, label
                return
            key = last.label
        elif dt > series.max_gap:
            last.t, last.value, last.label = t, value, label
            return
        elif series.gauge:
            amount = last.value * dt  # type: ignore[operator]
            key = last.label
        else:
            amount = dt
            key = _state(last.value)
        if key == series.run_label and t <= series.run_end and t0 >= series.run_start:
            series.run_a += amount
            series.run_b += dt
        else:
            self._close_run(series)
            w = self._w
            if int(t0 // w) == int(-(-t // w)) - 1:  # within one bin: open a run
                series.run_label = key
                series.run_start = t0 - t0 % w
                series.run_end = series.run_start + w
                series.run_a, series.run_b = amount, dt
            else:
                first, second = series.pair(key)
                self._put(first, t0, t, amount)
                if first != second:
                    self._put(second, t0, t, dt)
        last.t, last.value, last.label = t, value, label

    def _close_run(self, series: _Series) -> None:
        if series.run_label is None:
            return
        first, second = series.pair(series.run_label)
        figures = self._bins.setdefault(int(series.run_start // self._w), {})
        figures[first] = figures.get(first, 0.0) + series.run_a
        if first != second:
            figures[second] = figures.get(second, 0.0) + series.run_b
        series.run_label = None
        series.run_a = series.run_b = 0.0

    def _interval(self, series: _Series, prev: _Last, t: float, value: Value) -> None:
        """Account for the interval from ``prev`` to (t, value), leaving ``prev`` as it is."""
        saved = series.last
        series.last = _Last(prev.t, prev.value, prev.label)
        self._observe(series, t, value, "")
        series.last = saved

    def _counter_anomaly(self, track: Track, t: float, c0: float, c1: float, dt: float) -> float:
        """Energy of an interval whose counter fell or rose too fast; records the anomaly."""
        allowed = track.max_rate * dt / HOUR + track.slack
        if c1 >= c0:
            self.anomalies.append(Anomaly(t, track.quantity, "jump", c0, c1))
            return 0.0
        if c1 <= allowed:
            self.anomalies.append(Anomaly(t, track.quantity, "reset", c0, c1))
            return c1
        self.anomalies.append(Anomaly(t, track.quantity, "swap", c0, c1))
        return 0.0

    def _put(self, key: Key, t0: float, t1: float, amount: float) -> None:
        """Add ``amount`` over [t0, t1) to the hours it overlaps, in proportion to time."""
        w = self._w
        h0 = int(t0 // w)
        h1 = int(-(-t1 // w)) - 1 if t1 > t0 else h0  # the last bin the interval touches
        span = t1 - t0
        for h in range(h0, h1 + 1):
            overlap = min(t1, (h + 1) * w) - max(t0, h * w) if span > 0 else 1.0
            if overlap > 0:
                figures = self._bins.setdefault(h, {})
                figures[key] = figures.get(key, 0.0) + (amount * overlap / span if span > 0
                                                        else amount)

    def drop_before(self, hour: int) -> None:
        """Forget the figures, gaps and anomalies of the bins before ``hour`` (kept elsewhere)."""
        bins = self.bins
        for h in [h for h in bins if h < hour]:
            del bins[h]
        edge = hour * self._w
        self.gaps = [g for g in self.gaps if g.end >= edge]
        self.anomalies = [a for a in self.anomalies if a.t >= edge]

    def _settle(self) -> None:
        for series in self._series.values():
            self._close_run(series)

    # -- combining ------------------------------------------------------------------------------

    def merge(self, later: Ledger) -> None:
        """Append a ledger built over the samples that come after this one's."""
        for hour, figures in later.bins.items():
            mine = self._bins.setdefault(hour, {})
            for key, value in figures.items():
                mine[key] = mine.get(key, 0.0) + value
        for q, first in later.first.items():
            series = self._series[q]
            if series.last is None:
                self.first[q] = _Last(first.t, first.value, first.label)
            elif first.t > series.last.t:
                self._interval(series, series.last, first.t, first.value)
        for q, theirs in later._series.items():
            if theirs.last is not None:
                self._series[q].last = _Last(theirs.last.t, theirs.last.value, theirs.last.label)
        self._burner_state.update(later._burner_state)
        self._settle()
        self.gaps += later.gaps
        self.anomalies += later.anomalies
        if self.start is None:
            self.start = later.start
        self.end = later.end if later.end is not None else self.end

    # -- reading out ----------------------------------------------------------------------------

    def total(self, kind: str, quantity: str, label: str | None = None, start: float | None = None,
              end: float | None = None) -> float:
        """Sum over the hours in [start, end) (all by default); ``label=None`` sums all labels."""
        h0 = None if start is None else int(start // self._w)
        h1 = None if end is None else int(end // self._w)
        total = 0.0
        for hour, figures in self.bins.items():
            if (h0 is not None and hour < h0) or (h1 is not None and hour >= h1):
                continue
            for (k, q, lab), value in figures.items():
                if k == kind and q == quantity and (label is None or lab == label):
                    total += value
        return total

    def gap_energy(self, quantity: str, start: float | None = None,
                   end: float | None = None) -> float:
        """Energy across long gaps that lie wholly inside [start, end)."""
        return sum(g.energy for g in self.gaps if g.quantity == quantity
                   and (start is None or g.start >= start) and (end is None or g.end <= end))


def _state(value: Value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)
