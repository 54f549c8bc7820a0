"""Unit conversion into the vocabulary's units.

Devices report energy in Wh, kWh, MWh or GJ, flow in l/h or m³/h, power in W or kW; the
vocabulary has one unit per quantity. Drivers convert with :func:`factor` and nothing else.
"""

from __future__ import annotations

from typing import Final

# Factors to the canonical unit, per canonical unit. 1 GJ = 1e9 J / 3.6e6 J/kWh = 277.7… kWh.
_TO_CANONICAL: Final[dict[str, dict[str, float]]] = {
    "kWh": {"kWh": 1.0, "Wh": 1e-3, "MWh": 1e3, "GJ": 1e9 / 3.6e6, "MJ": 1e6 / 3.6e6},
    "W": {"W": 1.0, "kW": 1e3, "MW": 1e6},
    "l/min": {"l/min": 1.0, "l/h": 1 / 60, "m³/h": 1000 / 60, "l/s": 60.0},
    "m³": {"m³": 1.0, "l": 1e-3},
    "°C": {"°C": 1.0},
    "Hz": {"Hz": 1.0},
    "%": {"%": 1.0},
    "V": {"V": 1.0},
    "A": {"A": 1.0},
    "bar": {"bar": 1.0, "mbar": 1e-3, "kPa": 1e-2},
    "h": {"h": 1.0, "min": 1 / 60, "s": 1 / 3600},
    "": {"": 1.0},
}

ALIASES: Final = {"m3": "m³", "m3/h": "m³/h", "degC": "°C", "C": "°C"}


def normalise(unit: str) -> str:
    return ALIASES.get(unit, unit)


def factor(unit: str, canonical: str) -> float:
    """Multiply a value in ``unit`` by this to get it in ``canonical``; ValueError if impossible."""
    table = _TO_CANONICAL.get(canonical, {canonical: 1.0})
    try:
        return table[normalise(unit)]
    except KeyError:
        allowed = ", ".join(repr(u) for u in table)
        raise ValueError(f"cannot convert {unit!r} to {canonical!r} (allowed: {allowed})") from None
