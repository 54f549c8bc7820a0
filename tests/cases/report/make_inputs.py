"""Writes the recordings of the golden report cases (run once; the outputs are committed).

Every case is simple enough to compute by hand; README.md shows each calculation and
expected.json in each folder holds the figures the report must give.
"""

from __future__ import annotations

from pathlib import Path

from drivers.recording import Record, record_line

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
STEP = 600.0  # 10 minutes


def write(name: str, records: list[Record]) -> None:
    folder = Path(__file__).parent / name
    folder.mkdir(exist_ok=True)
    (folder / "recording.jsonl").write_bytes(b"".join(record_line(r) for r in records))


def running(extra: dict[str, float] | None = None) -> dict[str, float | str]:
    return {"hp.mode": "heating", "hp.electric_power": 750.0, "hp.outdoor_temp": 5.0,
            "hp.heat_power": 3000.0, **(extra or {})}


def counter_reset() -> None:
    """Two days at 3 kW heat / 0.75 kW electricity; both counters reset to 0 at day 1 12:00."""
    records = []
    heat, elec = 1000.0, 250.0
    for i in range(289):  # 0 .. 288: 288 intervals of 10 minutes
        if i == 216:  # 36 h in: the controller's counters restart from zero
            heat, elec = 0.5, 0.125  # 10 minutes counted since the restart
        elif i:
            heat += 0.5
            elec += 0.125
        records.append(Record(T0 + i * STEP, {**running(), "hp.heat_energy": round(heat, 3),
                                              "hp.electric_energy": round(elec, 3)}))
    write("counter_reset", records)


def three_day_gap() -> None:
    """Seven days, hourly; the heat pump is unreachable from day 2 00:00 to day 5 00:00."""
    records = []
    heat, elec = 500.0, 125.0
    for h in range(7 * 24 + 1):
        t = T0 + h * 3600
        if h:
            heat += 2.0  # 2 kW of heat, 0.5 kW of electricity, every hour, gap or not
            elec += 0.5
        if 48 < h < 120:
            continue  # no samples between 2026-01-03T00:00 and 2026-01-06T00:00
        records.append(Record(t, {**running({"hp.heat_power": 2000.0}),
                                  "hp.heat_energy": heat, "hp.electric_energy": elec}))
    write("three_day_gap", records)


def heat_meter_swap() -> None:
    """A day at 3 kW measured by a heat meter; at 12:00 the meter is replaced by a new one."""
    records = []
    meter, elec = 25_000.0, 40.0
    for i in range(145):  # 144 intervals
        if i:
            meter += 0.5
            elec += 0.125
        if i == 72:
            meter = 1234.0  # the new (refurbished) meter's own index: a swap, not a reset to 0
        records.append(Record(T0 + i * STEP, {**running(), "heatmeter.energy": round(meter, 3),
                                              "hp.electric_energy": round(elec, 3)}))
    write("heat_meter_swap", records)


def h3_immersion() -> None:
    """A day: 3 kW from the heat pump at 0.75 kW; an immersion heater of 2 kW runs 06:00-09:00,
    on its own counter, outside the heat pump's heat and electricity meters."""
    records = []
    heat, elec, backup = 100.0, 25.0, 10.0
    for i in range(145):
        if i:
            heat += 0.5
            elec += 0.125
            if 36 < i <= 54:  # intervals ending 06:10 .. 09:00: 18 x 10 minutes = 3 h
                backup += 2.0 / 6
        records.append(Record(T0 + i * STEP, {**running(), "hp.heat_energy": round(heat, 3),
                                              "hp.electric_energy": round(elec, 3),
                                              "hp.backup_heater_energy": round(backup, 4)}))
    write("h3_immersion", records)


if __name__ == "__main__":
    counter_reset()
    three_day_gap()
    heat_meter_swap()
    h3_immersion()
