"""Modbus RTU/TCP devices, read through pymodbus according to a profile.

The only module that imports pymodbus's client. A :class:`ModbusBus` is one physical link (a TCP
endpoint or a serial line) shared by every unit on it; a :class:`ModbusDevice` is one unit with
its profile. ``read`` performs the planned transactions and turns every fault into a per-register
quality, so a dead device costs one log line when it goes and one when it is back, never a crash.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import structlog
from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.pdu import ExceptionResponse
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from drivers.codec import Decoder, InvalidValue
from drivers.links import Link, SerialLink, TcpLink
from drivers.planner import Read, plan
from drivers.profile import SerialDefaults
from drivers.reading import Outage, Quality, Reading

if TYPE_CHECKING:
    from drivers.profile import Profile, Table

log = structlog.get_logger("hpagent.modbus")

EXCEPTION_NAMES = {
    1: "ILLEGAL FUNCTION", 2: "ILLEGAL DATA ADDRESS", 3: "ILLEGAL DATA VALUE",
    4: "DEVICE FAILURE", 5: "ACKNOWLEDGE", 6: "DEVICE BUSY", 8: "MEMORY PARITY ERROR",
    10: "GATEWAY PATH UNAVAILABLE", 11: "GATEWAY TARGET FAILED TO RESPOND",
}


def rtu_link(port: str, profile: Profile, baudrate: int | None = None,
             parity: Literal["N", "E", "O"] | None = None, stopbits: int | None = None
             ) -> SerialLink:
    """The RTU line: what the installer set, else the profile's factory settings."""
    factory = profile.serial or SerialDefaults()
    return SerialLink(port, baudrate=baudrate or factory.baudrate,
                      parity=parity or factory.parity, stopbits=stopbits or factory.stopbits)


class TransactionError(Exception):
    """A transaction failed; ``quality`` says whether the device answered at all."""

    def __init__(self, quality: Quality, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.quality = quality
        self.code = code


class _NoAnswer(Exception):
    """Timeout: worth retrying."""


@dataclass
class ModbusBus:
    """One client per physical link; a lock keeps units on a shared line from interleaving."""

    link: Link
    timeout: float = 1.0
    retries: int = 2
    reconnect_max: float = 300.0
    transactions: int = 0  # counted for the benchmark and for diagnostics
    _client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _next_connect: float = 0.0
    _connect_delay: float = 0.0
    _retrying: AsyncRetrying = field(init=False)

    def __post_init__(self) -> None:
        self._retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential(multiplier=0.1, max=1.0),
            retry=retry_if_exception_type(_NoAnswer), reraise=True)

    def _make_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if isinstance(self.link, TcpLink):
            return AsyncModbusTcpClient(self.link.host, port=self.link.port, timeout=self.timeout,
                                        retries=0, reconnect_delay=0)
        return AsyncModbusSerialClient(
            self.link.port, framer=FramerType.RTU, baudrate=self.link.baudrate,
            bytesize=self.link.bytesize, parity=self.link.parity, stopbits=self.link.stopbits,
            timeout=self.timeout, retries=0, reconnect_delay=0)

    async def _connected(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is not None and self._client.connected:
            return self._client
        now = time.monotonic()
        if now < self._next_connect:
            raise TransactionError(Quality.UNAVAILABLE, f"{self.link}: not connected (next "
                                   f"attempt in {self._next_connect - now:.0f} s)")
        if self._client is not None:
            self._client.close()
        self._client = self._make_client()
        try:
            ok = await self._client.connect()
        except (OSError, ModbusException) as exc:  # serial ports raise when the device is gone
            ok, reason = False, str(exc)
        else:
            reason = "connection refused or port unavailable"
        if not ok:
            self._connect_delay = min(max(2 * self._connect_delay, 1.0), self.reconnect_max)
            self._next_connect = now + self._connect_delay
            raise TransactionError(Quality.UNAVAILABLE, f"{self.link}: cannot connect: {reason}")
        self._connect_delay = 0.0
        return self._client

    async def read(self, table: Table, address: int, count: int, unit: int) -> list[int]:
        """Words (or 0/1 bits) of one read; :class:`TransactionError` on any failure."""
        async with self._lock:
            try:  # the common path, without tenacity's ~20 us a call
                return await self._transact(table, address, count, unit)
            except _NoAnswer as exc:
                missed: _NoAnswer | None = exc
            # No answer: that try is tenacity's first attempt, so the back-off comes before the
            # first retry, and a bus with retries=0 gives up at once.
            try:
                async for attempt in self._retrying:
                    with attempt:
                        if missed is not None:
                            failed, missed = missed, None
                            raise failed
                        return await self._transact(table, address, count, unit)
            except _NoAnswer as exc:
                raise TransactionError(Quality.UNAVAILABLE, str(exc)) from None
            raise AssertionError("unreachable")  # pragma: no cover

    async def _transact(self, table: Table, address: int, count: int, unit: int) -> list[int]:
        client = await self._connected()
        fc = table.function_code
        call = (client.read_coils if fc == 1 else client.read_discrete_inputs if fc == 2
                else client.read_holding_registers if fc == 3 else client.read_input_registers)
        self.transactions += 1
        try:
            rr = await call(address, count=count, device_id=unit)
        except ConnectionException as exc:
            where = f"{self.link} unit {unit} {table}:{address}+{count}"
            client.close()
            raise TransactionError(Quality.UNAVAILABLE,
                                   f"{where}: connection lost: {exc}") from None
        except ModbusException as exc:
            where = f"{self.link} unit {unit} {table}:{address}+{count}"
            raise _NoAnswer(f"{where}: no answer within {self.timeout:g} s") from exc
        if isinstance(rr, ExceptionResponse) or rr.isError():
            where = f"{self.link} unit {unit} {table}:{address}+{count}"
            code = getattr(rr, "exception_code", 0)
            name = EXCEPTION_NAMES.get(code, "unknown")
            raise TransactionError(Quality.DEVICE_ERROR, f"{where}: exception {code} {name}", code)
        if table.is_bits:
            return [int(b) for b in rr.bits[:count]]
        return list(rr.registers)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class ModbusDevice:
    """One Modbus unit described by a profile; implements :class:`drivers.reading.Driver`."""

    def __init__(self, name: str, bus: ModbusBus, unit: int, profile: Profile,
                 max_gap: int | None = None) -> None:
        self.name = name
        self.bus = bus
        self.unit = unit
        self.profile = profile
        self.decoders = [Decoder.compile(r) for r in profile.registers]
        self.reads: list[Read] = plan(profile.registers, profile.limits, max_gap)
        self.last_words: dict[Read, list[int]] = {}  # what each read returned last, for diagnosis
        self._failing: dict[str, str] = {}  # quantity -> detail, for transition logging
        self._log = log.bind(source=name, link=str(bus.link), unit=unit)
        self.outage = Outage(self._log)

    async def open(self) -> None:
        """Connecting is lazy (and retried with back-off) inside ``read``."""

    async def close(self) -> None:
        self.bus.close()

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name, "driver": "modbus", "link": str(self.bus.link), "unit": self.unit,
            "profile": f"{self.profile.vendor} {self.profile.model}",
            "registers": len(self.decoders), "reads_per_poll": len(self.reads),
        }

    async def read(self) -> list[Reading]:
        readings: list[Reading] = []
        answered = False
        failure: TransactionError | None = None
        index = 0
        while index < len(self.reads):
            rd = self.reads[index]
            index += 1
            try:
                words = await self.bus.read(rd.table, rd.address, rd.count, self.unit)
            except TransactionError as exc:
                if exc.code == 2 and len(rd.members) > 1 and self._split(rd):
                    index -= 1  # the device refused the gaps: read the smaller pieces instead
                    continue
                answered |= exc.quality is Quality.DEVICE_ERROR
                failure = exc
                readings += [self._failed(self.decoders[i], exc) for i in rd.members]
                continue
            answered = True
            self.last_words[rd] = words
            readings += [self._decode(self.decoders[i], rd, words) for i in rd.members]
        if answered:
            self.outage.up()
        else:
            self.outage.down(str(failure) if failure else None)
        return readings

    def _split(self, rd: Read) -> bool:
        """Replace a read that spans gaps by gap-free reads; False if it has no gaps."""
        regs = [self.profile.registers[i] for i in rd.members]
        pieces = plan(regs, self.profile.limits, max_gap=0)
        if len(pieces) <= 1:
            return False
        pieces = [Read(p.table, p.address, p.count, tuple(rd.members[m] for m in p.members))
                  for p in pieces]
        at = self.reads.index(rd)
        self.reads[at : at + 1] = pieces
        self._log.warning("modbus.gap_refused", read=f"{rd.table}:{rd.address}+{rd.count}",
                          now_reads=len(self.reads))
        return True

    def raw_words(self, index: int) -> list[int] | None:
        """The words register ``index`` had in the last successful read, in wire order."""
        dec = self.decoders[index]
        for rd, words in self.last_words.items():
            if index in rd.members:
                return list(_own_words(dec, rd, words))
        return None

    def _decode(self, dec: Decoder, rd: Read, words: Sequence[int]) -> Reading:
        try:
            value = dec.decode(_own_words(dec, rd, words))
        except InvalidValue as exc:
            return self._bad(dec, Quality.INVALID, f"{self.bus.link} unit {self.unit} "
                             f"{dec.register.label}: {exc}")
        if dec.quantity in self._failing:
            del self._failing[dec.quantity]
            self._log.info("register.recovered", quantity=dec.quantity,
                           register=dec.register.label)
        return Reading(dec.quantity, value)

    def _failed(self, dec: Decoder, exc: TransactionError) -> Reading:
        return self._bad(dec, exc.quality, f"{exc} reading {dec.register.label}")

    def _bad(self, dec: Decoder, quality: Quality, detail: str) -> Reading:
        """A reading without value; register faults are logged once, outages per device."""
        if quality is not Quality.UNAVAILABLE:
            if dec.quantity not in self._failing:
                self._log.warning("register.failed", quantity=dec.quantity, detail=detail)
            self._failing[dec.quantity] = detail
        return Reading(dec.quantity, None, quality, detail=detail)


def _own_words(dec: Decoder, rd: Read, words: Sequence[int]) -> Sequence[int]:
    """A register's own words, cut from the words of the read that covers it."""
    if len(dec.spans) == 1:
        at = dec.spans[0][0] - rd.address
        return words[at : at + dec.spans[0][1]]
    return [w for address, count in dec.spans
            for w in words[address - rd.address : address - rd.address + count]]
