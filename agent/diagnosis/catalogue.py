"""Every finding the diagnosis can make: its stable code, title, likely cause and the action an
installer takes, in English and Dutch.

The codes are an interface: recipients of the findings stream act on them, so a code is never
renamed or reused for another meaning. The figures that support a finding are its evidence, not
part of these texts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from agent.diagnosis.findings import Evidence, Finding, Severity, Text


@dataclass(frozen=True, slots=True)
class Entry:
    title: Text
    cause: Text
    action: Text


def _entry(title: tuple[str, str], cause: tuple[str, str], action: tuple[str, str]) -> Entry:
    return Entry(Text(*title), Text(*cause), Text(*action))


CATALOGUE: Final[dict[str, Entry]] = {
    "short_cycling": _entry(
        ("Compressor short-cycles", "Compressor pendelt"),
        ("At its lowest output the heat pump gives more heat than the house needs, and its "
         "controller lets it stop and start again within minutes: the start/stop hysteresis "
         "(degree minutes) or the minimum run and off times are set too tight, or the unit is "
         "oversized for the house. Every start wears the compressor and costs efficiency.",
         "Op zijn laagste vermogen levert de warmtepomp meer warmte dan het huis vraagt, en de "
         "regeling laat hem binnen enkele minuten stoppen en weer starten: de start/stop-"
         "hysterese (graadminuten) of de minimale loop- en stilstandtijd staan te krap, of de "
         "warmtepomp is te groot voor het huis. Elke start slijt de compressor en kost rendement."),
        ("Widen the start/stop hysteresis and set minimum run and off times of at least 10 "
         "minutes; lower the heating curve a little so that runs get longer; open closed "
         "thermostatic valves so that the system keeps its water volume; check the unit's "
         "size against the measured heat demand.",
         "Vergroot de start/stop-hysterese en stel een minimale loop- en stilstandtijd van "
         "minstens 10 minuten in; verlaag de stooklijn iets zodat de looprondes langer worden; zet "
         "dichtgedraaide thermostaatkranen open zodat het systeem zijn waterinhoud houdt; toets "
         "het vermogen van de warmtepomp aan de gemeten warmtevraag.")),
    "heating_curve_too_steep": _entry(
        ("Supply hotter than the radiators need", "Aanvoer heter dan de radiatoren nodig hebben"),
        ("The heating curve asks for a hotter supply than the emitters need to carry the house's "
         "heat at this outdoor temperature: the unit runs hot, in bursts, and loses COP.",
         "De stooklijn vraagt een hogere aanvoertemperatuur dan de afgifte nodig heeft om de "
         "warmtevraag van het huis bij deze buitentemperatuur te leveren: de warmtepomp draait "
         "heet, met onderbrekingen, en verliest COP."),
        ("Lower the heating curve (its slope, or a parallel shift) in steps of 2 K a week while "
         "the rooms stay warm enough, until the supply is near the needed temperature in the "
         "evidence.",
         "Verlaag de stooklijn (de helling, of een parallelle verschuiving) in stappen van 2 K per "
         "week zolang de ruimtes warm genoeg blijven, tot de aanvoer dicht bij de benodigde "
         "temperatuur uit het bewijs ligt.")),
    "emitters_undersized": _entry(
        ("Radiators too small for the design supply temperature",
         "Radiatoren te klein voor de ontwerp-aanvoertemperatuur"),
        ("To carry the house's heat the emitters need a supply above the design heating curve: "
         "radiators are too small or covered (curtains, furniture), or thermostatic valves "
         "throttle them. The heat pump runs hotter, at a lower COP, than the advice assumed.",
         "Om de warmtevraag van het huis af te geven heeft de afgifte een aanvoer boven de "
         "ontwerpstooklijn nodig: radiatoren zijn te klein of afgedekt (gordijnen, meubels), of "
         "thermostaatkranen knijpen ze af. De warmtepomp draait heter, met een lagere COP, dan "
         "het advies aannam."),
        ("Check that all thermostatic valves are open, radiators uncovered and the system "
         "balanced; then enlarge the emitters in the rooms that lag (larger or low-temperature "
         "radiators, radiator fans) until the needed supply is at or below the design curve.",
         "Controleer of alle thermostaatkranen open staan, de radiatoren vrij hangen en de "
         "installatie ingeregeld is; vergroot daarna de afgifte in de ruimtes die achterblijven "
         "(grotere of LT-radiatoren, radiatorventilatoren) tot de benodigde aanvoer op of onder "
         "de ontwerpstooklijn ligt.")),
    "supply_above_curve": _entry(
        ("Supply above the design heating curve", "Aanvoer boven de ontwerpstooklijn"),
        ("The supply runs above the design curve for the outdoor temperature. Without a room "
         "temperature, or hours in which the heat pump heated alone, the diagnosis cannot tell "
         "a curve set too steep from emitters that need it.",
         "De aanvoer ligt boven de ontwerpstooklijn bij deze buitentemperatuur. Zonder "
         "ruimtetemperatuur, of uren waarin de warmtepomp alleen verwarmde, kan de diagnose een "
         "te steile stooklijn niet onderscheiden van een afgifte die deze temperatuur nodig "
         "heeft."),
        ("Measure the room temperature (room.temp) so that the rule can tell; meanwhile lower "
         "the curve by 2 K and see whether the rooms stay warm.",
         "Meet de ruimtetemperatuur (room.temp) zodat de regel het onderscheid kan maken; "
         "verlaag intussen de stooklijn met 2 K en kijk of de ruimtes warm blijven.")),
    "delta_t_low": _entry(
        ("ΔT too small: the flow is too high", "ΔT te klein: het debiet is te hoog"),
        ("The water flows faster than the heat pump needs: at its rated output the spread between "
         "supply and return would stay well below the 5 K it is rated at. The circulation pump "
         "is set too high or oversized: it wastes electricity, mixes return water into the "
         "supply and can upset the unit's control.",
         "Het water stroomt sneller dan de warmtepomp nodig heeft: bij nominaal vermogen blijft "
         "het verschil tussen aanvoer en retour ruim onder de 5 K waarop hij beproefd is. De "
         "circulatiepomp staat te hoog of is te groot: dat kost stroom, mengt retourwater in de "
         "aanvoer en kan de regeling verstoren."),
        ("Lower the circulation pump's setting (or let the unit hold a ΔT of 5 K) and check the "
         "flow against the nominal flow in the manual.",
         "Zet de circulatiepomp lager (of laat de warmtepomp op een ΔT van 5 K regelen) en "
         "controleer het debiet tegen het nominale debiet uit de handleiding.")),
    "delta_t_high": _entry(
        ("ΔT too large: the flow is too low", "ΔT te groot: het debiet is te laag"),
        ("Too little water flows through the heat pump: closed or throttled valves, a clogged "
         "filter, air in the system, or a pump set too low. The unit must make a hotter supply "
         "for the same heat and may trip on high pressure.",
         "Er stroomt te weinig water door de warmtepomp: dichte of knijpende kranen, een vervuild "
         "filter, lucht in het systeem of een te laag ingestelde pomp. De warmtepomp moet heter "
         "aanvoeren voor dezelfde warmte en kan op hoge druk uitvallen."),
        ("Clean the filter, vent the system, open the valves and raise the pump setting until "
         "the flow reaches the nominal flow in the manual.",
         "Reinig het filter, ontlucht het systeem, open de kranen en zet de pomp hoger tot het "
         "debiet het nominale debiet uit de handleiding haalt.")),
    "boiler_above_bivalent": _entry(
        ("Boiler heats above the bivalent point", "Ketel verwarmt boven het bivalentiepunt"),
        ("The boiler made space heat while it was warmer outside than the design bivalent point "
         "and the heat pump stood idle: the hybrid controller's switch-over temperature (or its "
         "boiler release) is set above the design, so gas replaces heat pump heat.",
         "De ketel maakte ruimteverwarming terwijl het buiten warmer was dan het "
         "ontwerp-bivalentiepunt en de warmtepomp stilstond: de omschakeltemperatuur (of "
         "ketelvrijgave) van de hybride regeling staat boven het ontwerp, zodat gas "
         "warmtepompwarmte vervangt."),
        ("Set the hybrid controller's switch-over (bivalent) temperature to the design value "
         "from the advice, and check that no boiler priority or tariff setting overrides it.",
         "Zet de omschakeltemperatuur (het bivalentiepunt) van de hybride regeling op de "
         "ontwerpwaarde uit het advies, en controleer dat geen ketelvoorrang- of tariefinstelling "
         "die overschrijft.")),
    "backup_heater_mild": _entry(
        ("Backup heater runs in mild weather", "Elektrisch element werkt bij zacht weer"),
        ("The electric backup heater heated the house at outdoor temperatures where the heat pump "
         "manages alone: its release temperature is set too high, or it starts too early (its "
         "degree-minute step is too close to the compressor's). Each kWh it gives costs a kWh of "
         "electricity.",
         "Het elektrische bijverwarmingselement verwarmde het huis bij buitentemperaturen waarbij "
         "de warmtepomp het alleen redt: de vrijgavetemperatuur staat te hoog, of het start te "
         "vroeg (de graadminutenstap ligt te dicht bij die van de compressor). Elke kWh die het "
         "levert kost een kWh stroom."),
        ("Lower the backup heater's release temperature to the design bivalent point (or block "
         "it for space heating) and let it start well after the compressor, several hundred "
         "degree minutes later.",
         "Verlaag de vrijgavetemperatuur van het element naar het ontwerp-bivalentiepunt (of "
         "blokkeer het voor ruimteverwarming) en laat het ruim na de compressor starten, enkele "
         "honderden graadminuten later.")),
    "backup_heater_share": _entry(
        ("Large share of heat from the backup heater", "Groot aandeel warmte uit het element"),
        ("The electric backup heater made a large share of the heat: the heat pump is too small "
         "for the house in the cold, the element's settings are too eager, or it helps the hot "
         "water more than needed.",
         "Het elektrische element leverde een groot deel van de warmte: de warmtepomp is te klein "
         "voor het huis als het koud is, de instellingen van het element zijn te gretig, of het "
         "helpt het tapwater meer dan nodig."),
        ("Check the element's release temperature and degree-minute step, its part in hot water "
         "and anti-legionella cycles, and the unit's capacity against the measured heat demand.",
         "Controleer de vrijgavetemperatuur en graadminutenstap van het element, zijn rol bij "
         "tapwater en legionellapreventie, en het vermogen van de warmtepomp tegen de gemeten "
         "warmtevraag.")),
    "hot_water_share": _entry(
        ("Much of the heat goes to hot water", "Veel van de warmte gaat naar tapwater"),
        ("Hot water takes a large share of the heat pump's heat. It is made hotter than space "
         "heat, so at a lower COP: a large share pulls the performance factor down even when "
         "space heating runs well. A high tank setpoint, frequent reheats, a circulation loop or "
         "tank losses raise it.",
         "Tapwater neemt een groot deel van de warmte van de warmtepomp. Het wordt heter gemaakt "
         "dan ruimtewarmte, dus met een lagere COP: een groot aandeel drukt de prestatiefactor, "
         "ook als de ruimteverwarming goed loopt. Een hoge boilertemperatuur, vaak opwarmen, een "
         "circulatieleiding of boilerverlies verhogen het."),
        ("Compare with the household's use; lower the tank setpoint towards 50 °C where "
         "legionella prevention allows, reheat once or twice a day, insulate tank and pipes.",
         "Vergelijk met het gebruik van het huishouden; verlaag de boilertemperatuur richting "
         "50 °C waar de legionellapreventie dat toelaat, warm een- of tweemaal per dag op, "
         "isoleer boiler en leidingen.")),
    "legionella_too_frequent": _entry(
        ("Anti-legionella cycles too frequent", "Legionellaprogramma draait te vaak"),
        ("The tank was heated to the disinfection temperature more often than once a week. In a "
         "dwelling a weekly thermal disinfection suffices; each extra cycle runs at a poor COP or "
         "on the electric element.",
         "De boiler werd vaker dan eens per week tot de desinfectietemperatuur verwarmd. In een "
         "woning volstaat een wekelijkse thermische desinfectie; elke extra cyclus draait met een "
         "slechte COP of op het elektrische element."),
        ("Set the anti-legionella programme to once a week, at a time when the heat pump has "
         "little else to do.",
         "Stel het legionellaprogramma in op eenmaal per week, op een moment dat de warmtepomp "
         "weinig anders te doen heeft.")),
    "defrost_share_high": _entry(
        ("Defrosting takes much energy", "Ontdooien kost veel energie"),
        ("In this outdoor temperature range the unit spends a large share of its electricity "
         "defrosting: the evaporator ices fast (fouled fins, blocked air flow, a poor location), "
         "or the defrost control starts cycles too often.",
         "In dit gebied van buitentemperaturen besteedt de unit een groot deel van zijn stroom aan "
         "ontdooien: de verdamper vriest snel dicht (vervuilde lamellen, geblokkeerde "
         "luchtstroom, een slechte plaats), of de ontdooiregeling start te vaak."),
        ("Clean and clear the outdoor unit, check its condensate drain and free air flow, and "
         "check the defrost settings and the refrigerant charge with the manufacturer.",
         "Reinig de buitenunit en maak hem vrij, controleer de condensafvoer en de vrije "
         "luchtstroom, en controleer de ontdooi-instellingen en de koudemiddelvulling met de "
         "fabrikant.")),
    "defrost_outside_icing": _entry(
        ("Defrosts where nothing ices", "Ontdooit waar niets bevriest"),
        ("The unit defrosted at outdoor temperatures at which its evaporator does not ice: a "
         "defrost on a timer regardless of frost, a faulty outdoor or coil sensor, or too little "
         "refrigerant.",
         "De unit ontdooide bij buitentemperaturen waarbij de verdamper niet bevriest: ontdooien "
         "op een timer ongeacht ijsvorming, een defecte buiten- of verdampervoeler, of te weinig "
         "koudemiddel."),
        ("Check the outdoor and evaporator sensors and the defrost settings; have the refrigerant "
         "circuit checked if they are right.",
         "Controleer de buiten- en verdampervoeler en de ontdooi-instellingen; laat het "
         "koudemiddelcircuit controleren als die kloppen.")),
    "cop_below_expectation": _entry(
        ("COP below what this unit does at these temperatures",
         "COP lager dan deze unit bij deze temperaturen haalt"),
        ("On these days the COP was well below what the heat pump reaches on its own good days "
         "at the same supply and outdoor temperatures (the same fraction of the Carnot COP): "
         "something the temperatures do not explain changed, such as a fouled evaporator, low "
         "refrigerant, a sticking valve, short cycling, or a metering fault.",
         "Op deze dagen lag de COP ruim onder wat de warmtepomp op zijn eigen goede dagen haalt "
         "bij dezelfde aanvoer- en buitentemperatuur (dezelfde fractie van de Carnot-COP): er "
         "veranderde iets dat de temperaturen niet verklaren, zoals een vervuilde verdamper, te "
         "weinig koudemiddel, een hangende klep, pendelen of een meetfout."),
        ("Look at the other findings for these days first; if there are none, inspect the "
         "outdoor unit and have the refrigerant circuit checked.",
         "Kijk eerst naar de andere bevindingen voor deze dagen; zijn die er niet, inspecteer dan "
         "de buitenunit en laat het koudemiddelcircuit controleren.")),
    "heat_meter_air": _entry(
        ("Heat meter misses heat: air in its flow sensor",
         "Warmtemeter mist warmte: lucht in de volumemeter"),
        ("While the heat pump ran and the meter's own sensors showed a temperature spread, the "
         "meter saw no flow and counted no heat: its flow sensor was not filled with water (air). "
         "The heat of that time is missing from the measured performance.",
         "Terwijl de warmtepomp draaide en de eigen voelers van de meter een temperatuurverschil "
         "zagen, zag de meter geen debiet en telde geen warmte: de volumemeter stond niet vol "
         "water (lucht). De warmte van die tijd ontbreekt in de gemeten prestatie."),
        ("Vent the heating system, check its pressure, and mount the meter where air does not "
         "collect (not at a high point, measuring tube on its side); then read the meter's "
         "error log.",
         "Ontlucht de installatie, controleer de waterdruk en monteer de meter waar zich geen "
         "lucht verzamelt (niet op een hoog punt, meetbuis zijdelings); lees daarna het "
         "foutenlogboek van de meter uit.")),
    "supply_below_return": _entry(
        ("Supply reads below return while heating", "Aanvoer lager dan retour tijdens verwarmen"),
        ("While the heat pump heated, its supply temperature read below its return, which is "
         "impossible outside a defrost: the sensors are swapped, one sits loose on its pipe, or "
         "one is faulty. Every heat figure from these temperatures is wrong.",
         "Tijdens verwarmen was de aanvoertemperatuur lager dan de retour, wat buiten het "
         "ontdooien onmogelijk is: de voelers zijn verwisseld, een zit los op de leiding, of een "
         "is defect. Elke warmtewaarde uit deze temperaturen klopt niet."),
        ("Check which sensor sits on which pipe, their contact and insulation, and replace a "
         "faulty one.",
         "Controleer welke voeler op welke leiding zit, hun contact en isolatie, en vervang een "
         "defecte voeler.")),
    "sensor_frozen": _entry(
        ("A sensor reading stopped changing", "Een voelerwaarde verandert niet meer"),
        ("A reading stayed exactly the same for hours while the heat pump ran (or for a day, "
         "outdoors or indoors): the sensor, its cable or the register behind it no longer "
         "updates. Figures and controls that use it are wrong.",
         "Een waarde bleef urenlang precies gelijk terwijl de warmtepomp draaide (of een dag "
         "lang, buiten of binnen): de voeler, de kabel of het register erachter wordt niet meer "
         "bijgewerkt. Waarden en regelingen die hem gebruiken kloppen niet."),
        ("Check the sensor and its wiring at the unit and read the value on site (hpagent modbus "
         "read); replace the sensor if it stays fixed.",
         "Controleer de voeler en de bedrading bij de unit en lees de waarde ter plaatse uit "
         "(hpagent modbus read); vervang de voeler als hij vast blijft staan.")),
    "sensor_spikes": _entry(
        ("A sensor jumps and comes back", "Een voelerwaarde springt en keert terug"),
        ("Single readings jumped far from the readings before and after them: electrical "
         "interference, a loose contact or a failing sensor. The jumps distort averages and can "
         "trip the unit's protections.",
         "Losse waarden sprongen ver weg van de waarden ervoor en erna: elektrische storing, een "
         "los contact of een voeler die het begeeft. De sprongen verstoren gemiddelden en kunnen "
         "beveiligingen laten aanspreken."),
        ("Check the sensor's connection and its cable's route (away from power cables), and "
         "replace it if the jumps go on.",
         "Controleer de aansluiting van de voeler en de route van zijn kabel (weg van "
         "stroomkabels), en vervang hem als de sprongen doorgaan.")),
    "data_gaps": _entry(
        ("Data gaps endanger the guarantee", "Gaten in de meetdata bedreigen de garantie"),
        ("Counters the guarantee needs were not read for part of the time. Over its year the "
         "guarantee needs the data to cover the required share; more missing time makes it "
         "undecidable.",
         "Tellers die de garantie nodig heeft zijn een deel van de tijd niet uitgelezen. Over het "
         "garantiejaar moet de data het vereiste deel dekken; meer ontbrekende tijd maakt de "
         "garantie onbeslisbaar."),
        ("Find out why readings stop (power, cable, network, a device that hangs: the "
         "source.unavailable events in the agent's log) and fix it before the allowance is used "
         "up.",
         "Zoek uit waarom het uitlezen stopt (voeding, kabel, netwerk, een apparaat dat hangt: "
         "de source.unavailable-meldingen in het logboek van de agent) en los het op voordat de "
         "toegestane uitval op is.")),
}


def finding(code: str, severity: Severity, start: float, end: float,
            *evidence: Evidence) -> Finding:
    """A finding of ``code`` with the catalogue's texts."""
    entry = CATALOGUE[code]
    return Finding(code, severity, start, end, evidence, entry.title, entry.cause, entry.action)
