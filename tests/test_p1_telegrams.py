"""Golden P1 telegrams: every capture in tests/cases/p1/telegrams, decoded and read off a pty.

The expected values below are written out by hand from each telegram's text (the OBIS code of
every line is in the comment), converted to the vocabulary's units: kWh, W (import minus
export), V, A, m³, and RFC 3339 UTC times (DSMR times are Dutch local time, ``W`` = CET = UTC+1,
``S`` = CEST = UTC+2). Each telegram is decoded directly and also read through a real pty by the
real driver. Two synthetic telegrams (tests/cases/p1/synthetic) pin M-Bus cases no capture has.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drivers.links import SerialLink
from drivers.p1 import P1Meter
from drivers.p1_telegram import CrcError, MalformedTelegram, P1Telegram, decode, detect_spec
from drivers.reading import Quality, Reading
from hil.ptys import VirtualSerialPort
from tests.support import CASES

TELEGRAMS = CASES / "p1" / "telegrams"
SYNTHETIC = CASES / "p1" / "synthetic"


@dataclass(frozen=True)
class Golden:
    spec: str
    header: str
    meter_time: datetime | None  # 0-0:1.0.0
    values: dict[str, float]
    measured_at: dict[str, datetime] = field(default_factory=dict)
    size: int = 0  # bytes of the capture, from the source table


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
        second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


GOLDEN: dict[str, Golden] = {
    "dsmr22_kamstrup_KMP5_gas_nocrc__dsmr-tools": Golden(
        "2.2", "/KMP5 ZABF001551772711", None, {
            "grid.import_energy": 10088.860,  # 1-0:1.8.1 + 1-0:1.8.2
            "grid.export_energy": 0.0,  # 1-0:2.8.1 + 1-0:2.8.2
            "grid.import_energy_t1": 5080.475,  # 1-0:1.8.1(05080.475*kWh)
            "grid.import_energy_t2": 5008.385,  # 1-0:1.8.2(05008.385*kWh)
            "grid.export_energy_t1": 0.0,  # 1-0:2.8.1(00000.000*kWh)
            "grid.export_energy_t2": 0.0,  # 1-0:2.8.2(00000.000*kWh)
            "grid.power": 680.0,  # 1-0:1.7.0(0000.68*kW) - 1-0:2.7.0(0000.00*kW)
            "gas.volume": 2025.003,  # 0-2:24.3.0(...)(m3) / (02025.003), device 0-2:24.1.0(3)
        },
        {"gas.volume": utc(2016, 1, 17, 11)},  # 0-2:24.3.0(160117120000): 12:00 CET, no S/W
        403),
    "dsmr42_kaifa_KFM5_3ph_gas__dsmr_parser": Golden(
        "4", "/KFM5KAIFA-METER", utc(2016, 11, 13, 19, 57, 57), {  # 0-0:1.0.0(161113205757W)
            "grid.import_energy": 3016.829,  # 1-0:1.8.1 + 1-0:1.8.2
            "grid.export_energy": 0.0,
            "grid.import_energy_t1": 1581.123,  # 1-0:1.8.1(001581.123*kWh)
            "grid.import_energy_t2": 1435.706,  # 1-0:1.8.2(001435.706*kWh)
            "grid.export_energy_t1": 0.0,  # 1-0:2.8.1(000000.000*kWh)
            "grid.export_energy_t2": 0.0,  # 1-0:2.8.2(000000.000*kWh)
            "grid.power": 2027.0,  # 1-0:1.7.0(02.027*kW) - 1-0:2.7.0(00.000*kW)
            "grid.power_l1": 170.0,  # 1-0:21.7.0(00.170*kW) - 1-0:22.7.0(00.000*kW)
            "grid.power_l2": 1247.0,  # 1-0:41.7.0(01.247*kW) - 1-0:42.7.0(00.000*kW)
            "grid.power_l3": 209.0,  # 1-0:61.7.0(00.209*kW) - 1-0:62.7.0(00.000*kW)
            "grid.current_l1": 0.0,  # 1-0:31.7.0(000*A)
            "grid.current_l2": 6.0,  # 1-0:51.7.0(006*A)
            "grid.current_l3": 2.0,  # 1-0:71.7.0(002*A)
            "gas.volume": 981.443,  # 0-1:24.2.1(161129200000W)(00981.443*m3), 0-1:24.1.0(003)
        },
        {"gas.volume": utc(2016, 11, 29, 19)},  # 161129200000W
        893),
    "dsmr42_landisgyr_E350_1ph_gas__dsmr-tools": Golden(
        "4", "/XMX5LGBBFG1009325446", utc(2019, 9, 5, 19, 40, 3), {  # 0-0:1.0.0(190905214003S)
            "grid.import_energy": 10012.929,  # 1-0:1.8.1 + 1-0:1.8.2
            "grid.export_energy": 0.313,  # 1-0:2.8.1 + 1-0:2.8.2
            "grid.import_energy_t1": 3235.689,  # 1-0:1.8.1(003235.689*kWh)
            "grid.import_energy_t2": 6777.240,  # 1-0:1.8.2(006777.240*kWh)
            "grid.export_energy_t1": 0.313,  # 1-0:2.8.1(000000.313*kWh)
            "grid.export_energy_t2": 0.0,  # 1-0:2.8.2(000000.000*kWh)
            "grid.power": 374.0,  # 1-0:1.7.0(00.374*kW) - 1-0:2.7.0(00.000*kW)
            "grid.power_l1": 374.0,  # 1-0:21.7.0(00.374*kW) - 1-0:22.7.0(00.000*kW)
            "grid.current_l1": 2.0,  # 1-0:31.7.0(002*A)
            "gas.volume": 1091.352,  # 0-1:24.2.1(190905210000S)(01091.352*m3)
        },
        {"gas.volume": utc(2019, 9, 5, 19)},  # 190905210000S
        630),
    "dsmr50_iskra_AM550T_3ph_nogas__dsmr-tools": Golden(
        "5", "/ISK5\\2M550T-1012", utc(2019, 3, 24, 14, 5, 41), {  # 0-0:1.0.0(190324150541W)
            "grid.import_energy": 6657.461,  # 1-0:1.8.1 + 1-0:1.8.2
            "grid.export_energy": 0.0,
            "grid.import_energy_t1": 3432.829,  # 1-0:1.8.1(003432.829*kWh)
            "grid.import_energy_t2": 3224.632,  # 1-0:1.8.2(003224.632*kWh)
            "grid.export_energy_t1": 0.0,  # 1-0:2.8.1(000000.000*kWh)
            "grid.export_energy_t2": 0.0,  # 1-0:2.8.2(000000.000*kWh)
            "grid.power": 433.0,  # 1-0:1.7.0(00.433*kW) - 1-0:2.7.0(00.000*kW)
            "grid.power_l1": 45.0,  # 1-0:21.7.0(00.045*kW) - 1-0:22.7.0(00.000*kW)
            "grid.power_l2": 10.0,  # 1-0:41.7.0(00.010*kW) - 1-0:42.7.0(00.000*kW)
            "grid.power_l3": 379.0,  # 1-0:61.7.0(00.379*kW) - 1-0:62.7.0(00.000*kW)
            "grid.voltage_l1": 236.7,  # 1-0:32.7.0(236.7*V)
            "grid.voltage_l2": 234.5,  # 1-0:52.7.0(234.5*V)
            "grid.voltage_l3": 236.0,  # 1-0:72.7.0(236.0*V)
            "grid.current_l1": 0.0,  # 1-0:31.7.0(000*A)
            "grid.current_l2": 0.0,  # 1-0:51.7.0(000*A)
            "grid.current_l3": 2.0,  # 1-0:71.7.0(002*A)
        },
        {},
        778),
    "dsmr50_iskra_MT382_specexample_3ph_gas__dsmr_parser": Golden(
        "5", "/ISk5\\2MT382-1000", utc(2017, 1, 2, 18, 20, 2), {  # 0-0:1.0.0(170102192002W)
            "grid.import_energy": 6.825,  # 1-0:1.8.1 + 1-0:1.8.2
            "grid.export_energy": 2.444,  # 1-0:2.8.1 + 1-0:2.8.2
            "grid.import_energy_t1": 4.426,  # 1-0:1.8.1(000004.426*kWh)
            "grid.import_energy_t2": 2.399,  # 1-0:1.8.2(000002.399*kWh)
            "grid.export_energy_t1": 2.444,  # 1-0:2.8.1(000002.444*kWh)
            "grid.export_energy_t2": 0.0,  # 1-0:2.8.2(000000.000*kWh)
            "grid.power": 244.0,  # 1-0:1.7.0(00.244*kW) - 1-0:2.7.0(00.000*kW)
            "grid.power_l1": 70.0,  # 1-0:21.7.0(00.070*kW) - 1-0:22.7.0(00.000*kW)
            "grid.power_l2": 32.0,  # 1-0:41.7.0(00.032*kW) - 1-0:42.7.0(00.000*kW)
            "grid.power_l3": 142.0,  # 1-0:61.7.0(00.142*kW) - 1-0:62.7.0(00.000*kW)
            "grid.voltage_l1": 230.0,  # 1-0:32.7.0(0230.0*V)
            "grid.voltage_l2": 230.0,  # 1-0:52.7.0(0230.0*V)
            "grid.voltage_l3": 229.0,  # 1-0:72.7.0(0229.0*V)
            "grid.current_l1": 0.48,  # 1-0:31.7.0(0.48*A)
            "grid.current_l2": 0.44,  # 1-0:51.7.0(0.44*A)
            "grid.current_l3": 0.86,  # 1-0:71.7.0(0.86*A)
            # 0-1:24.2.1(170102161005W)(00000.107*m3); channel 0-2 is a gas meter (24.1.0(003))
            # without a reading line: ignored
            "gas.volume": 0.107,
        },
        {"gas.volume": utc(2017, 1, 2, 15, 10, 5)},  # 170102161005W
        890),
    "dsmr50_sagemcom_XS210_1ph_gas__dsmr-tools": Golden(
        "5", "/Ene5\\XS210 ESMR 5.0", utc(2017, 11, 5, 19, 13, 24), {  # 171105201324W
            "grid.import_energy": 51.775,  # 1-0:1.8.1 + 1-0:1.8.2
            "grid.export_energy": 24.413,  # 1-0:2.8.1 + 1-0:2.8.2
            "grid.import_energy_t1": 51.775,  # 1-0:1.8.1(000051.775*kWh)
            "grid.import_energy_t2": 0.0,  # 1-0:1.8.2(000000.000*kWh)
            "grid.export_energy_t1": 24.413,  # 1-0:2.8.1(000024.413*kWh)
            "grid.export_energy_t2": 0.0,  # 1-0:2.8.2(000000.000*kWh)
            "grid.power": 335.0,  # 1-0:1.7.0(00.335*kW) - 1-0:2.7.0(00.000*kW)
            "grid.power_l1": 335.0,  # 1-0:21.7.0(00.335*kW) - 1-0:22.7.0(00.000*kW)
            "grid.voltage_l1": 229.0,  # 1-0:32.7.0(229.0*V)
            "grid.current_l1": 1.0,  # 1-0:31.7.0(001*A)
            "gas.volume": 16.713,  # 0-1:24.2.1(171105201000W)(00016.713*m3)
        },
        {"gas.volume": utc(2017, 11, 5, 19, 10)},  # 171105201000W
        606),
    "fluvius_be_v171_3ph_gas_water__dsmr_parser": Golden(
        "5B", "/FLU5\\253769484_A", utc(2020, 5, 12, 11, 54, 9), {  # 0-0:1.0.0(200512135409S)
            "grid.import_energy": 15.792,  # 1-0:1.8.1 + 1-0:1.8.2
            "grid.export_energy": 0.011,  # 1-0:2.8.1 + 1-0:2.8.2
            "grid.import_energy_t1": 0.034,  # 1-0:1.8.1(000000.034*kWh)
            "grid.import_energy_t2": 15.758,  # 1-0:1.8.2(000015.758*kWh)
            "grid.export_energy_t1": 0.0,  # 1-0:2.8.1(000000.000*kWh)
            "grid.export_energy_t2": 0.011,  # 1-0:2.8.2(000000.011*kWh)
            "grid.power": 0.0,  # 1-0:1.7.0(00.000*kW) - 1-0:2.7.0(00.000*kW)
            "grid.power_l1": 0.0,  # 1-0:21.7.0(00.000*kW) - 1-0:22.7.0(00.000*kW)
            "grid.power_l2": 0.0,  # 1-0:41.7.0(00.000*kW) - 1-0:42.7.0(00.000*kW)
            "grid.power_l3": 0.0,  # 1-0:61.7.0(00.000*kW) - 1-0:62.7.0(00.000*kW)
            "grid.voltage_l1": 234.7,  # 1-0:32.7.0(234.7*V)
            "grid.voltage_l2": 234.7,  # 1-0:52.7.0(234.7*V)
            "grid.voltage_l3": 234.7,  # 1-0:72.7.0(234.7*V)
            "grid.current_l1": 0.0,  # 1-0:31.7.0(000.00*A)
            "grid.current_l2": 0.0,  # 1-0:51.7.0(000.00*A)
            "grid.current_l3": 0.0,  # 1-0:71.7.0(000.00*A)
            "gas.volume": 112.384,  # 0-1:24.2.3(200512134558S)(00112.384*m3), 24.1.0(003)
            "water.volume": 872.234,  # 0-2:24.2.1(200512134558S)(00872.234*m3), 24.1.0(007)
        },
        {"gas.volume": utc(2020, 5, 12, 11, 45, 58),  # 200512134558S
         "water.volume": utc(2020, 5, 12, 11, 45, 58)},  # 200512134558S
        1059),
    "sagemcom_T210-D-r_Wh_varh_nogas__dsmr_parser": Golden(
        "5", "/EST5\\253710000_A", utc(2022, 10, 6, 13, 50, 14), {  # 0-0:1.0.0(221006155014S)
            "grid.import_energy": 6545.766,  # 1-0:1.8.1 + 1-0:1.8.2 (= 1-0:1.8.0(006545766*Wh))
            "grid.export_energy": 0.058,  # 1-0:2.8.1 + 1-0:2.8.2 (= 1-0:2.8.0(000000058*Wh))
            "grid.import_energy_t1": 5017.120,  # 1-0:1.8.1(005017120*Wh)
            "grid.import_energy_t2": 1528.646,  # 1-0:1.8.2(001528646*Wh)
            "grid.export_energy_t1": 0.0,  # 1-0:2.8.1(000000000*Wh)
            "grid.export_energy_t2": 0.058,  # 1-0:2.8.2(000000058*Wh)
            "grid.power": 286.0,  # 1-0:1.7.0(000000286*W) - 1-0:2.7.0(000000000*W)
        },
        {},
        481),
}

SYNTHETIC_GOLDEN: dict[str, Golden] = {
    "dsmr50_district_heat_GJ": Golden(
        "5", "/ISK5\\2M550T-1012", utc(2024, 1, 15, 7, 30, 15), {  # 240115083015W
            "grid.import_energy": 3580.245,  # 1-0:1.8.1 + 1-0:1.8.2
            "grid.export_energy": 0.0,
            "grid.import_energy_t1": 1234.567,  # 1-0:1.8.1(001234.567*kWh)
            "grid.import_energy_t2": 2345.678,  # 1-0:1.8.2(002345.678*kWh)
            "grid.export_energy_t1": 0.0,  # 1-0:2.8.1(000000.000*kWh)
            "grid.export_energy_t2": 0.0,  # 1-0:2.8.2(000000.000*kWh)
            "grid.power": 1234.0,  # 1-0:1.7.0(01.234*kW) - 1-0:2.7.0(00.000*kW)
            "grid.power_l1": 1234.0,  # 1-0:21.7.0(01.234*kW) - 1-0:22.7.0(00.000*kW)
            "grid.voltage_l1": 231.2,  # 1-0:32.7.0(231.2*V)
            "grid.current_l1": 5.0,  # 1-0:31.7.0(005*A)
            # 0-1:24.2.1(240115080000W)(240.860*GJ), 0-1:24.1.0(004): 240.860 GJ x 277.78 kWh/GJ
            # = 66905.56 kWh, kept to 0.1 kWh (the GJ reading resolves 1 MJ = 0.28 kWh)
            "district_heat.energy": 66905.6,
        },
        {"district_heat.energy": utc(2024, 1, 15, 7)}),  # 240115080000W
    "dsmr50_empty_channel_gas_on_2_water_on_3": Golden(
        "5", "/Ene5\\T211 ESMR 5.0", utc(2024, 7, 1, 10, 15, 3), {  # 240701121503S
            "grid.import_energy": 300.003,  # 1-0:1.8.1 + 1-0:1.8.2
            "grid.export_energy": 700.007,  # 1-0:2.8.1 + 1-0:2.8.2
            "grid.import_energy_t1": 100.001,  # 1-0:1.8.1(000100.001*kWh)
            "grid.import_energy_t2": 200.002,  # 1-0:1.8.2(000200.002*kWh)
            "grid.export_energy_t1": 300.003,  # 1-0:2.8.1(000300.003*kWh)
            "grid.export_energy_t2": 400.004,  # 1-0:2.8.2(000400.004*kWh)
            "grid.power": -1500.0,  # 1-0:1.7.0(00.000*kW) - 1-0:2.7.0(01.500*kW)
            "grid.power_l1": -1500.0,  # 1-0:21.7.0(00.000*kW) - 1-0:22.7.0(01.500*kW)
            "grid.voltage_l1": 238.1,  # 1-0:32.7.0(238.1*V)
            "grid.current_l1": 6.0,  # 1-0:31.7.0(006*A)
            # channel 1: 0-1:24.2.1(700101010000W)(00000000), an empty gas channel: ignored
            "gas.volume": 4321.987,  # 0-2:24.2.1(240701121000S)(04321.987*m3), 0-2:24.1.0(003)
            "water.volume": 123.456,  # 0-3:24.2.1(240701120500S)(00123.456*m3), 24.1.0(007)
        },
        {"gas.volume": utc(2024, 7, 1, 10, 10),  # 240701121000S
         "water.volume": utc(2024, 7, 1, 10, 5)}),  # 240701120500S
}

ALL = {**{s: (TELEGRAMS / f"{s}.txt", g) for s, g in GOLDEN.items()},
       **{s: (SYNTHETIC / f"{s}.txt", g) for s, g in SYNTHETIC_GOLDEN.items()}}


def text_of(path: Path) -> str:
    return path.read_bytes().decode("latin-1")


def check(telegram: P1Telegram, golden: Golden) -> None:
    assert telegram.spec == golden.spec
    assert telegram.header == golden.header
    assert telegram.meter_time == golden.meter_time
    assert dict(telegram.values) == golden.values
    assert dict(telegram.measured_at) == golden.measured_at
    assert telegram.notes == ()


def test_every_capture_has_a_golden_case() -> None:
    assert {p.stem for p in TELEGRAMS.glob("*.txt")} == set(GOLDEN)
    assert {p.stem for p in SYNTHETIC.glob("*.txt")} == set(SYNTHETIC_GOLDEN)


@pytest.mark.parametrize("stem", sorted(GOLDEN))
def test_captures_are_byte_exact(stem: str) -> None:
    data = (TELEGRAMS / f"{stem}.txt").read_bytes()
    assert len(data) == GOLDEN[stem].size  # the size in the source table
    assert data.count(b"\n") == data.count(b"\r\n")  # CRLF survived the copy and git
    assert data.startswith(b"/")
    assert data.endswith(b"\r\n")


@pytest.mark.parametrize("stem", sorted(ALL))
def test_decode(stem: str) -> None:
    path, golden = ALL[stem]
    text = text_of(path)
    assert detect_spec(text) == golden.spec
    check(decode(text, golden.spec), golden)


@pytest.mark.parametrize("stem", sorted(ALL))
async def test_read_through_a_pty(stem: str, tmp_path: Path) -> None:
    path, golden = ALL[stem]
    telegram, readings = await read_off_a_pty(path.read_bytes(), tmp_path)
    check(telegram, golden)
    assert {r.quantity: r.value for r in readings} == golden.values
    assert all(r.quality is Quality.GOOD for r in readings)
    assert {r.quantity: r.measured_at for r in readings if r.measured_at} == golden.measured_at


async def read_off_a_pty(data: bytes, tmp_path: Path,
                         spec: str = "auto") -> tuple[P1Telegram, list[Reading]]:
    """The driver on a pty, and a meter repeating ``data`` until the driver has a telegram."""
    port = VirtualSerialPort(tmp_path / "ttyP1")
    meter = P1Meter("p1", SerialLink(port.path), spec=spec)

    async def repeat() -> None:
        while True:  # the meter sends its telegram again and again, as a real one does
            port.write(data)
            await asyncio.sleep(0.05)

    await meter.open()
    sender = asyncio.create_task(repeat())
    try:
        async with asyncio.timeout(10):
            telegram = await meter.next_telegram()
        return telegram, await meter.read()
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        await meter.close()
        port.close()


CRC_CAPTURES = sorted(s for s in GOLDEN if GOLDEN[s].spec != "2.2")


@pytest.mark.parametrize("stem", CRC_CAPTURES)
def test_a_changed_digit_fails_the_crc(stem: str) -> None:
    text = text_of(TELEGRAMS / f"{stem}.txt")
    at = text.index("1-0:1.8.1(") + len("1-0:1.8.1(")
    changed = text[:at] + ("1" if text[at] != "1" else "2") + text[at + 1:]
    with pytest.raises(CrcError):
        decode(changed, GOLDEN[stem].spec)
    with pytest.raises(CrcError):  # a CRC present is checked even when a CRC-less spec is pinned
        decode(changed, "2.2")


@pytest.mark.parametrize("stem", CRC_CAPTURES)
def test_a_dsmr4_telegram_that_lost_its_crc_is_rejected(stem: str) -> None:
    text = text_of(TELEGRAMS / f"{stem}.txt")
    without = text[: text.index("!") + 1] + "\r\n"
    assert detect_spec(without) == GOLDEN[stem].spec  # its version lines still name it
    with pytest.raises(MalformedTelegram, match="without a CRC"):
        decode(without, detect_spec(without))
    with pytest.raises(MalformedTelegram, match="lost its CRC"):
        decode(without, "2.2")


def test_pinned_specs_read_what_they_can() -> None:
    """DSMR 5 telegrams pinned to "4": dsmr-parser's V4 has no voltage lines; all else stays."""
    path, golden = ALL["dsmr50_iskra_AM550T_3ph_nogas__dsmr-tools"]
    telegram = decode(text_of(path), "4")
    assert dict(telegram.values) == {q: v for q, v in golden.values.items()
                                     if not q.startswith("grid.voltage")}


def test_a_crc_less_telegram_must_hold_electricity() -> None:
    with pytest.raises(MalformedTelegram, match="no electricity import register"):
        decode("/XYZ5 nothing\r\n\r\n0-0:96.1.1(1234)\r\n!\r\n", "2.2")


@pytest.mark.parametrize(("snippet", "spec"), [
    ("/KFM5KAIFA-METER\r\n\r\n1-3:0.2.8(42)\r\n!6796\r\n", "4"),
    ("/ISk5\\2MT382-1000\r\n\r\n1-3:0.2.8(40)\r\n!1234\r\n", "4"),
    ("/ISk5\\2MT382-1000\r\n\r\n1-3:0.2.8(50)\r\n!6EEE\r\n", "5"),
    ("/FLU5\\253769484_A\r\n\r\n0-0:96.1.4(50217)\r\n!3AD7\r\n", "5B"),
    ("/SMR5\r\n\r\n1-3:0.2.8(42)\r\n0-0:42.0.0(53414733303832323030303032313630)\r\n!0F2E\r\n",
     "5L"),
    ("/ELL5\\253833635_A\r\n\r\n0-0:1.0.0(210217184019W)\r\n1-0:1.8.0(00006678.394*kWh)\r\n"
     "!6E0B\r\n", "5S"),
    ("/ESY5Q3DB1024 V3.04\r\n\r\n1-0:1.8.0*255(00052185.7825309*kWh)\r\n!\r\n", "Q3D"),
    ("/KMP5 ZABF001551772711\r\n\r\n0-2:24.3.0(160117120000)(00)(60)(1)(0-2:24.2.1)(m3)\r\n"
     "(02025.003)\r\n!\r\n", "2.2"),
])
def test_detect_spec(snippet: str, spec: str) -> None:
    assert detect_spec(snippet) == spec
