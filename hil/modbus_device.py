"""Any profile as a Modbus device on the wire: a pymodbus server whose registers hold values.

The registers are encoded with the agent's own codec from vocabulary values, so a test or the
bench states what the device shows in the vocabulary's terms and can read every expected value
off that. Every table gets one contiguous block from its lowest to its highest register (gaps
read as zero, as on most real devices). Read transactions are counted, and every read can be
made to fail with a Modbus exception, for fault tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.codec import Decoder
from drivers.profile import Profile, Table
from drivers.reading import Value

_TABLE_ORDER = (Table.COIL, Table.DISCRETE, Table.HOLDING, Table.INPUT)  # pymodbus's tuple order


class RegisterImage:
    """The words of every register of a profile, computed from vocabulary values."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.decoders = [Decoder.compile(r) for r in profile.registers]
        self.spans: dict[Table, tuple[int, int]] = {}
        for dec in self.decoders:
            table = dec.register.table
            assert table is not None
            lo, hi = self.spans.get(table, (0xFFFF, 0))
            self.spans[table] = (min(lo, dec.register.first), max(hi, dec.register.end))

    def writes(self, values: Mapping[str, Value]) -> list[tuple[Table, int, list[int]]]:
        """``(table, address, words)`` for every register whose quantity is in ``values``."""
        out: list[tuple[Table, int, list[int]]] = []
        for dec in self.decoders:
            if dec.quantity not in values:
                continue
            words = dec.encode(values[dec.quantity])
            table = dec.register.table
            assert table is not None
            pos = 0
            for address, count in dec.spans:
                out.append((table, address, words[pos : pos + count]))
                pos += count
        return out

    def sim_device(self, unit: int, action: Callable[..., Any]) -> SimDevice:
        blocks: list[list[SimData]] = []
        for table in _TABLE_ORDER:
            lo, hi = self.spans.get(table, (0, 1))
            kind = DataType.BITS if table.is_bits else DataType.REGISTERS
            blocks.append([SimData(lo, count=hi - lo, values=False if table.is_bits else 0,
                                   datatype=kind)])
        return SimDevice(id=unit, simdata=(blocks[0], blocks[1], blocks[2], blocks[3]),
                         action=action)


class SimulatedModbusDevice:
    """A unit served over Modbus TCP (``port``) or RTU (``serial_port``); more units can share
    the line (:meth:`add_unit`), as behind an RS-485 bus or a Modbus TCP gateway."""

    def __init__(self, profile: Profile, *, host: str = "127.0.0.1", port: int = 5020,
                 serial_port: str | None = None, unit: int = 1) -> None:
        self.image = RegisterImage(profile)
        self.host, self.port, self.serial_port, self.unit = host, port, serial_port, unit
        self.units: dict[int, RegisterImage] = {unit: self.image}
        self.reads = 0  # read transactions answered (or refused)
        self.fail_with: ExcCodes | None = None  # answer every read with this exception
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._serving: asyncio.Task[None] | None = None

    def add_unit(self, profile: Profile, unit: int) -> None:
        """Another device on the same line (before :meth:`start`)."""
        if unit in self.units:
            raise ValueError(f"unit {unit} is taken")
        self.units[unit] = RegisterImage(profile)

    async def _on_request(self, _fc: int, _start: int, _address: int, _count: int,
                          _registers: list[int], set_values: list[int] | None) -> ExcCodes | None:
        if set_values is None:  # a client's read (our own updates come with values)
            self.reads += 1
            return self.fail_with
        return None

    async def show(self, values: Mapping[str, Value], unit: int | None = None) -> None:
        """Put these vocabulary values into the registers (of ``unit``, default the first)."""
        assert self._server is not None, "start() first"
        unit = self.unit if unit is None else unit
        for table, address, words in self.units[unit].writes(values):
            await self._server.async_setValues(unit, table.function_code, address, words)

    async def start(self, values: Mapping[str, Value] | None = None) -> None:
        devices = [image.sim_device(unit, self._on_request)
                   for unit, image in self.units.items()]
        if self.serial_port is not None:
            self._server = ModbusSerialServer(devices, framer=FramerType.RTU,
                                              port=self.serial_port, baudrate=9600)
        else:
            self._server = ModbusTcpServer(devices, address=(self.host, self.port))
        if values:
            await self.show(values)
        self._serving = asyncio.create_task(self._server.serve_forever())
        await asyncio.sleep(0.05)  # let the listener bind before clients connect

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
        if self._serving is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._serving
            self._serving = None
