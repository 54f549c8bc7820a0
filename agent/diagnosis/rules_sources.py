"""Rules on where the heat comes from and where it goes: the boiler above the bivalent point, the
backup heater, hot water and anti-legionella cycles, and defrosting by outdoor temperature."""

from __future__ import annotations

import math

from agent.diagnosis.catalogue import finding
from agent.diagnosis.context import Context, NotMeasured, ev, runs, span_end, weighted
from agent.diagnosis.findings import Finding, Severity
from agent.diagnosis.hours import BACKUP, Hour


def boiler_above_bivalent(c: Context) -> list[Finding]:
    """Boiler space heat in hours above the design bivalent point in which the heat pump stood
    mostly idle: taken over, not topped up (a heat pump at full output may be topped up)."""
    bivalent = c.cfg.design.bivalent_temp
    if c.inst.boiler is None:
        raise NotMeasured("the installation has no boiler")
    if bivalent is None:
        raise NotMeasured("needs diagnosis.design.bivalent_temp, the design bivalent point")
    cfg = c.cfg.bivalent
    above = [r for r in c.rows if r.outdoor is not None and r.outdoor >= bivalent + cfg.margin_k]
    space = sum(r.space_heat for r in above)
    taken = [r for r in above if r.boiler_ch > 0.0 and r.run_s < cfg.heat_pump_idle * 3600.0]
    boiler = sum(r.boiler_ch for r in taken)
    if space <= 0.0 or boiler / space <= cfg.warning_share:
        return []
    share = boiler / space
    severity = Severity.FAULT if share > cfg.fault_share else Severity.WARNING
    return [finding("boiler_above_bivalent", severity, taken[0].t, span_end(taken),
                    ev("bivalent_point", bivalent, "°C"),
                    ev("boiler_heat_while_heat_pump_idle", boiler, "kWh", 1),
                    ev("share_of_space_heat_above_bivalent", 100.0 * share, "%", 1),
                    ev("boiler_heat_above_bivalent", sum(r.boiler_ch for r in above), "kWh", 1),
                    ev("heat_pump_heat_above_bivalent", sum(
                        r.heat.get("heating", 0.0) + r.defrost_heat for r in above), "kWh", 1),
                    ev("hours", len(taken), "h", 0),
                    ev("outdoor_mean", weighted((r.outdoor, r.boiler_ch) for r in taken), "°C"),
                    ev("warmest", max(r.outdoor or -math.inf for r in taken), "°C"))]


def _space_backup(r: Hour) -> float:
    return sum(v for m, v in r.backup.items() if m != "dhw")


def backup_heater(c: Context) -> list[Finding]:
    """The backup heater's space heat in mild weather, and its share of all heat."""
    quantity = c.inst.heat_pump.backup_heater or BACKUP
    if not c.seen(quantity):
        raise NotMeasured(f"needs the backup heater's counter ({quantity})")
    cfg = c.cfg.backup
    out = []
    mild = [r for r in c.rows if r.outdoor is not None and r.outdoor >= cfg.mild_above]
    in_mild, space = sum(_space_backup(r) for r in mild), sum(r.space_heat for r in mild)
    if space > 0.0 and in_mild / space > cfg.mild_warning_share:
        on = [r for r in mild if _space_backup(r) > 0.0]
        out.append(finding("backup_heater_mild", Severity.WARNING, on[0].t, span_end(on),
                           ev("mild_above", cfg.mild_above, "°C"),
                           ev("backup_heat_in_mild_weather", in_mild, "kWh", 1),
                           ev("share_of_space_heat", 100.0 * in_mild / space, "%", 1),
                           ev("hours", len(on), "h", 0),
                           ev("outdoor_mean", weighted((r.outdoor, _space_backup(r)) for r in on),
                              "°C"),
                           ev("warmest", max(r.outdoor or -math.inf for r in on), "°C")))
    backup = sum(sum(r.backup.values()) for r in c.rows)
    heat = sum(r.hp_heat for r in c.rows) + backup
    if heat > 0.0 and backup / heat > cfg.warning_share:
        on = [r for r in c.rows if r.backup]
        out.append(finding("backup_heater_share", Severity.WARNING, on[0].t, span_end(on),
                           ev("backup_heat", backup, "kWh", 1),
                           ev("of_it_hot_water", sum(r.backup.get("dhw", 0.0) for r in on),
                              "kWh", 1),
                           ev("all_heat", heat, "kWh", 1),
                           ev("share", 100.0 * backup / heat, "%", 1)))
    return out


def hot_water_share(c: Context) -> list[Finding]:
    """The share of the heat pump's heat that went to hot water, and its COP against space
    heating's."""
    rows = c.rows
    dhw, heat = sum(r.heat.get("dhw", 0.0) for r in rows), sum(r.hp_heat for r in rows)
    if not any("dhw" in r.heat or "heating" in r.heat for r in rows):
        raise NotMeasured("needs hp.mode to tell hot water from space heating")
    if heat <= 0.0 or dhw / heat <= c.cfg.hot_water.info_share:
        return []
    dhw_elec = sum(r.elec.get("dhw", 0.0) for r in rows)
    space_elec = sum(r.elec.get("heating", 0.0) for r in rows)
    space = sum(r.heat.get("heating", 0.0) for r in rows)
    with_dhw = [r for r in rows if "dhw" in r.heat]
    return [finding("hot_water_share", Severity.INFO, with_dhw[0].t, span_end(with_dhw),
                    ev("hot_water_heat", dhw, "kWh", 1), ev("share", 100.0 * dhw / heat, "%", 1),
                    ev("hot_water_cop", dhw / dhw_elec if dhw_elec else None, "", 2),
                    ev("space_heating_cop", space / space_elec if space_elec else None, "", 2))]


def legionella(c: Context) -> list[Finding]:
    """Anti-legionella cycles: runs of hours in which the tank reached the disinfection
    temperature, per week."""
    cfg = c.cfg.hot_water
    tank = [r for r in c.rows if r.tank_max is not None]
    days = (span_end(tank) - tank[0].t) / 86_400.0 if tank else 0.0
    if days < 7.0:
        raise NotMeasured("needs a week of hp.dhw_temp, the tank temperature")
    cycles = list(runs(tank, lambda r: (r.tank_max or 0.0) >= cfg.legionella_temp))
    per_week = len(cycles) / days * 7.0
    if per_week <= cfg.legionella_per_week:
        return []
    hours = [r for cycle in cycles for r in cycle]
    energy = sum(r.heat.get("dhw", 0.0) + r.backup.get("dhw", 0.0) for r in hours)
    dhw = sum(r.heat.get("dhw", 0.0) + r.backup.get("dhw", 0.0) for r in c.rows)
    return [finding("legionella_too_frequent", Severity.WARNING, hours[0].t, span_end(hours),
                    ev("cycles", len(cycles), "", 0), ev("per_week", per_week, "1/week"),
                    ev("tank_highest", max(r.tank_max or 0.0 for r in hours), "°C"),
                    ev("hot_water_heat_in_cycles", energy, "kWh", 1),
                    ev("share_of_hot_water_heat", 100.0 * energy / dhw if dhw else None, "%", 1),
                    ev("days", days, "", 1))]


def defrost(c: Context) -> list[Finding]:
    """Defrost electricity by outdoor temperature bin, and defrosts where nothing ices."""
    rows = [r for r in c.rows if r.outdoor is not None]
    if not any(m for r in rows for m in r.elec):
        raise NotMeasured("needs hp.mode and hp.outdoor_temp")
    cfg = c.cfg.defrost
    bins: dict[int, list[Hour]] = {}
    for r in rows:
        bins.setdefault(math.floor((r.outdoor or 0.0) / cfg.bin_k), []).append(r)
    high = []
    for key, group in sorted(bins.items()):
        run_h = sum(r.run_s for r in group) / 3600.0
        elec = sum(sum(r.elec.values()) for r in group)
        spent = sum(r.elec.get("defrost", 0.0) for r in group)
        if run_h >= cfg.min_hours and elec > 0.0 and spent / elec > cfg.max_share:
            high.append((key, group, spent, elec))
    out = []
    if high:
        hours = sorted((r for _, g, _, _ in high for r in g if r.run.get("defrost")),
                       key=lambda r: r.t)
        spent, elec = sum(h[2] for h in high), sum(h[3] for h in high)
        out.append(finding("defrost_share_high", Severity.WARNING, hours[0].t, span_end(hours),
                           ev("outdoor_from", min(h[0] for h in high) * cfg.bin_k, "°C", 0),
                           ev("outdoor_to", (max(h[0] for h in high) + 1) * cfg.bin_k, "°C", 0),
                           ev("defrost_share_of_electricity", 100.0 * spent / elec, "%", 1),
                           ev("defrost_electricity", spent, "kWh", 1),
                           ev("defrost_hours", sum(r.run["defrost"] for r in hours) / 3600.0,
                              "h", 1)))
    warm = [r for r in rows if (r.outdoor or 0.0) > cfg.icing_max_temp and r.run.get("defrost")]
    minutes = sum(r.run["defrost"] for r in warm) / 60.0
    if minutes >= cfg.outside_minutes:
        out.append(finding("defrost_outside_icing", Severity.WARNING, warm[0].t, span_end(warm),
                           ev("icing_max_temp", cfg.icing_max_temp, "°C"),
                           ev("defrost_minutes", minutes, "min", 0),
                           ev("hours", len(warm), "h", 0),
                           ev("warmest", max(r.outdoor or 0.0 for r in warm), "°C")))
    return out
