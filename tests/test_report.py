"""Reports: golden cases computed by hand, the CLI, and the report from the store."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from agent.commands.report import ledger_from_recording
from agent.figures.installation import Installation
from agent.figures.metrics import compute, day_period, span, spec_for
from tests.support import CASES, hpagent

CASE_DIRS = sorted(p for p in (CASES / "report").iterdir() if p.is_dir())


def installation(case: Path) -> Installation:
    data = YAML(typ="safe").load((case / "installation.yaml").read_text()) or {}
    return Installation.model_validate(data)


def matches(got: Any, want: Any, where: str) -> None:
    """Every key of ``want`` is in ``got`` with the same value (floats to 3 decimals)."""
    if isinstance(want, dict):
        assert isinstance(got, dict), where
        for key, value in want.items():
            assert key in got, f"{where}.{key} missing"
            matches(got[key], value, f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list), where
        assert len(got) == len(want), f"{where}: {got}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            matches(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, abs=1.5e-3), where
    else:
        assert got == want, where


@pytest.mark.parametrize("case", CASE_DIRS, ids=lambda p: p.name)
def test_golden_report(case: Path) -> None:
    inst = installation(case)
    expected = json.loads((case / "expected.json").read_text())
    ledger = ledger_from_recording(case / "recording.jsonl", spec_for(inst), workers=1)
    assert ledger.start is not None and ledger.end is not None
    result = compute(ledger, inst, span([ledger.start, ledger.end]))
    days = {k: v for k, v in expected.items() if k.startswith("day ")}
    matches(result, {k: v for k, v in expected.items() if k not in days}, case.name)
    for key, want in days.items():
        day = date.fromisoformat(key.split()[1])
        matches(compute(ledger, inst, day_period(day, day)), want, f"{case.name} {key}")


def test_parallel_reading_gives_the_same_ledger() -> None:
    """Cut into byte ranges and merged, a recording gives the ledger of a single pass."""
    case = CASES / "report" / "counter_reset"
    path = case / "recording.jsonl"
    inst = installation(case)
    one = ledger_from_recording(path, spec_for(inst), workers=1)
    from drivers import recording

    pieces = [ledger_from_range(path, a, b, inst) for a, b in recording.ranges(path, 5)]
    merged = pieces[0]
    for piece in pieces[1:]:
        merged.merge(piece)
    assert merged.bins.keys() == one.bins.keys()
    for hour, figures in one.bins.items():
        for key, value in figures.items():
            assert merged.bins[hour][key] == pytest.approx(value)
    assert merged.anomalies == one.anomalies


def ledger_from_range(path: Path, start: int, end: int, inst: Installation) -> Any:
    from agent.commands.report import read_range

    return read_range(path, start, end, spec_for(inst), None)[0]


def test_cli_report_table_and_json(tmp_path: Path) -> None:
    case = CASES / "report" / "h3_immersion"
    config = tmp_path / "hpagent.yaml"
    config.write_text("device_id: gw\ndevices: []\ninstallation:\n  " +
                      (case / "installation.yaml").read_text().replace("\n", "\n  "))
    base = ["report", "--recording", str(case / "recording.jsonl"), "--config", str(config)]
    shown = hpagent(*base)
    assert shown.returncode == 0, shown.stderr
    table = shown.stdout
    assert "performance factor over 1 days (H3), not seasonal" in table
    assert "3.25" in table
    assert "daily COP against daily mean outdoor temperature" in table or "not enough days" in table
    as_json = hpagent(*base, "--json")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    for key in ("heat_kwh", "electricity_kwh", "spf", "boundary", "heat_coverage", "gas_m3",
                "reference_gas_m3", "gas_saving_m3", "data_coverage", "by_mode", "advice"):
        assert key in data
    bad = hpagent(*base[:-2], "--from", "2026-01-01")
    assert bad.returncode == 2
    assert "give both --from and --to" in bad.stderr
