"""What a grant can give: field names, the named sets of them, streams and resolutions.

A field is a quantity of the vocabulary (``hp.heat_energy``), a series the ledger derives from
them (``boiler.load``), or a figure of the daily performance summary (``spf``). Named sets are
what a resident is asked about, each chosen for one purpose (AVG/GDPR data minimisation):

* ``performance``: what proves a performance promise (SPF, heat coverage, gas saving): the heat
  pump's energy counters and mode, heat and electricity sub-meters, gas, the boiler's burner
  states, the outdoor temperature, and the daily figures. Nothing about the household.
* ``diagnostics``: ``performance`` plus what the technical protocol for underperformance needs:
  temperatures, flow, compressor, backup heater, boiler details, heat meter details.
* ``household``: the smart meter's whole-house figures and the room: they reveal presence and
  habits, so they are granted only on their own.
* ``all``: everything.

Fields select what the samples, hourly and daily streams carry. The ``findings`` stream carries
diagnoses (codes, their evidence figures, causes and actions), never samples: granting the stream
grants them whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from drivers.vocabulary import VOCABULARY

STREAMS: Final = ("samples", "hourly", "daily", "status", "findings")

# A resolution's interval in seconds (0: every sample as it was taken); "daily" is a local day.
RESOLUTIONS: Final[dict[str, float]] = {
    "raw": 0.0, "1min": 60.0, "15min": 900.0, "hourly": 3600.0, "daily": 86400.0}

# The finest resolution each stream's content has: a grant's resolution may not be coarser.
STREAM_RESOLUTION: Final = {"hourly": "hourly", "daily": "daily"}

DERIVED: Final = ("boiler.load", "hp.heat_power.flow")  # series the ledger makes (ledger.py)

DAILY_FIGURES: Final = (
    "heat_kwh", "electricity_kwh", "spf", "running_cop", "by_mode", "heat_coverage", "gas_m3",
    "gas_split_m3", "boiler_heat_kwh", "reference_gas_m3", "gas_saving_m3", "degree_days",
    "data_coverage", "boundary", "outdoor_mean")

_PERFORMANCE: Final = (
    "hp.heat_energy", "hp.electric_energy", "hp.heat_energy_heating", "hp.heat_energy_dhw",
    "hp.electric_energy_heating", "hp.electric_energy_dhw", "hp.backup_heater_energy",
    "hp.heat_power", "hp.mode", "hp.outdoor_temp", "heatmeter.energy", "submeter.import_energy",
    "gas.volume", "district_heat.energy", "boiler.flame", "boiler.ch_active",
    "boiler.dhw_active", "boiler.modulation", "boiler.load", *DAILY_FIGURES)

_DIAGNOSTICS: Final = (
    *_PERFORMANCE, "hp.electric_power", "hp.supply_temp", "hp.return_temp", "hp.dhw_temp",
    "hp.source_in_temp", "hp.source_out_temp", "hp.flow", "hp.compressor_freq",
    "hp.reported_cop", "hp.compressor_starts", "hp.backup_heater", "boiler.ch_enabled",
    "boiler.dhw_enabled", "boiler.fault", "boiler.control_setpoint", "boiler.supply_temp",
    "boiler.return_temp", "boiler.dhw_temp", "boiler.outdoor_temp", "boiler.pressure",
    "boiler.dhw_flow", "boiler.burner_starts", "boiler.burner_hours",
    "boiler.dhw_burner_starts", "boiler.dhw_burner_hours", "heatmeter.volume",
    "heatmeter.flow", "heatmeter.power", "heatmeter.supply_temp", "heatmeter.return_temp",
    "submeter.export_energy", "submeter.power", "submeter.voltage", "submeter.current",
    "hp.heat_power.flow")

_HOUSEHOLD: Final = tuple(q for q in VOCABULARY if q.split(".")[0] in ("grid", "room", "water"))

FIELDS: Final = frozenset((*VOCABULARY, *DERIVED, *DAILY_FIGURES))

SETS: Final[dict[str, frozenset[str]]] = {
    "performance": frozenset(_PERFORMANCE),
    "diagnostics": frozenset(_DIAGNOSTICS),
    "household": frozenset(_HOUSEHOLD),
    "all": FIELDS,
}


def resolve(names: Iterable[str]) -> frozenset[str]:
    """The fields that ``names`` (fields and set names) stand for; ValueError names the unknown."""
    out: set[str] = set()
    for name in names:
        if name in SETS:
            out |= SETS[name]
        elif name in FIELDS:
            out.add(name)
        else:
            raise ValueError(f"{name!r} is neither a field nor a set of fields "
                             f"({', '.join(SETS)}); fields are vocabulary quantities, "
                             f"{', '.join(DERIVED)} and the daily figures")
    return frozenset(out)
