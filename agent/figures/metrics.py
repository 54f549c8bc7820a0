"""Performance figures of a period, from a ledger: SPF, heat coverage, gas, savings, the advice.

Pure: a function of a :class:`agent.figures.ledger.Ledger`, the installation's description and the
period. Every definition is stated in the README ("Definitions"), with its source; the code
follows those words. Figures a period cannot support are reported as such (``None``, with the
reason), never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from agent.figures.installation import Installation
from agent.figures.ledger import (
    COVERED,
    ENERGY,
    GAUGE,
    HELD,
    HOUR,
    Burner,
    FlowHeat,
    Labels,
    Ledger,
    Spec,
    Track,
)

LOCAL: Final = ZoneInfo("Europe/Amsterdam")  # Dutch degree days count local calendar days
MODES: Final = ("heating", "dhw", "defrost", "cooling", "off")
DEGREE_DAY_BASE: Final = 18.0


def degree_day_weight(month: int) -> float:
    """Dutch weighted degree days: 1.1 for November-February, 1.0 March and October, else 0.8."""
    if month in (11, 12, 1, 2):
        return 1.1
    if month in (3, 10):
        return 1.0
    return 0.8


def weighted_degree_days(mean_temp: float, day: date) -> float:
    return max(0.0, DEGREE_DAY_BASE - mean_temp) * degree_day_weight(day.month)


def spec_for(inst: Installation) -> Spec:
    """The ledger an installation needs: its counters, gauges, states and burner."""
    hp, boiler = inst.heat_pump, inst.boiler
    tracks: dict[str, Track] = {}

    def add(track: Track) -> None:
        tracks.setdefault(track.quantity, track)

    add(Track(hp.heat, "counter", labelled=True, max_rate=60.0, slack=1.0))
    for counter in hp.heat_by_mode.values():
        add(Track(counter, "counter", max_rate=60.0, slack=1.0))
    add(Track(hp.electricity, "counter", labelled=True, max_rate=30.0, slack=1.0))
    if hp.backup_heater is not None:
        add(Track(hp.backup_heater, "counter", labelled=True, max_rate=15.0, slack=1.0))
    if hp.compare_heat_with is not None:
        add(Track(hp.compare_heat_with, "counter", labelled=True, max_rate=60.0, slack=1.0))
    if boiler is not None and boiler.heat is not None:
        add(Track(boiler.heat, "counter", max_rate=60.0, slack=1.0))
    # DSMR 4 and older meters capture gas hourly: their intervals are an hour long
    add(Track("gas.volume", "counter", max_rate=10.0, slack=0.01, max_gap=2 * HOUR + 60))
    add(Track("hp.heat_power", "gauge", labelled=True))  # defrost heat: the counter skips it
    add(Track(inst.ledger.outdoor, "gauge"))
    burner = None if boiler is None else Burner(
        min_power=boiler.min_power if boiler.modulation == "relative" else 0.0)
    return Spec(tuple(tracks.values()), inst.ledger.max_gap, burner,
                Labels(start_power=hp.start_power), FlowHeat())


@dataclass(frozen=True)
class Period:
    start: float
    end: float

    @property
    def days(self) -> float:
        return (self.end - self.start) / 86400.0


class _Sums:
    """One pass over the period's hour bins: every figure summed by (kind, quantity, label)."""

    def __init__(self, ledger: Ledger, period: Period) -> None:
        self.by: dict[tuple[str, str, str], float] = {}
        self.hours: dict[int, dict[tuple[str, str, str], float]] = {}
        h0, h1 = int(period.start // HOUR), int(-(-period.end // HOUR))
        for hour, figures in ledger.bins.items():
            if h0 <= hour < h1:
                self.hours[hour] = figures
                for key, value in figures.items():
                    self.by[key] = self.by.get(key, 0.0) + value
        for gap in ledger.gaps:  # energy across gaps that lie inside the period
            if gap.start >= period.start and gap.end <= period.end:
                key = (ENERGY, gap.quantity, gap.label)
                self.by[key] = self.by.get(key, 0.0) + gap.energy

    def energy(self, quantity: str, mode: str | None = None, running: bool | None = None
               ) -> float:
        return self.get(ENERGY, quantity, mode, running)

    def has(self, kind: str, quantity: str) -> bool:
        return any(k == kind and q == quantity for k, q, _ in self.by)

    def gauge_kwh(self, quantity: str, mode: str | None = None) -> float:
        """∫ power dt (W x s) -> kWh, for the labels of ``mode``."""
        return self.get(GAUGE, quantity, mode) / 3.6e6

    def get(self, kind: str, quantity: str, mode: str | None = None,
            running: bool | None = None) -> float:
        """Sum over labels ``<mode>|run`` or ``<mode>|idle`` (of one mode or state, if given)."""
        total = 0.0
        for (k, q, label), value in self.by.items():
            if k != kind or q != quantity:
                continue
            m, _, run = label.partition("|")
            if (mode is None or m == mode) and (running is None or (run == "run") == running):
                total += value
        return total


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def _round(x: float | None, digits: int = 3) -> float | None:
    return None if x is None or math.isnan(x) else round(x, digits)


def daily(hours: Mapping[int, Mapping[tuple[str, str, str], float]], inst: Installation
          ) -> list[dict[str, Any]]:
    """Per local calendar day of ``hours``: heat, electricity, COP, mean outdoor temperature,
    degree days."""
    hp = inst.heat_pump
    days: dict[date, dict[str, float]] = {}
    for hour, figures in hours.items():
        day = datetime.fromtimestamp(hour * HOUR, UTC).astimezone(LOCAL).date()
        d = days.setdefault(day, {"heat": 0.0, "elec": 0.0, "tsum": 0.0, "theld": 0.0})
        for (kind, q, _), value in figures.items():
            if kind == ENERGY and q == hp.heat:
                d["heat"] += value
            elif kind == ENERGY and q == hp.electricity:
                d["elec"] += value
            elif kind == GAUGE and q == inst.ledger.outdoor:
                d["tsum"] += value
            elif kind == HELD and q == inst.ledger.outdoor:
                d["theld"] += value
    out = []
    for day in sorted(days):
        d = days[day]
        mean = d["tsum"] / d["theld"] if d["theld"] > 0 else None
        out.append({
            "date": day.isoformat(), "heat_kwh": _round(d["heat"]),
            "electricity_kwh": _round(d["elec"]), "cop": _round(_ratio(d["heat"], d["elec"]), 2),
            "outdoor_mean": _round(mean, 1), "outdoor_coverage": _round(d["theld"] / 86400, 3),
            "degree_days": _round(weighted_degree_days(mean, day), 2)
            if mean is not None and d["theld"] >= 0.5 * 86400 else None,
        })
    return out


def _gas_split(sums: _Sums, gas_quantity: str = "gas.volume") -> dict[str, float]:
    """Divide each hour's gas between space heating, hot water and other use by burner load.

    Gas the boiler's burner does not account for (it did not burn) is "other": a gas hob
    on the same meter.
    """
    split = {"ch": 0.0, "dhw": 0.0, "other": 0.0}
    for figures in sums.hours.values():
        gas = sum(v for (k, q, _), v in figures.items() if k == ENERGY and q == gas_quantity)
        if gas <= 0:
            continue
        ch = figures.get((GAUGE, "boiler.load", "ch"), 0.0)
        dhw = figures.get((GAUGE, "boiler.load", "dhw"), 0.0)
        if ch + dhw <= 0:
            split["other"] += gas
            continue
        split["ch"] += gas * ch / (ch + dhw)
        split["dhw"] += gas * dhw / (ch + dhw)
    gap_gas = sum(v for (k, q, lab), v in sums.by.items() if k == ENERGY and q == gas_quantity) \
        - sum(split.values())
    if gap_gas > 1e-9:  # energy across long gaps has no hour, so no burner load to split it by
        split["unattributed"] = gap_gas
    return split


@dataclass
class _HeatPump:
    heat: float
    electricity: float
    heat_by_mode: dict[str, float]
    elec_by_mode: dict[str, float]
    defrost_heat: float
    backup: float | None
    running_cop: float | None


def _heat_pump(sums: _Sums, inst: Installation) -> _HeatPump:
    """Counters split by mode (the device's own per-mode counters, or the mode each sample
    reports); defrost heat from the signed power; H3 additions."""
    hp = inst.heat_pump
    heat_by_mode = {m: sums.energy(hp.heat, m) for m in MODES}
    if hp.heat_by_mode:
        # a defrost is not a heat mode of the device's counters: their heat is heating or dhw
        per_mode: dict[str, str] = {str(m): q for m, q in hp.heat_by_mode.items()}
        heat_by_mode = {m: sums.energy(per_mode[m]) if m in per_mode else 0.0 for m in MODES}
    elec_by_mode = {m: sums.energy(hp.electricity, m) for m in MODES}
    unlabelled_heat = sums.energy(hp.heat) - sum(heat_by_mode.values())
    unlabelled_elec = sums.energy(hp.electricity) - sum(elec_by_mode.values())
    defrost_heat = min(sums.gauge_kwh("hp.heat_power", "defrost"), 0.0)
    heat_by_mode["defrost"] += defrost_heat
    heat = sum(heat_by_mode.values()) + unlabelled_heat
    electricity = sum(elec_by_mode.values()) + unlabelled_elec
    backup = None
    if hp.backup_heater is not None:
        backup = sums.energy(hp.backup_heater)
        if not hp.backup_heater_in_heat:
            heat += backup  # resistive: its heat is its electricity
        if "backup_heater" not in hp.electricity_covers:
            electricity += backup
    running = _ratio(sums.energy(hp.heat, running=True),
                     sums.energy(hp.electricity, running=True))
    return _HeatPump(heat, electricity, heat_by_mode, elec_by_mode, defrost_heat, backup,
                     running)


@dataclass
class _Boiler:
    gas_m3: float
    split: dict[str, float]
    heat: dict[str, float]
    notes: list[str]


def _boiler(sums: _Sums, inst: Installation) -> _Boiler:
    """Gas divided by the burner's load; the boiler's heat from its heat meter, or gas x
    efficiency."""
    boiler = inst.boiler
    gas_m3 = sums.energy("gas.volume")
    if boiler is None:  # all-electric: every m³ on the gas meter is cooking (or other use)
        return _Boiler(gas_m3, {"ch": 0.0, "dhw": 0.0, "other": gas_m3},
                       {"ch": 0.0, "dhw": 0.0}, [])
    notes = []
    split = _gas_split(sums)
    if gas_m3 > 0 and not sums.has(HELD, "boiler.load"):
        notes.append("the boiler's gas cannot be divided between space heating and hot water: "
                     "no OpenTherm timeline in this period")
    if boiler.heat is not None:
        total = sums.energy(boiler.heat)
        burned = split["ch"] + split["dhw"]
        heat = {k: total * split[k] / burned if burned else 0.0 for k in ("ch", "dhw")}
    else:
        to_kwh = inst.gas.mj_m3(boiler.efficiency_basis) / 3.6
        heat = {k: split[k] * to_kwh * boiler.efficiency for k in ("ch", "dhw")}
    return _Boiler(gas_m3, split, heat, notes)


def compute(ledger: Ledger, inst: Installation, period: Period) -> dict[str, Any]:
    """Every figure of the report for ``period`` (JSON-ready)."""
    gas_cfg = inst.gas
    sums = _Sums(ledger, period)
    span_s = period.end - period.start
    covered = min(sums.get(COVERED, inst.heat_pump.heat),
                  sums.get(COVERED, inst.heat_pump.electricity)) / span_s
    # a figure is seasonal only over a whole year that the data really covers
    seasonal = period.days >= 365 - 1e-9 and covered >= inst.guarantee.min_coverage
    hp = _heat_pump(sums, inst)
    boiler = _boiler(sums, inst)
    heat, electricity, split, boiler_heat = hp.heat, hp.electricity, boiler.split, boiler.heat
    hp_space = hp.heat_by_mode["heating"] + hp.heat_by_mode["defrost"]
    hp_water = hp.heat_by_mode["dhw"]
    unknown = bool(boiler.notes)
    coverage = {
        "space_heating": None if unknown else
        _round(_ratio(hp_space, hp_space + boiler_heat["ch"]), 4),
        "hot_water": None if unknown else
        _round(_ratio(hp_water, hp_water + boiler_heat["dhw"]), 4),
    }

    # Savings against the reference boiler, for all the heat the house received
    delivered = heat + boiler_heat["ch"] + boiler_heat["dhw"]
    ref = inst.reference
    reference_gas = delivered / (ref.efficiency * gas_cfg.mj_m3(ref.basis) / 3.6)
    burned_gas = split["ch"] + split["dhw"] + split.get("unattributed", 0.0)
    saving_m3 = reference_gas - burned_gas
    report_kwh = gas_cfg.mj_m3(gas_cfg.basis) / 3.6
    prices, co2 = inst.prices, inst.emissions

    # Degree days and the advice
    days = daily(sums.hours, inst)
    dd_days = [d for d in days if d["degree_days"] is not None]
    degree_days = sum(d["degree_days"] for d in dd_days)
    spf = _ratio(heat, electricity)

    metered = [inst.heat_pump.heat, inst.heat_pump.electricity, "gas.volume"]
    coverage_share = {q: _round(sums.get(COVERED, q) / span_s, 4) for q in dict.fromkeys(metered)}
    coverage_share[inst.ledger.outdoor] = _round(sums.get(HELD, inst.ledger.outdoor) / span_s, 4)

    result: dict[str, Any] = {
        "period": {"from": _iso(period.start), "to": _iso(period.end),
                   "days": round(period.days, 3), "seasonal": seasonal},
        "heat_kwh": _round(heat),
        "electricity_kwh": _round(electricity),
        "spf": _round(spf, 3),
        "boundary": inst.boundary,
        "spf_label": (f"SPF {inst.boundary}" if seasonal else
                      f"performance factor over {period.days:.0f} days ({inst.boundary}), "
                      "not seasonal"),
        "running_cop": _round(hp.running_cop, 3),
        "by_mode": {m: {"heat_kwh": _round(hp.heat_by_mode[m]),
                        "electricity_kwh": _round(hp.elec_by_mode[m]),
                        "hours": _round(sums.get(COVERED, inst.heat_pump.electricity, m)
                                        / 3600, 2)}
                    for m in MODES},
        "defrost_heat_kwh": _round(hp.defrost_heat),
        "defrost_heat_estimated": True,
        "backup_heater_kwh": _round(hp.backup),
        "heat_coverage": coverage,
        "gas_m3": _round(boiler.gas_m3),
        "gas_kwh": _round(boiler.gas_m3 * report_kwh),
        "gas_split_m3": {k: _round(v) for k, v in split.items()},
        "boiler_heat_kwh": {k: _round(v) for k, v in boiler_heat.items()},
        "reference_gas_m3": _round(reference_gas),
        "gas_saving_m3": _round(saving_m3),
        "savings": {
            "gas_kwh": _round(saving_m3 * report_kwh),
            "heat_pump_electricity_kwh": _round(electricity),
            "eur": _round(saving_m3 * prices.gas_eur_m3 - electricity * prices.electricity_eur_kwh,
                          2),
            "kg_co2": _round(saving_m3 * co2.gas_kg_m3 - electricity * co2.electricity_kg_kwh, 1),
        },
        "calorific_value": {"basis": gas_cfg.basis, "mj_m3": gas_cfg.mj_m3(gas_cfg.basis)},
        "degree_days": _round(degree_days, 1),
        "data_coverage": coverage_share,
        "heat_cross_checks": _cross_checks(sums, inst, heat),
        "anomalies": [{"time": _iso(a.t), "quantity": a.quantity, "kind": a.kind,
                       "before": a.before, "after": a.after} for a in ledger.anomalies
                      if period.start <= a.t < period.end],
        "gaps": [{"quantity": g.quantity, "from": _iso(g.start), "to": _iso(g.end),
                  "energy": _round(g.energy)} for g in ledger.gaps
                 if g.start >= period.start and g.end <= period.end],
        "daily": days,
    }
    result["notes"] = boiler.notes
    result["advice"] = _advice(inst, result, split, degree_days, len(dd_days), period)
    result["guarantee"] = _guarantee(inst, result, split, degree_days, period)
    return result


def _cross_checks(sums: _Sums, inst: Installation, net_heat: float) -> list[dict[str, Any]]:
    """How far independent measurements of the heat pump's heat agree.

    A second heat counter is held against the main counter (both count positive heat only);
    the water-side estimate (flow x cp x dT, signed: defrost shows as negative) against the net
    heat, which includes the defrost heat.
    """
    hp = inst.heat_pump
    checks = []
    if hp.compare_heat_with is not None and sums.has(ENERGY, hp.compare_heat_with):
        main, other = sums.energy(hp.heat), sums.energy(hp.compare_heat_with)
        checks.append({"against": hp.compare_heat_with, "kwh": _round(other),
                       "reference_kwh": _round(main), "reference": hp.heat,
                       "difference": _round(_ratio(other - main, main), 4), "estimate": False})
    if sums.has(GAUGE, "hp.heat_power.flow"):
        flow = sums.gauge_kwh("hp.heat_power.flow")
        checks.append({"against": "flow x cp x dT (hp.flow, hp.supply_temp, hp.return_temp)",
                       "kwh": _round(flow), "reference_kwh": _round(net_heat),
                       "reference": "net heat", "estimate": True,
                       "difference": _round(_ratio(flow - net_heat, net_heat), 4)})
    return checks


def _advice(inst: Installation, r: dict[str, Any], split: dict[str, float], degree_days: float,
            days_with_dd: int, period: Period) -> dict[str, Any]:
    advice = inst.advice
    out: dict[str, Any] = {"reference_degree_days": advice.reference_degree_days,
                           "measured_degree_days": r["degree_days"]}
    if advice.scop is not None:
        out["scop"] = {"advised": advice.scop, "measured": r["spf"],
                       "ratio": _round(_ratio(r["spf"] or 0.0, advice.scop), 3)}
    if advice.heat_coverage is not None:
        measured = r["heat_coverage"]["space_heating"]
        out["heat_coverage"] = {"advised": advice.heat_coverage, "measured": measured,
                                "difference": _round(measured - advice.heat_coverage, 4)
                                if measured is not None else None}
    if advice.annual_gas_m3 is not None:
        normal = _normal_year_gas(split, degree_days, advice.reference_degree_days, period)
        out["annual_gas_m3"] = {"advised": advice.annual_gas_m3, "normal_year": _round(normal),
                                "difference": _round(normal - advice.annual_gas_m3, 1)
                                if normal is not None else None}
    return out


def _normal_year_gas(split: dict[str, float], degree_days: float, reference: float,
                     period: Period) -> float | None:
    """Space heating gas scaled to a normal year's degree days; hot water and other gas to 365
    days."""
    if degree_days <= 0:
        return None
    year = 365.0 / period.days
    return split["ch"] * reference / degree_days + (split["dhw"] + split["other"]) * year


def _guarantee(inst: Installation, r: dict[str, Any], split: dict[str, float],
               degree_days: float, period: Period) -> dict[str, Any]:
    g = inst.guarantee
    checks: list[dict[str, Any]] = []
    reasons: list[str] = []
    if period.days < g.min_days:
        reasons.append(f"{period.days:.0f} of the {g.min_days} days needed")
    thin = [q for q, share in r["data_coverage"].items() if share is None or share < g.min_coverage]
    if thin:
        reasons.append(f"data coverage below {g.min_coverage:.0%} for {', '.join(thin)}")
    if g.heat_coverage_min is not None:
        measured = r["heat_coverage"]["space_heating"]
        checks.append({"check": "heat_coverage", "required": g.heat_coverage_min,
                       "measured": measured,
                       "met": None if measured is None else measured >= g.heat_coverage_min})
    if g.gas_saving_min is not None:
        baseline = sum(g.baseline_gas_m3) / len(g.baseline_gas_m3) - g.baseline_hot_water_m3
        normal = (split["ch"] * inst.advice.reference_degree_days / degree_days
                  if degree_days > 0 else None)
        saving = None if normal is None or baseline <= 0 else 1 - normal / baseline
        checks.append({"check": "gas_saving", "required": g.gas_saving_min,
                       "baseline_space_heating_m3": _round(baseline, 1),
                       "normal_year_space_heating_m3": _round(normal, 1),
                       "measured": _round(saving, 4),
                       "met": None if saving is None else saving >= g.gas_saving_min})
    if not checks:
        verdict = "no guarantee configured"
    elif reasons or any(c["met"] is None for c in checks):
        verdict = "not yet decidable"
    else:
        verdict = "pass" if all(c["met"] for c in checks) else "fail"
    return {"verdict": verdict, "checks": checks, "why_not_decidable": reasons}


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def season_period(year: int) -> Period:
    """The heating season named by its first year: 1 October ``year`` to 1 October next year,
    local time (a full year, so its figures may be called seasonal)."""
    start = datetime(year, 10, 1, tzinfo=LOCAL)
    return Period(start.timestamp(), datetime(year + 1, 10, 1, tzinfo=LOCAL).timestamp())


def day_period(first: date, last: date) -> Period:
    """From the start of ``first`` to the end of ``last``, local time."""
    start = datetime(first.year, first.month, first.day, tzinfo=LOCAL)
    end = datetime(last.year, last.month, last.day, tzinfo=LOCAL) + timedelta(days=1)
    return Period(start.timestamp(), end.timestamp())


def span(records: Iterable[float]) -> Period:
    """The whole hours around a set of times (at least one hour)."""
    times = list(records)
    start = math.floor(min(times) / HOUR) * HOUR
    return Period(start, max(math.ceil(max(times) / HOUR) * HOUR, start + HOUR))
