"""What every rule reads: the period's hours, the scan, the ledger, the report's figures, the
installation and the thresholds; and the helpers rules share to state their evidence."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from agent.diagnosis.findings import Evidence, Finding
from agent.diagnosis.hours import Hour
from agent.diagnosis.scan import Scan
from agent.diagnosis.thresholds import DiagnosisConfig
from agent.figures.installation import Installation
from agent.figures.ledger import HOUR, Ledger
from agent.figures.metrics import Period


class NotMeasured(Exception):
    """A rule needs a quantity the installation does not measure (or too little of it)."""


@dataclass(frozen=True)
class Context:
    inst: Installation
    cfg: DiagnosisConfig
    period: Period
    rows: list[Hour]
    scan: Scan
    ledger: Ledger
    figures: dict[str, Any]  # agent.figures.metrics.compute() of the period

    def seen(self, quantity: str) -> bool:
        """Whether the period's samples carried ``quantity`` (a quantity the ledger tracks)."""
        return quantity in self.ledger.first


Rule = Callable[[Context], list[Finding]]


def ev(name: str, value: float | None, unit: str = "", digits: int = 1) -> Evidence:
    """A figure of evidence, rounded to what it means."""
    return Evidence(name, None if value is None else round(value, digits), unit)


def weighted(pairs: Iterable[tuple[float | None, float]]) -> float | None:
    """Mean of values with weights, skipping missing values (None: nothing to average)."""
    total = weight = 0.0
    for value, w in pairs:
        if value is not None and w > 0.0:
            total += value * w
            weight += w
    return total / weight if weight > 0.0 else None


def runs(rows: Iterable[Hour], keep: Callable[[Hour], bool]) -> Iterator[list[Hour]]:
    """Maximal runs of consecutive hours (no hour missing between them) that ``keep`` keeps."""
    run: list[Hour] = []
    for row in rows:
        if keep(row) and (not run or row.t - run[-1].t <= HOUR):
            run.append(row)
            continue
        if run:
            yield run
        run = [row] if keep(row) else []
    if run:
        yield run


def span_end(rows: list[Hour]) -> float:
    return rows[-1].t + HOUR
