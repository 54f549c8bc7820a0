"""``hpagent diagnose --findings``: why the installation underperforms, with the evidence.

The findings view of ``hpagent diagnose``. It reads a period's samples (a recording's lines, in
worker processes like the report, or the store's rows in time order), runs the diagnosis rules
(:mod:`agent.diagnosis`) and prints every finding with its evidence, likely cause and the action
to take, as a table or JSON. ``hpagent report`` shows the same findings in a section of its own
(:func:`section`) and its JSON (:func:`attach`).
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any, Literal

from agent.commands.report import read_recording, store_span
from agent.delivery.store import Store
from agent.diagnosis.engine import diagnose, spec, watch
from agent.diagnosis.findings import iso
from agent.diagnosis.scan import Scan
from agent.diagnosis.thresholds import DiagnosisConfig
from agent.figures.installation import Installation
from agent.figures.ledger import Ledger
from agent.figures.metrics import Period, span
from agent.service.findings_service import read_stored
from drivers import recording

Language = Literal["en", "nl"]
_WIDTH = 100


def from_recording(path: Path, inst: Installation, cfg: DiagnosisConfig, workers: int | None
                   ) -> tuple[Ledger, Scan, Period] | int:
    """The ledger (the diagnosis's, which gives the report's figures too), the sample scan and
    the whole hours a recording spans; or, having said why, the exit code."""
    if not path.is_file():
        print(f"hpagent: recording {path} does not exist", file=sys.stderr)
        return 1
    if sys.stderr.isatty():
        print(f"reading {path} ({path.stat().st_size / 1e6:,.0f} MB) ...", file=sys.stderr,
              flush=True)
    try:
        ledger, scan = read_recording(path, spec(inst), watch(inst, cfg), workers)
    except recording.RecordingError as exc:
        print(f"hpagent: {exc}", file=sys.stderr)
        return 1
    if ledger.start is None or ledger.end is None or scan is None:
        print(f"hpagent: {path} has no samples", file=sys.stderr)
        return 1
    return ledger, scan, span([ledger.start, ledger.end])


def attach(result: dict[str, Any], ledger: Ledger, scan: Scan, inst: Installation,
           cfg: DiagnosisConfig, period: Period) -> None:
    """Put the period's findings into a report's figures (``result``, which they also use)."""
    found = diagnose(ledger, scan, inst, cfg, period, figures=result).to_json()
    result["findings"] = found["findings"]
    result["findings_not_checked"] = found["not_checked"]


def run(recording_file: Path | None, store_path: Path | None, inst: Installation,
        cfg: DiagnosisConfig, period: Period | None, as_json: bool, workers: int | None,
        language: Language = "en") -> int:
    """The ``hpagent diagnose --findings`` command; returns the exit code."""
    if recording_file is not None:
        read = from_recording(recording_file, inst, cfg, workers)
        if isinstance(read, int):
            return read
        ledger, scan, whole = read
        period = period or whole
    else:
        assert store_path is not None
        if not store_path.is_file():
            print(f"hpagent: no database at {store_path} (give --state-dir or --recording)",
                  file=sys.stderr)
            return 1
        store = Store(store_path)
        try:
            period = period or store_span(store)
            if period is None:
                print("hpagent: no samples to diagnose", file=sys.stderr)
                return 1
            ledger, scan = read_stored(store, inst, cfg, period)
        finally:
            store.close()
    found = diagnose(ledger, scan, inst, cfg, period).to_json()
    found["period"] = {"from": iso(period.start), "to": iso(period.end)}
    print(json.dumps(found, indent=2, ensure_ascii=False) if as_json
          else render(found, language))
    return 0


# -- tables ----------------------------------------------------------------------------------------


def _value(e: dict[str, Any]) -> str:
    value, unit = e["value"], e["unit"]
    if value is None:
        return "-"
    if isinstance(value, float) and value.is_integer() and abs(value) >= 100:
        value = int(value)
    return f"{value} {unit}".strip() if unit not in ("", "%") else f"{value}{unit}"


def _when(f: dict[str, Any]) -> str:
    start, end = f["from"], f["to"]
    return f"{start[:16].replace('T', ' ')} .. {end[:16].replace('T', ' ')} UTC"


def _count(findings: list[dict[str, Any]]) -> str:
    counts = {s: sum(f["severity"] == s for f in findings) for s in ("fault", "warning", "info")}
    parts = [f"{n} {s}{'s' if n > 1 else ''}" for s, n in counts.items() if n]
    return ", ".join(parts) or "none"


def section(findings: list[dict[str, Any]], not_checked: list[dict[str, str]]) -> list[str]:
    """The findings as a section of the report: one line each, its evidence below it."""
    lines = [f"  findings: {_count(findings)}"
             + ("  (hpagent diagnose --findings: causes and actions)" if findings else "")]
    for f in findings:
        lines += [f"    {f['severity'].upper():<8} {f['code']}  {_when(f)}",
                  f"             {f['title']['en']}"]
        evidence = ", ".join(f"{e['name'].replace('_', ' ')} {_value(e)}" for e in f["evidence"])
        lines += textwrap.wrap(evidence, _WIDTH, initial_indent=" " * 13,
                               subsequent_indent=" " * 13)
    if not_checked:
        lines += textwrap.wrap("not checked: " + "; ".join(
            f"{n['rule']} ({n['reason']})" for n in not_checked), _WIDTH,
            initial_indent="  ", subsequent_indent="    ")
    return lines


def render(found: dict[str, Any], language: Language = "en") -> str:
    """Every finding with its evidence as a table, its cause and the action, for people."""
    findings = found["findings"]
    period = found["period"]
    lines = [f"hpagent diagnose --findings  {period['from']} .. {period['to']}",
             f"{len(findings)} finding{'' if len(findings) == 1 else 's'}: {_count(findings)}"]
    for f in findings:
        lines += ["", f"{f['severity'].upper():<8} {f['code']}  {_when(f)}",
                  f"  {f['title'][language]}", "  evidence"]
        width = max(len(e["name"]) for e in f["evidence"]) if f["evidence"] else 0
        lines += [f"    {e['name']:<{width}}  {_value(e)}" for e in f["evidence"]]
        for key in ("cause", "action"):
            lines += textwrap.wrap(f[key][language], _WIDTH, initial_indent=f"  {key:<8}",
                                   subsequent_indent=" " * 10)
    if found["not_checked"]:
        lines += ["", "not checked"]
        width = max(len(n["rule"]) for n in found["not_checked"])
        lines += [f"  {n['rule']:<{width}}  {n['reason']}" for n in found["not_checked"]]
    return "\n".join(lines)
