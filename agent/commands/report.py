"""``hpagent report``: a period's performance from the store or a recording, as a table and chart.

Building the ledger is the expensive part (a year of 10-second samples is over three million
lines); a recording is cut into byte ranges that worker processes read at once, and their
ledgers are merged in time order, which gives exactly the ledger of a single pass. The same
pass feeds the diagnosis's sample scan (each worker's scan primed with the lines before its
range), so the report's findings cost no second reading.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from agent.delivery.store import Store
from agent.diagnosis.scan import Scan, Watch
from agent.diagnosis.thresholds import DiagnosisConfig
from agent.figures.installation import Installation
from agent.figures.ledger import Ledger, Spec
from agent.figures.metrics import Period
from drivers import recording

PRIME_LINES = 32  # lines before a worker's range that give its scan its context


def read_range(path: Path, start: int, end: int, spec: Spec, watch: Watch | None
               ) -> tuple[Ledger, Scan | None]:
    """The ledger (and, given a ``watch``, the sample scan) of a byte range of a recording."""
    ledger = Ledger(spec)
    add = ledger.add
    if watch is None:
        for t, q, at, e, _ in recording.read_raw(path, start, end):
            add(t, q, at, e or ())
        return ledger, None
    scan = Scan(watch)
    if start:
        for t, q, *_ in list(recording.read_raw(path, max(0, start - (64 << 10)), start)
                             )[-PRIME_LINES:]:
            scan.prime(t, q)
    see = scan.add
    for t, q, at, e, _ in recording.read_raw(path, start, end):
        add(t, q, at, e or ())
        see(t, q)
    return ledger, scan


def read_recording(path: Path, spec: Spec, watch: Watch | None = None,
                   workers: int | None = None) -> tuple[Ledger, Scan | None]:
    """The ledger (and scan) of a whole recording, built by ``workers`` processes (default: all
    CPUs), merged in time order."""
    workers = workers or os.cpu_count() or 1
    size = path.stat().st_size
    parts = recording.ranges(path, workers if size > 4 << 20 else 1)
    if len(parts) == 1:
        return read_range(path, 0, size, spec, watch)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(len(parts), mp_context=context) as pool:
        pieces = list(pool.map(read_range, [path] * len(parts), [a for a, _ in parts],
                               [b for _, b in parts], [spec] * len(parts),
                               [watch] * len(parts)))
    ledger, scan = pieces[0]
    for later, later_scan in pieces[1:]:
        ledger.merge(later)
        if scan is not None and later_scan is not None:
            scan.merge(later_scan)
    return ledger, scan


def ledger_from_recording(path: Path, spec: Spec, workers: int | None = None) -> Ledger:
    """The ledger of a whole recording, built by ``workers`` processes (default: all CPUs)."""
    return read_recording(path, spec, None, workers)[0]


def store_span(store: Store) -> Period | None:
    row = store.db.execute("SELECT min(t), max(t) FROM samples").fetchone()
    if row is None or row[0] is None:
        return None
    from agent.figures.metrics import span

    return span([row[0], row[1]])


# -- rendering -------------------------------------------------------------------------------


def _fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"{value:,.{digits}f}{(' ' + unit) if unit else ''}".replace(",", " ")
    return str(value)


def render(r: dict[str, Any]) -> str:
    p = r["period"]
    lines = [f"hpagent report  {p['from']} .. {p['to']}  ({p['days']:g} days"
             f"{', seasonal' if p['seasonal'] else ''})", ""]
    rows = [
        ("Heat pump heat", _fmt(r["heat_kwh"], "kWh")),
        ("Heat pump electricity", _fmt(r["electricity_kwh"], "kWh")),
        (r["spf_label"], _fmt(r["spf"], digits=2)),
        ("Running COP (compressor on)", _fmt(r["running_cop"], digits=2)),
        ("Heat coverage, space heating", _pct(r["heat_coverage"]["space_heating"])),
        ("Heat coverage, hot water", _pct(r["heat_coverage"]["hot_water"])),
        ("Gas used", f"{_fmt(r['gas_m3'], 'm³')}  ({_fmt(r['gas_kwh'], 'kWh')}, "
                     f"{r['calorific_value']['basis']} {r['calorific_value']['mj_m3']} MJ/m³)"),
        ("  space heating / hot water / other", " / ".join(
            _fmt(r["gas_split_m3"].get(k), "m³") for k in ("ch", "dhw", "other"))),
        ("Reference boiler would have used", _fmt(r["reference_gas_m3"], "m³")),
        ("Gas saved", f"{_fmt(r['gas_saving_m3'], 'm³')}  (net "
                      f"{_fmt(r['savings']['eur'], 'EUR', 2)}, "
                      f"{_fmt(r['savings']['kg_co2'], 'kg CO2')})"),
        ("Weighted degree days", _fmt(r["degree_days"])),
    ]
    width = max(len(a) for a, _ in rows)
    lines += [f"  {a:<{width}}  {b}" for a, b in rows]
    lines += ["", "  by mode        heat kWh   electricity kWh   hours"]
    for mode, m in r["by_mode"].items():
        if m["hours"] or m["heat_kwh"] or m["electricity_kwh"]:
            lines.append(f"  {mode:<12} {_fmt(m['heat_kwh']):>10} {_fmt(m['electricity_kwh']):>17}"
                         f" {_fmt(m['hours']):>7}")
    lines += ["", "  data coverage: " + ", ".join(f"{q} {_pct(v)}"
                                                   for q, v in r["data_coverage"].items())]
    for check in r["heat_cross_checks"]:
        lines.append(f"  heat cross-check: {check['against']}: {_fmt(check['kwh'], 'kWh')} "
                     f"({_pct(check['difference'], signed=True)} against {check['reference']})")
    if r["anomalies"]:
        lines.append(f"  counter anomalies: {len(r['anomalies'])} (see --json)")
    if r["gaps"]:
        lines.append(f"  gaps longer than the limit: {len(r['gaps'])}, their energy is in the "
                     "totals, not in the hours")
    lines += [f"  note: {n}" for n in r["notes"]]
    lines += ["", *_advice_lines(r)]
    if "findings" in r:
        from agent.commands.findings import section

        lines += ["", *section(r["findings"], r["findings_not_checked"])]
    lines += ["", chart(r["daily"])]
    return "\n".join(lines)


def _pct(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x * 100:+.1f} %" if signed else f"{x * 100:.1f} %"


def _advice_lines(r: dict[str, Any]) -> list[str]:
    a, g = r["advice"], r["guarantee"]
    out = []
    if "scop" in a:
        out.append(f"  advice: SCOP {a['scop']['advised']:g}, "
                   f"measured {_fmt(a['scop']['measured'], digits=2)}")
    if "heat_coverage" in a:
        out.append(f"  advice: heat coverage {_pct(a['heat_coverage']['advised'])}, "
                   f"measured {_pct(a['heat_coverage']['measured'])}")
    if "annual_gas_m3" in a:
        out.append(f"  advice: {a['annual_gas_m3']['advised']:g} m³ gas a normal year, "
                   f"measured {_fmt(a['annual_gas_m3']['normal_year'], 'm³')} "
                   f"(scaled to {a['reference_degree_days']:g} degree days)")
    out.append(f"  guarantee: {g['verdict']}")
    for c in g["checks"]:
        out.append(f"    {c['check']}: required {c['required']}, measured {c['measured']}")
    out += [f"    not decidable: {why}" for why in g["why_not_decidable"]]
    return out


def chart(days: list[dict[str, Any]], width: int = 60, height: int = 14) -> str:
    """Daily COP against daily mean outdoor temperature, as a terminal scatter plot."""
    points = [(d["outdoor_mean"], d["cop"]) for d in days
              if d["outdoor_mean"] is not None and d["cop"] is not None]
    if len(points) < 2:
        return "  (not enough days with COP and outdoor temperature for a chart)"
    xs, ys = [x for x, _ in points], [y for _, y in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(0.0, *ys), max(ys)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    grid = [[" "] * width for _ in range(height)]
    for x, y in points:
        col = round((x - x0) / (x1 - x0) * (width - 1))
        row = height - 1 - round((y - y0) / (y1 - y0) * (height - 1))
        grid[row][col] = "o" if grid[row][col] == " " else "O"
    lines = ["  daily COP against daily mean outdoor temperature"]
    for i, row in enumerate(grid):
        label = y1 - (y1 - y0) * i / (height - 1)
        lines.append(f"  {label:5.1f} |{''.join(row)}")
    lines.append("        +" + "-" * width)
    lines.append(f"        {x0:<6.1f}{'outdoor °C':^{width - 12}}{x1:>6.1f}")
    return "\n".join(lines)



def run(recording_file: Path | None, store_path: Path | None, installation: Installation,
        period: Period | None, as_json: bool, workers: int | None,
        diagnosis: DiagnosisConfig | None = None) -> int:
    """The ``hpagent report`` command; returns the exit code."""
    import json
    import sys

    from agent.commands import findings
    from agent.figures.metrics import compute, spec_for

    diagnosis = diagnosis or DiagnosisConfig()
    scan = None
    if recording_file is not None:
        read = findings.from_recording(recording_file, installation, diagnosis, workers)
        if isinstance(read, int):
            return read
        ledger, scan, whole = read
        evidence, period = ledger, period or whole
    else:
        assert store_path is not None
        if not store_path.is_file():
            print(f"hpagent: no database at {store_path} (give --state-dir or --recording)",
                  file=sys.stderr)
            return 1
        from agent.service.findings_service import read_stored
        from agent.service.ledger_service import ledger_from_store

        store = Store(store_path)
        try:
            period = period or store_span(store)
            ledger = ledger_from_store(store, spec_for(installation), period)
            if period is not None:  # the findings read the samples themselves
                evidence, scan = read_stored(store, installation, diagnosis, period)
        finally:
            store.close()
    if period is None:
        print("hpagent: no samples to report on", file=sys.stderr)
        return 1
    result = compute(ledger, installation, period)
    if scan is not None:
        findings.attach(result, evidence, scan, installation, diagnosis, period)
    print(json.dumps(result, indent=2, ensure_ascii=False) if as_json else render(result))
    return 0
