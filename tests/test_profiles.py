"""Every profile in config/profiles: it loads, it is consistent, and it round-trips on the wire.

The round trip serves known values through a pymodbus server built from the same profile and
reads them back with the agent's Modbus driver and read plan, so addressing, tables, word order,
split counters and maps are exercised exactly as in the field.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.codec import Decoder
from drivers.links import TcpLink
from drivers.modbus import ModbusBus, ModbusDevice
from drivers.planner import minimum_reads, plan
from drivers.profile import DataType, Profile, Register, available_profiles, load_profile
from drivers.reading import Quality, Value
from drivers.vocabulary import VOCABULARY
from drivers.yamlfile import YamlFileError
from hil.modbus_device import SimulatedModbusDevice
from tests.support import CASES

PROFILES = sorted(available_profiles())


def known_value(dec: Decoder) -> Value:
    """A value the register can carry, derived from its address so each register differs."""
    reg = dec.register
    if reg.map is not None:
        return sorted(reg.map.items())[len(reg.map) // 2][1]
    if reg.bit is not None or reg.type is DataType.BOOL:
        return True
    if reg.type is DataType.SPLIT:
        raw: float = sum((p.address % (p.below or 97)) * p.weight for p in reg.parts)
    elif reg.type in (DataType.F32, DataType.F64):
        raw = 21.5 + reg.first
    else:
        raw = reg.first % 97 + 2
    return dec.decode(dec.encode(raw * dec.factor + dec.offset))


def test_there_are_profiles() -> None:
    assert "hpagent_bench_heatpump" in PROFILES


@pytest.mark.parametrize("name", PROFILES)
def test_profile_is_consistent(name: str) -> None:
    profile = load_profile(name)
    assert profile.source.strip(), "every profile names its source"
    for reg in profile.registers:
        assert reg.quantity in VOCABULARY
        assert reg.name.strip()
    reads = plan(profile.registers, profile.limits)
    covered = {i for r in reads for i in r.members}
    assert covered == set(range(len(profile.registers)))
    assert len(reads) == minimum_reads(profile.registers, profile.limits)


@pytest.mark.parametrize("name", PROFILES)
async def test_profile_round_trips_through_a_modbus_server(name: str, port: int) -> None:
    await assert_round_trip(load_profile(name), port)


async def assert_round_trip(profile: Profile, port: int) -> None:
    decoders = [Decoder.compile(r) for r in profile.registers]
    expected = {d.quantity: known_value(d) for d in decoders}
    server = SimulatedModbusDevice(profile, port=port, unit=profile.unit)
    await server.start(expected)
    try:
        device = ModbusDevice("dut", ModbusBus(TcpLink("127.0.0.1", port), timeout=1.0),
                              profile.unit, profile)
        readings = await device.read()
        await device.close()
    finally:
        await server.stop()
    got = {r.quantity: r.value for r in readings if r.quality is Quality.GOOD}
    bad = {r.quantity: r.detail for r in readings if r.quality is not Quality.GOOD}
    assert not bad
    assert got == expected
    assert server.reads == len(plan(profile.registers, profile.limits))


SITE_HEAT_METER = """\
# A heat meter behind a Modbus module, as an installer would describe it for one site.
vendor: Example
model: heat meter on Modbus
source: written for this test; not a real device's map
unit: 5
defaults: {table: input, word_order: big}
registers:
  - {quantity: heatmeter.energy, name: "Heat energy", address: 0, type: u32, unit: Wh}
  - {quantity: heatmeter.volume, name: "Volume", address: 2, type: u32, scale: 0.01, unit: m3}
  - {quantity: heatmeter.flow, name: "Flow", address: 4, type: f32, unit: m3/h}
  - {quantity: heatmeter.power, name: "Power", address: 6, type: f32, unit: kW}
  - {quantity: heatmeter.supply_temp, name: "t1", address: 8, type: s16, scale: 0.01}
  - {quantity: heatmeter.return_temp, name: "t2", address: 9, type: s16, scale: 0.01}
"""


async def test_a_heat_meter_on_modbus_is_a_profile_of_the_site(tmp_path: Path,
                                                               port: int) -> None:
    """No heat meter map ships; one written for a site works by path and by directory."""
    (tmp_path / "site_meter.yaml").write_text(SITE_HEAT_METER)
    by_path = load_profile(str(tmp_path / "site_meter.yaml"))
    assert load_profile("site_meter", (tmp_path,)) == by_path
    assert {r.quantity for r in by_path.registers} >= {"heatmeter.energy", "heatmeter.flow"}
    await assert_round_trip(by_path, port)


BAD_CASES = sorted(p for p in (CASES / "profiles").glob("*.yaml"))


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda p: p.stem)
def test_bad_profile_is_refused_with_a_named_error(case: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Each case holds a broken profile; ``<case>.expected`` the exact error it must give."""
    monkeypatch.chdir(case.parent)
    with pytest.raises(YamlFileError) as err:
        load_profile(case.name)
    assert str(err.value) == case.with_suffix(".expected").read_text().strip()


def test_register_labels_name_table_address_doc_and_vendor_name() -> None:
    reg = Register(quantity="hp.supply_temp", name="BT2 supply", doc=6, address=5, table="input",
                   type=DataType.S16)
    assert reg.label == "input:5 (doc 6) 'BT2 supply'"
