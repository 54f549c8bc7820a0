"""Device profiles: a Modbus device model's register map, as validated data.

A profile (``config/profiles/<vendor>_<model>.yaml``) says, per register, which vocabulary
quantity it carries, where it lives on the wire and how to turn its words into a value. All
device knowledge is here, none in code; the models below refuse anything ambiguous (a 32-bit
value without a stated word order, two registers on the same address, a mode the vocabulary
does not know) with an error that names the key.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from drivers import units
from drivers.vocabulary import VOCABULARY, Kind
from drivers.yamlfile import LocatedError, load_model


class DataType(StrEnum):
    U16 = "u16"
    S16 = "s16"
    U32 = "u32"
    S32 = "s32"
    U64 = "u64"
    S64 = "s64"
    F32 = "f32"
    F64 = "f64"
    BOOL = "bool"  # a coil or discrete input
    SPLIT = "split"  # a counter spread over several registers, e.g. kWh-low + MWh-high

    @property
    def registers(self) -> int:
        """Registers (or bits, for ``bool``) one value occupies; 0 for ``split`` (see parts)."""
        return _REGISTERS[self]


_REGISTERS: Final = {
    DataType.U16: 1, DataType.S16: 1, DataType.U32: 2, DataType.S32: 2, DataType.U64: 4,
    DataType.S64: 4, DataType.F32: 2, DataType.F64: 4, DataType.BOOL: 1, DataType.SPLIT: 0,
}


class Table(StrEnum):
    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE = "discrete"

    @property
    def function_code(self) -> int:
        return {"coil": 1, "discrete": 2, "holding": 3, "input": 4}[self.value]

    @property
    def is_bits(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE)


class WordOrder(StrEnum):
    BIG = "big"  # high word first (ABCD)
    LITTLE = "little"  # low word first (CDAB)


class ByteOrder(StrEnum):
    BIG = "big"  # as Modbus defines it
    LITTLE = "little"  # bytes swapped inside each register (BADC / DCBA devices)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


Address = Annotated[int, Field(ge=0, le=0xFFFF)]


class SplitPart(_Model):
    """One register of a split counter; the value is the sum of each part times its weight."""

    address: Address = Field(description="Wire (zero-based PDU) address of this part.")
    doc: int | None = Field(None, description="The vendor's documented number of this part.")
    name: str | None = Field(None, description="The vendor's name of this part.")
    type: Literal[DataType.U16, DataType.S16] = Field(
        DataType.U16, description="Data type of this part (one register).")
    weight: float = Field(description="What one unit of this part is worth, e.g. 1000 for MWh.")
    below: int | None = Field(
        None, description="The part's values stay below this (e.g. 1000 for kWh next to MWh); "
        "a larger value marks the reading invalid.")

    @property
    def count(self) -> int:
        return 1


class Register(_Model):
    """One value on the wire and the vocabulary quantity it carries."""

    quantity: str = Field(description="Vocabulary quantity, e.g. 'hp.supply_temp'.")
    name: str = Field(description="The vendor's own name of the register.")
    doc: int | None = Field(None, description="The vendor's documented register number.")
    address: Address | None = Field(
        None, description="Wire (zero-based PDU) address; for split counters give 'parts'.")
    table: Table | None = Field(None, description="Register table; default from 'defaults'.")
    type: DataType = Field(DataType.U16, description="Data type on the wire.")
    parts: tuple[SplitPart, ...] = Field((), description="The registers of a split counter.")
    scale: float = Field(1.0, description="Multiply the raw value by this ...")
    offset: float = Field(0.0, description="... then add this ...")
    unit: str | None = Field(
        None, description="... giving a value in this unit (default: the quantity's own unit).")
    word_order: WordOrder | None = Field(None, description="Word order of multi-register types.")
    byte_order: ByteOrder | None = Field(None, description="Byte order inside each register.")
    map: dict[int, str] | None = Field(
        None, description="Raw value to state, for state quantities such as 'hp.mode'.")
    bit: int | None = Field(None, ge=0, le=63, description="Take this bit of the raw value.")
    invalid: tuple[int, ...] = Field(
        (), description="Raw (unsigned) values that mean 'not available', e.g. 0x8000.")
    group: str | None = Field(
        None, description="Registers with the same group are always read in one transaction.")

    @field_validator("quantity")
    @classmethod
    def _known_quantity(cls, v: str) -> str:
        if v not in VOCABULARY:
            raise ValueError(f"{v!r} is not a quantity of the vocabulary")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        q = VOCABULARY[self.quantity]
        if self.type is DataType.SPLIT:
            if not self.parts or self.address is not None:
                raise ValueError("a split counter lists its 'parts' and has no 'address'")
        elif self.parts:
            raise ValueError("'parts' belongs to type 'split' only")
        elif self.address is None:
            raise ValueError("'address' is required")
        if q.kind is Kind.STATE:
            if q.states and self.map is None:
                raise ValueError(f"{q.name} is a state: give a 'map' from raw values to states")
            if self.map is not None:
                unknown = sorted(set(self.map.values()) - set(q.states))
                if unknown or not q.states:
                    raise ValueError(f"map values {unknown} are not states of {q.name} "
                                     f"(allowed: {', '.join(q.states) or 'none, it is boolean'})")
        else:
            if self.map is not None or self.bit is not None:
                raise ValueError(f"{q.name} is a {q.kind}: 'map' and 'bit' are for states")
            if self.type is DataType.BOOL:
                raise ValueError(f"{q.name} is a {q.kind}: it cannot be a bool")
            units.factor(self.unit if self.unit is not None else q.unit, q.unit)
        return self

    @property
    def spans(self) -> list[tuple[int, int]]:
        """``(address, count)`` of every register this value needs."""
        if self.type is DataType.SPLIT:
            return [(p.address, p.count) for p in self.parts]
        assert self.address is not None
        return [(self.address, self.type.registers)]

    @property
    def first(self) -> int:
        return min(a for a, _ in self.spans)

    @property
    def end(self) -> int:
        """One past the last register."""
        return max(a + n for a, n in self.spans)

    @property
    def label(self) -> str:
        """How an error names this register: wire address, the vendor's number and name."""
        doc = f" (doc {self.doc})" if self.doc is not None else ""
        return f"{self.table}:{self.first}{doc} '{self.name}'"


class Defaults(_Model):
    table: Table = Field(Table.HOLDING, description="Default register table.")
    word_order: WordOrder | None = Field(
        None, description="Default word order of 32/64-bit values; must be stated if used.")
    byte_order: ByteOrder = Field(ByteOrder.BIG, description="Default byte order in a register.")


class Limits(_Model):
    max_registers: int = Field(125, ge=1, le=125, description="Most registers in one read.")
    max_bits: int = Field(2000, ge=1, le=2000, description="Most coils/discretes in one read.")
    max_gap: int = Field(
        8, ge=0, le=124, description="Most unused registers a read may span to save a transaction.")
    boundaries: tuple[Address, ...] = Field(
        (), description="Addresses no read may cross: a read never includes both a-1 and a.")


class SerialDefaults(_Model):
    baudrate: int = Field(9600, description="Factory baud rate.")
    parity: Literal["N", "E", "O"] = Field("N", description="Factory parity.")
    stopbits: Literal[1, 2] = Field(1, description="Factory stop bits.")


class Profile(_Model):
    vendor: str = Field(description="Manufacturer.")
    model: str = Field(description="Model or model family.")
    source: str = Field(description="Where this register map comes from (document or repo@commit).")
    notes: str | None = Field(None, description="What an installer must know (settings, firmware).")
    doc_offset: int | None = Field(
        None, description="Wire address = the vendor's documented number + this (e.g. -1 for "
        "one-based manuals); checked for every register that states 'doc'.")
    unit: int = Field(1, ge=0, le=247, description="Factory Modbus unit id.")
    serial: SerialDefaults | None = Field(None, description="Factory serial line settings (RTU).")
    defaults: Defaults = Field(default_factory=Defaults)
    limits: Limits = Field(default_factory=Limits)
    registers: tuple[Register, ...] = Field(description="The register map.")

    @model_validator(mode="before")
    @classmethod
    def _apply_defaults(cls, data: object) -> object:
        """Fill each register's table and orders from 'defaults', so the model is explicit."""
        if not isinstance(data, dict):
            return data
        defaults = data.get("defaults") or {}
        regs = data.get("registers")
        if isinstance(defaults, dict) and isinstance(regs, list):
            filled = []
            for given in regs:
                reg = dict(given) if isinstance(given, dict) else given
                if isinstance(reg, dict):
                    reg.setdefault("table", defaults.get("table", Table.HOLDING.value))
                    if defaults.get("word_order") is not None:
                        reg.setdefault("word_order", defaults["word_order"])
                    reg.setdefault("byte_order", defaults.get("byte_order", ByteOrder.BIG.value))
                filled.append(reg)
            data = {**data, "registers": filled}
        return data

    @model_validator(mode="after")
    def _check_map(self) -> Self:
        if not self.registers:
            raise ValueError("'registers' is empty")
        seen: dict[str, Register] = {}
        taken: dict[tuple[Table, int], Register] = {}
        for i, reg in enumerate(self.registers):
            assert reg.table is not None
            at = ("registers", i)
            if reg.quantity in seen:
                raise LocatedError(at, f"{reg.quantity} is mapped twice: "
                                       f"{seen[reg.quantity].label} and {reg.label}")
            seen[reg.quantity] = reg
            self._check_doc(reg, at)
            multi = reg.type is DataType.SPLIT or reg.type.registers > 1
            if multi and reg.word_order is None and reg.type is not DataType.SPLIT:
                raise LocatedError(at, f"{reg.label} is {reg.type}: state 'word_order' (big = "
                                   "high word first, little = low word first) here or in "
                                   "'defaults'")
            if reg.table.is_bits != (reg.type is DataType.BOOL):
                raise LocatedError(at, f"{reg.label}: type bool goes with coil/discrete tables "
                                       "only")
            for address, count in reg.spans:
                for a in range(address, address + count):
                    other = taken.get((reg.table, a))
                    if other is not None:
                        raise LocatedError(at, f"{reg.label} overlaps {other.label} at "
                                               f"{reg.table}:{a}")
                    taken[(reg.table, a)] = reg
        for group, members in self.groups.items():
            tables = {m.table for m in members}
            span = max(m.end for m in members) - min(m.first for m in members)
            limit = self.limits.max_bits if members[0].table in (Table.COIL, Table.DISCRETE) \
                else self.limits.max_registers
            if len(tables) > 1 or span > limit:
                at = ("registers", self.registers.index(members[-1]))
                raise LocatedError(at, f"group {group!r} must lie in one table within {limit} "
                                       "registers")
        return self

    def _check_doc(self, reg: Register, at: tuple[str, int]) -> None:
        if self.doc_offset is None:
            return
        pairs: list[tuple[int | None, int | None]] = [(p.doc, p.address) for p in reg.parts]
        pairs = pairs or [(reg.doc, reg.address)]
        for doc, address in pairs:
            if doc is not None and address is not None and doc + self.doc_offset != address:
                raise LocatedError(at, f"{reg.label}: doc {doc} {self.doc_offset:+d} is "
                                       f"{doc + self.doc_offset}, not the wire address {address}")

    @cached_property
    def groups(self) -> dict[str, list[Register]]:
        out: dict[str, list[Register]] = {}
        for reg in self.registers:
            if reg.group is not None:
                out.setdefault(reg.group, []).append(reg)
        return out


def bundled_profiles_dir() -> Path:
    """Profiles shipped with hpagent: inside the wheel, or ``config/profiles`` in a checkout."""
    packaged = Path(__file__).parent / "profiles"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "config" / "profiles"


def find_profile(name: str, search: tuple[Path, ...] = ()) -> Path:
    """The file of profile ``name`` (a file stem such as 'nibe_s1155', or a path)."""
    as_path = Path(name)
    if as_path.suffix in (".yaml", ".yml") or "/" in name:
        if as_path.is_file():
            return as_path
        raise FileNotFoundError(f"profile file {name} does not exist")
    dirs = (*search, bundled_profiles_dir())
    for d in dirs:
        candidate = d / f"{name}.yaml"
        if candidate.is_file():
            return candidate
    known = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.yaml")})
    raise FileNotFoundError(f"no profile {name!r} (known: {', '.join(known)})")


def available_profiles(search: tuple[Path, ...] = ()) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in (bundled_profiles_dir(), *search):  # later directories override bundled ones
        if d.is_dir():
            found.update({p.stem: p for p in sorted(d.glob("*.yaml"))})
    return found


def load_profile(name: str, search: tuple[Path, ...] = ()) -> Profile:
    """Load and validate a profile; :class:`drivers.yamlfile.YamlFileError` names file and line."""
    return load_model(find_profile(name, search), Profile)
