"""Rules on whether the measurement itself can be trusted: a heat meter with air in it, sensors
that read the impossible, stop changing or jump, and gaps that make the guarantee undecidable."""

from __future__ import annotations

from collections import defaultdict

from agent.diagnosis.catalogue import finding
from agent.diagnosis.context import Context, NotMeasured, ev, runs, span_end
from agent.diagnosis.findings import Evidence, Finding, Severity
from agent.diagnosis.hours import METER_HEAT, UNIT_HEAT
from agent.diagnosis.scan import WATER
from agent.figures.ledger import HOUR


def heat_meter_air(c: Context) -> list[Finding]:
    """Episodes in which the heat pump ran, the heat meter's sensors showed a spread, and the
    meter saw no flow (so counted no heat)."""
    if not c.scan.meter_seen:
        raise NotMeasured("needs heatmeter.flow (or heatmeter.power) with "
                          "heatmeter.supply_temp and heatmeter.return_temp")
    least = c.cfg.heat_meter.min_minutes * 60.0
    episodes = [e for e in runs(c.rows, lambda r: r.air_s > 0.0)
                if sum(r.air_s for r in e) >= least]
    if not episodes:
        return []
    hours = [r for e in episodes for r in e]
    evidence = [ev("episodes", len(episodes), "", 0),
                ev("minutes_without_flow", sum(r.air_s for r in hours) / 60.0, "min", 0),
                ev("hours", len(hours), "h", 0),
                ev("heat_pump_electricity", sum(sum(r.elec.values()) for r in hours), "kWh", 2),
                ev("meter_heat", sum(r.meter_heat for r in hours), "kWh", 2)]
    if c.seen(UNIT_HEAT) and c.seen(METER_HEAT):  # the unit's own counter saw the heat
        unit, meter = sum(r.unit_heat for r in hours), sum(r.meter_heat for r in hours)
        evidence += [ev("unit_counter_heat", unit, "kWh", 2),
                     ev("heat_missed_by_meter", unit - meter, "kWh", 2)]
    return [finding("heat_meter_air", Severity.FAULT, hours[0].t, span_end(hours), *evidence)]


def supply_below_return(c: Context) -> list[Finding]:
    if not c.scan.water_seen:
        raise NotMeasured("needs hp.supply_temp and hp.return_temp")
    below = [r for r in c.rows if r.below_s > 0.0]
    minutes = sum(r.below_s for r in below) / 60.0
    if minutes < c.cfg.sensors.below_minutes:
        return []
    return [finding("supply_below_return", Severity.WARNING, below[0].t, span_end(below),
                    ev("minutes", minutes, "min", 0), ev("hours", len(below), "h", 0),
                    ev("margin", c.cfg.sensors.supply_below_return_k, "K"))]


def frozen_sensors(c: Context) -> list[Finding]:
    """Readings whose whole hours stayed flat at one value for longer than a working sensor
    can: water temperatures while the compressor ran half of that time, outdoor and tank
    temperatures for a day."""
    s = c.cfg.sensors
    running = {int(r.t // HOUR): r.run_s for r in c.rows}
    h0, h1 = int(c.period.start // HOUR), int(-(-c.period.end // HOUR))
    out = []
    for quantity in c.scan.watch.readings:
        hours = s.frozen_water_hours if quantity in WATER else s.frozen_air_hours
        extremes = c.scan.extremes(quantity)
        found = []
        for run in _flat_runs(extremes, h0, h1):
            ran = sum(running.get(h, 0.0) for h in run) / HOUR
            if len(run) >= hours and (quantity not in WATER or ran >= hours / 2.0):
                found.append((run, ran))
        if not found:
            continue
        longest, ran = max(found, key=lambda item: len(item[0]))
        out.append(finding(
            "sensor_frozen", Severity.FAULT, found[0][0][0] * HOUR, (found[-1][0][-1] + 1) * HOUR,
            Evidence("quantity", quantity), ev("value", extremes[longest[0]][0], "", 2),
            ev("unchanged", len(longest), "h", 0), ev("compressor_running_meanwhile", ran, "h", 1),
            ev("episodes", len(found), "", 0)))
    return out


def _flat_runs(extremes: dict[int, tuple[float, float]], h0: int, h1: int) -> list[list[int]]:
    """Runs of consecutive hours in [h0, h1) whose lowest and highest reading are one value."""
    out: list[list[int]] = []
    value = None
    for hour in sorted(h for h in extremes if h0 <= h < h1):
        lo, hi = extremes[hour]
        if lo != hi:
            value = None
            continue
        if value == lo and out and out[-1][-1] == hour - 1:
            out[-1].append(hour)
        else:
            out.append([hour])
        value = lo
    return out


def sensor_spikes(c: Context) -> list[Finding]:
    spikes = [s for s in c.scan.spikes if c.period.start <= s.t < c.period.end]
    by: dict[str, list[float]] = defaultdict(list)
    times: dict[str, list[float]] = defaultdict(list)
    for s in spikes:
        by[s.quantity].append(min(abs(s.value - s.before), abs(s.value - s.after)))
        times[s.quantity].append(s.t)
    return [finding("sensor_spikes", Severity.WARNING if len(jumps) >= 3 else Severity.INFO,
                    min(times[q]), max(times[q]), Evidence("quantity", q),
                    ev("spikes", len(jumps), "", 0), ev("largest_jump", max(jumps), "K"))
            for q, jumps in by.items()]


def data_gaps(c: Context) -> list[Finding]:
    """Missing time of each counter the guarantee reads, against the missing time its year
    allows: (1 - min_coverage) x min_days."""
    g = c.inst.guarantee
    span = c.period.end - c.period.start
    allowance = (1.0 - g.min_coverage) * g.min_days * 86_400.0
    pace = 1.0 - g.min_coverage
    warn = c.cfg.gaps.warn_share
    out = []
    for quantity, share in c.figures["data_coverage"].items():
        if quantity == "gas.volume" and c.inst.boiler is None:
            continue  # an all-electric house has no gas to account for
        missing = (1.0 - (share or 0.0)) * span
        if missing > allowance:
            severity = Severity.FAULT
        elif missing > warn * allowance or (span >= 7 * 86_400.0 and missing / span > pace):
            severity = Severity.WARNING
        else:
            continue
        gaps = [gap.end - gap.start for gap in c.ledger.gaps if gap.quantity == quantity]
        out.append(finding(
            "data_gaps", severity, c.period.start, c.period.end, Evidence("quantity", quantity),
            ev("coverage", 100.0 * (share or 0.0), "%", 1),
            ev("required", 100.0 * g.min_coverage, "%", 1),
            ev("missing", missing / HOUR, "h", 1), ev("allowed_per_year", allowance / HOUR, "h", 0),
            ev("allowance_used", 100.0 * missing / allowance if allowance else None, "%", 0),
            ev("longest_gap", max(gaps) / HOUR if gaps else None, "h", 1)))
    return out
