"""Register codecs: hand-checked vectors, then decode(encode(x)) == x for every type and order."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codec import Decoder, InvalidValue
from drivers.profile import ByteOrder, DataType, Register, WordOrder


def reg(**kw: Any) -> Register:
    base: dict[str, Any] = {"quantity": "hp.supply_temp", "name": "test", "address": 0,
                            "table": "holding"}
    return Register.model_validate({**base, **kw})


# (register settings, words on the wire, value). Vectors from PROTOCOLS.md §1 / pymodbus docs.
VECTORS = [
    ({"type": "s16"}, [0xFF38], -200.0),
    ({"type": "s16", "scale": 0.1}, [0xFF38], -20.0),
    ({"type": "u16", "scale": 0.1}, [0xFF38], 6533.6),
    ({"type": "u32", "word_order": "big"}, [0x0001, 0xE240], 123456.0),  # ABCD
    ({"type": "u32", "word_order": "little"}, [0xE240, 0x0001], 123456.0),  # CDAB
    ({"type": "f32", "word_order": "big"}, [0x41AC, 0x0000], 21.5),
    ({"type": "f32", "word_order": "little"}, [0x0000, 0x41AC], 21.5),
    # A byte-swapped device (pymodbus#2616): bytes swapped in each word, low word first
    ({"type": "f32", "word_order": "little", "byte_order": "little"}, [0xDA77, 0xFB41], 31.43352),
    ({"type": "s32", "word_order": "big", "scale": 0.01}, [0xFFFF, 0xFF9C], -1.0),
    ({"type": "u16", "scale": 0.1, "offset": -40}, [400], 0.0),
    ({"type": "s16", "scale": 0.1, "unit": "°C"}, [215], 21.5),
]


@pytest.mark.parametrize(("settings", "words", "value"), VECTORS)
def test_known_vectors(settings: dict[str, Any], words: list[int], value: float) -> None:
    dec = Decoder.compile(reg(**settings))
    assert dec.decode(words) == pytest.approx(value, abs=1e-9)
    assert dec.decode(dec.encode(value)) == pytest.approx(value, abs=1e-9)


def test_unit_conversion_to_the_vocabulary_unit() -> None:
    kw = Decoder.compile(reg(quantity="hp.heat_power", type="u16", scale=0.1, unit="kW"))
    assert kw.decode([65]) == 6500.0  # 6.5 kW -> W
    wh = Decoder.compile(reg(quantity="hp.heat_energy", type="u32", word_order="big", unit="Wh"))
    assert wh.decode([0x0001, 0x86A0]) == 100.0  # 100000 Wh -> kWh
    gj = Decoder.compile(reg(quantity="heatmeter.energy", type="u16", scale=0.001, unit="GJ"))
    assert gj.decode([1000]) == pytest.approx(277.78, abs=0.01)
    lh = Decoder.compile(reg(quantity="hp.flow", type="u16", unit="l/h"))
    assert lh.decode([1020]) == 17.0


def test_split_counter_kwh_low_mwh_high() -> None:
    """Stiebel's VD counters: doc 3502 kWh (0..999) + doc 3503 MWh (DEVICES.md §1.2)."""
    split = reg(quantity="hp.heat_energy", type="split", address=None,
                parts=[{"address": 3501, "weight": 1, "below": 1000},
                       {"address": 3502, "weight": 1000}])
    dec = Decoder.compile(split)
    assert dec.decode([999, 12]) == 12999.0
    assert dec.decode([0, 13]) == 13000.0
    assert dec.encode(12345.0) == [345, 12]
    with pytest.raises(InvalidValue, match=r"outside 0\.\.999"):
        dec.decode([1000, 12])  # a torn read of LO after it wrapped but before HI moved


def test_not_available_marker_is_invalid_not_a_number() -> None:
    dec = Decoder.compile(reg(type="s16", scale=0.1, invalid=[0x8000]))
    with pytest.raises(InvalidValue, match="0x8000"):
        dec.decode([0x8000])
    assert dec.decode([0x7FFF]) == 3276.7


def test_mode_map_and_bit() -> None:
    mode = Decoder.compile(reg(quantity="hp.mode", type="u16",
                               map={0: "off", 1: "heating", 3: "defrost"}))
    assert mode.decode([3]) == "defrost"
    assert mode.encode("heating") == [1]
    with pytest.raises(InvalidValue, match="not in the register's map"):
        mode.decode([2])
    heater = Decoder.compile(reg(quantity="hp.backup_heater", type="u16", bit=4))
    assert heater.decode([0b10000]) is True
    assert heater.decode([0b01111]) is False


def test_float_nan_is_invalid() -> None:
    dec = Decoder.compile(reg(type="f32", word_order="big"))
    with pytest.raises(InvalidValue):
        dec.decode([0x7FC0, 0x0000])


INT_TYPES = {DataType.U16: (0, 2**16 - 1), DataType.S16: (-(2**15), 2**15 - 1),
             DataType.U32: (0, 2**32 - 1), DataType.S32: (-(2**31), 2**31 - 1),
             DataType.U64: (0, 2**64 - 1), DataType.S64: (-(2**63), 2**63 - 1)}


@given(st.sampled_from(sorted(INT_TYPES)), st.sampled_from(list(WordOrder)),
       st.sampled_from(list(ByteOrder)), st.data())
def test_integers_round_trip(dtype: DataType, word_order: WordOrder, byte_order: ByteOrder,
                             data: st.DataObject) -> None:
    lo, hi = INT_TYPES[dtype]
    raw = data.draw(st.integers(max(lo, -(2**53)), min(hi, 2**53)))  # exact in a float
    dec = Decoder.compile(reg(quantity="hp.heat_energy", type=dtype, word_order=word_order,
                              byte_order=byte_order))
    words = dec.encode(float(raw))
    assert len(words) == dtype.registers
    assert all(0 <= w <= 0xFFFF for w in words)
    assert dec.decode(words) == raw


@given(st.floats(width=32, allow_nan=False, allow_infinity=False),
       st.sampled_from(list(WordOrder)), st.sampled_from(list(ByteOrder)))
def test_float32_round_trip(value: float, word_order: WordOrder, byte_order: ByteOrder) -> None:
    dec = Decoder.compile(reg(type="f32", word_order=word_order, byte_order=byte_order))
    got = dec.decode(dec.encode(value))
    assert isinstance(got, float)
    assert math.isclose(got, value, rel_tol=1e-6, abs_tol=1e-30)


@given(st.integers(0, 999_999_999))
def test_split_round_trip(wh: int) -> None:
    """A three-part counter (Wh, kWh, MWh) holds every Wh value exactly."""
    dec = Decoder.compile(reg(quantity="hp.electric_energy", type="split", address=None, parts=[
        {"address": 10, "weight": 0.001, "below": 1000}, {"address": 11, "weight": 1,
                                                          "below": 1000},
        {"address": 12, "weight": 1000}]))
    words = dec.encode(wh / 1000)
    assert dec.decode(words) == wh / 1000


@given(st.integers(-32768, 32767), st.sampled_from([1, 0.1, 0.01, 0.5, 2.0]))
def test_scaled_values_are_exact_to_their_resolution(raw: int, scale: float) -> None:
    dec = Decoder.compile(reg(type="s16", scale=scale))
    value = dec.decode(dec.encode(raw * scale))
    assert value == round(raw * scale, 10) or math.isclose(float(value), raw * scale)
