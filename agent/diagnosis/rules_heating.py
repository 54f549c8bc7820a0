"""Rules on how the heat pump heats: short cycling, the heating curve against the emitters, the
flow (ΔT), and the COP against the unit's own good days. Each takes the :class:`Context` and
returns findings, or raises :class:`NotMeasured` when a quantity it needs is missing.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

from agent.diagnosis.catalogue import finding
from agent.diagnosis.context import Context, NotMeasured, ev, span_end, weighted
from agent.diagnosis.findings import Finding, Severity
from agent.diagnosis.hours import Hour, days

KELVIN = 273.15
_RUNNING_S = 900.0  # an hour counts as heating when the compressor heated this long in it
_HALF_HOUR = 1800.0


def short_cycling(c: Context) -> list[Finding]:
    """Compressor starts per active hour, day by day, held against the load."""
    if not c.scan.compressor_seen and not c.seen("hp.compressor_starts"):
        raise NotMeasured("needs hp.electric_power, hp.compressor_freq or hp.compressor_starts")
    cfg = c.cfg.cycling
    flagged: list[tuple[date, list[Hour], float]] = []
    for day, rows in days(c.rows):
        active = [r for r in rows if r.run_s > 0.0 or r.starts > 0]
        if len(active) >= cfg.min_active_hours:
            rate = sum(r.starts for r in active) / len(active)
            if rate > cfg.warning_starts_per_hour:
                flagged.append((date.fromisoformat(day), active, rate))
    out = []
    for group in _consecutive(flagged):
        active = [r for _, rows, _ in group for r in rows]
        starts = sum(r.starts for r in active)
        run_h = sum(r.run_s for r in active) / 3600.0
        heat = sum(r.hp_heat for r in active)
        rate = starts / len(active)
        severity = Severity.FAULT if rate > cfg.fault_starts_per_hour else Severity.WARNING
        out.append(finding(
            "short_cycling", severity, active[0].t, span_end(active),
            ev("starts_per_hour", rate, "1/h"), ev("highest_day", max(g[2] for g in group), "1/h"),
            ev("mean_run", run_h * 60.0 / starts if starts else None, "min"),
            ev("running_share", 100.0 * run_h / len(active), "%", 0),
            ev("heat_output_while_running", heat / run_h if run_h else None, "kW", 2),
            ev("heat_demand", heat / len(active), "kW", 2),
            ev("outdoor_mean", weighted((r.outdoor, 1.0) for r in active), "°C"),
            ev("days", len(group), "", 0)))
    return out


def _consecutive(items: list[tuple[date, list[Hour], float]]
                 ) -> list[list[tuple[date, list[Hour], float]]]:
    groups: list[list[tuple[date, list[Hour], float]]] = []
    for item in items:
        if groups and item[0] - groups[-1][-1][0] == timedelta(days=1):
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def _heating(rows: list[Hour]) -> list[Hour]:
    return [r for r in rows if r.run.get("heating", 0.0) >= _RUNNING_S and r.supply is not None]


def _output_w(r: Hour) -> float:
    """Mean heat output while the compressor ran for space heating, W."""
    return r.heat.get("heating", 0.0) * 3.6e6 / r.run["heating"]


def heating_curve(c: Context) -> list[Finding]:
    """The supply while heating against what the emitters need for the house's heat, and what
    they need against the design curve, per outdoor temperature bin.

    The emitters are fitted on the hours the heat pump heated alone (Q = K·(mean water - room)
    ^n, EN 442-2); the supply they need for a bin's mean heat demand at the room setpoint is
    then setpoint + ΔT_n·(Q/nominal)^(1/n) + half the water's spread at that heat. The emitters
    are too small where that need is above the design curve. The curve is too steep where the
    supply while heating is above both the design curve and what the emitters need to give the
    bin's heat in the time the unit was free to heat (not making hot water or defrosting): a
    unit that gives more than that while it runs switches off for the rest (a unit cycling at
    its minimum output does too, but not above a sound curve).
    """
    cfg = c.cfg.curve
    heating = _heating(c.rows)
    if not heating:
        raise NotMeasured("needs hp.supply_temp while the heat pump heats")
    fit = _emitters(c, heating) if any(r.room is not None for r in heating) else None
    bins: dict[int, list[Hour]] = {}
    for r in c.rows:
        if r.outdoor is not None and r.covered >= _HALF_HOUR:
            bins.setdefault(math.floor(r.outdoor / cfg.bin_k), []).append(r)
    heated = {r.t for r in heating}
    steep, small, above = [], [], []
    for key in sorted(bins):
        rows = bins[key]
        ran = [r for r in rows if r.t in heated]
        if sum(r.run["heating"] for r in ran) / 3600.0 < cfg.min_hours:
            continue
        b = _Bin(c, rows, ran, fit)
        if fit is None:
            if b.supply - b.design > cfg.margin_k:
                above.append(b)
            continue
        if b.supply - b.enough > cfg.margin_k and b.supply - b.design > cfg.margin_k:
            steep.append(b)
        if b.needed - b.design > cfg.margin_k:
            small.append(b)
    out = []
    if steep:
        out.append(_steep(c, steep))
    if small and fit is not None:
        out.append(_small(c, small, fit))
    if above:
        out.append(_above(c, above))
    return out


class _Bin:
    """An outdoor temperature bin: its hours, its hours of heating and what the emitters need."""

    def __init__(self, c: Context, rows: list[Hour], ran: list[Hour],
                 fit: tuple[float, float] | None) -> None:
        design = c.cfg.design
        self.ran = ran
        self.run_s = sum(r.run["heating"] for r in ran)
        self.outdoor = weighted((r.outdoor, 1.0) for r in rows) or 0.0
        self.supply = weighted((r.supply, r.run["heating"]) for r in ran) or 0.0
        self.design = design.curve(self.outdoor)
        self.room = weighted((r.room, 1.0) for r in rows)
        self.setpoint = design.room_temp
        heat_j = sum(r.space_heat for r in rows) * 3.6e6
        self.demand_w = heat_j / (len(rows) * 3600.0)
        free = sum(3600.0 - r.run.get("dhw", 0.0) - r.run.get("defrost", 0.0) for r in rows)
        self.duty = self.run_s / free if free > 0.0 else 0.0
        self.needed = self.enough = math.nan
        if fit is not None:
            n = design.emitter_exponent
            self.needed = _supply_for(self.demand_w, self.setpoint, fit, n)
            self.enough = _supply_for(heat_j / free if free > 0.0 else 0.0, self.setpoint, fit, n)


def _emitters(c: Context, heating: list[Hour]) -> tuple[float, float] | None:
    """(output at 50 K excess, water flow ṁ·cp in W/K) fitted on the hours the heat pump heated
    alone; None without such hours."""
    n, alone = c.cfg.design.emitter_exponent, c.cfg.curve.heat_pump_alone
    fits: list[tuple[float, float, float]] = []
    for r in heating:
        q = _output_w(r)
        heat = r.heat.get("heating", 0.0)
        backup = sum(v for m, v in r.backup.items() if m != "dhw")
        if r.room is None or r.ret is None or r.supply is None or q <= 0.0 \
                or r.boiler_ch + backup > alone * heat:
            continue
        spread, excess = r.supply - r.ret, (r.supply + r.ret) / 2.0 - r.room
        if spread > 0.2 and excess > 2.0:
            fits.append((q / excess**n, q / spread, r.run["heating"]))
    k = weighted((f[0], f[2]) for f in fits)
    water = weighted((f[1], f[2]) for f in fits)
    if k is None or water is None:
        return None
    return k * 50.0**n, water


def _supply_for(heat_w: float, room: float, fit: tuple[float, float], n: float) -> float:
    nominal, water = fit
    if heat_w <= 0.0:
        return room
    return room + 50.0 * math.pow(heat_w / nominal, 1.0 / n) + heat_w / (2.0 * water)


def _range(bins: list[_Bin], c: Context) -> tuple[float, float, float, float]:
    width = c.cfg.curve.bin_k
    lo = min(math.floor(b.outdoor / width) for b in bins) * width
    hi = (max(math.floor(b.outdoor / width) for b in bins) + 1) * width
    rows = sorted((r for b in bins for r in b.ran), key=lambda r: r.t)
    return lo, hi, rows[0].t, span_end(rows)


def _carnot(supply: float, outdoor: float, c: Context) -> float:
    cop = c.cfg.cop
    hot = supply + cop.condenser_offset_k + KELVIN
    cold = outdoor - cop.evaporator_offset_k + KELVIN
    return hot / (hot - cold) if hot > cold else math.inf


def _steep(c: Context, bins: list[_Bin]) -> Finding:
    lo, hi, start, end = _range(bins, c)
    w = [(b, b.run_s) for b in bins]
    supply = weighted((b.supply, s) for b, s in w) or 0.0
    needed = weighted((b.enough, s) for b, s in w) or 0.0
    design = weighted((b.design, s) for b, s in w) or 0.0
    outdoor = weighted((b.outdoor, s) for b, s in w) or 0.0
    gain = _carnot(needed, outdoor, c) / _carnot(supply, outdoor, c) - 1.0
    excess = max(b.supply - max(b.enough, b.design) for b in bins)
    severity = Severity.FAULT if excess > c.cfg.curve.fault_margin_k else Severity.WARNING
    return finding("heating_curve_too_steep", severity, start, end,
                   ev("outdoor_from", lo, "°C", 0), ev("outdoor_to", hi, "°C", 0),
                   ev("supply_while_heating", supply, "°C"), ev("supply_needed", needed, "°C"),
                   ev("design_supply", design, "°C"), ev("above_need", supply - needed, "K"),
                   ev("above_design", supply - design, "K"),
                   ev("heating_share", 100.0 * (weighted((b.duty, s) for b, s in w) or 0.0),
                      "%", 0),
                   ev("room", weighted((b.room, s) for b, s in w), "°C"),
                   ev("cop_gain_at_needed_supply", 100.0 * gain, "%", 0),
                   ev("heating_hours", sum(s for _, s in w) / 3600.0, "h", 0))


def _small(c: Context, bins: list[_Bin], fit: tuple[float, float]) -> Finding:
    """Emitters too small: the coldest bin's need against the design curve, and the output the
    emitters would need at 50 K to carry the design load at the design supply."""
    design = c.cfg.design
    lo, hi, start, end = _range(bins, c)
    coldest = min(bins, key=lambda b: b.outdoor)
    excess = max(b.needed - b.design for b in bins)
    load = _design_load(c)
    required = None
    if load is not None:
        excess_k = design.supply_temp - load / (2.0 * fit[1]) - coldest.setpoint
        if excess_k > 0.0:
            required = load / math.pow(excess_k / 50.0, design.emitter_exponent)
    severity = Severity.FAULT if excess > c.cfg.curve.fault_margin_k else Severity.WARNING
    return finding("emitters_undersized", severity, start, end,
                   ev("outdoor_from", lo, "°C", 0), ev("outdoor_to", hi, "°C", 0),
                   ev("outdoor", coldest.outdoor, "°C"),
                   ev("heat_demand", coldest.demand_w / 1000.0, "kW", 2),
                   ev("supply_needed", coldest.needed, "°C"),
                   ev("design_supply", coldest.design, "°C"),
                   ev("above_design", coldest.needed - coldest.design, "K"),
                   ev("largest_above_design", excess, "K"),
                   ev("emitters_at_50k", fit[0], "W", -1),
                   ev("design_heat_load", None if load is None else load / 1000.0, "kW", 2),
                   ev("emitters_needed_at_50k", required, "W", -1))


def _design_load(c: Context) -> float | None:
    """The house's heat load at the design outdoor temperature, W: a straight line through its
    hourly space heat against the outdoor temperature (heating hours with data), extended."""
    points = [(r.outdoor, r.space_heat * 1000.0) for r in c.rows
              if r.outdoor is not None and r.covered >= _HALF_HOUR and r.space_heat > 0.0]
    if len(points) < 24:
        return None
    n = float(len(points))
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx <= 0.0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    return my + slope * (c.cfg.design.outdoor_temp - mx)


def _above(c: Context, bins: list[_Bin]) -> Finding:
    lo, hi, start, end = _range(bins, c)
    w = [(b, b.run_s) for b in bins]
    supply = weighted((b.supply, s) for b, s in w) or 0.0
    design = weighted((b.design, s) for b, s in w) or 0.0
    excess = max(b.supply - b.design for b in bins)
    severity = Severity.FAULT if excess > c.cfg.curve.fault_margin_k else Severity.WARNING
    return finding("supply_above_curve", severity, start, end,
                   ev("outdoor_from", lo, "°C", 0), ev("outdoor_to", hi, "°C", 0),
                   ev("supply_while_heating", supply, "°C"), ev("design_supply", design, "°C"),
                   ev("above_design", supply - design, "K"),
                   ev("largest_above_design", excess, "K"),
                   ev("heating_hours", sum(s for _, s in w) / 3600.0, "h", 0))


def delta_t(c: Context) -> list[Finding]:
    """The spread the flow gives at the unit's rated output: ΔT x rated / output while heating
    (the flow is the output over the spread, so this is the rated output over the flow)."""
    rated = c.cfg.design.heat_pump_output_w
    if rated is None:
        raise NotMeasured("needs diagnosis.design.heat_pump_output_w, the heat pump's rated "
                          "output")
    cfg = c.cfg.delta_t
    rows = [r for r in _heating(c.rows) if r.ret is not None and _output_w(r) > 0.0]
    run_s = sum(r.run["heating"] for r in rows)
    if run_s / 3600.0 < cfg.min_hours:
        raise NotMeasured(f"needs {cfg.min_hours:g} h of heating with hp.supply_temp and "
                          "hp.return_temp")
    output = weighted((_output_w(r), r.run["heating"]) for r in rows) or 0.0
    spread = weighted(((r.supply or 0.0) - (r.ret or 0.0), r.run["heating"]) for r in rows) or 0.0
    if spread <= 0.0:
        return []
    water = output / spread  # W/K
    at_rated = rated / water
    if cfg.low_k <= at_rated <= cfg.high_k:
        return []
    code = "delta_t_low" if at_rated < cfg.low_k else "delta_t_high"
    return [finding(code, Severity.WARNING, rows[0].t, span_end(rows),
                    ev("delta_t_at_rated_output", at_rated, "K"), ev("delta_t", spread, "K"),
                    ev("heat_output", output / 1000.0, "kW", 2),
                    ev("rated_output", rated / 1000.0, "kW", 2),
                    ev("flow", water / 4186.0 * 60.0, "l/min"),
                    ev("flow_for_5k", rated / 5.0 / 4186.0 * 60.0, "l/min"),
                    ev("heating_hours", run_s / 3600.0, "h", 0))]


def cop(c: Context) -> list[Finding]:
    """Each day's running COP for space heating against the Carnot COP at its supply and outdoor
    temperatures times the fraction the unit reaches on its good days."""
    cfg = c.cfg.cop
    daily = []
    for day, rows in days(c.rows):
        heating = [r for r in _heating(rows) if r.outdoor is not None]
        run_s = sum(r.run["heating"] for r in heating)
        if run_s / 3600.0 < cfg.min_run_hours:
            continue
        heat = sum(r.heat.get("heating", 0.0) for r in heating)
        elec = sum(r.elec.get("heating", 0.0) for r in heating)
        supply = weighted((r.supply, r.run["heating"]) for r in heating) or 0.0
        outdoor = weighted((r.outdoor, r.run["heating"]) for r in heating) or 0.0
        if elec > 0.0:
            carnot = _carnot(supply, outdoor, c)
            daily.append((date.fromisoformat(day), heating, heat / elec, carnot, supply, outdoor))
    if len(daily) < cfg.fit_days:
        raise NotMeasured(f"needs {cfg.fit_days} days with {cfg.min_run_hours:g} h of heating "
                          "to fit the Carnot fraction")
    fractions = sorted(d[2] / d[3] for d in daily)
    good = fractions[min(int(cfg.good_quantile * len(fractions)), len(fractions) - 1)]
    low = [d for d in daily if d[2] < (1.0 - cfg.tolerance) * good * d[3]]
    out = []
    groups: list[list[tuple[date, list[Hour], float, float, float, float]]] = []
    for d in low:
        if groups and d[0] - groups[-1][-1][0] == timedelta(days=1):
            groups[-1].append(d)
        else:
            groups.append([d])
    for group in groups:
        if len(group) < cfg.min_days:
            continue
        rows = [r for d in group for r in d[1]]
        heat = sum(r.heat.get("heating", 0.0) for r in rows)
        elec = sum(r.elec.get("heating", 0.0) for r in rows)
        expected = weighted((good * d[3], 1.0) for d in group) or 0.0
        out.append(finding("cop_below_expectation", Severity.WARNING, rows[0].t, span_end(rows),
                           ev("cop", heat / elec, "", 2), ev("expected_cop", expected, "", 2),
                           ev("carnot_fraction", 100.0 * (weighted(
                               (d[2] / d[3], 1.0) for d in group) or 0.0), "%", 1),
                           ev("good_days_carnot_fraction", 100.0 * good, "%", 1),
                           ev("supply_while_heating", weighted((d[4], 1.0) for d in group), "°C"),
                           ev("outdoor", weighted((d[5], 1.0) for d in group), "°C"),
                           ev("days", len(group), "", 0)))
    return out
