"""Writes the recordings of the golden diagnosis cases (run once; the outputs are committed).

Each case is simple enough to compute by hand: README.md shows every calculation, and
expected.json in each folder holds the findings the diagnosis must give. A recording line
carries the state at its time; counters add what that state delivers until the next line (the
ledger labels an interval with the line that starts it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from drivers.reading import Value
from drivers.recording import Record, record_line

T0 = 1_767_567_600.0  # 2026-01-04T23:00:00Z: local (CET) midnight of 5 January
HOUR = 3600.0

State = dict[str, Value]
Rates = dict[str, float]  # counter -> W (kWh counters) or m³/h (gas.volume)


def write(name: str, step: float, hours: float, at: Callable[[int, float], tuple[State, Rates]],
          skip: Callable[[float], bool] = lambda h: False) -> None:
    """Lines every ``step`` seconds for ``hours``; ``at(i, h)`` gives line i's state and the
    rates its interval delivers (h: hours since T0). ``skip(h)``: no line (the counters go on)."""
    counters: dict[str, float] = {}
    lines = []
    for i in range(round(hours * HOUR / step) + 1):
        t = T0 + i * step
        h = (t - T0) / HOUR
        state, rates = at(i, h)
        for counter in rates:
            counters.setdefault(counter, 100.0)
        if not skip(h):
            values = {**state, **{k: round(v, 6) for k, v in counters.items()}}
            lines.append(record_line(Record(t, values)))
        for counter, rate in rates.items():
            per_hour = rate if counter == "gas.volume" else rate / 1000.0
            counters[counter] += per_hour * step / HOUR
    folder = Path(__file__).parent / name
    folder.mkdir(exist_ok=True)
    (folder / "recording.jsonl").write_bytes(b"".join(lines))


def wobble(i: int, centre: float, by: float = 0.1) -> float:
    """A reading that alternates around its centre line by line (a live sensor's last digit)."""
    return round(centre + (by if i % 2 else -by), 3)


def heating(power: float, heat: float, **extra: Value) -> tuple[State, Rates]:
    return ({"hp.mode": "heating", "hp.electric_power": power, **extra},
            {"hp.heat_energy": heat, "hp.electric_energy": power})


def off(**extra: Value) -> tuple[State, Rates]:
    return ({"hp.mode": "off", "hp.electric_power": 10.0, **extra},
            {"hp.heat_energy": 0.0, "hp.electric_energy": 10.0})


def short_cycling() -> None:
    """A day of 4 minutes on, 4 off: 7.5 starts an hour at 3 kW."""

    def at(i: int, h: float) -> tuple[State, Rates]:
        outdoor = {"hp.outdoor_temp": 4.8 if int(h) % 2 else 5.2}
        return heating(1000.0, 3000.0, **outdoor) if i % 8 >= 4 else off(**outdoor)

    write("short_cycling", 60.0, 24, at)


def _steep(room: bool) -> Callable[[int, float], tuple[State, Rates]]:
    def at(i: int, h: float) -> tuple[State, Rates]:
        extra: State = {"hp.outdoor_temp": 4.8 if int(h) % 2 else 5.2}
        if room:
            extra["room.temp"] = 20.0
        if h % 1 < 0.5:
            return heating(1000.0, 4000.0, **{"hp.supply_temp": 45.0, "hp.return_temp": 40.0},
                           **extra)
        return off(**{"hp.supply_temp": 25.0, "hp.return_temp": 25.0}, **extra)

    return at


def heating_curve() -> None:
    """Half of every hour at 45/40 °C and 4 kW, the other half off, at 5 °C, room 20 °C."""
    write("heating_curve", 300.0, 24, _steep(room=True))


def heating_curve_no_room() -> None:
    """The same without a room temperature."""
    write("heating_curve_no_room", 300.0, 24, _steep(room=False))


def heating_curve_emitters() -> None:
    """Running all day: 12 h at 5 °C (3.2 kW, 46/42 °C), 12 h at 9 °C (2.4 kW, 39.5/36.5 °C)."""

    def at(i: int, h: float) -> tuple[State, Rates]:
        cold = h < 12
        supply, ret = (46.0, 42.0) if cold else (39.5, 36.5)
        return heating(800.0, 3200.0 if cold else 2400.0, **{
            "hp.outdoor_temp": 5.0 if cold else 9.0, "room.temp": 20.0,
            "hp.supply_temp": wobble(i, supply), "hp.return_temp": wobble(i, ret)})

    write("heating_curve_emitters", 300.0, 24, at)


def delta_t() -> None:
    """Running all day at 2 kW with a spread of 1 K."""

    def at(i: int, h: float) -> tuple[State, Rates]:
        return heating(500.0, 2000.0, **{
            "hp.outdoor_temp": 6.8 if int(h) % 2 else 7.2, "room.temp": 20.0,
            "hp.supply_temp": wobble(i, 35.0), "hp.return_temp": wobble(i, 34.0)})

    write("delta_t", 300.0, 24, at)


def cop() -> None:
    """Nine days, heating 09:00-15:00 local at 4 kW: COP 4 for seven days, then 3 for two."""

    def at(i: int, h: float) -> tuple[State, Rates]:
        day, hour = int(h // 24), h % 24
        extra: State = {"hp.outdoor_temp": wobble(i, 5.0, 0.2), "room.temp": 20.0}
        if 9 <= hour < 15:
            power = 1000.0 if day < 7 else 4000.0 / 3.0
            return heating(power, 4000.0, **{"hp.supply_temp": wobble(i, 35.0),
                                              "hp.return_temp": wobble(i, 31.0)}, **extra)
        return off(**{"hp.supply_temp": 22.0, "hp.return_temp": 22.0}, **extra)

    write("cop", 600.0, 9 * 24, at)


def boiler_above_bivalent() -> None:
    """At 3 °C: 12 h of boiler (0.4 m³/h) with the heat pump idle, then 12 h of heat pump."""

    def at(i: int, h: float) -> tuple[State, Rates]:
        outdoor = {"hp.outdoor_temp": wobble(i, 3.0, 0.2)}
        burning = h < 12
        boiler: State = {"boiler.flame": burning, "boiler.ch_active": burning,
                         "boiler.dhw_active": False, "boiler.modulation": 50.0 if burning else 0.0}
        state, rates = off(**outdoor, **boiler) if burning else \
            heating(750.0, 3000.0, **outdoor, **boiler)
        return state, {**rates, "gas.volume": 0.4 if burning else 0.0}

    write("boiler_above_bivalent", 600.0, 24, at)


def backup_heater() -> None:
    """A day at 8 °C and 2 kW; a 1 kW backup heater from 6 to 12 h."""

    def at(i: int, h: float) -> tuple[State, Rates]:
        state, rates = heating(500.0, 2000.0, **{"hp.outdoor_temp": wobble(i, 8.0, 0.2)})
        return state, {**rates, "hp.backup_heater_energy": 1000.0 if 6 <= h < 12 else 0.0}

    write("backup_heater", 600.0, 24, at)


def hot_water_share() -> None:
    """10 h of space heating (1 kW, COP 4), then 5 h of hot water (2 kW, COP 2.5), then off."""

    def at(i: int, h: float) -> tuple[State, Rates]:
        outdoor = {"hp.outdoor_temp": wobble(i, 8.0, 0.2)}
        if h < 10:
            return heating(250.0, 1000.0, **outdoor)
        if h < 15:
            return ({"hp.mode": "dhw", "hp.electric_power": 800.0, **outdoor},
                    {"hp.heat_energy": 2000.0, "hp.electric_energy": 800.0})
        return off(**outdoor)

    write("hot_water_share", 600.0, 24, at)


def legionella() -> None:
    """A week of space heating (2 kW); the tank reheated every day 04:00-05:00 UTC (1 kW) and
    taken to 62 °C 12:00-13:00 UTC on days 1, 3 and 5 (2 kW)."""

    def at(i: int, h: float) -> tuple[State, Rates]:
        day, hour = int(h // 24), (h + 23) % 24  # T0 is 23:00 UTC
        outdoor = {"hp.outdoor_temp": wobble(i, 6.0, 0.2)}
        if 12 <= hour < 13 and day in (1, 3, 5):
            return ({"hp.mode": "dhw", "hp.electric_power": 1000.0, "hp.dhw_temp": 62.0,
                     **outdoor}, {"hp.heat_energy": 2000.0, "hp.electric_energy": 1000.0})
        tank = {"hp.dhw_temp": wobble(i, 48.0)}
        if 4 <= hour < 5:
            return ({"hp.mode": "dhw", "hp.electric_power": 400.0, **tank, **outdoor},
                    {"hp.heat_energy": 1000.0, "hp.electric_energy": 400.0})
        return heating(500.0, 2000.0, **tank, **outdoor)

    write("legionella", 900.0, 7 * 24, at)


def defrost() -> None:
    """A day at 1 °C defrosting the last 10 minutes of every hour, then 12 h at 10 °C with four
    defrosts of 10 minutes."""

    def at(i: int, h: float) -> tuple[State, Rates]:
        warm = h >= 24
        outdoor = {"hp.outdoor_temp": wobble(i, 10.0 if warm else 1.0, 0.2)}
        defrosting = h % 1 >= 50 / 60 - 1e-9 and (not warm or int(h) in (24, 27, 30, 33))
        if defrosting:
            return ({"hp.mode": "defrost", "hp.electric_power": 1500.0,
                     "hp.heat_power": -2000.0, **outdoor},
                    {"hp.heat_energy": 0.0, "hp.electric_energy": 1500.0})
        return heating(1000.0, 3000.0, **{"hp.heat_power": 3000.0}, **outdoor)

    write("defrost", 600.0, 36, at)


def heat_meter_air() -> None:
    """Six hours at 3 kW; the heat meter sees no flow 1:00-1:30, 3:00-3:30 and 5:00-5:30."""

    def at(i: int, h: float) -> tuple[State, Rates]:
        dry = int(h) in (1, 3, 5) and h % 1 < 0.5
        state, rates = heating(750.0, 3000.0, **{"hp.outdoor_temp": wobble(i, 5.0, 0.2)})
        state |= {"heatmeter.flow": 0.0 if dry else 8.6,
                  "heatmeter.power": 0.0 if dry else 3000.0,
                  "heatmeter.supply_temp": wobble(i, 40.0),
                  "heatmeter.return_temp": wobble(i, 35.0)}
        return state, {**rates, "heatmeter.energy": 0.0 if dry else 3000.0}

    write("heat_meter_air", 60.0, 6, at)


def supply_below_return() -> None:
    """Three hours of heating at 40/35 °C; for 45 minutes from 1:00 the supply reads 33 °C."""

    def at(i: int, h: float) -> tuple[State, Rates]:
        swapped = 1.0 <= h < 1.75
        return heating(750.0, 3000.0, **{"hp.outdoor_temp": 5.0,
                                          "hp.supply_temp": 33.0 if swapped else 40.0,
                                          "hp.return_temp": 35.0})

    write("supply_below_return", 60.0, 3, at)


def frozen_sensors() -> None:
    """Two days of heating; the outdoor reading stays 4.0 °C from 6 to 36 h, the return
    31.3 °C from 10 to 20 h."""

    def at(i: int, h: float) -> tuple[State, Rates]:
        return heating(800.0, 3000.0, **{
            "hp.outdoor_temp": 4.0 if 6 <= h < 36 else wobble(i, 5.0, 0.2),
            "hp.supply_temp": wobble(i, 38.0),
            "hp.return_temp": 31.3 if 10 <= h < 20 else wobble(i, 33.0)})

    write("frozen_sensors", 600.0, 48, at)


def sensor_spikes() -> None:
    """Three hours of heating at 40/35 °C; single supply readings of 85 °C at 0:30, 1:30, 2:30."""

    def at(i: int, h: float) -> tuple[State, Rates]:
        return heating(750.0, 3000.0, **{"hp.outdoor_temp": 5.0, "hp.return_temp": 35.0,
                                          "hp.supply_temp": 85.0 if i in (30, 90, 150) else 40.0})

    write("sensor_spikes", 60.0, 3, at)


def data_gaps() -> None:
    """Ten days of heating at 2 kW; nothing read from 48 h to 96 h."""

    def at(i: int, h: float) -> tuple[State, Rates]:
        return heating(500.0, 2000.0, **{"hp.outdoor_temp": wobble(i, 5.0, 0.2)})

    write("data_gaps", 600.0, 240, at, skip=lambda h: 48 < h < 96)


if __name__ == "__main__":
    short_cycling()
    heating_curve()
    heating_curve_no_room()
    heating_curve_emitters()
    delta_t()
    cop()
    boiler_above_bivalent()
    backup_heater()
    hot_water_share()
    legionella()
    defrost()
    heat_meter_air()
    supply_below_return()
    frozen_sensors()
    sensor_spikes()
    data_gaps()
