"""M-Bus frames: golden frames, frame checks, request frames and addresses (no line, no meter).

Expected values are worked out by hand from the frame bytes (comments give the arithmetic), so
they do not depend on the code under test or on pyMeterBus.
"""

from __future__ import annotations

import math
from contextlib import suppress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.mbus_frames import (
    ApplicationError,
    DecodeError,
    FrameError,
    check_frame,
    decode_response,
    matches,
    parse_address,
    req_ud2,
    select_frame,
    snd_nke,
)
from tests.support import CASES

KAMSTRUP = bytes.fromhex((CASES / "mbus" / "kamstrup_multical_601.hex").read_text())
GJ_METER = bytes.fromhex((CASES / "mbus" / "gj_meter.hex").read_text())


def rsp_ud(records: bytes, *, ci: int = 0x72, status: int = 0) -> bytes:
    """A long frame around ``records``: C=08 A=01, ID 12345678, KAM, version 1, heat."""
    header = bytes.fromhex("78563412 2D2C 01 04 01") + bytes([status, 0, 0])
    body = bytes([0x08, 0x01, ci]) + header + records
    return bytes([0x68, len(body), len(body), 0x68]) + body + bytes([sum(body) & 0xFF, 0x16])


def well_formed(frame: bytes) -> bool:
    """An independent frame check (EN 13757-2 frame formats): the test's own, not the driver's."""
    if frame == b"\xe5":
        return True
    if len(frame) == 5 and frame[0] == 0x10:
        return frame[4] == 0x16 and sum(frame[1:3]) & 0xFF == frame[3]
    return (len(frame) >= 9 and frame[0] == frame[3] == 0x68 and frame[1] == frame[2] >= 3
            and len(frame) == frame[1] + 6 and frame[-1] == 0x16
            and sum(frame[4:-2]) & 0xFF == frame[-2])


# -- golden frames --------------------------------------------------------------------------------


def test_kamstrup_multical_601() -> None:
    r = decode_response(KAMSTRUP)
    assert (r.manufacturer, r.ident, r.version, r.medium, r.access, r.status) == (
        "KAM", "06855817", 8, 0x04, 4, 0)
    assert r.medium_name == "heat (outlet)"
    assert r.secondary_address == "068558172D2C0804"  # ID, then the frame's bytes 2D 2C 08 04
    assert r.values == {
        "heatmeter.energy": 37351.0,  # 04 06 E7 91 00 00: 0x91E7 = 37351 x 10^3 Wh
        "heatmeter.volume": 561.08,  # 04 14 2C DB 00 00: 0xDB2C = 56108 x 0.01 m³
        "heatmeter.supply_temp": 101.69,  # 04 59 B9 27 00 00: 0x27B9 = 10169 x 0.01 °C
        "heatmeter.return_temp": 46.16,  # 04 5D 08 12 00 00: 0x1208 = 4616 x 0.01 °C
        "heatmeter.power": 34700.0,  # 04 2D 5B 01 00 00: 0x015B = 347 x 100 W
        "heatmeter.flow": 9.05,  # 04 3B 1F 02 00 00: 0x021F = 543 l/h = 0.543 m³/h = 9.05 l/min
    }
    notes = {x.index: x.note for x in r.records}
    assert notes[8] == "maximum value"  # 14 2D: maximum power, 44.8 kW
    assert notes[11] == "tariff 1"  # 84 10 06: tariff register 1
    assert notes[13] == "subunit 1 (e.g. a pulse input)"  # 84 40 14: pulse input A volume
    assert notes[17] == "historic value (storage 1)"  # 44 06 51 82 00 00: 33361 kWh
    assert r.records[17].value == "33361000"
    assert r.records[26].value == "2010-12-31"  # 42 6C 5F 1C: its target date
    assert [x.index for x in r.records if x.quantity] == [1, 2, 4, 5, 7, 9]
    assert r.records[-1].function == "manufacturer specific"


def test_gj_meter() -> None:
    r = decode_response(GJ_METER)
    assert (r.manufacturer, r.ident, r.medium_name, r.access) == (
        "SLB", "87654321", "heat (inlet)", 42)
    assert r.secondary_address == "87654321824D0A0C"
    # 0C FB 08 34 12 00 00: BCD 1234 x 0.1 GJ = 123.4 GJ = 123.4e9 J / 3.6e6 J/kWh
    assert r.values == {"heatmeter.energy": 34277.78, "heatmeter.supply_temp": 12.34}
    assert (r.records[0].value, r.records[0].unit) == ("123.4", "GJ")
    assert r.records[1].note == "historic value (storage 1)"  # 44 FB 09: 120 GJ, last year


@pytest.mark.parametrize(("records", "quantity", "value"), [
    ("04 03 40 E2 01 00", "heatmeter.energy", 123.456),  # 123456 Wh
    ("04 06 E7 91 00 00", "heatmeter.energy", 37351.0),  # 37351 x 10^3 Wh
    ("0C 06 78 56 34 12", "heatmeter.energy", 12345678.0),  # BCD 12345678 kWh
    ("04 0E 10 27 00 00", "heatmeter.energy", 2777.7778),  # 10000 MJ / 3.6
    ("04 FB 09 10 00 00 00", "heatmeter.energy", 4444.4),  # 16 GJ, 1 GJ resolution
    ("04 FB 01 0A 00 00 00", "heatmeter.energy", 10000.0),  # 10 MWh
    ("04 13 E8 03 00 00", "heatmeter.volume", 1.0),  # 1000 l
    ("04 3B 1F 02 00 00", "heatmeter.flow", 9.05),  # 543 l/h
    ("04 44 0F 00 00 00", "heatmeter.flow", 15.0),  # 15 x 0.001 m³/min
    ("05 3E 00 00 40 3F", "heatmeter.flow", 12.5),  # 32-bit real 0.75 m³/h
    ("02 5A 5E 01", "heatmeter.supply_temp", 35.0),  # 350 x 0.1 °C, 16-bit
    ("0A 59 50 F1", "heatmeter.supply_temp", -1.5),  # BCD -150 (top digit F) x 0.01 °C
    ("02 5E 3C 01", "heatmeter.return_temp", 31.6),  # 316 x 0.1 °C
    ("04 2B 68 10 00 00", "heatmeter.power", 4200.0),  # 4200 W
    ("04 FB 29 02 00 00 00", "heatmeter.power", 2_000_000.0),  # 2 MW
])
def test_record_scaling(records: str, quantity: str, value: float) -> None:
    assert decode_response(rsp_ud(bytes.fromhex(records))).values == {quantity: value}


@pytest.mark.parametrize(("records", "note"), [
    ("14 06 01 00 00 00", "maximum value"),
    ("24 06 01 00 00 00", "minimum value"),
    ("84 40 06 01 00 00 00", "subunit 1 (e.g. a pulse input)"),
    ("84 10 06 01 00 00 00", "tariff 1"),
    ("44 06 01 00 00 00", "historic value (storage 1)"),
    ("04 86 3C 01 00 00 00", "VIF extension 3C changes its meaning"),
])
def test_records_that_are_not_current_values_are_ignored(records: str, note: str) -> None:
    r = decode_response(rsp_ud(bytes.fromhex(records)))
    assert r.values == {}
    assert r.invalid == {}
    assert r.records[0].note == note


@pytest.mark.parametrize(("records", "quantity", "problem"), [
    ("0C 06 AA AA AA AA", "heatmeter.energy", "BCD value AAAAAAAA has non-decimal digits"),
    ("0D 06 02 31 32", "heatmeter.energy", "data field coding 0xD holds no number"),
    ("05 3E 00 00 C0 7F", "heatmeter.flow", "32-bit real nan is not a number"),
])
def test_records_without_a_number_are_invalid(records: str, quantity: str, problem: str) -> None:
    r = decode_response(rsp_ud(bytes.fromhex(records)))
    assert r.values == {}
    assert r.invalid == {quantity: problem}


def test_the_first_of_two_records_for_a_quantity_wins() -> None:
    r = decode_response(rsp_ud(bytes.fromhex("04 06 01 00 00 00 04 03 07 00 00 00")))
    assert r.values == {"heatmeter.energy": 1.0}
    assert r.records[1].note == "duplicate of record 0"


# -- frames that must be refused ------------------------------------------------------------------


def _with(frame: bytes, index: int, value: int) -> bytes:
    out = bytearray(frame)
    out[index] = value
    return bytes(out)


@pytest.mark.parametrize(("frame", "message"), [
    (_with(KAMSTRUP, -2, KAMSTRUP[-2] ^ 1), "checksum: frame says 0x99, bytes sum to 0x98"),
    (_with(KAMSTRUP, -1, 0x17), "stop byte is 0x17"),
    (_with(KAMSTRUP, 2, 0xF8), "68 F7 F8 68 is not 68 L L 68"),
    (KAMSTRUP[:-1], "length: got 252 bytes, the header announces 253"),
    (KAMSTRUP + b"\x16", "length: got 254 bytes"),
    (b"\x42" + KAMSTRUP[1:], "0x42 starts no M-Bus frame"),
    (b"\xe5", "expected an RSP_UD long frame, got E5"),
    (b"", "length: got 0 bytes"),
])
def test_bad_frames_are_refused(frame: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message.replace("(", r"\(")):
        decode_response(frame)


def test_an_application_error_report() -> None:
    # 68 04 04 68 | 08 01 70 08 | checksum 08+01+70+08 = 0x81 | 16: code 8, application busy
    with pytest.raises(ApplicationError, match="application too busy"):
        decode_response(bytes.fromhex("68 04 04 68 08 01 70 08 81 16"))


def test_other_answers_are_not_rsp_ud() -> None:
    with pytest.raises(DecodeError, match="CI 0x78"):
        decode_response(rsp_ud(b"", ci=0x78))
    with pytest.raises(DecodeError, match="C field 0x53"):
        decode_response(bytes.fromhex("68 03 03 68 53 01 72 C6 16"))


@given(st.integers(0, len(KAMSTRUP) * 8 - 1))
def test_any_single_bit_flip_is_refused(bit: int) -> None:
    with pytest.raises(FrameError):
        decode_response(_with(KAMSTRUP, bit // 8, KAMSTRUP[bit // 8] ^ (1 << bit % 8)))


@given(st.lists(st.tuples(st.integers(0, len(KAMSTRUP) - 1), st.integers(1, 255)),
                min_size=1, max_size=6))
def test_corrupted_frames_never_yield_values(changes: list[tuple[int, int]]) -> None:
    frame = bytearray(KAMSTRUP)
    for index, xor in changes:
        frame[index] ^= xor
    corrupt = bytes(frame)
    if well_formed(corrupt):
        return  # the corruption kept every check intact: it is a different, valid frame
    with pytest.raises(FrameError):
        decode_response(corrupt)


@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data: bytes) -> None:
    with suppress(FrameError, DecodeError):
        decode_response(data)


@given(st.binary(max_size=230))
@settings(max_examples=300)
def test_well_framed_random_records_never_crash(records: bytes) -> None:
    try:
        r = decode_response(rsp_ud(records))
    except DecodeError:
        return
    for value in r.values.values():
        assert math.isfinite(value)


# -- frames we send, addresses --------------------------------------------------------------------


def test_request_frames() -> None:
    assert snd_nke(5) == bytes.fromhex("10 40 05 45 16")  # 40 + 05 = 45
    assert req_ud2(0xFD) == bytes.fromhex("10 5B FD 58 16")  # 5B + FD = 0x158
    # 73 FD 52, ID 78 56 34 12, wildcards FF FF FF FF: sum 0x6D2 -> D2
    assert select_frame("12345678FFFFFFFF") == bytes.fromhex(
        "68 0B 0B 68 73 FD 52 78 56 34 12 FF FF FF FF D2 16")
    for frame in (snd_nke(0), req_ud2(250), select_frame("0685FFFF2D2C0804")):
        check_frame(frame)


@pytest.mark.parametrize(("text", "result"), [
    ("0", 0), ("250", 250), (" 7 ", 7), ("12345678ffffffff", "12345678FFFFFFFF"),
    ("FFFFFFFFFFFFFFFF", "FFFFFFFFFFFFFFFF"),
])
def test_addresses(text: str, result: int | str) -> None:
    assert parse_address(text) == result


@pytest.mark.parametrize(("text", "message"), [
    ("251", "outside 0..250"), ("1234567AFFFFFFFF", "neither"), ("abc", "neither"),
    ("12345678FFFFFFF", "neither"),
])
def test_bad_addresses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_address(text)


def test_wildcards_match_digit_by_digit() -> None:
    assert matches("123456782D2C0804", "1234FFFFFFFFFFFF")
    assert matches("123456782D2C0804", "123456782D2C0804")
    assert not matches("123456782D2C0804", "1235FFFFFFFFFFFF")
