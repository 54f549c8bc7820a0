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
    label: str | None = None  # a state quantity whose value labels this quantity's intervals
    max_rate: float = 0.0  # counters: largest plausible rise per hour, in the quantity's unit
    slack: float = 1.0  # counters: resolution allowance on top of max_rate


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


@dataclass(slots=True)
class _BurnerState:
    t: float
    values: dict[str, Value]


@dataclass(frozen=True)
class Spec:
    tracks: tuple[Track, ...]
    max_gap: float = 900.0
    burner: Burner | None = None


class Ledger:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.bins: Bins = {}
        self.gaps: list[Gap] = []
        self.anomalies: list[Anomaly] = []
        self.first: dict[str, _Last] = {}  # each quantity's first observation (for merging)
        self.last: dict[str, _Last] = {}  # and its latest
        self.start: float | None = None
        self.end: float | None = None
        self._keys: dict[Key, Key] = {}
        self._tracks = {t.quantity: t for t in spec.tracks}
        self._burner_last: _BurnerState | None = None  # flame, CH, DHW, modulation together
        self._burner_first: _BurnerState | None = None

    # -- feeding ---------------------------------------------------------------------------------

    def add(self, t: float, values: Mapping[str, Value], measured_at: Mapping[str, float] | None
            = None, events: Iterable[tuple[float, str, Value]] = ()) -> None:
        """One sample: its time, its values, device times of values, state changes before it."""
        if self.start is None:
            self.start = t
        self.end = t
        burner = self.spec.burner
        for at, quantity, change in events:
            if quantity in self._tracks:
                self._observe(self._tracks[quantity], at, change, "")
            if burner is not None and quantity in _burner_fields(burner):
                self._burner_observe(at, {quantity: change})
        for track in self.spec.tracks:
            value = values.get(track.quantity)
            if value is None:
                continue
            when = measured_at.get(track.quantity, t) if measured_at else t
            label = "" if track.label is None else str(values.get(track.label, ""))
            self._observe(track, when, value, label)
        if burner is not None:
            present = {q: values[q] for q in _burner_fields(burner) if q in values}
            if present:
                self._burner_observe(t, present)

    def _observe(self, track: Track, t: float, value: Value, label: str) -> None:
        q = track.quantity
        last = self.last.get(q)
        if last is None:
            self.first[q] = _Last(t, value, label)
            self.last[q] = _Last(t, value, label)
            return
        if t <= last.t:
            return  # the same capture again (a gas meter's hourly value, sent every 10 s)
        self._interval(track, last, t, value)
        last.t, last.value, last.label = t, value, label

    def _interval(self, track: Track, prev: _Last, t: float, value: Value) -> None:
        """Account for what happened between ``prev`` and the reading (t, value)."""
        dt = t - prev.t
        if track.kind == "counter":
            energy = self._counter_energy(track, prev, t, value)
            if dt > self.spec.max_gap:
                if energy:
                    self.gaps.append(Gap(track.quantity, prev.label, prev.t, t, energy))
                return
            self._spread(ENERGY, track.quantity, prev.label, prev.t, t, energy)
            self._spread(COVERED, track.quantity, "", prev.t, t, dt)
        elif dt <= self.spec.max_gap:
            if track.kind == "gauge":
                v = float(prev.value)
                self._spread(GAUGE, track.quantity, prev.label, prev.t, t, v * dt)
                self._spread(HELD, track.quantity, prev.label, prev.t, t, dt)
            else:
                self._spread(STATE, track.quantity, _state(prev.value), prev.t, t, dt)

    def _counter_energy(self, track: Track, prev: _Last, t: float, value: Value) -> float:
        c0, c1 = float(prev.value), float(value)
        allowed = track.max_rate * (t - prev.t) / HOUR + track.slack
        if c1 >= c0:
            if c1 - c0 <= allowed:
                return c1 - c0
            self.anomalies.append(Anomaly(t, track.quantity, "jump", c0, c1))
            return 0.0
        if c1 <= allowed:
            self.anomalies.append(Anomaly(t, track.quantity, "reset", c0, c1))
            return c1
        self.anomalies.append(Anomaly(t, track.quantity, "swap", c0, c1))
        return 0.0

    def _spread(self, kind: str, quantity: str, label: str, t0: float, t1: float,
                amount: float) -> None:
        """Add ``amount`` over [t0, t1) to the hours it overlaps, in proportion to time."""
        key = self._key(kind, quantity, label)
        h0 = int(t0 // HOUR)
        h1 = int(t1 // HOUR) if t1 % HOUR else int(t1 // HOUR) - 1
        if h0 >= h1 or t1 <= t0:
            bin_ = self.bins.get(h0)
            if bin_ is None:
                bin_ = self.bins[h0] = {}
            bin_[key] = bin_.get(key, 0.0) + amount
            return
        span = t1 - t0
        for h in range(h0, h1 + 1):
            overlap = min(t1, (h + 1) * HOUR) - max(t0, h * HOUR)
            if overlap > 0:
                bin_ = self.bins.setdefault(h, {})
                bin_[key] = bin_.get(key, 0.0) + amount * overlap / span

    def _key(self, kind: str, quantity: str, label: str) -> Key:
        key = (kind, quantity, label)
        return self._keys.setdefault(key, key)

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
        self._spread(LOAD, "boiler", purpose, last.t, t, load * (t - last.t))

    # -- combining ------------------------------------------------------------------------------

    def merge(self, later: Ledger) -> None:
        """Append a ledger built over the samples that come after this one's."""
        for hour, figures in later.bins.items():
            mine = self.bins.setdefault(hour, {})
            for key, value in figures.items():
                k = self._key(*key)
                mine[k] = mine.get(k, 0.0) + value
        for q, first in later.first.items():
            last = self.last.get(q)
            if last is None:
                self.first[q] = _Last(first.t, first.value, first.label)
            elif first.t > last.t:
                self._interval(self._tracks[q], last, first.t, first.value)
        for q, last in later.last.items():
            self.last[q] = _Last(last.t, last.value, last.label)
        if later._burner_first is not None:
            if self._burner_last is not None and later._burner_first.t > self._burner_last.t:
                self._burner_interval(self._burner_last, later._burner_first.t)
            if self._burner_first is None:
                self._burner_first = later._burner_first
        if later._burner_last is not None:
            self._burner_last = _BurnerState(later._burner_last.t,
                                             dict(later._burner_last.values))
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
