"""The closed vocabulary of quantities that drivers produce and the agent consumes.

Every value that leaves a driver is named by one entry of :data:`VOCABULARY`, in that entry's
unit. Nothing downstream knows which device produced it. ``kind`` says how a value may be used:
energy and volumes are ``counter``\\s (monotonic meter indices: interval figures are their
differences), instantaneous measurements are ``gauge``\\s, and operating states are ``state``\\s
(a string from ``states``, or a boolean where ``states`` is empty).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Kind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    STATE = "state"


@dataclass(frozen=True, slots=True)
class Quantity:
    name: str
    unit: str
    kind: Kind
    description: str
    states: tuple[str, ...] = ()

    @property
    def is_boolean(self) -> bool:
        return self.kind is Kind.STATE and not self.states


HP_MODES: Final = ("off", "heating", "dhw", "defrost", "cooling")

C, G, S = Kind.COUNTER, Kind.GAUGE, Kind.STATE

_QUANTITIES: Final = (
    # Heat pump
    Quantity("hp.heat_energy", "kWh", C, "Heat delivered by the heat pump, all modes"),
    Quantity("hp.electric_energy", "kWh", C, "Electricity used by the heat pump, all modes"),
    Quantity("hp.heat_energy_heating", "kWh", C, "Heat delivered for space heating"),
    Quantity("hp.heat_energy_dhw", "kWh", C, "Heat delivered for domestic hot water"),
    Quantity("hp.electric_energy_heating", "kWh", C, "Electricity used for space heating"),
    Quantity("hp.electric_energy_dhw", "kWh", C, "Electricity used for domestic hot water"),
    Quantity("hp.backup_heater_energy", "kWh", C, "Electricity used by backup/immersion heaters"),
    Quantity("hp.heat_power", "W", G, "Thermal output of the heat pump"),
    Quantity("hp.electric_power", "W", G, "Electrical input of the heat pump"),
    Quantity("hp.supply_temp", "°C", G, "Heat pump supply (flow) water temperature"),
    Quantity("hp.return_temp", "°C", G, "Heat pump return water temperature"),
    Quantity("hp.outdoor_temp", "°C", G, "Outdoor air temperature at the heat pump's sensor"),
    Quantity("hp.dhw_temp", "°C", G, "Domestic hot water tank temperature"),
    Quantity("hp.source_in_temp", "°C", G, "Source (brine/air) temperature entering"),
    Quantity("hp.source_out_temp", "°C", G, "Source (brine/air) temperature leaving"),
    Quantity("hp.flow", "l/min", G, "Water flow through the heat pump's condenser"),
    Quantity("hp.compressor_freq", "Hz", G, "Compressor frequency"),
    Quantity("hp.reported_cop", "", G, "COP computed by the device itself (not used in metrics)"),
    Quantity("hp.compressor_starts", "", C, "Number of compressor starts"),
    Quantity("hp.mode", "", S, "Operating mode of the heat pump", HP_MODES),
    Quantity("hp.backup_heater", "", S, "Backup or immersion heater switched on"),
    # Gas boiler (OpenTherm)
    Quantity("boiler.flame", "", S, "Burner flame on"),
    Quantity("boiler.ch_active", "", S, "Boiler is heating the central heating circuit"),
    Quantity("boiler.dhw_active", "", S, "Boiler is heating domestic hot water"),
    Quantity("boiler.ch_enabled", "", S, "Thermostat enables central heating"),
    Quantity("boiler.dhw_enabled", "", S, "Thermostat enables domestic hot water"),
    Quantity("boiler.fault", "", S, "Boiler reports a fault"),
    Quantity("boiler.modulation", "%", G, "Relative modulation level of the burner"),
    Quantity("boiler.control_setpoint", "°C", G, "Control setpoint sent by the thermostat"),
    Quantity("boiler.supply_temp", "°C", G, "Boiler flow water temperature"),
    Quantity("boiler.return_temp", "°C", G, "Boiler return water temperature"),
    Quantity("boiler.dhw_temp", "°C", G, "Boiler domestic hot water temperature"),
    Quantity("boiler.outdoor_temp", "°C", G, "Outside temperature as seen by the boiler"),
    Quantity("boiler.pressure", "bar", G, "Central heating water pressure"),
    Quantity("boiler.dhw_flow", "l/min", G, "Domestic hot water flow rate"),
    Quantity("boiler.burner_starts", "", C, "Number of burner starts"),
    Quantity("boiler.burner_hours", "h", C, "Burner operating hours"),
    Quantity("boiler.dhw_burner_starts", "", C, "Number of burner starts for hot water"),
    Quantity("boiler.dhw_burner_hours", "h", C, "Burner operating hours for hot water"),
    # Smart meter (P1)
    Quantity("grid.import_energy", "kWh", C, "Electricity imported from the grid, all tariffs"),
    Quantity("grid.export_energy", "kWh", C, "Electricity exported to the grid, all tariffs"),
    Quantity("grid.import_energy_t1", "kWh", C, "Electricity imported, tariff 1 (low)"),
    Quantity("grid.import_energy_t2", "kWh", C, "Electricity imported, tariff 2 (normal)"),
    Quantity("grid.export_energy_t1", "kWh", C, "Electricity exported, tariff 1 (low)"),
    Quantity("grid.export_energy_t2", "kWh", C, "Electricity exported, tariff 2 (normal)"),
    Quantity("grid.power", "W", G, "Net electrical power from the grid (import minus export)"),
    Quantity("grid.power_l1", "W", G, "Net power on phase L1 (import minus export)"),
    Quantity("grid.power_l2", "W", G, "Net power on phase L2 (import minus export)"),
    Quantity("grid.power_l3", "W", G, "Net power on phase L3 (import minus export)"),
    Quantity("grid.voltage_l1", "V", G, "Voltage on phase L1"),
    Quantity("grid.voltage_l2", "V", G, "Voltage on phase L2"),
    Quantity("grid.voltage_l3", "V", G, "Voltage on phase L3"),
    Quantity("grid.current_l1", "A", G, "Current on phase L1"),
    Quantity("grid.current_l2", "A", G, "Current on phase L2"),
    Quantity("grid.current_l3", "A", G, "Current on phase L3"),
    Quantity("gas.volume", "m³", C, "Gas meter index, with the gas meter's own timestamp"),
    Quantity("water.volume", "m³", C, "Water meter index, with the water meter's own timestamp"),
    Quantity("district_heat.energy", "kWh", C, "District heat meter index on P1"),
    # Heat meter (M-Bus or Modbus)
    Quantity("heatmeter.energy", "kWh", C, "Heat meter energy index"),
    Quantity("heatmeter.volume", "m³", C, "Heat meter volume index"),
    Quantity("heatmeter.flow", "l/min", G, "Flow through the heat meter"),
    Quantity("heatmeter.power", "W", G, "Thermal power measured by the heat meter"),
    Quantity("heatmeter.supply_temp", "°C", G, "Supply temperature at the heat meter"),
    Quantity("heatmeter.return_temp", "°C", G, "Return temperature at the heat meter"),
    # Electricity sub-meter (kWh meter on a heat pump circuit)
    Quantity("submeter.import_energy", "kWh", C, "Sub-meter imported energy"),
    Quantity("submeter.export_energy", "kWh", C, "Sub-meter exported energy"),
    Quantity("submeter.power", "W", G, "Sub-meter active power"),
    Quantity("submeter.voltage", "V", G, "Sub-meter voltage"),
    Quantity("submeter.current", "A", G, "Sub-meter current"),
    # Room
    Quantity("room.temp", "°C", G, "Room temperature at the thermostat"),
    Quantity("room.setpoint", "°C", G, "Room temperature setpoint"),
)

VOCABULARY: Final[dict[str, Quantity]] = {q.name: q for q in _QUANTITIES}


def quantity(name: str) -> Quantity:
    """The quantity called ``name``; a KeyError names the unknown quantity."""
    try:
        return VOCABULARY[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a quantity of the vocabulary") from None
