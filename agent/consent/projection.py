"""What a grant lets through of a sample, an interval or a figure: projections. Pure.

Every projection keeps only granted fields and returns None when nothing granted is left, so no
message is ever made of data the recipient may not have. Aggregates at a grant's resolution are
the ledger's arithmetic (:mod:`agent.figures.ledger`) on bins of that width: counters as the
differences of their readings (resets and swaps handled, long gaps left out), gauges as their
time-weighted means, states as seconds in each state. A local day is 23, 24 or 25 hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from agent.delivery.store import StoredSample
from agent.figures.ledger import COVERED, ENERGY, GAUGE, HELD, STATE, FlowHeat, Ledger, Spec, Track
from agent.figures.metrics import LOCAL
from agent.sample import ClockState
from drivers.reading import Value
from drivers.timestamps import rfc3339
from drivers.vocabulary import VOCABULARY, Kind

# The largest plausible rise of a counter per hour, by unit: beyond it a rise is a meter swap.
_MAX_RATE: Final = {"kWh": 60.0, "m³": 10.0, "h": 1.0, "": 3600.0}
GAS_MAX_GAP: Final = 2 * 3600.0 + 60  # DSMR 4 meters capture gas once an hour
_MARGIN: Final = 300.0


def sample_item(s: StoredSample, allowed: frozenset[str]) -> dict[str, Any] | None:
    """A stored sample as a ``samples`` message carries it, with only granted fields."""
    values = {q: v for q, v in s.values.items() if q in allowed}
    events = [e for e in s.events if e[1] in allowed]
    quality = {q: v for q, v in s.qualities.items() if q in allowed}
    if not values and not events and not quality:
        return None
    item: dict[str, Any] = {"ts": rfc3339(s.t), "clock": s.clock.value, "source": s.source,
                            "quantities": values}
    if s.clock is ClockState.UNSYNCED:
        item["boot"] = s.boot
        item["uptime"] = round(s.uptime, 3)
    if quality:
        item["quality"] = quality
    measured = {q: v for q, v in s.measured_at.items() if q in allowed}
    if measured:
        item["measured_at"] = measured
    if events:
        item["events"] = events
    return item


_HOURLY_SECTIONS: Final = ("energy", "covered_s", "gauge_x_s", "held_s", "state_s")


def hourly(content: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any] | None:
    """An hour of the ledger with only the granted quantities."""
    out = {k: v for k, v in content.items() if k not in _HOURLY_SECTIONS}
    kept = False
    for section in _HOURLY_SECTIONS:
        granted = {q: v for q, v in content.get(section, {}).items() if q in allowed}
        if granted:
            out[section] = granted
            kept = True
    return out if kept else None


def daily(content: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any] | None:
    """A day's performance figures, only those granted."""
    figures = {k: v for k, v in content.items() if k in allowed}
    if not figures:
        return None
    return {"day": content["day"], "period": content["period"], **figures}


def local_day(t: float) -> tuple[float, float]:
    """[start, end) of the local (Europe/Amsterdam) day that holds Unix time ``t``."""
    day = datetime.fromtimestamp(t, LOCAL).date()
    start = datetime(day.year, day.month, day.day, tzinfo=LOCAL)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


class Resampler:
    """The ledger arithmetic of one grant's fields at one resolution.

    ``width`` is the interval in seconds (86400: local days, made of hour bins). ``grace`` is how
    far the newest sample must be past an interval's end before the interval is final: the
    longest gap a granted counter may bridge, plus five minutes.
    """

    def __init__(self, allowed: frozenset[str], width: float, base: Spec) -> None:
        self.allowed = allowed
        self.daily = width >= 86400.0
        self.width = 3600.0 if self.daily else width
        known = {t.quantity: t for t in base.tracks}
        tracks = []
        for q in sorted(allowed):
            quantity = VOCABULARY.get(q)
            if quantity is None:
                continue
            track = known.get(q)
            if track is not None:
                tracks.append(Track(q, track.kind, max_rate=track.max_rate, slack=track.slack,
                                    max_gap=track.max_gap))
            elif quantity.kind is Kind.COUNTER:
                tracks.append(Track(q, "counter", max_rate=_MAX_RATE.get(quantity.unit, 60.0),
                                    max_gap=GAS_MAX_GAP if q == "gas.volume" else None))
            else:
                tracks.append(Track(q, quantity.kind.value))
        burner = base.burner if base.burner is not None and "boiler.load" in allowed else None
        flow = FlowHeat() if "hp.heat_power.flow" in allowed else None
        self.spec = Spec(tuple(tracks), base.max_gap, burner, base.labels, flow, self.width)
        gaps = [t.max_gap for t in tracks if t.max_gap is not None]
        self.grace = max([base.max_gap, *gaps]) + _MARGIN
        self.margin = self.grace  # samples before an interval that its first readings need

    def first_start(self, t: float) -> float:
        """The start of the first whole interval at or after ``t``."""
        if self.daily:
            start, end = local_day(t)
            return start if start >= t else end
        return -(-t // self.width) * self.width

    def end_of(self, start: float) -> float:
        return local_day(start)[1] if self.daily else start + self.width

    def final_until(self, newest: float) -> float:
        """Intervals that end by this time can no longer change."""
        return newest - self.grace

    def intervals(self, rows: Iterable[tuple[float, Mapping[str, Value], Mapping[str, float],
                                              list[tuple[float, str, Value]]]],
                  start: float, end: float) -> list[dict[str, Any]]:
        """The non-empty intervals in [start, end) computed from ``rows`` (time order; they
        must begin ``margin`` seconds before ``start``)."""
        ledger = Ledger(self.spec)
        for t, q, at, events in rows:
            ledger.add(t, q, at, events)
        bins = ledger.bins
        out = []
        a = start
        while a < end:
            b = self.end_of(a)
            figures: dict[tuple[str, str, str], float] = {}
            for h in range(int(a // self.width), int(b // self.width)):
                for key, value in bins.get(h, {}).items():
                    figures[key] = figures.get(key, 0.0) + value
            item = self._interval(a, b, figures)
            if item is not None:
                out.append(item)
            a = b
        return out

    def _interval(self, a: float, b: float, figures: dict[tuple[str, str, str], float]
                  ) -> dict[str, Any] | None:
        counters: dict[str, float] = {}
        covered: dict[str, float] = {}
        sums: dict[str, list[float]] = {}
        states: dict[str, dict[str, float]] = {}
        for (kind, q, label), value in figures.items():
            if q not in self.allowed:
                continue
            if kind == ENERGY:
                counters[q] = counters.get(q, 0.0) + value
            elif kind == COVERED:
                covered[q] = covered.get(q, 0.0) + value
            elif kind in (GAUGE, HELD):
                pair = sums.setdefault(q, [0.0, 0.0])
                pair[kind == HELD] += value
            elif kind == STATE:
                per = states.setdefault(q, {})
                per[label] = round(per.get(label, 0.0) + value, 3)
        gauges = {q: round(g / h, 6) for q, (g, h) in sums.items() if h > 0}
        if not counters and not gauges and not states:
            return None
        item: dict[str, Any] = {"from": rfc3339(a), "to": rfc3339(b)}
        if counters:
            item["counters"] = {q: round(v, 6) for q, v in sorted(counters.items())}
            item["covered_s"] = {q: round(covered.get(q, 0.0), 3) for q in sorted(counters)}
        if gauges:
            item["gauges"] = dict(sorted(gauges.items()))
        if states:
            item["states"] = dict(sorted(states.items()))
        return item

