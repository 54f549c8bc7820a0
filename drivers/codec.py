"""Pure conversion between register words and vocabulary values, both ways.

A profile is compiled once into :class:`Decoder` objects, so that a poll only slices words and
calls a precomputed ``struct`` format. ``encode`` is the inverse, used by the bench's simulated
devices and by round-trip tests: ``decode(encode(x)) == x`` for every profile.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from drivers import units
from drivers.profile import ByteOrder, DataType, Register, SplitPart, WordOrder
from drivers.reading import Value
from drivers.vocabulary import VOCABULARY, Kind

_FORMATS: Final = {
    DataType.U16: "H", DataType.S16: "h", DataType.U32: "I", DataType.S32: "i",
    DataType.U64: "Q", DataType.S64: "q", DataType.F32: "f", DataType.F64: "d",
}
_FLOATS: Final = (DataType.F32, DataType.F64)


class InvalidValue(ValueError):
    """The device answered with its 'not available' marker or an impossible value."""


def _words_to_bytes(words: Sequence[int], word_order: WordOrder | None,
                    byte_order: ByteOrder) -> bytes:
    ws = list(words)
    if word_order is WordOrder.LITTLE:
        ws.reverse()
    raw = struct.pack(f">{len(ws)}H", *ws)
    if byte_order is ByteOrder.LITTLE:
        raw = b"".join(raw[i : i + 2][::-1] for i in range(0, len(raw), 2))
    return raw


def _bytes_to_words(raw: bytes, word_order: WordOrder | None, byte_order: ByteOrder) -> list[int]:
    if byte_order is ByteOrder.LITTLE:
        raw = b"".join(raw[i : i + 2][::-1] for i in range(0, len(raw), 2))
    ws = list(struct.unpack(f">{len(raw) // 2}H", raw))
    if word_order is WordOrder.LITTLE:
        ws.reverse()
    return ws


def _decimals(step: float) -> int | None:
    """Decimal places that a value with resolution ``step`` can carry (None: don't round)."""
    if step <= 0 or not math.isfinite(step):
        return None
    d = -math.floor(math.log10(step) + 1e-9)
    return max(d, 0) + 1 if step != 10.0 ** -d else max(d, 0)


@dataclass(frozen=True, slots=True)
class Decoder:
    """How to read one register's value from the words of the read that covers it."""

    register: Register
    quantity: str
    spans: tuple[tuple[int, int], ...]  # (address, count) of each part
    fmt: struct.Struct | None
    factor: float  # scale x unit conversion
    offset: float  # offset x unit conversion
    decimals: int | None
    plain16: bool  # one big-endian 16-bit register: decoded without struct

    @classmethod
    def compile(cls, reg: Register) -> Decoder:
        q = VOCABULARY[reg.quantity]
        conv = 1.0 if q.kind is Kind.STATE else units.factor(reg.unit or q.unit, q.unit)
        fmt = None if reg.type in (DataType.SPLIT, DataType.BOOL) else struct.Struct(
            ">" + _FORMATS[reg.type])
        step = abs(reg.scale * conv) * (min(p.weight for p in reg.parts) if reg.parts else 1.0)
        decimals = None if reg.type in _FLOATS else _decimals(step)
        plain16 = reg.type in (DataType.U16, DataType.S16) and _bo(reg) is ByteOrder.BIG
        return cls(reg, reg.quantity, tuple(reg.spans), fmt, reg.scale * conv,
                   reg.offset * conv, decimals, plain16)

    def raw(self, words: Sequence[int]) -> int | float:
        """The raw number in ``words`` (this register's own words, in wire order)."""
        reg = self.register
        if reg.type is DataType.SPLIT:
            total = 0.0
            pos = 0
            for part in reg.parts:
                n = part.count
                v = _part_value(part, words[pos : pos + n])
                if part.below is not None and not 0 <= v < part.below:
                    raise InvalidValue(f"part {part.address} = {v} is outside 0..{part.below - 1}")
                total += v * part.weight
                pos += n
            return total
        if reg.type is DataType.BOOL:
            return int(bool(words[0]))
        if self.plain16:  # the common case, without building bytes
            word = words[0]
            if word in reg.invalid:
                raise InvalidValue(f"raw value 0x{word:X} means 'not available'")
            return word - 0x10000 if reg.type is DataType.S16 and word & 0x8000 else word
        assert self.fmt is not None
        raw = _words_to_bytes(words, reg.word_order, _bo(reg))
        if reg.invalid:
            unsigned = int.from_bytes(raw, "big")
            if unsigned in reg.invalid:
                raise InvalidValue(f"raw value 0x{unsigned:X} means 'not available'")
        value: int | float = self.fmt.unpack(raw)[0]
        return value

    def decode(self, words: Sequence[int]) -> Value:
        """The vocabulary value; raises :class:`InvalidValue` for 'not available' markers."""
        raw = self.raw(words)
        reg = self.register
        if reg.bit is not None:
            return bool((int(raw) >> reg.bit) & 1)
        if reg.map is not None:
            try:
                return reg.map[int(raw)]
            except KeyError:
                raise InvalidValue(f"raw value {raw} is not in the register's map") from None
        if reg.type is DataType.BOOL:
            return bool(raw)
        if isinstance(raw, float) and not math.isfinite(raw):
            raise InvalidValue(f"raw value {raw} is not a number")
        value = raw * self.factor + self.offset
        if self.decimals is not None:
            return round(value, self.decimals)
        return float(f"{value:.7g}") if reg.type is DataType.F32 else value

    def encode(self, value: Value) -> list[int]:
        """Words (wire order, concatenated over parts) that decode to ``value``."""
        reg = self.register
        if reg.map is not None:
            inverse = {v: k for k, v in reg.map.items()}
            raw: float = inverse[str(value)]
        elif reg.bit is not None:
            raw = (1 << reg.bit) if value else 0
        elif reg.type is DataType.BOOL:
            return [int(bool(value))]
        else:
            assert isinstance(value, int | float)
            raw = (float(value) - self.offset) / self.factor
        if reg.type is DataType.SPLIT:
            return _encode_split(reg.parts, raw)
        assert self.fmt is not None
        number = raw if reg.type in _FLOATS else _to_int(raw, reg.type)
        return _bytes_to_words(self.fmt.pack(number), reg.word_order, _bo(reg))


def _bo(reg: Register) -> ByteOrder:
    return reg.byte_order or ByteOrder.BIG


def _to_int(raw: float, dtype: DataType) -> int:
    n = round(raw)
    bits = 16 * dtype.registers
    if dtype in (DataType.U16, DataType.U32, DataType.U64):
        return max(0, min(n, (1 << bits) - 1))
    return max(-(1 << (bits - 1)), min(n, (1 << (bits - 1)) - 1))


def _part_value(part: SplitPart, words: Sequence[int]) -> int:
    dtype = DataType(part.type)
    fmt = _FORMATS[dtype]
    return int(struct.unpack(">" + fmt, struct.pack(f">{len(words)}H", *words))[0])


def _encode_split(parts: Sequence[SplitPart], raw: float) -> list[int]:
    """Spread ``raw`` over the parts, heaviest first, in whole units of the lightest part."""
    unit = min(p.weight for p in parts)
    remaining = round(raw / unit)
    values: dict[int, int] = {}
    for part in sorted(parts, key=lambda p: -p.weight):
        per = round(part.weight / unit)
        values[part.address], remaining = divmod(remaining, per)
    words: list[int] = []
    for part in parts:
        dtype = DataType(part.type)
        packed = struct.pack(">" + _FORMATS[dtype], _to_int(values[part.address], dtype))
        words += list(struct.unpack(f">{part.count}H", packed))
    return words
