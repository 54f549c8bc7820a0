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
* **Burner load.** For a boiler on OpenTherm, the burner's full-load-equivalent time (flame x
  (minimum power + the rest x relative modulation)) is integrated separately for hot water
  and space heating, from the state-change timeline when there is one: this is what divides gas
  between the two.

Every figure lives in hour bins that add up. Ledgers built over consecutive pieces of a
recording and merged in time order equal the ledger built in one go, which lets a season be
computed in parallel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from drivers.reading import Value

HOUR: Final = 3600.0

# Kinds of bin entries, the first element of a key
ENERGY: Final = "E"  # counter difference (quantity, label)
COVERED: Final = "C"  # seconds covered by valid intervals (quantity, "")
GAUGE: Final = "G"  # value x seconds (quantity, label)
HELD: Final = "H"  # seconds a gauge was held (quantity, label)
STATE: Final = "S"  # seconds in a state (quantity, str(value))
LOAD: Final = "L"  # burner full-load-equivalent seconds ("boiler", "ch" | "dhw")

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
    """Which quantities describe the boiler's burner, and its minimum power (0..1 of maximum)."""

    flame: str = "boiler.flame"
    ch: str = "boiler.ch_active"
    dhw: str = "boiler.dhw_active"
    modulation: str = "boiler.modulation"
    min_power: float = 0.25


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


@dataclass(slots=True)
class _BurnerState:
    t: float
    values: dict[str, Value]


@dataclass(frozen=True)
class Spec:
    tracks: tuple[Track, ...]
    max_gap: float = 900.0
    burner: Burner | None = None
    labels: Labels = field(default_factory=Labels)
    flow_heat: FlowHeat | None = None


class Ledger:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
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
        self._burner_last: _BurnerState | None = None  # flame, CH, DHW, modulation together
        self._burner_first: _BurnerState | None = None
        self._burner = spec.burner
        self._burner_fields = _burner_fields(spec.burner) if spec.burner is not None else ()
        self._labels = spec.labels
        self._flow_heat = spec.flow_heat

    @property
    def bins(self) -> Bins:
        """Figures per hour (Unix time // 3600)."""
        self._settle()
        return self._bins

    @property
    def last(self) -> dict[str, _Last]:
        """Each quantity's latest observation."""
        return {q: s.last for q, s in self._series.items() if s.last is not None}

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
                if burner is not None and quantity in self._burner_fields:
                    self._burner_observe(at, {quantity: change})
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
        if burner is not None:
            present = {q: values[q] for q in self._burner_fields if q in values}
            if present:
                self._burner_observe(t, present)

    def _observe(self, series: _Series, t: float, value: Value, label: str) -> None:
        """The hot path (millions of calls for a season): kept flat on purpose."""
        last = series.last
        if last is None:
            self.first[series.quantity] = _Last(t, value, label)
            series.last = _Last(t, value, label)
            return
        t0 = last.t
        if t <= t0:
            return  # the same capture again (a gas meter's hourly value, sent every 10 s)
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
            if int(t0 // HOUR) == int(-(-t // HOUR)) - 1:  # within one hour: open a run
                series.run_label = key
                series.run_start = t0 - t0 % HOUR
                series.run_end = series.run_start + HOUR
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
        figures = self._bins.setdefault(int(series.run_start // HOUR), {})
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
        h0 = int(t0 // HOUR)
        h1 = int(-(-t1 // HOUR)) - 1 if t1 > t0 else h0  # the last hour the interval touches
        span = t1 - t0
        for h in range(h0, h1 + 1):
            overlap = min(t1, (h + 1) * HOUR) - max(t0, h * HOUR) if span > 0 else 1.0
            if overlap > 0:
                figures = self._bins.setdefault(h, {})
                figures[key] = figures.get(key, 0.0) + (amount * overlap / span if span > 0
                                                        else amount)

    def _settle(self) -> None:
        for series in self._series.values():
            self._close_run(series)

    # -- the burner -----------------------------------------------------------------------------

    def _burner_observe(self, t: float, changed: Mapping[str, Value]) -> None:
        last = self._burner_last
        if last is None:
            self._burner_first = _BurnerState(t, dict(changed))
            self._burner_last = _BurnerState(t, dict(changed))
            return
        if t < last.t:
            return  # older than what we have: already accounted for
        if t > last.t:
            self._burner_interval(last, t)
            last.t = t
        last.values.update(changed)

    def _burner_interval(self, last: _BurnerState, t: float) -> None:
        burner = self.spec.burner
        assert burner is not None
        if t - last.t > self.spec.max_gap:
            return
        state = last.values
        if not state.get(burner.flame):
            return
        modulation = state.get(burner.modulation)
        m = float(modulation) / 100 if isinstance(modulation, int | float) else 0.0
        load = burner.min_power + (1 - burner.min_power) * max(0.0, min(m, 1.0))
        # hot water has priority: a boiler heating its tank is not heating the house
        purpose = "dhw" if state.get(burner.dhw) else "ch" if state.get(burner.ch) else "other"
        self._put((LOAD, "boiler", purpose), last.t, t, load * (t - last.t))

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
        if later._burner_first is not None:
            if self._burner_last is not None and later._burner_first.t > self._burner_last.t:
                self._burner_interval(self._burner_last, later._burner_first.t)
            if self._burner_first is None:
                self._burner_first = later._burner_first
        if later._burner_last is not None:
            self._burner_last = _BurnerState(later._burner_last.t,
                                             dict(later._burner_last.values))
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
        h0 = None if start is None else int(start // HOUR)
        h1 = None if end is None else int(end // HOUR)
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


def _burner_fields(burner: Burner) -> tuple[str, str, str, str]:
    return (burner.flame, burner.ch, burner.dhw, burner.modulation)


@dataclass
class Totals:
    """Figures of one period, read out of a ledger (what metrics work on)."""

    energy: dict[tuple[str, str], float] = field(default_factory=dict)
    covered: dict[str, float] = field(default_factory=dict)
    gauge: dict[tuple[str, str], float] = field(default_factory=dict)
    held: dict[tuple[str, str], float] = field(default_factory=dict)
    state: dict[tuple[str, str], float] = field(default_factory=dict)
    load: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def totals(ledger: Ledger, start: float, end: float) -> Totals:
    """Everything of [start, end) (hour-aligned), including energy across gaps inside it."""
    out = Totals(seconds=end - start)
    h0, h1 = int(start // HOUR), int(-(-end // HOUR))
    for hour, figures in ledger.bins.items():
        if not h0 <= hour < h1:
            continue
        for (kind, q, label), value in figures.items():
            if kind == ENERGY:
                out.energy[(q, label)] = out.energy.get((q, label), 0.0) + value
            elif kind == COVERED:
                out.covered[q] = out.covered.get(q, 0.0) + value
            elif kind == GAUGE:
                out.gauge[(q, label)] = out.gauge.get((q, label), 0.0) + value
            elif kind == HELD:
                out.held[(q, label)] = out.held.get((q, label), 0.0) + value
            elif kind == STATE:
                out.state[(q, label)] = out.state.get((q, label), 0.0) + value
            elif kind == LOAD:
                out.load[label] = out.load.get(label, 0.0) + value
    for gap in ledger.gaps:
        if gap.start >= start and gap.end <= end:
            key = (gap.quantity, gap.label)
            out.energy[key] = out.energy.get(key, 0.0) + gap.energy
    return out
