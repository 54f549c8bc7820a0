"""Findings from the stored samples: a day's for the ``findings`` stream, any period's for
``hpagent diagnose --findings`` and the report.

The rules are pure (:mod:`agent.diagnosis`); this reads what they need from the store: the
samples of the period and of the longest interval on either side (the intervals that reach into
its first and last hour), into the diagnosis's ledger and sample scan.
"""

from __future__ import annotations

from typing import Any

from agent.delivery.store import Store
from agent.diagnosis.engine import diagnose, spec, watch
from agent.diagnosis.scan import Scan
from agent.diagnosis.thresholds import DiagnosisConfig
from agent.figures.installation import Installation
from agent.figures.ledger import Ledger
from agent.figures.metrics import Period
from drivers.timestamps import rfc3339


def read_stored(store: Store, inst: Installation, cfg: DiagnosisConfig, period: Period
                ) -> tuple[Ledger, Scan]:
    """The diagnosis's ledger and scan of the stored samples of ``period``."""
    ledger_spec = spec(inst)
    reach = max([ledger_spec.max_gap, *(t.max_gap for t in ledger_spec.tracks if t.max_gap)])
    ledger, scan = Ledger(ledger_spec), Scan(watch(inst, cfg))
    for t, q, at, events in store.ledger_rows(period.start - reach, period.end + reach):
        ledger.add(t, q, at, events)
        scan.add(t, q)
    return ledger, scan


def day_findings(store: Store, inst: Installation, cfg: DiagnosisConfig, day: str,
                 period: Period) -> dict[str, Any]:
    """A local day's findings, as the ``findings`` stream carries them."""
    ledger, scan = read_stored(store, inst, cfg, period)
    found = diagnose(ledger, scan, inst, cfg, period).to_json()
    return {"day": day, "period": [rfc3339(period.start), rfc3339(period.end)], **found}
