"""The ``diagnosis:`` section of the config: the installation's design and every rule's threshold.

Each default says where it comes from (a standard, a manufacturer's manual, a field study, or
the physics of the bench it was checked on); an installer overrides the design figures from the
advice and leaves the thresholds alone unless a manufacturer says otherwise.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

Positive = Annotated[float, Field(gt=0.0)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Design(_Model):
    """What the installation was designed for: the advice, the heat loss calculation."""

    outdoor_temp: float = Field(-10.0, description="Design outdoor temperature, °C (NEN-EN "
                                "12831 with ISSO 51: -10 °C for the Netherlands).")
    supply_temp: float = Field(50.0, description="Supply temperature the emitters need at the "
                               "design outdoor temperature, °C (the advice; 50 °C is the Dutch "
                               "'low temperature ready' design).")
    mild_outdoor_temp: float = Field(10.0, description="Outdoor temperature of the heating "
                                     "curve's second point, °C.")
    mild_supply_temp: float = Field(32.0, description="Supply temperature the same emitters need "
                                    "there, °C (radiator exponent 1.3, EN 442-2, and 5 K spread "
                                    "give 32 °C at +10 °C for a 50 °C design).")
    room_temp: float = Field(20.0, description="Room temperature the design keeps, °C (ISSO 51: "
                             "20 °C in living rooms): the emitters' need is for this room.")
    emitter_exponent: float = Field(1.3, ge=1.0, le=2.0, description="How the emitters' output "
                                    "grows with their excess temperature (EN 442-2: 1.3 for "
                                    "panel radiators; about 1.1 for floor heating).")
    bivalent_temp: float | None = Field(None, description="Outdoor temperature below which the "
                                        "boiler (or backup heater) may take over space heating, "
                                        "°C (EN 14825 Tbiv, from the advice); without it the "
                                        "boiler rule does not run.")
    heat_pump_output_w: Positive | None = Field(
        None, description="The heat pump's rated heat output, W (EN 14511 A7/W35, from its data "
        "sheet); the ΔT rule needs it to judge the flow.")

    @model_validator(mode="after")
    def _curve(self) -> Self:
        if not self.mild_outdoor_temp > self.outdoor_temp:
            raise ValueError("mild_outdoor_temp must be above outdoor_temp")
        return self

    def curve(self, outdoor: float) -> float:
        """The design heating curve: straight through both points, flat beyond them."""
        lo, hi = self.outdoor_temp, self.mild_outdoor_temp
        x = min(max(outdoor, lo), hi)
        return self.supply_temp + (self.mild_supply_temp - self.supply_temp) * (x - lo) / (hi - lo)


class Cycling(_Model):
    warning_starts_per_hour: Positive = Field(
        3.0, description="Mean compressor starts per active hour over a day above which it short-"
        "cycles: controllers commonly enforce 10 min minimum run and off times, at most 3 starts "
        "an hour (the bench's unit does).")
    fault_starts_per_hour: Positive = Field(6.0, description="... and above which it is a fault "
                                            "(cycles of 10 minutes and less).")
    min_active_hours: Positive = Field(6.0, description="Hours with compressor activity a day "
                                       "needs to be judged.")


class Curve(_Model):
    margin_k: Positive = Field(3.0, description="Supply temperature above what the emitters need "
                               "(or above the design curve) that is reported, K: 3 K cost about "
                               "5-7 % of COP at common lifts (Carnot), more than sensors and a "
                               "straight curve err.")
    fault_margin_k: Positive = Field(8.0, description="... and that is a fault, K.")
    bin_k: Positive = Field(2.0, description="Width of the outdoor temperature bins, K.")
    min_hours: Positive = Field(12.0, description="Hours of heating a bin needs to be judged.")
    heat_pump_alone: Share = Field(0.05, description="Largest share of boiler heat in an hour "
                                   "used to fit the emitters (the heat pump's temperatures then "
                                   "describe all the heat).")


class DeltaT(_Model):
    low_k: Positive = Field(3.0, description="ΔT at the rated output below which the flow is too "
                            "high, K: rated at 5 K (EN 14511 W30/35; manuals ask 5 K, e.g. "
                            "Ferroli Omnia), and 3 K is 1.7 times the flow.")
    high_k: Positive = Field(8.0, description="ΔT at the rated output above which the flow is too "
                             "low, K (manuals allow 8 K only above 50 °C supply).")
    min_hours: Positive = Field(12.0, description="Hours of heating needed.")


class Bivalent(_Model):
    margin_k: float = Field(1.0, ge=0.0, description="Hours count from the bivalent point plus "
                            "this (the controller's hysteresis), K.")
    heat_pump_idle: Share = Field(0.5, description="An hour's heat pump run time below which the "
                                  "boiler's heat counts as taken over (not topping up).")
    warning_share: Share = Field(0.05, description="Share of the space heat above the bivalent "
                                 "point made by the boiler while the heat pump was idle, for a "
                                 "warning (the Dutch hybrid demonstration project, RVO 2024: "
                                 "1 in 5 systems needed adjusting).")
    fault_share: Share = Field(0.25, description="... for a fault.")


class Backup(_Model):
    mild_above: float = Field(2.0, description="Outdoor temperature above which a sized heat "
                              "pump needs no backup heater for space heating, °C.")
    mild_warning_share: Share = Field(0.02, description="Share of the space heat above that "
                                      "temperature made by the backup heater, for a warning.")
    warning_share: Share = Field(0.05, description="Share of all heat from the backup heater, "
                                 "for a warning (each kWh of it has a COP of 1: H3 SPF, SEPEMO).")


class HotWater(_Model):
    info_share: Share = Field(0.35, description="Share of the heat pump's heat for hot water "
                              "reported as information.")
    legionella_temp: float = Field(60.0, description="Tank temperature of an anti-legionella "
                                   "cycle, °C (thermal disinfection at 60 °C, NEN 1006).")
    legionella_per_week: Positive = Field(1.0, description="Anti-legionella cycles per week "
                                          "above which they are too frequent: weekly "
                                          "disinfection suffices in a dwelling.")


class Defrost(_Model):
    icing_max_temp: float = Field(7.0, description="Outdoor temperature above which the "
                                  "evaporator does not ice, °C (frost forms around and below "
                                  "0 °C; Keene et al. found defrosts without need).")
    outside_minutes: Positive = Field(30.0, description="Minutes of defrost above that "
                                      "temperature that are reported.")
    max_share: Share = Field(0.15, description="Share of the heat pump's electricity spent "
                             "defrosting in an outdoor bin, for a warning (the bench's healthy "
                             "unit spends about 9 % in the icing band).")
    min_hours: Positive = Field(24.0, description="Running hours a bin needs to be judged.")
    bin_k: Positive = Field(2.0, description="Width of the outdoor temperature bins, K.")


class Cop(_Model):
    condenser_offset_k: float = Field(2.0, description="Condensing temperature above the supply "
                                      "for the Carnot COP, K (OpenEnergyMonitor: +2 K).")
    evaporator_offset_k: float = Field(6.0, description="Evaporating temperature below the outdoor "
                                       "air, K (OpenEnergyMonitor: -6 K).")
    good_quantile: Share = Field(0.75, description="The installation's good days: the Carnot "
                                 "fraction at this quantile of its days is what it can do.")
    tolerance: Share = Field(0.15, description="A day's COP below the expectation by more than "
                             "this share is low (field units spread 45-55 % of Carnot, "
                             "heatpumpmonitor.org).")
    min_run_hours: Positive = Field(4.0, description="Running hours of heating a day needs.")
    min_days: int = Field(2, ge=1, description="Consecutive low days that make a finding.")
    fit_days: int = Field(7, ge=2, description="Days needed to fit the Carnot fraction.")


class HeatMeter(_Model):
    min_delta_t: Positive = Field(1.5, description="ΔT across the heat meter that shows the heat "
                                  "pump is heating, K.")
    min_minutes: Positive = Field(10.0, description="Minutes without flow while heating that "
                                  "make an air episode (Danfoss SonoMeter 40: flow sensor 'not "
                                  "filled with water').")


class Sensors(_Model):
    supply_below_return_k: Positive = Field(1.0, description="Supply below return by more than "
                                            "this while heating is implausible, K.")
    below_minutes: Positive = Field(30.0, description="Minutes of it that are reported.")
    frozen_water_hours: Positive = Field(6.0, description="Hours a water temperature may stay "
                                         "unchanged while the compressor runs at least half of "
                                         "them (the bench's healthy unit, without sensor noise, "
                                         "holds one reading for up to 2.5 h at minimum output).")
    frozen_air_hours: Positive = Field(24.0, description="Hours an outdoor or tank temperature "
                                       "may stay unchanged (a 0.1 K sensor changes within a day; "
                                       "a well-held room may not, so rooms are not judged).")
    spike_k: Positive = Field(15.0, description="A reading that leaves both neighbours by more "
                              "than this is a spike, K (the bench's water side steps by at most "
                              "about 9 K between readings).")


class Gaps(_Model):
    warn_share: Share = Field(0.5, description="Share of the year's allowed missing time "
                              "(1 - installation.guarantee.min_coverage) used, or the pace "
                              "that would use it up, for a warning.")


class DiagnosisConfig(_Model):
    """Rules over the ledger and samples that say why an installation underperforms."""

    design: Design = Field(default_factory=Design)
    cycling: Cycling = Field(default_factory=Cycling)
    curve: Curve = Field(default_factory=Curve)
    delta_t: DeltaT = Field(default_factory=DeltaT)
    bivalent: Bivalent = Field(default_factory=Bivalent)
    backup: Backup = Field(default_factory=Backup)
    hot_water: HotWater = Field(default_factory=HotWater)
    defrost: Defrost = Field(default_factory=Defrost)
    cop: Cop = Field(default_factory=Cop)
    heat_meter: HeatMeter = Field(default_factory=HeatMeter)
    sensors: Sensors = Field(default_factory=Sensors)
    gaps: Gaps = Field(default_factory=Gaps)
