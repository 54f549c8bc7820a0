"""The diagnosis: every rule over a period's ledger, scan and figures -> findings. Pure.

:func:`spec` widens the figures' ledger (:func:`agent.figures.metrics.spec_for`) with the
counters the rules read per hour (the backup heater, the unit's start counter, both heat
counters); its figures stay the report's. :func:`watch` says what the
sample :class:`~agent.diagnosis.scan.Scan` looks at. :func:`diagnose` runs every rule of
:data:`RULES`: each finding carries its evidence; a rule that needs a quantity the installation
does not measure is listed as not checked, with the reason, and never guesses.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

from agent.diagnosis import rules_data, rules_heating, rules_sources
from agent.diagnosis.context import Context, NotMeasured, Rule
from agent.diagnosis.findings import Diagnosis, NotChecked
from agent.diagnosis.hours import (
    BACKUP,
    METER_HEAT,
    STARTS,
    TANK,
    UNIT_HEAT,
    table,
)
from agent.diagnosis.scan import WATER, Scan, Watch
from agent.diagnosis.thresholds import DiagnosisConfig
from agent.figures.installation import Installation
from agent.figures.ledger import Ledger, Spec, Track
from agent.figures.metrics import Period, compute, spec_for

RULES: Final[tuple[tuple[str, Rule], ...]] = (
    ("short_cycling", rules_heating.short_cycling),
    ("heating_curve", rules_heating.heating_curve),
    ("delta_t", rules_heating.delta_t),
    ("cop", rules_heating.cop),
    ("boiler_above_bivalent", rules_sources.boiler_above_bivalent),
    ("backup_heater", rules_sources.backup_heater),
    ("hot_water_share", rules_sources.hot_water_share),
    ("legionella", rules_sources.legionella),
    ("defrost", rules_sources.defrost),
    ("heat_meter_air", rules_data.heat_meter_air),
    ("supply_below_return", rules_data.supply_below_return),
    ("frozen_sensors", rules_data.frozen_sensors),
    ("sensor_spikes", rules_data.sensor_spikes),
    ("data_gaps", rules_data.data_gaps),
)


def spec(inst: Installation) -> Spec:
    """The figures' ledger, with the tracks the rules read besides."""
    base = spec_for(inst)
    have = {t.quantity for t in base.tracks}
    extra = (Track(BACKUP, "counter", labelled=True, max_rate=15.0, slack=1.0),
             Track(STARTS, "counter", max_rate=120.0, slack=1.0),
             *(Track(q, "counter", labelled=True, max_rate=60.0, slack=1.0)
               for q in (UNIT_HEAT, METER_HEAT)))
    return replace(base, tracks=base.tracks + tuple(t for t in extra if t.quantity not in have))


def watch(inst: Installation, cfg: DiagnosisConfig) -> Watch:
    """What the sample scan looks at for this installation and these thresholds."""
    s = cfg.sensors
    return Watch(start_power=inst.heat_pump.start_power, max_gap=inst.ledger.max_gap,
                 below_k=s.supply_below_return_k, meter_min_dt=cfg.heat_meter.min_delta_t,
                 spike_k=s.spike_k, readings=(*WATER, inst.ledger.outdoor, TANK))


def diagnose(ledger: Ledger, scan: Scan, inst: Installation, cfg: DiagnosisConfig,
             period: Period, figures: dict[str, Any] | None = None) -> Diagnosis:
    """Every rule over ``period``: findings, worst first, and the rules that could not run.

    ``ledger`` is built with :func:`spec`, ``scan`` with :func:`watch`, over the same samples;
    ``figures`` is :func:`agent.figures.metrics.compute` of the period (computed if not given).
    """
    context = Context(inst, cfg, period, table(ledger, scan, inst, period), scan, ledger,
                      figures if figures is not None else compute(ledger, inst, period))
    result = Diagnosis()
    for name, rule in RULES:
        try:
            result.findings += rule(context)
        except NotMeasured as why:
            result.not_checked.append(NotChecked(name, str(why)))
    result.findings.sort(key=lambda f: (-f.severity.rank, f.start, f.code))
    return result
