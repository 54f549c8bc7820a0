"""Faults the bench can plant in its hybrid installation: the causes field studies keep finding.

Each fault is data: new values for parameters of the bench's models (the heat pump, the house's
radiators, the hybrid controller, a heat meter), applied to a :class:`hil.hybrid.HybridConfig`
with :func:`plant`. Nothing is patched: the models run as always, with a wrong setting or a worse
part, and the recording shows what such an installation shows. The season's truth file lists the
faults planted (:func:`describe`), so that a diagnosis can be held against them.

The healthy bench they depart from (:data:`hil.hybrid.HYBRID_HEAT_PUMP`,
:data:`hil.hybrid.HYBRID_HOUSE`): radiators of 11.5 kW at 75/65/20 °C, a heating curve of 32 °C
at +10 °C and 50 °C at -10 °C (what the radiators need), 11.5 l/min (ΔT 5 K at the unit's 4 kW),
10-minute minimum run and off times with a 150 Wh start/stop band, the boiler below -2 °C, no
backup element, no heat meter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from hil.heat_meter import HeatMeter
from hil.house import Emitters
from hil.hybrid import HybridConfig

Changes = Mapping[str, Mapping[str, Any]]  # part -> parameter -> value


@dataclass(frozen=True, slots=True)
class Fault:
    name: str
    what: str  # what is planted, in words, with the healthy value it replaces
    changes: Changes  # part ("hybrid", "heatpump", "emitters", "heat_meter") -> parameters


FAULTS: Final[dict[str, Fault]] = {f.name: f for f in (
    Fault("steep_curve", "heating curve 40 °C at +10 °C and 58 °C at -10 °C; the radiators need "
          "32 and 50 °C", {"heatpump": {"curve_mild": (10.0, 40.0), "curve_cold": (-10.0, 58.0)}}),
    Fault("undersized_radiators", "radiators of 6.9 kW at 75/65/20 °C instead of 11.5 kW (60 %): "
          "they need a hotter supply than the curve", {"emitters": {"nominal_w": 6_900.0}}),
    Fault("oversized_pump", "circulation at 28 l/min instead of 11.5 l/min: ΔT 2 K at the unit's "
          "4 kW instead of 5 K", {"heatpump": {"design_flow_lpm": 28.0}}),
    Fault("short_cycling", "minimum run and off times of 2 minutes and a start/stop band of 10 Wh "
          "(healthy: 10 minutes, 150 Wh)",
          {"heatpump": {"min_run_s": 120.0, "min_off_s": 120.0, "cycling_band_wh": 10.0}}),
    Fault("bivalent_high", "the hybrid controller hands space heating to the boiler below +5 °C "
          "instead of -2 °C", {"hybrid": {"bivalent_temp": 5.0}}),
    Fault("backup_mild", "a 3 kW backup element released below +15 °C at 300 Wh owed (sound: "
          "below -10 °C)", {"heatpump": {"backup_heater_w": 3_000.0,
                                          "backup_release_temp": 15.0,
                                          "backup_start_wh": 300.0}}),
    Fault("heat_meter_air", "a heat meter on the heat pump's flow whose flow sensor runs dry for "
          "2 hours from 13:00 UTC every second day", {"heat_meter": {"air_every_days": 2}}),
    Fault("frozen_sensor", "the return temperature reading stops changing 3 days in",
          {"hybrid": {"frozen_sensor": "hp.return_temp", "frozen_after_s": 3 * 86_400.0}}),
)}


def plant(config: HybridConfig, names: Iterable[str]) -> HybridConfig:
    """``config`` with the named faults planted, in order; a KeyError names an unknown one."""
    for name in names:
        fault = FAULTS.get(name)
        if fault is None:
            raise KeyError(f"no fault {name!r}; the bench plants {', '.join(FAULTS)}")
        for part, values in fault.changes.items():
            config = _changed(config, part, values)
    return config


def _changed(config: HybridConfig, part: str, values: Mapping[str, Any]) -> HybridConfig:
    if part == "hybrid":
        return replace(config, **values)
    if part == "heatpump":
        return replace(config, heatpump=replace(config.heatpump, **values))
    if part == "emitters":
        house = config.house
        return replace(config, house=replace(house, emitters=replace(
            house.emitters or Emitters(), **values)))
    if part == "heat_meter":
        return replace(config, heat_meter=replace(config.heat_meter or HeatMeter(), **values))
    raise ValueError(f"a fault cannot change {part!r}")


def describe(names: Iterable[str]) -> list[dict[str, Any]]:
    """The planted faults as the truth file records them."""
    return [{"name": f.name, "what": f.what,
             "changes": {part: dict(values) for part, values in f.changes.items()}}
            for f in (FAULTS[n] for n in names)]
