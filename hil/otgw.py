"""The bench's OpenTherm Gateway: a thermostat polling a boiler model, reported as an OTGW does.

The emulator plays three parts. The *thermostat* polls the boiler in a fixed rotation, with the
status exchange (data-id 0) between every other message, as OpenTherm masters do (the
specification wants a frame at least every second). The *boiler* (a
:class:`hil.boiler_model.BoilerModel`) answers from its current state, with UNKNOWN-DATAID for
the ids it does not support. The *gateway*
prints every frame as ``T``/``B`` lines with correct parity, substitutes an alternative data-id
for an unsupported one once told to (``AA=28``: then ``R``/``A`` lines appear), and answers
commands like firmware 5.x (``PR: A=OpenTherm Gateway 5.1``). ``PS=1`` stops the reporting, as
on a real gateway, which is why the agent must never send it.

Lines go to a :class:`hil.ptys.VirtualSerialPort` or to every client of a TCP port (like
OTGW-firmware's serial-over-TCP bridge). Everything the agent sends is kept in :attr:`received`,
so a test can prove a passive monitor wrote nothing. :class:`Faults` injects parity errors,
``E`` lines, ``Error 0x`` reports and noise with seeded probabilities.

The emulator can be paced (:meth:`OtgwEmulator.run`: one exchange per ``interval`` seconds, the
model advancing ``speed`` times real time) or driven step by step (:meth:`write_cycle`), which
tests use to know exactly which state the agent has seen.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import structlog

from drivers.opentherm import DATA_IDS, Frame, MsgType
from drivers.reading import Value
from drivers.tasks import cancel
from hil.boiler_model import BoilerModel
from hil.ptys import VirtualSerialPort

log = structlog.get_logger("hpagent.hil")

# The rotation of a modulating thermostat; the status exchange runs between every two of these.
# It never asks for the return temperature (id 28): a gateway adds it with AA=28.
THERMOSTAT_POLL: Final = (1, 17, 25, 24, 16, 26, 27, 18, 19, 33, 116, 119, 120, 123)
# This boiler has no flue gas sensor.
UNSUPPORTED: Final = frozenset({33})
FIRMWARE: Final = "5.1"

# Canned answers to PR=<letter> (OTGW firmware 5.x, as pyotgw's test data shows them).
_REPORTS: Final = {"B": "B=17:44 11-02-2021", "M": "M=G", "Q": "Q=C", "S": "S=16.50",
                   "T": "T=11", "V": "V=3", "W": "W=A", "O": "O=N"}


@dataclass
class Faults:
    """Per-exchange probabilities of line faults."""

    parity: float = 0.0  # the boiler's answer arrives with one bit flipped
    bad_frame: float = 0.0  # the boiler's answer is reported as an E line
    bus_error: float = 0.0  # an "Error 0x" report precedes the exchange
    garbage: float = 0.0  # a line of noise precedes the exchange


class OtgwEmulator:
    """One gateway between a simulated thermostat and ``model``; see the module docstring."""

    def __init__(self, model: BoilerModel, *, serial: VirtualSerialPort | None = None,
                 tcp_port: int | None = None, host: str = "127.0.0.1",
                 poll: tuple[int, ...] = THERMOSTAT_POLL,
                 unsupported: frozenset[int] = UNSUPPORTED, faults: Faults | None = None,
                 firmware: str = FIRMWARE, seed: int = 0) -> None:
        if (serial is None) == (tcp_port is None):
            raise ValueError("give exactly one of serial and tcp_port")
        self.model = model
        self.serial = serial
        self.host, self.tcp_port = host, tcp_port
        self.poll = poll
        self.unsupported = unsupported
        self.faults = faults or Faults()
        self.firmware = firmware
        self.received = bytearray()  # every byte the agent sent
        self.commands: list[str] = []  # every command line the agent sent
        self.alternatives: list[int] = []
        self.reporting = True  # False after PS=1
        self.lines_written = 0
        self._rng = random.Random(seed)
        self._position = 0
        self._alt_next = 0
        self._inbox = bytearray()
        self._clients: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- frames from the model ------------------------------------------------------------------

    def _encode(self, data_id: int, snapshot: Mapping[str, Value]) -> int:
        spec = DATA_IDS[data_id]
        assert spec.quantity is not None, f"data-id {data_id} has no vocabulary quantity"
        value = snapshot[spec.quantity]
        if spec.type == "f88":
            return round(float(value) * 256) & 0xFFFF
        return int(value) & 0xFFFF

    def _status(self) -> tuple[int, int]:
        m = self.model
        master = int(m.ch_enabled) | 1 << 1  # CH enable, DHW enable (id 0 HB, master status)
        slave = (int(m.fault) | int(m.ch_active) << 1 | int(m.dhw_active) << 2
                 | int(m.flame) << 3)  # fault, CH mode, DHW mode, flame (id 0 LB)
        return master, slave

    def exchange(self, data_id: int, snapshot: Mapping[str, Value] | None = None) -> list[str]:
        """The gateway's lines for one thermostat request, from the model's current state.

        ``snapshot`` is the model's :meth:`~hil.boiler_model.BoilerModel.snapshot` if the caller
        has taken it already (a whole cycle shows one state); otherwise one is taken.
        """
        if data_id == 0:
            master, slave = self._status()
            request = Frame.build("T", MsgType.READ_DATA, 0, master << 8)
            answer = Frame.build("B", MsgType.READ_ACK, 0, master << 8 | slave)
            return self._faulty([request.text], answer)
        snap = self.model.snapshot() if snapshot is None else snapshot
        spec = DATA_IDS[data_id]
        if spec.access == "W":
            value = self._encode(data_id, snap)
            request = Frame.build("T", MsgType.WRITE_DATA, data_id, value)
            return self._faulty([request.text], Frame.build("B", MsgType.WRITE_ACK, data_id, value))
        request = Frame.build("T", MsgType.READ_DATA, data_id, 0)
        if data_id not in self.unsupported:
            answer = Frame.build("B", MsgType.READ_ACK, data_id, self._encode(data_id, snap))
            return self._faulty([request.text], answer)
        if not self.alternatives:
            unknown = Frame.build("B", MsgType.UNKNOWN_DATAID, data_id, 0)
            return self._faulty([request.text], unknown)
        # The gateway asks the boiler an alternative instead, and answers the thermostat itself.
        alt = self.alternatives[self._alt_next % len(self.alternatives)]
        self._alt_next += 1
        lines = [request.text, Frame.build("R", MsgType.READ_DATA, alt, 0).text]
        answer = Frame.build("B", MsgType.READ_ACK, alt, self._encode(alt, snap))
        lines = self._faulty(lines, answer)
        return [*lines, Frame.build("A", MsgType.UNKNOWN_DATAID, data_id, 0).text]

    def _faulty(self, lines: list[str], answer: Frame) -> list[str]:
        f, rng = self.faults, self._rng
        prefix = []
        if rng.random() < f.bus_error:
            prefix.append(f"Error 0{rng.randint(1, 4)}")
        if rng.random() < f.garbage:
            prefix.append("".join(rng.choice("0123456789ABCDEFGHXYZ= ") for _ in range(12)))
        text = answer.text
        if rng.random() < f.parity:
            text = Frame(answer.source, answer.raw ^ 1 << rng.randrange(31)).text
        elif rng.random() < f.bad_frame:
            text = "E" + text[1:]
        return [*prefix, *lines, text]

    def next_exchange(self, snapshot: Mapping[str, Value] | None = None) -> list[str]:
        """The next exchange of the rotation: status, then a polled id, then status again..."""
        step, self._position = self._position, (self._position + 1) % (2 * len(self.poll))
        return self.exchange(0 if step % 2 == 0 else self.poll[step // 2], snapshot)

    def cycle(self) -> list[str]:
        """One whole rotation, every polled id once, each preceded by a status exchange."""
        snapshot = self.model.snapshot()  # the model does not move during a cycle
        return [line for _ in range(2 * len(self.poll)) for line in self.next_exchange(snapshot)]

    # -- the wire -------------------------------------------------------------------------------

    @property
    def clients(self) -> int:
        """Connected TCP clients."""
        return len(self._clients)

    def write_lines(self, lines: list[str]) -> None:
        """Report ``lines`` (nothing while summary mode, PS=1, is on)."""
        if not self.reporting or not lines:
            return
        self._send("".join(f"{line}\r\n" for line in lines).encode("ascii"))
        self.lines_written += len(lines)

    def write_cycle(self) -> None:
        self.write_lines(self.cycle())

    def inject(self, raw: bytes) -> None:
        """Put raw bytes on the line (noise, half lines) regardless of the reporting mode."""
        self._send(raw)

    def _send(self, data: bytes) -> None:
        if self.serial is not None:
            self.serial.write(data)
        for writer in list(self._clients):
            if writer.is_closing():
                self._clients.remove(writer)
            else:
                writer.write(data)

    async def start(self) -> None:
        """Listen: read commands from the serial port, or accept TCP clients."""
        if self.serial is not None:
            self._tasks.append(asyncio.create_task(self._read_serial(self.serial)))
        else:
            self._server = await asyncio.start_server(self._client, self.host, self.tcp_port)

    def run(self, interval: float = 1.0, speed: float = 1.0) -> None:
        """Start reporting one exchange every ``interval`` s, the model running ``speed``x."""
        self._tasks.append(asyncio.create_task(self._pace(interval, speed)))

    async def _pace(self, interval: float, speed: float) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            self.model.step((now - last) * speed)
            last = now
            self.write_lines(self.next_exchange())

    async def stop(self) -> None:
        await cancel(*self._tasks)
        self._tasks.clear()
        self.disconnect_clients()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def disconnect_clients(self) -> None:
        """Drop every TCP client (a network gateway rebooting)."""
        for writer in self._clients:
            writer.close()
        self._clients.clear()

    async def _read_serial(self, port: VirtualSerialPort) -> None:
        while True:
            self._command_bytes(await port.read())

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.append(writer)
        try:
            while data := await reader.read(4096):
                self._command_bytes(data)
        except OSError:
            pass
        finally:
            if writer in self._clients:
                self._clients.remove(writer)
            writer.close()

    # -- commands (OTGW firmware 5.x) -----------------------------------------------------------

    def _command_bytes(self, data: bytes) -> None:
        self.received += data
        self._inbox += data
        while True:
            ends = [i for i in (self._inbox.find(b"\r"), self._inbox.find(b"\n")) if i >= 0]
            if not ends:
                return
            cut = min(ends)
            line = self._inbox[:cut].decode("ascii", errors="replace").strip()
            del self._inbox[: cut + 1]
            if line:
                self.commands.append(line)
                self._send(f"{self.answer(line)}\r\n".encode("ascii"))

    def answer(self, command: str) -> str:
        """The firmware's reply to one command line."""
        code, sep, arg = command.partition("=")
        code = code.upper()
        if not sep or len(code) != 2:
            return "SE"
        if code == "PR":
            if arg == "A":
                return f"PR: A=OpenTherm Gateway {self.firmware}"
            report = _REPORTS.get(arg)
            return f"PR: {report}" if report else "BV"
        if code in ("AA", "DA"):
            if not arg.isdigit() or not 1 <= int(arg) <= 255:
                return "BV"
            data_id = int(arg)
            if code == "AA":
                if data_id not in self.alternatives:
                    self.alternatives.append(data_id)
            elif data_id in self.alternatives:
                self.alternatives.remove(data_id)
            else:
                return "NF"
            return f"{code}: {data_id}"
        if code == "PS":
            if arg not in ("0", "1"):
                return "BV"
            self.reporting = arg == "0"
            return f"PS: {arg}"
        return "NG"
