"""What the metrics must know about the installation: the ``installation:`` section of the config.

Which counter measures what, which loads an electricity meter covers (the SEPEMO boundary it
reaches), how the boiler turns gas into heat, the reference boiler, prices, emission factors,
the advice the resident was given and the guarantee to check. Defaults are the Dutch references
named in the README's "Definitions".
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from drivers.vocabulary import VOCABULARY, Kind


def _counter(name: str) -> str:
    """A vocabulary counter (energy), named in the config."""
    quantity = VOCABULARY.get(name)
    if quantity is None:
        raise ValueError(f"{name!r} is not a quantity of the vocabulary")
    if quantity.kind is not Kind.COUNTER:
        raise ValueError(f"{name!r} is a {quantity.kind}, not a counter")
    return name


def _gauge(name: str) -> str:
    quantity = VOCABULARY.get(name)
    if quantity is None or quantity.kind is not Kind.GAUGE:
        raise ValueError(f"{name!r} is not a gauge of the vocabulary")
    return name


Counter = Annotated[str, AfterValidator(_counter)]
Gauge = Annotated[str, AfterValidator(_gauge)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0)]

# SEPEMO (SEasonal PErformance factor and MOnitoring, EU IEE project, 2012): what each boundary
# adds to the heat pump's electricity. H3 also adds the backup heater's heat.
Load = Literal["compressor", "source", "backup_heater", "circulation_pump"]
BOUNDARY_LOADS: dict[str, tuple[Load, ...]] = {
    "H1": ("compressor",),
    "H2": ("compressor", "source"),
    "H3": ("compressor", "source", "backup_heater"),
    "H4": ("compressor", "source", "backup_heater", "circulation_pump"),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HeatPumpMetering(_Model):
    heat: Counter = Field("hp.heat_energy", description="Counter of the heat pump's heat output: "
                      "hp.heat_energy (the unit's own) or heatmeter.energy (a heat meter).")
    heat_by_mode: dict[Literal["heating", "dhw", "cooling"], Counter] = Field(
        default_factory=dict, description="The device's own heat counters per mode (e.g. "
        "heating: hp.heat_energy_heating); without them the heat counter is split by the mode "
        "each sample reports.")
    electricity: Counter = Field("hp.electric_energy", description="Counter of its electricity: "
                             "hp.electric_energy (the unit's own) or submeter.import_energy.")
    electricity_covers: tuple[Load, ...] = Field(
        ("compressor", "source"), description="Loads the electricity counter includes: "
        "compressor, source (outdoor fan or brine pump), backup_heater, circulation_pump.")
    backup_heater: Counter | None = Field(
        None, description="Counter of backup/immersion heater electricity, if it has one.")
    backup_heater_in_heat: bool = Field(
        False, description="Whether the heat counter already includes the backup heater's heat "
        "(a heat meter downstream of it).")
    start_power: Positive = Field(100.0, description="Electrical input (W) above which the "
                                  "compressor counts as running, for the running COP.")
    compare_heat_with: Counter | None = Field(
        None, description="A second heat counter to cross-check (e.g. heatmeter.energy).")


class BoilerMetering(_Model):
    heat: Counter | None = Field(None, description="Counter of the boiler's heat (a heat meter); "
                             "without one, heat = gas x efficiency.")
    efficiency: Fraction = Field(0.90, description="Gas to heat, for boilers without a heat meter.")
    efficiency_basis: Literal["upper", "lower"] = Field(
        "upper", description="Calorific value the efficiency refers to.")
    modulation: Literal["of_max_input", "relative"] = Field(
        "relative", description="What the boiler's OpenTherm modulation means: percent of its "
        "maximum input, or percent between minimum and maximum (the OpenTherm definition).")
    min_power: Fraction = Field(0.25, description="Minimum input as a fraction of maximum.")


class Gas(_Model):
    upper_mj_m3: Positive = Field(35.17, description="Upper (gross) calorific value, MJ/m³(n); "
                                  "Dutch reference (Groningen quality).")
    lower_mj_m3: Positive = Field(31.65, description="Lower (net) calorific value, MJ/m³(n).")
    basis: Literal["upper", "lower"] = Field("upper", description="Which value converts m³ to "
                                             "kWh in reports.")

    def mj_m3(self, basis: Literal["upper", "lower"]) -> float:
        return self.upper_mj_m3 if basis == "upper" else self.lower_mj_m3


class Reference(_Model):
    efficiency: Fraction = Field(0.90, description="The replaced boiler's seasonal efficiency.")
    basis: Literal["upper", "lower"] = Field("upper", description="Its calorific basis.")


class Prices(_Model):
    gas_eur_m3: float = Field(1.45, ge=0, description="Gas price, EUR per m³, all-in.")
    electricity_eur_kwh: float = Field(0.30, ge=0, description="Electricity price, EUR/kWh.")


class Emissions(_Model):
    gas_kg_m3: float = Field(1.78, ge=0, description="kg CO2 per m³ natural gas (NL list).")
    electricity_kg_kwh: float = Field(0.27, ge=0, description="kg CO2 per kWh electricity.")


class Advice(_Model):
    """What the resident was promised, for a normal year."""

    scop: Positive | None = Field(None, description="Advised seasonal performance (SCOP).")
    heat_coverage: Fraction | None = Field(None, description="Advised heat coverage (space "
                                           "heating), 0..1.")
    annual_gas_m3: float | None = Field(None, ge=0, description="Advised gas use per year, m³.")
    reference_degree_days: Positive = Field(2900.0, description="Weighted degree days of the "
                                            "normal year the advice assumes.")


class Guarantee(_Model):
    heat_coverage_min: Fraction | None = Field(None, description="Guaranteed space heating "
                                               "coverage, e.g. 0.6.")
    gas_saving_min: Fraction | None = Field(None, description="Guaranteed gas saving against the "
                                            "baseline, e.g. 0.3.")
    baseline_gas_m3: tuple[Annotated[float, Field(gt=0)], ...] = Field(
        (), description="Gas use of the last years before the heat pump, m³ per year.")
    baseline_hot_water_m3: float = Field(0.0, ge=0, description="Of which hot water, m³/year.")
    min_days: int = Field(365, ge=1, description="Days of data before a verdict is given.")
    min_coverage: Fraction = Field(0.9, description="Share of the period with valid data "
                                   "needed for a verdict.")

    @model_validator(mode="after")
    def _baseline(self) -> Self:
        if self.gas_saving_min is not None and not self.baseline_gas_m3:
            raise ValueError("gas_saving_min needs baseline_gas_m3 (the last years' gas use)")
        return self


class LedgerRules(_Model):
    max_gap: Annotated[float, Field(gt=0)] = Field(
        900.0, description="Longest interval (s) whose energy is placed in time; longer gaps "
        "are counted in totals but never interpolated.")
    outdoor: Gauge = Field("hp.outdoor_temp", description="Outdoor temperature for degree days.")


class Installation(_Model):
    heat_pump: HeatPumpMetering = Field(default_factory=HeatPumpMetering)
    boiler: BoilerMetering | None = Field(
        default_factory=BoilerMetering, description="The gas boiler of a hybrid installation; "
        "null for an all-electric one (then all gas is other use, such as cooking).")
    gas: Gas = Field(default_factory=Gas)
    reference: Reference = Field(default_factory=Reference)
    prices: Prices = Field(default_factory=Prices)
    emissions: Emissions = Field(default_factory=Emissions)
    advice: Advice = Field(default_factory=Advice)
    guarantee: Guarantee = Field(default_factory=Guarantee)
    ledger: LedgerRules = Field(default_factory=LedgerRules)

    @property
    def boundary(self) -> str:
        """The SEPEMO boundary the electricity metering reaches."""
        covers = set(self.heat_pump.electricity_covers)
        if self.heat_pump.backup_heater is not None:
            covers.add("backup_heater")
        reached = "H1"
        for name, loads in BOUNDARY_LOADS.items():
            if set(loads) <= covers:
                reached = name
        return reached
