"""The diagnosis: golden cases computed by hand (one for every rule), the sample scan across cuts,
and the findings in ``hpagent diagnose --findings`` and ``hpagent report``."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from agent.commands.report import read_range, read_recording
from agent.diagnosis.catalogue import CATALOGUE
from agent.diagnosis.engine import RULES, diagnose, spec, watch
from agent.diagnosis.findings import Diagnosis
from agent.diagnosis.scan import Scan, Watch
from agent.diagnosis.thresholds import DiagnosisConfig
from agent.figures.installation import Installation
from agent.figures.metrics import span
from drivers import recording
from tests.support import CASES, hpagent

CASE_DIRS = sorted(p for p in (CASES / "diagnosis").iterdir() if p.is_dir())


def configured(case: Path) -> tuple[Installation, DiagnosisConfig]:
    data = YAML(typ="safe").load((case / "config.yaml").read_text()) or {}
    return (Installation.model_validate(data.get("installation") or {}),
            DiagnosisConfig.model_validate(data.get("diagnosis") or {}))


def diagnosed(case: Path, workers: int = 1) -> Diagnosis:
    inst, cfg = configured(case)
    ledger, scan = read_recording(case / "recording.jsonl", spec(inst), watch(inst, cfg),
                                  workers)
    assert ledger.start is not None and ledger.end is not None and scan is not None
    return diagnose(ledger, scan, inst, cfg, span([ledger.start, ledger.end]))


def test_every_rule_has_a_golden_case() -> None:
    names = {p.name for p in CASE_DIRS}
    for rule, _ in RULES:
        assert rule in names, f"no golden case tests/cases/diagnosis/{rule}"


@pytest.mark.parametrize("case", CASE_DIRS, ids=lambda p: p.name)
def test_golden_findings(case: Path) -> None:
    """Every finding of README.md's hand calculation, with its evidence; nothing else."""
    expected = json.loads((case / "expected.json").read_text())
    found = diagnosed(case).to_json()
    assert [n["rule"] for n in found["not_checked"]] == expected["not_checked"]
    got = found["findings"]
    assert [(f["code"], f["severity"]) for f in got] == \
        [(f["code"], f["severity"]) for f in expected["findings"]]
    for g, want in zip(got, expected["findings"], strict=True):
        assert (g["from"], g["to"]) == (want["from"], want["to"]), g["code"]
        evidence = {e["name"]: e["value"] for e in g["evidence"]}
        assert evidence.keys() == want["evidence"].keys(), g["code"]
        for name, value in want["evidence"].items():
            if isinstance(value, float):
                assert evidence[name] == pytest.approx(value, abs=1e-9), name
            else:
                assert evidence[name] == value, name
        entry = CATALOGUE[g["code"]]
        assert g["cause"] == entry.cause.to_json() and g["action"] == entry.action.to_json()


def test_every_code_has_texts_in_both_languages() -> None:
    for code, entry in CATALOGUE.items():
        for text in (entry.title, entry.cause, entry.action):
            assert text.en and text.nl and text.en != text.nl, code


def test_a_finding_serialises_to_json() -> None:
    found = diagnosed(CASES / "diagnosis" / "heat_meter_air")
    finding = found.findings[0]
    message = json.loads(json.dumps(finding.to_json()))
    assert message["code"] == "heat_meter_air" and message["severity"] == "fault"
    assert {"from", "to", "title", "evidence", "cause", "action"} <= message.keys()
    assert all({"name", "value", "unit"} == set(e) for e in message["evidence"])


# -- the scan across cuts --------------------------------------------------------------------------

WATCH = Watch(spike_k=10.0, readings=("hp.supply_temp", "hp.outdoor_temp"))


def lines(steps: list[tuple[int, float, float, bool]]) -> list[tuple[float, dict[str, Any]]]:
    """(gap seconds, supply, outdoor, running) -> recording-like lines, heat meter included."""
    out, t = [], 1.8e9
    for gap, supply, outdoor, running in steps:
        t += gap
        out.append((t, {"hp.electric_power": 900.0 if running else 5.0, "hp.mode": "heating",
                        "hp.supply_temp": supply, "hp.return_temp": 35.0,
                        "hp.outdoor_temp": outdoor, "room.temp": outdoor + 15.0,
                        "heatmeter.flow": 0.0 if supply < 36 else 9.0,
                        "heatmeter.supply_temp": supply, "heatmeter.return_temp": 30.0}))
    return out


def scan_of(items: list[tuple[float, dict[str, Any]]], cuts: list[int]) -> Scan:
    """The scan of ``items`` cut at ``cuts``, each piece primed with the lines before it."""
    bounds = [0, *sorted(set(cuts)), len(items)]
    pieces = []
    for a, b in itertools.pairwise(bounds):
        piece = Scan(WATCH)
        for t, q in items[max(0, a - 4):a]:
            piece.prime(t, q)
        for t, q in items[a:b]:
            piece.add(t, q)
        pieces.append(piece)
    whole = pieces[0]
    for piece in pieces[1:]:
        whole.merge(piece)
    return whole


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([10, 60, 60, 600, 2000]),
                          st.sampled_from([30.0, 40.0, 40.0, 41.0, 60.0]),
                          st.sampled_from([4.0, 4.0, 5.0]), st.booleans()),
                min_size=1, max_size=120),
       st.lists(st.integers(0, 120), max_size=4))
def test_scans_of_pieces_merge_into_the_scan_of_the_whole(
        steps: list[tuple[int, float, float, bool]], cuts: list[int]) -> None:
    items = lines(steps)
    one, merged = scan_of(items, []), scan_of(items, [c for c in cuts if c < len(items)])
    assert merged.starts == one.starts
    assert merged.below_s == pytest.approx(one.below_s)
    assert merged.air_s == pytest.approx(one.air_s)
    assert merged.spikes == one.spikes
    for sums, whole in ((merged.heating, one.heating), (merged.room, one.room)):
        assert sums.keys() == whole.keys()
        for hour, values in whole.items():
            assert sums[hour] == pytest.approx(values)
    for quantity in WATCH.readings:
        assert merged.extremes(quantity) == one.extremes(quantity)


def test_parallel_reading_gives_the_same_findings() -> None:
    case = CASES / "diagnosis" / "frozen_sensors"
    inst, cfg = configured(case)
    path = case / "recording.jsonl"
    pieces = [read_range(path, a, b, spec(inst), watch(inst, cfg))
              for a, b in recording.ranges(path, 5)]
    ledger, scan = pieces[0]
    for later, later_scan in pieces[1:]:
        ledger.merge(later)
        assert scan is not None and later_scan is not None
        scan.merge(later_scan)
    assert ledger.start is not None and ledger.end is not None and scan is not None
    merged = diagnose(ledger, scan, inst, cfg, span([ledger.start, ledger.end]))
    assert merged.to_json() == diagnosed(case).to_json()


# -- the commands ----------------------------------------------------------------------------------


def config_file(tmp_path: Path, case: Path) -> Path:
    path = tmp_path / "hpagent.yaml"
    path.write_text("device_id: gw\ndevices: []\n" + (case / "config.yaml").read_text())
    return path


def test_diagnose_findings_table_and_json(tmp_path: Path) -> None:
    case = CASES / "diagnosis" / "heat_meter_air"
    base = ["diagnose", "--findings", "--recording", str(case / "recording.jsonl"),
            "--config", str(config_file(tmp_path, case))]
    shown = hpagent(*base)
    assert shown.returncode == 0, shown.stderr
    assert "FAULT    heat_meter_air  2026-01-05 00:00 .. 2026-01-05 05:00 UTC" in shown.stdout
    assert "heat_missed_by_meter   4.5 kWh" in shown.stdout
    assert "cause   While the heat pump ran" in shown.stdout
    dutch = hpagent(*base, "--language", "nl")
    assert "Warmtemeter mist warmte" in dutch.stdout
    data = json.loads(hpagent(*base, "--json").stdout)
    assert [f["code"] for f in data["findings"]] == ["heat_meter_air"]
    assert data["period"] == {"from": "2026-01-04T23:00:00Z", "to": "2026-01-05T05:00:00Z"}
    some = json.loads(hpagent(*base, "--json", "--from", "2026-01-05", "--to", "2026-01-05")
                      .stdout)
    assert some["period"]["from"] == "2026-01-04T23:00:00Z"


@pytest.mark.parametrize(("args", "message"), [
    (("--findings", "--language", "fr"), "--language must be en or nl"),
    (("--findings", "--from", "2026-01-05"), "give both --from and --to"),
])
def test_diagnose_refuses_bad_usage(args: tuple[str, ...], message: str) -> None:
    result = hpagent("diagnose", *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_diagnose_names_a_missing_recording(tmp_path: Path) -> None:
    result = hpagent("diagnose", "--findings", "--recording", str(tmp_path / "none.jsonl"),
                     "--config", str(tmp_path / "none.yaml"))
    assert result.returncode == 1
    assert f"recording {tmp_path / 'none.jsonl'} does not exist" in result.stderr


def test_report_shows_the_findings(tmp_path: Path) -> None:
    case = CASES / "diagnosis" / "short_cycling"
    base = ["report", "--recording", str(case / "recording.jsonl"), "--config",
            str(config_file(tmp_path, case))]
    table = hpagent(*base)
    assert table.returncode == 0, table.stderr
    assert "findings: 1 fault" in table.stdout
    assert "FAULT    short_cycling" in table.stdout
    assert "not checked: heating_curve" in table.stdout
    data = json.loads(hpagent(*base, "--json").stdout)
    assert [f["code"] for f in data["findings"]] == ["short_cycling"]
    assert {n["rule"] for n in data["findings_not_checked"]} >= {"heating_curve", "delta_t"}


def test_the_store_gives_the_findings_of_the_recording(tmp_path: Path) -> None:
    """A gateway's store holding a recording's samples: the same findings, in the report too."""
    from agent.delivery.store import Store
    from agent.sample import ClockState, Sample
    from drivers.reading import Reading

    case = CASES / "diagnosis" / "heat_meter_air"
    store = Store(tmp_path / "hpagent.db")
    with store.transaction():
        for record in recording.read(case / "recording.jsonl"):
            store.add_sample(Sample("hp", record.t, ClockState.SYNCED,
                                    tuple(Reading(q, v) for q, v in record.q.items())))
    store.close()
    config = config_file(tmp_path, case)
    stored = hpagent("diagnose", "--findings", "--json", "--config", str(config),
                     "--state-dir", str(tmp_path))
    assert stored.returncode == 0, stored.stderr
    direct = hpagent("diagnose", "--findings", "--json", "--config", str(config),
                     "--recording", str(case / "recording.jsonl"))
    assert json.loads(stored.stdout) == json.loads(direct.stdout)
    report = hpagent("report", "--json", "--config", str(config), "--state-dir", str(tmp_path))
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["findings"] == json.loads(direct.stdout)["findings"]
