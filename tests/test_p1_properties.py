"""Properties of the pure P1 path (TelegramBuffer + decode), checked with hypothesis.

* Nothing crashes it: random bytes, truncated, concatenated and bit-flipped telegrams.
* A telegram that fails its CRC never yields a value, and the valid telegram after it still does.
* How the bytes are chunked does not matter.
* Meter readings come out exactly as written: decode(encode(x)) == x, without float noise.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.p1_telegram import (
    CrcError,
    MalformedTelegram,
    P1Decoder,
    P1Telegram,
    TelegramBuffer,
    TelegramError,
    crc16,
    decode,
)
from tests.support import CASES

CAPTURES = {p.stem: p.read_bytes() for p in sorted((CASES / "p1" / "telegrams").glob("*.txt"))}
CRC_CAPTURES = {s: b for s, b in CAPTURES.items() if not s.startswith("dsmr22")}
PLENTY = settings(max_examples=150, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])

telegrams = st.sampled_from(sorted(CAPTURES)).map(CAPTURES.__getitem__)
crc_telegrams = st.sampled_from(sorted(CRC_CAPTURES)).map(CRC_CAPTURES.__getitem__)
# Line noise: anything but '/', the only byte that starts a telegram.
noise = st.binary(max_size=64).map(lambda b: b.replace(b"/", b""))


def telegrams_of(results: list[P1Telegram | TelegramError]) -> list[P1Telegram]:
    return [r for r in results if isinstance(r, P1Telegram)]


def decoded(data: bytes) -> P1Telegram:
    [telegram] = telegrams_of(P1Decoder().feed(data))
    return telegram


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the positions ``cuts`` (taken modulo its length)."""
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def feed_in_chunks(decoder: P1Decoder, data: bytes, cuts: list[int]) -> list[
        P1Telegram | TelegramError]:
    return [r for chunk in chunks(data, cuts) for r in decoder.feed(chunk)]


@PLENTY
@given(st.binary(max_size=4096), st.lists(st.integers(min_value=0), max_size=20))
def test_random_bytes_never_crash(data: bytes, cuts: list[int]) -> None:
    decoder = P1Decoder()
    results = feed_in_chunks(decoder, data, cuts)
    c = decoder.counters
    assert c.telegrams + c.crc_errors + c.parse_errors == len(results)


@PLENTY
@given(st.binary(max_size=2048).map(lambda b: b"/" + b.replace(b"/", b"") + b"!"),
       st.sampled_from(["auto", "2.2", "4", "5", "5B", "5L", "5S", "Q3D"]))
def test_random_frames_never_crash_decode(frame: bytes, spec: str) -> None:
    decoder = P1Decoder(spec)
    for result in decoder.feed(frame + b"\r\n"):
        assert isinstance(result, TelegramError)


@PLENTY
@given(telegrams, st.data())
def test_a_truncated_telegram_yields_nothing_and_the_next_one_decodes(
        data: bytes, draw: st.DataObject) -> None:
    cut = draw.draw(st.integers(min_value=1, max_value=data.index(b"!")))
    results = P1Decoder().feed(data[:cut] + data)
    assert telegrams_of(results) == [decoded(data)]


@PLENTY
@given(st.lists(st.tuples(noise, telegrams), min_size=1, max_size=6), noise,
       st.lists(st.integers(min_value=0), max_size=30))
def test_concatenated_telegrams_with_noise_all_decode_however_chunked(
        parts: list[tuple[bytes, bytes]], tail: bytes, cuts: list[int]) -> None:
    stream = b"".join(n + t for n, t in parts) + tail
    decoder = P1Decoder()
    results = feed_in_chunks(decoder, stream, cuts)
    assert telegrams_of(results) == [decoded(t) for _, t in parts]
    assert decoder.counters.crc_errors == decoder.counters.parse_errors == 0
    assert decoder.counters.garbage_bytes == sum(len(n) for n, _ in parts[1:]) + len(tail)


@PLENTY
@given(crc_telegrams, st.data())
def test_a_bit_flip_never_yields_a_value_and_the_next_telegram_decodes(
        data: bytes, draw: st.DataObject) -> None:
    position = draw.draw(st.integers(min_value=0, max_value=len(data) - 1))
    bit = draw.draw(st.integers(min_value=0, max_value=7))
    flipped = bytearray(data)
    flipped[position] ^= 1 << bit
    results = P1Decoder().feed(bytes(flipped) + data)
    assert telegrams_of(results) == [decoded(data)]


@PLENTY
@given(crc_telegrams, st.data())
def test_a_bit_flip_with_any_spec_pinned_never_yields_a_value(
        data: bytes, draw: st.DataObject) -> None:
    position = draw.draw(st.integers(min_value=0, max_value=data.index(b"!") - 1))
    flipped = bytearray(data)
    flipped[position] ^= 1 << draw.draw(st.integers(min_value=0, max_value=7))
    text = bytes(flipped).decode("latin-1")
    for spec in ("2.2", "4", "5", "5B", "5L", "5S", "Q3D"):
        try:
            decode(text, spec)
        except (CrcError, MalformedTelegram):
            continue
        raise AssertionError(f"a flipped telegram decoded with spec {spec}")


@PLENTY
@given(st.binary(max_size=3000), st.lists(st.integers(min_value=0), max_size=30))
def test_buffer_is_chunking_invariant(data: bytes, cuts: list[int]) -> None:
    whole = TelegramBuffer()
    frames = whole.feed(data)
    chunked = TelegramBuffer()
    pieces = [f for chunk in chunks(data, cuts) for f in chunked.feed(chunk)]
    assert pieces == frames
    assert (chunked.truncated, chunked.garbage_bytes) == (whole.truncated, whole.garbage_bytes)


def fixed(units: int, decimals: int, digits: int) -> str:
    return f"{units // 10**decimals:0{digits}d}.{units % 10**decimals:0{decimals}d}"


readings_kwh = st.integers(min_value=0, max_value=999_999_999)  # 0.001 kWh steps, 6+3 digits
readings_w = st.integers(min_value=0, max_value=99_999)  # 1 W steps, 2+3 digits of kW
readings_m3 = st.integers(min_value=0, max_value=99_999_999)  # 0.001 m³ steps, 5+3 digits


@PLENTY
@given(st.lists(readings_kwh, min_size=4, max_size=4), readings_w, readings_w, readings_m3,
       st.booleans())
def test_values_come_out_as_written(energy: list[int], plus: int, minus: int, gas: int,
                                    in_wh: bool) -> None:
    unit, decimals, power_unit, power_decimals = (
        ("Wh", 0, "W", 0) if in_wh else ("kWh", 3, "kW", 3))
    lines = ["/ISk5\\2MT382-1000", "", "1-3:0.2.8(50)", "0-0:1.0.0(250101120000W)"]
    lines += [f"1-0:{obis}({fixed(v, decimals, 9 - decimals)}*{unit})"
              for obis, v in zip(("1.8.1", "1.8.2", "2.8.1", "2.8.2"), energy, strict=True)]
    lines += [f"1-0:1.7.0({fixed(plus, power_decimals, 5 - power_decimals)}*{power_unit})",
              f"1-0:2.7.0({fixed(minus, power_decimals, 5 - power_decimals)}*{power_unit})",
              "0-1:24.1.0(003)", f"0-1:24.2.1(250101115500W)({fixed(gas, 3, 5)}*m3)"]
    body = "\r\n".join(lines) + "\r\n!"
    telegram = decode(f"{body}{crc16(body):04X}\r\n", "5")
    # Wh -> kWh and kW -> W are exact in decimal: the float is the nearest to the decimal value
    kwh = [float(Decimal(v) / 1000) for v in energy]
    assert telegram.values["grid.import_energy_t1"] == kwh[0]
    assert telegram.values["grid.import_energy_t2"] == kwh[1]
    assert telegram.values["grid.export_energy_t1"] == kwh[2]
    assert telegram.values["grid.export_energy_t2"] == kwh[3]
    assert telegram.values["grid.import_energy"] == float(Decimal(energy[0] + energy[1]) / 1000)
    assert telegram.values["grid.export_energy"] == float(Decimal(energy[2] + energy[3]) / 1000)
    assert telegram.values["grid.power"] == float(plus - minus)  # 1 W steps in W and in kW
    assert telegram.values["gas.volume"] == float(Decimal(gas) / 1000)
    for value in telegram.values.values():  # no float noise: at most 3 decimals in its repr
        assert len(repr(value).partition(".")[2]) <= 3
