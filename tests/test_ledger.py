"""The ledger's arithmetic: counters, resets, swaps, gaps, holds, labels, burner load; and the
properties that make a season report trustworthy."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.figures.ledger import (
    COVERED,
    ENERGY,
    GAUGE,
    STATE,
    Burner,
    Ledger,
    Spec,
    Track,
)
from drivers.reading import Value

HEAT = Track("hp.heat_energy", "counter", labelled=True, max_rate=20.0)
GAS = Track("gas.volume", "counter", max_rate=10.0, slack=0.01)
OUT = Track("hp.outdoor_temp", "gauge")
MODE = Track("hp.mode", "state")
SPEC = Spec((HEAT, GAS, OUT, MODE), max_gap=900.0, burner=Burner())
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, an hour boundary

Sample = tuple[float, dict[str, Value], dict[str, float]]


def feed(samples: Sequence[Sample], spec: Spec = SPEC) -> Ledger:
    ledger = Ledger(spec)
    for t, values, at in samples:
        ledger.add(t, values, at)
    return ledger


def test_counter_difference_spread_over_hours() -> None:
    ledger = feed([(T0 + 3000, {"hp.heat_energy": 10.0}, {}),
                   (T0 + 3900, {"hp.heat_energy": 13.0}, {})])  # 600 s in hour 0, 300 s in 1
    first, second = (T0, T0 + 3600), (T0 + 3600, T0 + 7200)
    assert ledger.total(ENERGY, "hp.heat_energy", None, *first) == pytest.approx(2.0)
    assert ledger.total(ENERGY, "hp.heat_energy", None, *second) == pytest.approx(1.0)
    assert ledger.total(COVERED, "hp.heat_energy", None, *first) == pytest.approx(600)


def test_interval_takes_the_label_of_the_sample_that_started_it() -> None:
    ledger = feed([(T0, {"hp.heat_energy": 10.0, "hp.mode": "heating"}, {}),
                   (T0 + 60, {"hp.heat_energy": 10.5, "hp.mode": "dhw"}, {}),
                   (T0 + 120, {"hp.heat_energy": 11.5, "hp.mode": "dhw"}, {})])
    assert ledger.total(ENERGY, "hp.heat_energy", "heating|idle") == pytest.approx(0.5)
    assert ledger.total(ENERGY, "hp.heat_energy", "dhw|idle") == pytest.approx(1.0)
    assert ledger.total(STATE, "hp.mode", "heating") == pytest.approx(60)


def test_reset_counts_from_zero() -> None:
    ledger = feed([(T0, {"hp.heat_energy": 5000.0}, {}),
                   (T0 + 600, {"hp.heat_energy": 0.4}, {})])
    assert ledger.total(ENERGY, "hp.heat_energy") == pytest.approx(0.4)
    assert [a.kind for a in ledger.anomalies] == ["reset"]


def test_swap_to_another_index_is_not_energy() -> None:
    ledger = feed([(T0, {"hp.heat_energy": 5000.0}, {}),
                   (T0 + 10, {"hp.heat_energy": 1234.0}, {}),  # down, too far for a reset
                   (T0 + 20, {"hp.heat_energy": 1234.1}, {}),
                   (T0 + 30, {"hp.heat_energy": 9999.0}, {}),  # up, far faster than possible
                   (T0 + 40, {"hp.heat_energy": 9999.2}, {})])
    assert ledger.total(ENERGY, "hp.heat_energy") == pytest.approx(0.3)
    assert [a.kind for a in ledger.anomalies] == ["swap", "jump"]


def test_a_long_gap_is_unattributed_but_counted_in_periods_that_contain_it() -> None:
    three_days = 3 * 86400
    ledger = feed([(T0 + 100, {"hp.heat_energy": 100.0}, {}),
                   (T0 + 100 + three_days, {"hp.heat_energy": 400.0}, {})],
                  Spec((Track("hp.heat_energy", "counter", max_rate=20.0),), 900.0))
    assert ledger.total(ENERGY, "hp.heat_energy") == 0.0
    assert ledger.gap_energy("hp.heat_energy") == 300.0
    assert ledger.gap_energy("hp.heat_energy", T0, T0 + 4 * 86400) == 300.0
    assert ledger.gap_energy("hp.heat_energy", T0, T0 + 86400) == 0.0


def test_gas_deduplicates_on_capture_time() -> None:
    cap = T0 + 3600
    samples: list[Sample] = [(T0 + 3605 + i * 10, {"gas.volume": 1500.0}, {"gas.volume": cap})
                             for i in range(6)]
    samples.append((T0 + 3905, {"gas.volume": 1500.05}, {"gas.volume": cap + 300}))
    ledger = feed(samples)
    assert ledger.total(ENERGY, "gas.volume") == pytest.approx(0.05)
    assert ledger.total(COVERED, "gas.volume") == pytest.approx(300)


def test_gauge_is_time_weighted() -> None:
    ledger = feed([(T0, {"hp.outdoor_temp": 0.0}, {}), (T0 + 300, {"hp.outdoor_temp": 10.0}, {}),
                   (T0 + 400, {"hp.outdoor_temp": 5.0}, {})])
    assert ledger.total(GAUGE, "hp.outdoor_temp") == pytest.approx(0 * 300 + 10 * 100)


def test_burner_load_from_the_timeline_with_dhw_priority() -> None:
    """Events inside a sample interval place flame and DHW changes to the second."""
    b = {"boiler.flame": False, "boiler.ch_active": True, "boiler.dhw_active": False,
         "boiler.modulation": 0.0}
    ledger = Ledger(Spec((), 900.0, Burner(min_power=0.2)))
    ledger.add(T0, b)
    ledger.add(T0 + 600, {**b, "boiler.flame": True, "boiler.modulation": 50.0,
                           "boiler.dhw_active": True},
               events=[(T0 + 100, "boiler.flame", True), (T0 + 100, "boiler.modulation", 50.0),
                       (T0 + 400, "boiler.dhw_active", True)])
    ledger.add(T0 + 900, {**b, "boiler.flame": False}, events=[(T0 + 700, "boiler.flame", False)])
    load = 0.2 + 0.8 * 0.5
    # flame 100..700: CH 100..400 (300 s), DHW 400..700 (300 s, DHW has priority)
    assert ledger.total(GAUGE, "boiler.load", "ch") == pytest.approx(300 * load)
    assert ledger.total(GAUGE, "boiler.load", "dhw") == pytest.approx(300 * load)


# -- properties -----------------------------------------------------------------------------


@st.composite
def counter_series(draw: st.DrawFn) -> list[Sample]:
    """A counter that mostly rises, sometimes resets, swaps, jumps or falls silent."""
    samples: list[Sample] = []
    t, value = T0 + draw(st.integers(0, 3599)), draw(st.floats(0, 10_000))
    for _ in range(draw(st.integers(2, 80))):
        kind = draw(st.sampled_from(["rise"] * 8 + ["reset", "swap", "gap", "still"]))
        t += draw(st.sampled_from([10.0, 10.0, 60.0, 400.0])) if kind != "gap" else 5000.0
        if kind in {"rise", "gap"}:
            value += draw(st.floats(0, 0.05))
        elif kind == "reset":
            value = draw(st.floats(0, 0.01))
        elif kind == "swap":
            value = draw(st.floats(0, 50_000))
        samples.append((t, {"hp.heat_energy": value, "hp.outdoor_temp": value % 20,
                            "hp.mode": draw(st.sampled_from(["heating", "dhw", "defrost"]))},
                        {}))
    return samples


@settings(max_examples=200, deadline=None)
@given(counter_series())
def test_no_negative_energy_through_resets_and_swaps(samples: list[Sample]) -> None:
    ledger = feed(samples)
    for figures in ledger.bins.values():
        for (kind, _, _), value in figures.items():
            if kind == ENERGY:
                assert value >= 0.0
    assert all(g.energy >= 0.0 for g in ledger.gaps)


@settings(max_examples=200, deadline=None)
@given(counter_series(), st.integers(1, 30))
def test_energy_is_conserved_when_a_period_is_split(samples: list[Sample], cut: int) -> None:
    ledger = feed(samples)
    end = samples[-1][0] + 3600
    mid = T0 + cut * 3600
    whole = ledger.total(ENERGY, "hp.heat_energy", start=T0, end=end)
    parts = (ledger.total(ENERGY, "hp.heat_energy", start=T0, end=mid)
             + ledger.total(ENERGY, "hp.heat_energy", start=mid, end=end))
    assert parts == pytest.approx(whole, abs=1e-9)


def same(a: Ledger, b: Ledger) -> None:
    assert set(a.bins) == set(b.bins)
    for hour, figures in a.bins.items():
        other = b.bins[hour]
        assert set(figures) == set(other)
        for key, value in figures.items():
            assert math.isclose(value, other[key], rel_tol=1e-9, abs_tol=1e-9), (hour, key)
    assert sorted(a.gaps, key=repr) == sorted(b.gaps, key=repr)
    assert sorted(a.anomalies, key=repr) == sorted(b.anomalies, key=repr)


@settings(max_examples=200, deadline=None)
@given(counter_series(), st.lists(st.integers(1, 79), max_size=4))
def test_chunked_and_merged_equals_in_one_go(samples: list[Sample], cuts: list[int]) -> None:
    whole = feed(samples)
    bounds = sorted({c for c in cuts if c < len(samples)})
    pieces = [samples[a:b] for a, b in zip([0, *bounds], [*bounds, len(samples)], strict=True)]
    merged = feed(pieces[0])
    for piece in pieces[1:]:
        merged.merge(feed(piece))
    same(whole, merged)


@settings(max_examples=100, deadline=None)
@given(counter_series(), st.integers(0, 2**32))
def test_interleaving_of_sources_does_not_matter(samples: list[Sample], seed: int) -> None:
    """Gas readings from P1 interleave with heat pump samples in any order; the result holds."""
    gas: list[Sample] = [(T0 + 7 + i * 300.0, {"gas.volume": 1000 + i * 0.02}, {})
                         for i in range(40)]
    ordered = sorted(samples + gas, key=lambda s: s[0])
    shuffled = list(ordered)
    random.Random(seed).shuffle(shuffled)
    # keep each source's own order (a source never delivers its samples out of order)
    hp = iter([s for s in ordered if "hp.heat_energy" in s[1]])
    p1 = iter([s for s in ordered if "gas.volume" in s[1]])
    interleaved = [next(hp) if "hp.heat_energy" in s[1] else next(p1) for s in shuffled]
    same(feed(ordered), feed(interleaved))
