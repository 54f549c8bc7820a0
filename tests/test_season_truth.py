"""The bench season against its ground truth: what the report computes from the recording is
what the simulated installation did (issue: SPF within 1 %, heat coverage within 0.5
percentage points, gas divided between space heating and hot water within 3 %); and the healthy
season gives no finding above info."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.commands.report import read_recording
from agent.diagnosis import engine
from agent.diagnosis.findings import Severity
from agent.diagnosis.scan import Scan
from agent.figures.ledger import Ledger
from agent.figures.metrics import compute, span
from hil.season import run_season, truth_path
from tests.support import BENCH, BENCH_DESIGN, hpagent


@pytest.fixture(scope="module")
def season(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], Path]:
    """October to April, a sample a minute (the full season, fast enough for every CI run)."""
    out = tmp_path_factory.mktemp("season") / "season.jsonl"
    run_season(out, start=datetime(2025, 10, 1, tzinfo=UTC),
               end=datetime(2026, 5, 1, tzinfo=UTC), step=60.0, seed=1)
    return json.loads(truth_path(out).read_text()), out


@pytest.fixture(scope="module")
def read(season: tuple[dict[str, object], Path]) -> tuple[Ledger, Scan]:
    """The season read as the report reads it: the diagnosis's ledger (the report's figures and
    more) and the sample scan, in one pass."""
    ledger, scan = read_recording(season[1], engine.spec(BENCH), engine.watch(BENCH, BENCH_DESIGN))
    assert scan is not None
    return ledger, scan


def test_report_matches_the_ground_truth(season: tuple[dict[str, object], Path],
                                         read: tuple[Ledger, Scan]) -> None:
    truth, _ = season
    ledger, _ = read
    assert ledger.start is not None and ledger.end is not None
    r = compute(ledger, BENCH, span([ledger.start, ledger.end]))
    t: dict[str, object] = truth
    assert r["spf"] == pytest.approx(t["spf"], rel=0.01)
    assert r["heat_kwh"] == pytest.approx(t["heat_kwh"], rel=0.01)
    assert r["electricity_kwh"] == pytest.approx(t["electricity_kwh"], rel=0.01)
    coverage: dict[str, float] = t["heat_coverage"]  # type: ignore[assignment]
    for kind in ("space_heating", "hot_water"):
        assert r["heat_coverage"][kind] == pytest.approx(coverage[kind], abs=0.005), kind
    gas: dict[str, float] = t["gas_m3"]  # type: ignore[assignment]
    assert r["gas_m3"] == pytest.approx(gas["total"], rel=0.001)
    for kind in ("ch", "dhw"):
        assert r["gas_split_m3"][kind] == pytest.approx(gas[kind], rel=0.03), kind
    assert r["by_mode"]["defrost"]["heat_kwh"] < 0, "defrost is its own, negative, heat"
    assert r["data_coverage"]["hp.heat_energy"] > 0.999
    assert not r["period"]["seasonal"], "October to April is not a whole year"
    assert "not seasonal" in r["spf_label"]
    # the season's degree days are Dutch-winter-like and come from the heat pump's sensor
    assert 1800 < r["degree_days"] < 3200


def test_the_healthy_season_has_no_finding_above_info(read: tuple[Ledger, Scan]) -> None:
    ledger, scan = read
    assert ledger.start is not None and ledger.end is not None
    found = engine.diagnose(ledger, scan, BENCH, BENCH_DESIGN, span([ledger.start, ledger.end]))
    assert [f.to_json() for f in found.findings if f.severity is not Severity.INFO] == []
    # every rule the bench can feed ran: no backup heater, no heat meter on the healthy bench
    assert {n.rule for n in found.not_checked} == {"backup_heater", "heat_meter_air"}


def test_cli_report_on_the_season(season: tuple[dict[str, object], Path], tmp_path: Path
                                  ) -> None:
    _, path = season
    result = hpagent("report", "--recording", str(path), "--config", str(tmp_path / "none.yaml"))
    assert result.returncode == 0, result.stderr
    assert "daily COP against daily mean outdoor temperature" in result.stdout
    assert "Heat coverage, space heating" in result.stdout
