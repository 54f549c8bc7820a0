"""The live ledger: every sample into the ledger; hours closed, stored and published.

An hour is closed once no reading can still fall into it: when the newest sample is past the
hour's end by the longest interval the ledger places in time, plus five minutes. Its figures
go into ``ledger_hours`` and out on the ``hourly`` stream in one transaction; when the last hour
of a local day closes, the day's performance goes out on the ``daily`` stream. Closed hours
never change; the hours still open are rebuilt from the stored samples after a restart, so the
ledger survives one. The report reads closed hours from the table and only the open tail from
the samples, which keeps a season's report fast on the gateway.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog

from agent.consent.dispatch import Dispatcher
from agent.consent.fields import DAILY_FIGURES
from agent.delivery.store import Store
from agent.diagnosis.thresholds import DiagnosisConfig
from agent.figures.installation import Installation
from agent.figures.ledger import (
    COVERED,
    ENERGY,
    GAUGE,
    HELD,
    HOUR,
    STATE,
    Anomaly,
    Gap,
    Ledger,
    Spec,
)
from agent.figures.metrics import LOCAL, Period, compute, spec_for
from agent.sample import Sample
from drivers.timestamps import rfc3339

log = structlog.get_logger("hpagent.ledger")

UNTIL = "ledger_until"  # meta key: the first hour not yet closed


def _margin(spec: Spec) -> float:
    gaps = [t.max_gap for t in spec.tracks if t.max_gap is not None]
    return max([spec.max_gap, *gaps]) + 300.0


class LedgerService:
    def __init__(self, store: Store, dispatcher: Dispatcher, installation: Installation,
                 diagnosis: DiagnosisConfig | None = None) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.installation = installation
        self.diagnosis = diagnosis or DiagnosisConfig()
        self.spec = spec_for(installation)
        self.grace = _margin(self.spec)
        self.until = _until(store)
        self.closed = 0
        self._reached: int | None = None  # every hour before this one is closed
        # the hours still open, rebuilt from the samples they (and their first intervals) use
        start = -1.0 if self.until is None else self.until * HOUR - self.grace
        self.ledger, fed = _open_hours(store, self.spec, self.until, start)
        if fed:
            log.info("ledger.rebuilt", samples=fed, open_from=_hour_iso(self.until))

    def add_all(self, samples: list[Sample]) -> None:
        """Samples the store has just committed, in order."""
        for sample in samples:
            self.add(sample)

    def add(self, sample: Sample) -> None:
        """A sample the store has committed; closes the hours it puts out of reach."""
        record = sample.record()
        self.ledger.add(record.t, record.q, record.at, record.e)
        hour = int((sample.t - self.grace) // HOUR)
        # Once an hour: reading the bins settles the ledger's open runs, its fast path.
        if hour != self._reached and self.close_until(hour):
            self._reached = hour

    def close_until(self, hour: int) -> bool:
        """Close every hour with figures before ``hour``, oldest first; False if one failed."""
        bins = self.ledger.bins
        # all() stops at an hour the disk refused: it stays open and is tried again
        return all(self._close(h, bins[h]) for h in sorted(h for h in bins if h < hour))

    def _close(self, hour: int, figures: dict[tuple[str, str, str], float]) -> bool:
        """One transaction: the hour's rows, the gaps and anomalies up to its end, the marker."""
        edge = (hour + 1) * HOUR
        gaps = [g for g in self.ledger.gaps if g.end < edge]
        anomalies = [a for a in self.ledger.anomalies if a.t < edge]

        def write() -> None:
            self.store.db.executemany(
                "INSERT OR REPLACE INTO ledger_hours VALUES (?, ?, ?, ?, ?)",
                [(hour, k, q, label, v) for (k, q, label), v in figures.items()])
            _write_gaps(self.store, gaps, anomalies)
            self.store.set_meta(UNTIL, str(hour + 1))

        if not self.dispatcher.publish("hourly", hour * HOUR, edge, hourly_content(hour, figures),
                                       write):
            return False
        self.until = hour + 1
        self.ledger.drop_before(self.until)
        self.closed += 1
        end = datetime.fromtimestamp(edge, UTC).astimezone(LOCAL)
        if end.hour == 0 and end.minute == 0:  # the last hour of a local day
            self._daily((end - timedelta(days=1)).date())
        return True

    def _daily(self, day: date) -> None:
        start = datetime(day.year, day.month, day.day, tzinfo=LOCAL)
        period = Period(start.timestamp(), (start + timedelta(days=1)).timestamp())
        figures = compute(closed_ledger(self.store, self.spec, period), self.installation,
                          period)
        self.dispatcher.publish("daily", period.start, period.end,
                                daily_content(day.isoformat(), period, figures), lambda: None)
        if self.dispatcher.wanted("findings"):  # the rules read the day's samples: only if asked
            from agent.service.findings_service import day_findings  # the daemon's memory

            content = day_findings(self.store, self.installation, self.diagnosis,
                                   day.isoformat(), period)
            self.dispatcher.publish("findings", period.start, period.end, content, lambda: None)

    def keep_from(self) -> float:
        """Samples from this time on are still needed: the open hours are rebuilt from them."""
        return -float("inf") if self.until is None else self.until * HOUR - self.grace


def _write_gaps(store: Store, gaps: list[Gap], anomalies: list[Anomaly]) -> None:
    store.db.executemany("INSERT INTO ledger_gaps VALUES (?, ?, ?, ?, ?)",
                         [(g.quantity, g.label, g.start, g.end, g.energy) for g in gaps])
    store.db.executemany("INSERT INTO ledger_anomalies VALUES (?, ?, ?, ?, ?)",
                         [(a.t, a.quantity, a.kind, a.before, a.after) for a in anomalies])


def _hour_iso(hour: int | None) -> str | None:
    return None if hour is None else rfc3339(hour * HOUR)


def hourly_content(hour: int, figures: dict[tuple[str, str, str], float]) -> dict[str, Any]:
    """An hour's figures, as the ``hourly`` stream carries them."""
    names = {ENERGY: "energy", COVERED: "covered_s", GAUGE: "gauge_x_s", HELD: "held_s",
             STATE: "state_s"}
    out: dict[str, Any] = {"hour": rfc3339(hour * HOUR),
                           "period": [rfc3339(hour * HOUR), rfc3339((hour + 1) * HOUR)]}
    for (kind, quantity, label), value in sorted(figures.items()):
        section = out.setdefault(names.get(kind, kind), {})
        section.setdefault(quantity, {})[label or "-"] = round(value, 6)
    return out


def daily_content(day: str, period: Period, figures: dict[str, Any]) -> dict[str, Any]:
    """A day's performance, as the ``daily`` stream carries it (each figure a grantable field)."""
    out: dict[str, Any] = {"day": day, "period": [rfc3339(period.start), rfc3339(period.end)],
                           **{k: figures[k] for k in DAILY_FIGURES if k in figures}}
    if figures["daily"]:
        out["outdoor_mean"] = figures["daily"][0]["outdoor_mean"]
    return out


def _until(store: Store) -> int | None:
    """The first hour not yet closed, or None before the first close."""
    text = store.meta(UNTIL)
    return int(text) if text is not None else None


def _open_hours(store: Store, spec: Spec, until: int | None, start: float,
                end: float | None = None) -> tuple[Ledger, int]:
    """A ledger of the stored samples from ``start``, without the hours before ``until``
    (they are closed, in the table); and how many samples went in."""
    ledger = Ledger(spec)
    fed = 0
    for t, q, at, events in store.ledger_rows(start, end):
        ledger.add(t, q, at, events)
        fed += 1
    if until is not None:
        ledger.drop_before(until)
    return ledger, fed


def ledger_from_store(store: Store, spec: Spec, period: Period | None) -> Ledger:
    """Closed hours from the table, the open ones rebuilt from the samples after them."""
    ledger = closed_ledger(store, spec, period)
    until = _until(store)
    margin = _margin(spec)
    start = -1.0 if until is None else until * HOUR - margin
    if period is not None:
        start = max(start, period.start - margin)
    tail, _ = _open_hours(store, spec, until, start, None if period is None else period.end)
    ledger.bins.update(tail.bins)
    ledger.gaps += tail.gaps
    ledger.anomalies += tail.anomalies
    ledger.start = tail.start if tail.start is not None else ledger.start
    ledger.end = tail.end
    return ledger


def closed_ledger(store: Store, spec: Spec, period: Period | None) -> Ledger:
    """A ledger of the closed hours in ``period`` (all, if None), read from the table."""
    ledger = Ledger(spec)
    h0 = -1 if period is None else int(period.start // HOUR)
    h1 = 2**62 if period is None else int(-(-period.end // HOUR))
    for hour, kind, quantity, label, value in store.db.execute(
            "SELECT hour, kind, quantity, label, value FROM ledger_hours "
            "WHERE hour >= ? AND hour < ?", (h0, h1)):
        ledger.bins.setdefault(hour, {})[(kind, quantity, label)] = value
    lo, hi = h0 * HOUR, h1 * HOUR
    ledger.gaps = [Gap(*row) for row in store.db.execute(
        "SELECT quantity, label, start, end, energy FROM ledger_gaps "
        "WHERE end > ? AND start < ?", (lo, hi))]
    ledger.anomalies = [Anomaly(*row) for row in store.db.execute(
        "SELECT t, quantity, kind, before, after FROM ledger_anomalies WHERE t >= ? AND t < ?",
        (lo, hi))]
    return ledger
