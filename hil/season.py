"""The bench season: a hybrid installation through a Dutch heating season, as a recording.

:func:`run_season` advances a :class:`hil.hybrid.HybridInstallation` (air-to-water heat pump,
gas combi boiler, household) under the seeded De Bilt outdoor course (:mod:`hil.weather`) and
writes one recording line (:mod:`drivers.recording`) per step with what the devices would report
at that moment. Next to the recording it writes ``<recording>.truth.json``: the installation's
exact ground truth, against which the agent's ledger and metrics computed from the recording
are judged. It reads no clock: the same arguments give the same bytes.

Each line carries, in vocabulary names and units:

* the heat pump (Modbus): ``hp.*`` as :meth:`hil.heatpump_model.HeatPumpModel.snapshot` shows
  them -- energy counters count positive heat only, as a real unit's registers do, and book a
  defrost's electricity on the mode it interrupted; ``hp.heat_power`` is signed (negative while
  ``hp.mode`` is ``defrost``); ``room.temp`` is the house's;
* the boiler (OpenTherm): ``boiler.*`` as :meth:`hil.boiler_model.BoilerModel.snapshot` shows
  them; ``boiler.modulation`` is the burner input in % of its maximum input, whole percent;
  the changes of ``boiler.flame``, ``boiler.ch_active``, ``boiler.dhw_active`` and
  ``boiler.modulation`` since the previous line are in ``e`` with their exact times (each in
  ``[previous line's t, this line's t)``);
* the smart meter (P1, DSMR 5): ``grid.import_energy`` (kWh, Wh resolution: household +
  heat pump + the boiler's electrics), ``grid.power`` (W), and ``gas.volume`` (m³, litre
  resolution) as the gas meter captured it on the last 5-minute boundary, with that capture
  time in ``at`` -- the same capture repeats in every line until the next one.

Figures of the ground truth (the same definitions as :mod:`hil.hybrid`):

* SPF (bench) = (heat pump heat for heating + dhw + defrost, the defrost heat being negative)
  / (heat pump electricity of all modes and standby), over the span.
* Heat coverage, space heating = heat pump heat for space heating (heating + defrost) / (that +
  boiler heat for space heating); hot water = heat pump DHW heat / (that + boiler DHW heat).
* Gas CH/DHW split: gas burned while the boiler's ``dhw_active`` flag is set is hot water; all
  other gas is space heating. Boiler heat = gas x upper calorific value x efficiency.

To reproduce these from the recording a metrics configuration needs the ``params`` of the truth:
heat pump heat = Δ``hp.heat_energy`` + ∫``hp.heat_power`` while ``hp.mode`` is ``defrost``;
boiler heat = gas x ``calorific_value_kwh_m3`` x ``efficiency`` (both on the upper calorific
value); and since ``boiler.modulation`` is % of maximum input, the burner's load is modulation/100
itself (a ledger burner with ``min_power`` 0), not OpenTherm's minimum-to-maximum position.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final, TextIO

import orjson

from drivers.reading import Value
from drivers.recording import Record, record_line
from drivers.timestamps import rfc3339
from drivers.vocabulary import VOCABULARY, Kind
from hil import p1_meter
from hil.boiler_model import CALORIFIC_VALUE_MJ_M3
from hil.faults import FAULTS, describe, plant
from hil.hybrid import MODULATION_STEP, HybridConfig, HybridInstallation, HybridTruth
from hil.weather import OutdoorCourse

DEFAULT_START: Final = "2025-10-01"  # first day of the season
DEFAULT_END: Final = "2026-05-01"  # first day after it: the season is October to April
GAS_CAPTURE_S: Final = float(p1_meter.GAS_CAPTURE_S["5"])  # DSMR 5: every 5 minutes
GAS_START_M3: Final = 1500.0  # the meters' indices when the season starts
GRID_START_KWH: Final = 3580.245
MAX_STEP_S: Final = 900.0  # a longer step would leave gaps the ledger does not bridge
_WEEK_S = 7 * 86_400.0


@dataclass(frozen=True, slots=True)
class SeasonTruth:
    """The ground truth of one :func:`run_season`, and where its recording is."""

    recording: Path
    start: datetime
    end: datetime
    step: float
    seed: int
    lines: int
    events: int
    counters: dict[str, float]  # last minus first value of every counter in the recording
    truth: HybridTruth
    config: HybridConfig
    faults: tuple[str, ...] = ()  # planted (hil.faults), already applied to config
    heat_meter: dict[str, float] | None = None  # the meter's own truth: blind time, heat missed

    @property
    def path(self) -> Path:
        """Where :meth:`to_json` is written: ``<recording>.truth.json``."""
        return truth_path(self.recording)

    def to_json(self) -> dict[str, Any]:
        """The truth file's content (NaN, where a figure has no denominator, becomes null)."""
        tr, cfg = self.truth, self.config
        boiler, hp, house = cfg.boiler, cfg.heatpump, cfg.house
        return {
            "recording": self.recording.name,
            "start": rfc3339(self.start.timestamp()),
            "end": rfc3339(self.end.timestamp()),
            "step_s": self.step,
            "seed": self.seed,
            "faults": describe(self.faults),
            "lines": self.lines,
            "events": self.events,
            "heat_kwh": tr.heat_kwh,
            "heat_kwh_by_mode": tr.heat_kwh_by_mode,
            "electricity_kwh": tr.electricity_kwh,
            "electricity_kwh_by_mode": tr.electricity_kwh_by_mode,
            "spf": tr.spf,
            "boiler_heat_kwh": tr.boiler_heat_kwh,
            "gas_m3": tr.gas_m3,
            "heat_coverage": tr.heat_coverage,
            "household_kwh": tr.household_kwh,
            "boiler_electricity_kwh": tr.boiler_electricity_kwh,
            "grid_import_kwh": tr.grid_import_kwh,
            "daily_mean_outdoor": {d.isoformat(): t for d, t in tr.daily_mean_outdoor.items()},
            "mode_seconds": {m: s for m, s in tr.heatpump.mode_seconds.items() if m != "cooling"},
            "compressor_starts": tr.heatpump.compressor_starts,
            "backup_heater_kwh": tr.heatpump.backup_kwh,
            "heat_meter": self.heat_meter,
            "burner_starts": {"total": tr.boiler.burner_starts,
                              "dhw": tr.boiler.dhw_burner_starts},
            "counters": self.counters,
            "params": {
                "boiler": {
                    "max_input_w": boiler.max_input_w,
                    "efficiency": boiler.efficiency,
                    "efficiency_basis": "upper calorific value (Hs)",
                    "calorific_value_mj_m3": CALORIFIC_VALUE_MJ_M3,
                    "calorific_value_kwh_m3": CALORIFIC_VALUE_MJ_M3 / 3.6,
                    "modulation": "percent of maximum input",
                    "modulation_step_pct": MODULATION_STEP,
                    "min_modulation_pct": boiler.min_modulation,
                    "ledger_burner_min_power": 0.0,
                    "standby_w": cfg.boiler_standby_w,
                    "burner_electric_w": cfg.boiler_burner_w,
                },
                "hybrid": {
                    "bivalent_temp": cfg.bivalent_temp,
                    "bivalent_hysteresis_k": cfg.bivalent_hysteresis_k,
                    "dhw": cfg.dhw,
                    "tank_draw_hours_utc": list(cfg.tank_draw_hours),
                },
                "heat_pump": {
                    "nominal_heat_w": hp.nominal_heat_w,
                    "heating_curve": [list(hp.curve_mild), list(hp.curve_cold)],
                    "design_flow_lpm": hp.design_flow_lpm,
                    "min_run_s": hp.min_run_s,
                    "min_off_s": hp.min_off_s,
                    "backup_heater_w": hp.backup_heater_w,
                    "backup_release_temp": hp.backup_release_temp,
                    "min_modulation": hp.min_modulation,
                    "standby_w": hp.standby_w,
                    "defrost_band": list(hp.defrost_band),
                    "defrost_heat_w": hp.defrost_heat_w,
                    "defrost_duration_s": hp.defrost_duration_s,
                    "heat_counters": "positive heat only; defrost heat is hp.heat_power "
                                     "while hp.mode is defrost",
                    "electricity_counters": "all modes and standby; a defrost is booked on "
                                            "the mode it interrupted",
                },
                "house": {
                    "heat_loss_w_per_k": house.heat_loss_w_per_k,
                    "setpoint": house.setpoint,
                    "gains_w": house.gains_w,
                    "radiators_w_at_50k": None if house.emitters is None
                    else house.emitters.nominal_w,
                },
                "meters": {
                    "gas_capture_s": GAS_CAPTURE_S,
                    "gas_resolution_m3": 0.001,
                    "grid_resolution_kwh": 0.001,
                    "gas_start_m3": GAS_START_M3,
                    "grid_start_kwh": GRID_START_KWH,
                },
            },
        }


def truth_path(recording: Path) -> Path:
    return recording.with_name(recording.name + ".truth.json")


def run_season(out: Path, *, start: datetime, end: datetime, step: float = 10.0, seed: int = 1,
               config: HybridConfig | None = None, faults: Sequence[str] = (),
               progress: Callable[[HybridInstallation, int], None] | None = None) -> SeasonTruth:
    """Simulate [start, end) and write the recording to ``out`` and its truth next to it.

    One line at ``start`` and one after every ``step`` seconds (the last step may be shorter,
    to end at ``end``). ``faults`` (names of :data:`hil.faults.FAULTS`) are planted in
    ``config``. ``progress`` is called after every simulated week with the installation and
    the number of lines written so far.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if not end > start:
        raise ValueError(f"the season must end after it starts ({start} .. {end})")
    if not 0.0 < step <= MAX_STEP_S:
        raise ValueError(f"step must be more than 0 and at most {MAX_STEP_S:g} s, not {step!r}")
    config = plant(config or HybridConfig(), faults)
    t0, t_end = start.timestamp(), end.timestamp()
    inst = HybridInstallation(config, outdoor=OutdoorCourse(seed=seed), start=start, seed=seed)
    gas_at = math.floor(t0 / GAS_CAPTURE_S) * GAS_CAPTURE_S
    gas = _gas_index(inst)
    steps = math.ceil((t_end - t0) / step - 1e-9)
    next_week = t0 + _WEEK_S
    lines = events = 0
    first: dict[str, Value] = {}
    q: dict[str, Value] = {}
    with out.open("wb", buffering=1 << 20) as f:
        for k in range(steps + 1):
            t = t0 if k == 0 else min(t0 + k * step, t_end)
            if k:
                t_prev = inst.t
                capture = math.floor(t_prev / GAS_CAPTURE_S) * GAS_CAPTURE_S + GAS_CAPTURE_S
                while capture < t:  # a capture inside the step: the index at that instant
                    inst.step(capture - t_prev)
                    gas_at, gas, t_prev = capture, _gas_index(inst), capture
                    capture += GAS_CAPTURE_S
                inst.step(t - t_prev)
                if t % GAS_CAPTURE_S == 0.0:
                    gas_at, gas = t, _gas_index(inst)
            q = as_shown(inst.snapshot())
            q["grid.import_energy"] = math.floor(
                (GRID_START_KWH + inst.grid_import_kwh) * 1000.0) / 1000.0
            q["grid.power"] = float(round(inst.grid_power_w))
            q["gas.volume"] = gas
            e = inst.take_events()
            events += len(e)
            f.write(record_line(Record(t, q, at={"gas.volume": gas_at}, e=tuple(e))))
            lines += 1
            if k == 0:
                first = dict(q)
            if progress is not None and t >= next_week:
                progress(inst, lines)
                next_week += _WEEK_S
    counters = {name: float(q[name]) - float(first[name]) for name in q
                if VOCABULARY[name].kind is Kind.COUNTER}
    meter = inst.heat_meter
    result = SeasonTruth(out, start.astimezone(UTC), end.astimezone(UTC), step, seed, lines,
                         events, counters, inst.truth, config, tuple(faults),
                         None if meter is None else {"air_seconds": meter.air_seconds,
                                                     "missed_kwh": meter.missed_kwh})
    result.path.write_bytes(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
    return result


# Decimals the devices show, by unit (what their registers and frames resolve)
_DECIMALS: Final = {"°C": 1, "W": 0, "kWh": 3, "l/min": 1, "Hz": 1, "%": 1, "bar": 2, "m³": 3,
                    "V": 1, "A": 2}


def heatpump_course(start: float, step: float, n: int) -> Iterator[tuple[float, dict[str, Value]]]:
    """``n`` readings of the bench heat pump alone, ``step`` seconds apart from Unix time
    ``start``, as its registers show them: (time, values) for a backlog or a benchmark."""
    from hil.heatpump_server import default_model

    model = default_model(datetime.fromtimestamp(start, UTC))
    for i in range(n):
        model.step(step)
        yield start + (i + 1) * step, as_shown(dict(model.snapshot()))


def as_shown(values: dict[str, Value]) -> dict[str, Value]:
    """The model's values at the resolution the devices report them (a real recording's size)."""
    out: dict[str, Value] = {}
    for name, value in values.items():
        digits = _DECIMALS.get(VOCABULARY[name].unit)
        out[name] = round(value, digits) if digits is not None and isinstance(value, float) \
            else value
    return out


def _gas_index(inst: HybridInstallation) -> float:
    """The gas meter's index as it shows it: whole litres."""
    return math.floor((GAS_START_M3 + inst.boiler.gas_m3) * 1000.0) / 1000.0


# -- command line ----------------------------------------------------------------------------------


def parse_when(text: str) -> datetime:
    """``YYYY-MM-DD`` (midnight UTC) or an ISO 8601 / RFC 3339 time (UTC if it has no offset)."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or a time (RFC 3339)") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def main(out: Path, start: str = DEFAULT_START, end: str = DEFAULT_END, step: float = 10.0,
         seed: int = 1, faults: Sequence[str] = (), *, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """``hpagent hil season``: run a season into ``out``; print weekly progress and a summary.

    ``end`` is exclusive (the season ``2025-10-01`` .. ``2026-05-01`` is October to April).
    ``faults`` are names of :data:`hil.faults.FAULTS`, each maybe a comma-separated list.
    Returns the exit status: 0, or 2 for bad arguments, 1 when the files cannot be written.
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        t0, t1 = parse_when(start), parse_when(end)
        if not t1 > t0:
            raise ValueError(f"--to {end} is not after --from {start}")
        if not 0.0 < step <= MAX_STEP_S:
            raise ValueError(f"--step must be more than 0 and at most {MAX_STEP_S:g} s")
        planted = fault_names(faults)
    except ValueError as exc:
        print(f"hil season: {exc}", file=stderr)
        return 2

    def weekly(inst: HybridInstallation, lines: int) -> None:
        tr = inst.truth
        print(f"{inst.now:%Y-%m-%d}  {lines:>9} lines  heat pump {tr.heat_kwh:8.1f} kWh heat, "
              f"SPF {tr.spf:4.2f}  gas {tr.gas_m3['total']:7.2f} m³", file=stdout, flush=True)

    print(f"hil season: {t0:%Y-%m-%d %H:%M} .. {t1:%Y-%m-%d %H:%M} UTC, step {step:g} s, "
          f"seed {seed}{', faults ' + ', '.join(planted) if planted else ''} -> {out}",
          file=stdout, flush=True)
    try:
        result = run_season(out, start=t0, end=t1, step=step, seed=seed, faults=planted,
                            progress=weekly)
    except OSError as exc:
        print(f"hil season: cannot write {exc.filename or out}: {exc.strerror or exc}",
              file=stderr)
        return 1
    print(summary(result), file=stdout)
    return 0


def fault_names(given: Sequence[str]) -> tuple[str, ...]:
    """``--fault`` values (repeated, or comma-separated) as known fault names, each once."""
    names: list[str] = []
    for item in given:
        for name in (n.strip() for n in item.split(",")):
            if name and name not in FAULTS:
                raise ValueError(f"--fault {name!r} is not a fault of the bench; choose from "
                                 f"{', '.join(FAULTS)}")
            if name and name not in names:
                names.append(name)
    return tuple(names)


def summary(result: SeasonTruth) -> str:
    """The headline figures of a season's truth, for people."""
    tr = result.truth
    heat, el = tr.heat_kwh_by_mode, tr.electricity_kwh
    gas, coverage = tr.gas_m3, tr.heat_coverage

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f} %"

    return "\n".join([
        f"recording      {result.recording} ({result.lines} lines, {result.events} events)",
        f"truth          {result.path}",
        f"heat pump      heat {tr.heat_kwh:.1f} kWh (heating {heat['heating']:.1f}, "
        f"dhw {heat['dhw']:.1f}, defrost {heat['defrost']:.1f}), electricity {el:.1f} kWh",
        f"SPF            {tr.spf:.3f}",
        f"heat coverage  space heating {pct(coverage['space_heating'])}, "
        f"hot water {pct(coverage['hot_water'])}",
        f"boiler         gas {gas['total']:.2f} m³ (CH {gas['ch']:.2f}, DHW {gas['dhw']:.2f}), "
        f"heat CH {tr.boiler_heat_kwh['ch']:.1f} kWh, DHW {tr.boiler_heat_kwh['dhw']:.1f} kWh",
        f"electricity    household {tr.household_kwh:.1f} kWh, grid import "
        f"{tr.grid_import_kwh:.1f} kWh",
        f"outdoor        {len(tr.daily_mean_outdoor)} days, mean "
        f"{_mean(list(tr.daily_mean_outdoor.values())):.2f} °C",
        *(f"fault planted  {f['name']}: {f['what']}" for f in describe(result.faults)),
    ])


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan
