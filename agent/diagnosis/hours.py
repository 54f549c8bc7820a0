"""The hours the rules read: each hour's figures from the ledger's bins and the scan.

The ledger keeps figures as (kind, quantity, label) sums per hour; the rules want them as plain
fields: kWh by operating mode, running seconds, time means of temperatures while heating, the
boiler's space heat. :func:`table` turns the bins of a period into :class:`Hour` rows once, with
the same definitions as the metrics (README, "Performance figures: definitions"): labels are
``<mode>|run`` or ``<mode>|idle``, the boiler's gas is divided by the burner's load, and its heat
is gas x calorific value x efficiency unless a heat meter counts it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from agent.diagnosis.scan import Scan
from agent.figures.installation import Installation
from agent.figures.ledger import COVERED, ENERGY, GAUGE, HELD, HOUR, Ledger
from agent.figures.metrics import LOCAL, MODES, Period

BACKUP: Final = "hp.backup_heater_energy"  # the vocabulary's backup heater counter
STARTS: Final = "hp.compressor_starts"
METER_HEAT: Final = "heatmeter.energy"
UNIT_HEAT: Final = "hp.heat_energy"
TANK: Final = "hp.dhw_temp"
_LABELS: Final = {m: (f"{m}|run", f"{m}|idle") for m in (*MODES, "")}
_RUN_MODES: Final = (*MODES, "")
_ALL_LABELS: Final = ("", *(label for pair in _LABELS.values() for label in pair))


@dataclass(slots=True)
class Hour:
    """One hour's figures (kWh, seconds, °C, W); None where nothing was measured."""

    t: float  # its start, Unix time
    outdoor: float | None = None
    covered: float = 0.0  # seconds the heat pump's electricity counter covered
    run: dict[str, float] = field(default_factory=dict)  # running seconds by mode
    heat: dict[str, float] = field(default_factory=dict)  # heat counter kWh by mode
    elec: dict[str, float] = field(default_factory=dict)  # electricity counter kWh by mode
    defrost_heat: float = 0.0  # kWh taken from the heating water while defrosting (negative)
    backup: dict[str, float] = field(default_factory=dict)  # backup heater kWh by mode
    supply: float | None = None  # time means while the compressor ran for space heating
    ret: float | None = None
    room: float | None = None
    boiler_ch: float = 0.0  # the boiler's space heat, kWh
    starts: float = 0.0  # compressor starts (the unit's counter if it has one, else seen)
    below_s: float = 0.0  # supply below return while heating
    air_s: float = 0.0  # heat meter without flow while heating
    tank_max: float | None = None
    meter_heat: float = 0.0  # kWh the heat meter (heatmeter.energy) counted
    unit_heat: float = 0.0  # kWh the unit's own heat counter (hp.heat_energy) counted

    @property
    def run_s(self) -> float:
        return sum(self.run.values())

    @property
    def hp_heat(self) -> float:
        """The heat pump's net heat, kWh: all modes, the defrost's negative heat included."""
        return sum(self.heat.values()) + self.defrost_heat

    @property
    def space_heat(self) -> float:
        """Heat the house got for space heating this hour, kWh: heat pump (heating, defrost),
        backup heater (outside hot water) and boiler."""
        backup = sum(v for m, v in self.backup.items() if m != "dhw")
        return self.heat.get("heating", 0.0) + self.defrost_heat + backup + self.boiler_ch


def table(ledger: Ledger, scan: Scan, inst: Installation, period: Period) -> list[Hour]:
    """The hours of ``period`` that have any figure, in time order."""
    bins = ledger.bins
    h0, h1 = int(period.start // HOUR), int(-(-period.end // HOUR))
    counted = STARTS in ledger.first  # the unit counts its starts: better than seeing them
    rows = []
    tank = scan.extremes(TANK)
    for hour in sorted(set(bins) | set(scan.starts) | set(scan.below_s) | set(scan.air_s)
                       | set(scan.heating) | set(scan.room) | set(tank)):
        if h0 <= hour < h1:
            row = _hour(hour, bins.get(hour, {}), inst)
            if not counted:
                row.starts = scan.starts.get(hour, 0)
            row.below_s = scan.below_s.get(hour, 0.0)
            row.air_s = scan.air_s.get(hour, 0.0)
            heating, room = scan.heating.get(hour), scan.room.get(hour)
            if heating is not None and heating[0] > 0.0:
                row.supply, row.ret = heating[1] / heating[0], heating[2] / heating[0]
            if room is not None and room[0] > 0.0:
                row.room = room[1] / room[0]
            if hour in tank:
                row.tank_max = tank[hour][1]
            rows.append(row)
    return rows


def _hour(hour: int, f: dict[tuple[str, str, str], float], inst: Installation) -> Hour:
    hp = inst.heat_pump
    row = Hour(hour * HOUR, outdoor=_mean(f, inst.ledger.outdoor, ("",)))
    elec, heat = hp.electricity, hp.heat
    backup = hp.backup_heater or BACKUP
    for mode in _RUN_MODES:
        run, idle = _LABELS[mode]
        seconds = f.get((COVERED, elec, run), 0.0)
        if seconds:
            row.run[mode] = seconds
        row.covered += seconds + f.get((COVERED, elec, idle), 0.0)
        for into, quantity in ((row.heat, heat), (row.elec, elec), (row.backup, backup)):
            kwh = f.get((ENERGY, quantity, run), 0.0) + f.get((ENERGY, quantity, idle), 0.0)
            if kwh:
                into[mode] = kwh
    row.defrost_heat = min(sum(f.get((GAUGE, "hp.heat_power", label), 0.0)
                               for label in _LABELS["defrost"]) / 3.6e6, 0.0)
    row.starts = f.get((ENERGY, STARTS, ""), 0.0)
    row.meter_heat, row.unit_heat = _energy(f, METER_HEAT), _energy(f, UNIT_HEAT)
    row.boiler_ch = _boiler_space_heat(f, inst)
    return row


def _energy(f: dict[tuple[str, str, str], float], quantity: str) -> float:
    """A counter's energy in an hour over every label (labelled or not)."""
    return sum(f.get((ENERGY, quantity, label), 0.0) for label in _ALL_LABELS)


def _mean(f: dict[tuple[str, str, str], float], quantity: str, labels: tuple[str, ...]
          ) -> float | None:
    """Time mean of a gauge over the given labels of an hour (None: not held)."""
    held = sum(f.get((HELD, quantity, label), 0.0) for label in labels)
    if held <= 0.0:
        return None
    return sum(f.get((GAUGE, quantity, label), 0.0) for label in labels) / held


def _boiler_space_heat(f: dict[tuple[str, str, str], float], inst: Installation) -> float:
    """The boiler's space heat in an hour: its gas divided by the burner's load (hot water has
    priority), as heat; the metrics' definitions hour by hour."""
    boiler = inst.boiler
    if boiler is None:
        return 0.0
    ch, dhw = f.get((GAUGE, "boiler.load", "ch"), 0.0), f.get((GAUGE, "boiler.load", "dhw"), 0.0)
    if ch <= 0.0:
        return 0.0
    share = ch / (ch + dhw)
    if boiler.heat is not None:
        return f.get((ENERGY, boiler.heat, ""), 0.0) * share
    gas = f.get((ENERGY, "gas.volume", ""), 0.0)
    return gas * share * inst.gas.mj_m3(boiler.efficiency_basis) / 3.6 * boiler.efficiency


def days(rows: list[Hour]) -> Iterator[tuple[str, list[Hour]]]:
    """The rows grouped by local calendar day (Europe/Amsterdam), in order."""
    day: str | None = None
    group: list[Hour] = []
    for row in rows:
        name = datetime.fromtimestamp(row.t, UTC).astimezone(LOCAL).date().isoformat()
        if name != day and group:
            yield day or "", group
            group = []
        day = name
        group.append(row)
    if group:
        yield day or "", group
