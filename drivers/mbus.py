"""A wired M-Bus line: transactions with heat meters, the meter as a driver, and scanning.

Frames are built, checked and decoded by :mod:`drivers.mbus_frames` (pure); this module does the
I/O, through :mod:`drivers.serialport` (asynchronous, serial or TCP), not through pyMeterBus's
blocking pyserial helpers.

Link timing (EN 13757-2): a slave starts its answer between 11 bit times and 330 bit times + 50 ms
after the request; the characters of a frame follow each other without pause. The master waits
``timeout`` for the first byte (generous: 0.19 s would do at 2400 baud), then for the rest of the
frame its transmission time at the line's speed (11 bits a character at 8E1) with 50 % margin,
plus ``timeout``; a request that fails is repeated ``retries`` times.

Addressing: primary addresses 0-250; a 16-hex-digit secondary address (8 BCD digits of the
identification number, manufacturer, version, medium; ``F`` digits are wildcards) selects a
meter with SND_UD CI=0x52 to address 253 (0xFD), which answers E5 and then answers REQ_UD2 at
0xFD. :func:`scan_primary` and :func:`scan_secondary` find meters and report progress as they go.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_none

from drivers.links import SerialLink, TcpLink
from drivers.mbus_frames import (
    ACK,
    ADDRESS_SELECTED,
    HEAT_MEDIA,
    HEATMETER_QUANTITIES,
    MAX_FRAME,
    MAX_PRIMARY,
    STATUS_PERMANENT_ERROR,
    ApplicationError,
    DecodeError,
    FrameError,
    Response,
    check_frame,
    decode_response,
    frame_length,
    matches,
    parse_address,
    req_ud2,
    select_frame,
    snd_nke,
)
from drivers.reading import Outage, Quality, Reading
from drivers.serialport import ByteStream, StreamClosed, open_stream

log = structlog.get_logger("hpagent.mbus")


class MbusError(Exception):
    """A transaction failed; ``quality`` says what the sampler should record."""

    quality = Quality.UNAVAILABLE


class NoAnswer(MbusError):
    """Nothing came back within the timeout."""


class BadFrame(MbusError):
    """Something came back, but not a well-formed frame (noise, or several slaves at once)."""


class LinkError(MbusError):
    """The serial port or TCP connection is unavailable."""


class MeterError(MbusError):
    """The meter answered and reports an error."""

    quality = Quality.DEVICE_ERROR


class Undecodable(MbusError):
    """The meter answered with a well-framed answer we cannot read."""

    quality = Quality.INVALID


class _Retry(Exception):
    """One attempt failed in a way worth repeating; ``kind`` is raised if none succeeds."""

    def __init__(self, kind: type[MbusError], message: str) -> None:
        super().__init__(message)
        self.kind = kind


def char_time(link: SerialLink | TcpLink) -> float:
    """Seconds per character: start + data + parity + stop bits (2400 8E1 over TCP)."""
    if isinstance(link, TcpLink):
        return 11 / 2400
    bits = 1 + link.bytesize + (link.parity != "N") + link.stopbits
    return bits / link.baudrate


def answer_window(link: SerialLink | TcpLink) -> float:
    """The latest a slave may start answering, plus its first character (EN 13757-2:
    330 bit times + 50 ms), in seconds: 0.19 s at 2400 baud."""
    bit = char_time(link) / 11 if isinstance(link, TcpLink) else 1 / link.baudrate
    return 330 * bit + 0.050 + char_time(link)


class MbusMaster:
    """One M-Bus line: a serial port with a level converter, or a TCP M-Bus gateway.

    Half duplex, so one transaction at a time: callers hold :attr:`lock` around a sequence that
    belongs together (select, then read). The line is opened on first use and again after it
    failed.
    """

    def __init__(self, link: SerialLink | TcpLink, *, timeout: float = 1.0,
                 retries: int = 2) -> None:
        if not timeout > 0 or retries < 0:
            raise ValueError(f"{link}: timeout must be > 0 and retries >= 0")
        self.link = link
        self.timeout = timeout
        self.retries = retries
        self.lock = asyncio.Lock()
        self.transactions = 0
        self._stream: ByteStream | None = None
        self._dirty = False  # a failed attempt may leave a late answer on the line

    def char_time(self) -> float:
        return char_time(self.link)

    async def close(self) -> None:
        if self._stream is not None:
            await self._stream.close()
            self._stream = None

    async def _open(self) -> ByteStream:
        if self._stream is None:
            try:
                self._stream = await open_stream(self.link)
            except OSError as exc:
                raise LinkError(str(exc)) from None
            self._dirty = False
        return self._stream

    async def transact(self, request: bytes, what: str, where: str, *,
                       retries: int | None = None, timeout: float | None = None) -> bytes:
        """Send ``request`` and return the answer frame (framing checked), with retries.

        No wait between attempts: the timeout that failed the last one was the wait.
        """
        wait = self.timeout if timeout is None else timeout
        attempts = (self.retries if retries is None else retries) + 1
        retrying = AsyncRetrying(stop=stop_after_attempt(attempts), wait=wait_none(),
                                 retry=retry_if_exception_type(_Retry), reraise=True)
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(request, what, where, wait)
        except _Retry as exc:
            plural = "s" if attempts > 1 else ""
            raise exc.kind(f"{where}: {exc} ({attempts} attempt{plural})") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, request: bytes, what: str, where: str, wait: float) -> bytes:
        stream = await self._open()
        try:
            if self._dirty:
                await self._drain(stream)
            self.transactions += 1
            await stream.write(request)
            return await self._receive(stream, what, wait)
        except StreamClosed as exc:
            await self.close()
            raise LinkError(f"{where}: {exc}") from None

    async def _receive(self, stream: ByteStream, what: str, wait: float) -> bytes:
        buf = bytearray()
        try:
            async with asyncio.timeout(wait):
                buf += await stream.read()
        except TimeoutError:
            raise _Retry(NoAnswer, f"no answer to {what} within {wait:g} s") from None
        loop = asyncio.get_running_loop()
        try:
            need = frame_length(bytes(buf))
            deadline = loop.time() + self.timeout + 1.5 * self.char_time() * (need or MAX_FRAME)
            while need is None or len(buf) < need:
                async with asyncio.timeout_at(deadline):
                    buf += await stream.read()
                need = frame_length(bytes(buf))
            if len(buf) > need:
                raise FrameError(f"{len(buf) - need} stray bytes after the frame")
            frame = bytes(buf)
            check_frame(frame)
        except TimeoutError:
            self._dirty = True
            raise _Retry(BadFrame, f"incomplete answer to {what}: {len(buf)} bytes, "
                                   f"{buf[:8].hex(' ').upper()}…") from None
        except FrameError as exc:
            self._dirty = True
            raise _Retry(BadFrame, f"bad answer to {what}: {exc}") from None
        return frame

    async def _drain(self, stream: ByteStream) -> None:
        """Discard what is still arriving (the rest of a collision, a late answer): the line
        must be quiet, for three characters' time or 20 ms, before the next request."""
        quiet = max(0.02, 3 * self.char_time())
        with contextlib.suppress(TimeoutError):
            while True:
                async with asyncio.timeout(quiet):
                    await stream.read()
        self._dirty = False

    # -- transactions ---------------------------------------------------------------------------

    def where(self, address: int | str) -> str:
        return f"{self.link} address {address}"

    async def ping(self, address: int) -> None:
        """SND_NKE; the meter must answer E5."""
        where = self.where(address)
        answer = await self.transact(snd_nke(address), "SND_NKE", where)
        if answer != bytes([ACK]):
            raise BadFrame(f"{where}: SND_NKE answered with {answer[:8].hex(' ').upper()}, "
                           "not E5")

    async def select(self, secondary: str) -> None:
        """Select the meter (or meters) matching ``secondary``; E5 from exactly one expected."""
        where = self.where(secondary)
        answer = await self.transact(select_frame(secondary), "select (SND_UD CI=52)", where)
        if answer != bytes([ACK]):
            raise BadFrame(f"{where}: select answered with {answer[:8].hex(' ').upper()}, "
                           "not E5")

    async def deselect(self) -> None:
        """SND_NKE to 0xFD: a selected meter acknowledges and is deselected.

        Usually nobody is selected and nobody answers, so wait only the standard's answer
        window, not the generous ``timeout``.
        """
        with contextlib.suppress(NoAnswer, BadFrame):
            await self.transact(snd_nke(ADDRESS_SELECTED), "SND_NKE to 253",
                                self.where(ADDRESS_SELECTED), retries=0,
                                timeout=min(self.timeout, answer_window(self.link)))

    async def request(self, address: int, where: str) -> Response:
        """REQ_UD2 and decode the RSP_UD."""
        frame = await self.transact(req_ud2(address), "REQ_UD2", where)
        try:
            return decode_response(frame)
        except ApplicationError as exc:
            raise MeterError(f"{where}: {exc}") from None
        except FrameError as exc:
            raise BadFrame(f"{where}: {exc}") from None
        except DecodeError as exc:
            raise Undecodable(f"{where}: {exc}") from None


async def read_meter(master: MbusMaster, target: int | str, *, reset: bool) -> Response:
    """One reading of the meter at a primary or secondary address.

    ``reset`` first sends SND_NKE, the link reset a master sends before talking to a slave
    (to the primary address; to 0xFD for secondary addressing, which deselects whatever was
    selected).
    """
    if isinstance(target, int):
        if reset:
            await master.ping(target)
        return await master.request(target, master.where(target))
    if reset:
        await master.deselect()
    await master.select(target)
    response = await master.request(ADDRESS_SELECTED, master.where(target))
    if not matches(response.secondary_address, target):
        raise MeterError(f"{master.where(target)}: the selected meter is "
                         f"{response.secondary_address}")
    return response


# -- the driver -----------------------------------------------------------------------------------


class MbusMeter:
    """A heat meter on M-Bus; implements :class:`drivers.reading.Driver`.

    Every :meth:`read` is one request and one answer (plus SND_NKE before the first, and the
    select for secondary addressing). Battery meters count their readouts, so the poll
    interval is the configuration's business. Meters on one bus share one :class:`MbusMaster`
    (``master=``); without it the meter gets its own.
    """

    def __init__(self, name: str, link: SerialLink | TcpLink, *, address: int | None = None,
                 secondary: str | None = None, timeout: float = 1.0, retries: int = 2,
                 master: MbusMaster | None = None) -> None:
        if (address is None) == (secondary is None):
            raise ValueError(f"{name}: give exactly one of address and secondary")
        try:
            target = parse_address(str(address) if address is not None else str(secondary))
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        self.name = name
        self.target: int | str = target
        self.master = master or MbusMaster(link, timeout=timeout, retries=retries)
        self.last: Response | None = None
        self._reset = True
        self._quantities: tuple[str, ...] = HEATMETER_QUANTITIES
        self._error: str | None = None
        self._status: int = 0
        self._log = log.bind(source=name, link=str(self.master.link), address=str(target))
        self.outage = Outage(self._log)

    async def open(self) -> None:
        """The line is opened lazily by the first read."""

    async def close(self) -> None:
        await self.master.close()

    def describe(self) -> dict[str, object]:
        info: dict[str, object] = {
            "name": self.name, "driver": "mbus", "link": str(self.master.link),
            "address": self.target, "transactions": self.master.transactions,
        }
        if self.last is not None:
            info.update(manufacturer=self.last.manufacturer, ident=self.last.ident,
                        medium=self.last.medium_name,
                        secondary_address=self.last.secondary_address)
        return info

    async def read(self) -> list[Reading]:
        async with self.master.lock:
            try:
                response = await read_meter(self.master, self.target, reset=self._reset)
            except MbusError as exc:
                self._reset = True
                return self._failed(exc)
        self._reset = False
        self.outage.up()
        self._note_meter(response)
        self.last = response
        where = self.master.where(self.target)
        if response.status & STATUS_PERMANENT_ERROR:
            detail = f"{where}: meter reports {response.status_text}"
            return [Reading(q, None, Quality.DEVICE_ERROR, detail=detail)
                    for q in sorted({*response.values, *response.invalid})]
        readings = [Reading(q, v) for q, v in response.values.items()]
        readings += [Reading(q, None, Quality.INVALID, detail=f"{where}: {why}")
                     for q, why in response.invalid.items()]
        self._quantities = tuple(sorted(r.quantity for r in readings)) or HEATMETER_QUANTITIES
        return readings

    def _failed(self, exc: MbusError) -> list[Reading]:
        """Readings without values; an outage or a meter error is logged when it starts."""
        if exc.quality is Quality.UNAVAILABLE:
            self.outage.down(str(exc))
        else:
            self.outage.up()
            if self._error is None:
                self._log.warning("mbus.meter_error", reason=str(exc))
            self._error = str(exc)
        return [Reading(q, None, exc.quality, detail=str(exc)) for q in self._quantities]

    def _note_meter(self, response: Response) -> None:
        """Log a meter error ending, a status change, and a meter that is no heat meter."""
        if self._error is not None:
            self._error = None
            self._log.info("mbus.meter_error_cleared")
        if response.status != self._status:
            self._status = response.status
            if response.status:
                self._log.warning("mbus.status", status=f"0x{response.status:02X}",
                                  meaning=response.status_text)
            else:
                self._log.info("mbus.status_cleared")
        if self.last is None and response.medium not in HEAT_MEDIA:
            self._log.warning("mbus.not_a_heat_meter", medium=response.medium_name,
                              secondary_address=response.secondary_address)


# -- scanning -------------------------------------------------------------------------------------


class Probe(enum.Enum):
    NOTHING = "nothing"
    SINGLE = "single"
    COLLISION = "collision"


@dataclass(frozen=True, slots=True)
class Found:
    """A meter a scan found: where it answers and, if it answered a REQ_UD2, who it is."""

    primary: int | None
    secondary: str | None  # still a mask with wildcards if the meter's data was unreadable
    response: Response | None


@dataclass(frozen=True, slots=True)
class ScanStep:
    """Progress of a scan, one per probe: what was probed and what it found."""

    phase: Literal["primary", "secondary"]
    probe: str  # the primary address or the secondary address mask probed
    done: int  # probes so far
    total: int | None  # probes a primary scan makes; None for the secondary search
    found: Found | None = None
    collision: bool = False  # several meters answered at once


async def scan_primary(master: MbusMaster, addresses: Iterable[int] = range(MAX_PRIMARY + 1)
                       ) -> AsyncIterator[ScanStep]:
    """SND_NKE to each address; a meter answering E5 is then asked who it is (REQ_UD2).

    A garbled answer to either means several meters share the address. LinkError propagates.
    """
    wanted = list(addresses)
    for done, address in enumerate(wanted, start=1):
        result, response = await _probe_primary(master, address)
        found = None
        if result is Probe.SINGLE:
            secondary = response.secondary_address if response is not None else None
            found = Found(address, secondary, response)
        yield ScanStep("primary", str(address), done, len(wanted), found=found,
                       collision=result is Probe.COLLISION)


async def _probe(master: MbusMaster, announce: Callable[[], Awaitable[None]], address: int,
                 where: str) -> tuple[Probe, Response | None]:
    """``announce`` (a ping or a selection), then read: nobody, one meter, or several."""
    async with master.lock:
        try:
            await announce()
        except NoAnswer:
            return Probe.NOTHING, None
        except BadFrame:
            return Probe.COLLISION, None
        try:
            return Probe.SINGLE, await master.request(address, where)
        except BadFrame:
            # Identical E5s from several meters merge into one; their data answers do not.
            return Probe.COLLISION, None
        except (NoAnswer, MeterError, Undecodable):
            return Probe.SINGLE, None


async def _probe_primary(master: MbusMaster, address: int) -> tuple[Probe, Response | None]:
    return await _probe(master, lambda: master.ping(address), address, master.where(address))


async def probe_secondary(master: MbusMaster, mask: str) -> tuple[Probe, Response | None]:
    """Select ``mask``: nobody, exactly one meter (then read it), or several (collision)."""
    result, response = await _probe(master, lambda: master.select(mask), ADDRESS_SELECTED,
                                    master.where(mask))
    if response is not None and not matches(response.secondary_address, mask):
        return Probe.COLLISION, None
    return result, response


async def secondary_search(probe: Callable[[str], Awaitable[tuple[Probe, Response | None]]],
                           ) -> AsyncIterator[ScanStep]:
    """The standard wildcard search over the 8 BCD digits of the identification number.

    Starting from ``FFFFFFFFFFFFFFFF``, fix the first wildcard digit to 0..9 in turn: no answer
    leaves that branch, one meter is found, and a collision narrows the mask one digit further
    (depth first, as libmbus's ``mbus_scan_2nd_address_range`` does). Manufacturer, version and
    medium stay wildcards.
    """
    done = 0

    async def search(mask: str, position: int) -> AsyncIterator[ScanStep]:
        nonlocal done
        for digit in "0123456789":
            probe_mask = mask[:position] + digit + mask[position + 1:]
            result, response = await probe(probe_mask)
            done += 1
            if result is Probe.SINGLE:
                found = Found(None, response.secondary_address if response else probe_mask,
                              response)
                yield ScanStep("secondary", probe_mask, done, None, found=found)
            elif result is Probe.COLLISION and position < 7:
                yield ScanStep("secondary", probe_mask, done, None, collision=True)
                async for step in search(probe_mask, position + 1):
                    yield step
            else:
                yield ScanStep("secondary", probe_mask, done, None,
                               collision=result is Probe.COLLISION)

    async for step in search("F" * 16, 0):
        yield step


async def scan_secondary(master: MbusMaster) -> AsyncIterator[ScanStep]:
    """Deselect everything, then :func:`secondary_search` over the bus."""
    async with master.lock:
        await master.deselect()

    async for step in secondary_search(functools.partial(probe_secondary, master)):
        yield step
