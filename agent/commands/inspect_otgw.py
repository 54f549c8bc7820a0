"""``hpagent otgw``: the technician's live view of an OpenTherm Gateway, every frame decoded.

Answers "what do thermostat and boiler say to each other right now?" on site: each line the
gateway reports is shown as it arrives, with its source, message type, data-id, name, value and
whether its parity holds, as a table or (``--json``) as one JSON object per line. Strictly
passive: the gateway's port is opened for reading and nothing is ever written to it, so the
view can run next to the agent's own monitor on a TCP gateway, or in its place on a serial one.

Exit status: 0 when frames were shown; 1 when the port cannot be opened, the link drops, or
nothing arrives within ``seconds`` (or :data:`QUIET_LIMIT_S` when watching until Ctrl-C);
2 for bad arguments.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime
from typing import Final, TextIO

from agent.service.defaults import failed
from drivers.links import SerialLink, TcpLink, parse_tcp
from drivers.opentherm import SOURCE_NAMES
from drivers.otgw_monitor import Line, LineBuffer, LineKind, OpenThermMonitor
from drivers.serialport import StreamClosed, open_stream
from drivers.timestamps import rfc3339

OTGW_BAUDRATE: Final = 9600  # OTGW serial interface: 9600 8N1
QUIET_LIMIT_S: Final = 15.0  # an OTGW reports about one frame a second


def main(port: str | None, tcp: str | None, as_json: bool, seconds: float | None) -> int:
    """Watch ``--port PATH`` or ``--tcp HOST:PORT`` for ``seconds`` (None: until Ctrl-C)."""
    if (port is None) == (tcp is None):
        return failed("give exactly one of --port and --tcp", 2)
    if seconds is not None and not seconds > 0:
        return failed(f"--seconds must be positive, got {seconds:g}", 2)
    link: SerialLink | TcpLink
    try:
        link = SerialLink(port, OTGW_BAUDRATE) if port is not None else parse_tcp(str(tcp))
    except ValueError as exc:
        return failed(f"--tcp: {exc}", 2)
    view = View(sys.stdout, as_json)
    try:
        return asyncio.run(watch(link, view, seconds))
    except KeyboardInterrupt:
        view.summary()
        return 0 if view.shown else 1


async def watch(link: SerialLink | TcpLink, view: View, seconds: float | None) -> int:
    try:
        stream = await open_stream(link)
    except OSError as exc:
        return failed(str(exc), 1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    quiet_limit = min(seconds, QUIET_LIMIT_S) if seconds is not None else QUIET_LIMIT_S
    buffer = LineBuffer()
    view.header()
    try:
        while True:
            elapsed = loop.time() - started
            limits = [] if view.shown else [quiet_limit - elapsed]
            if seconds is not None:
                limits.append(seconds - elapsed)
            wait = min(limits) if limits else None
            if wait is not None and wait <= 0:
                break
            try:
                async with asyncio.timeout(wait):
                    data = await stream.read()
            except TimeoutError:
                continue
            for text in buffer.feed(data):
                view.show(text, time.time())
    except StreamClosed as exc:
        view.summary()
        return failed(f"link lost: {exc}", 1)
    finally:
        await stream.close()
    if not view.shown:
        return failed(f"nothing arrived from {link} within {quiet_limit:g} s: is it an OpenTherm "
                      "Gateway, and are thermostat and boiler connected to it?", 1)
    view.summary()
    return 0


class View:
    """Renders decoded lines as a table or as JSON lines."""

    def __init__(self, out: TextIO, as_json: bool) -> None:
        self.out = out
        self.as_json = as_json
        self.monitor = OpenThermMonitor()  # decodes and counts; its values are not shown
        self.shown = 0

    def header(self) -> None:
        if not self.as_json:
            self._print(f"{'time':<12}  src  {'type':<14}  {'id':>3}  {'name':<28}  "
                        f"{'value':<36}  parity")

    def show(self, text: str, at: float) -> None:
        line = self.monitor.feed(text, at)
        self.shown += 1
        self._print(json.dumps(self._json(line, at)) if self.as_json else self._row(line, at))
        self.out.flush()

    def summary(self) -> None:
        if self.as_json or not self.shown:
            return
        c = self.monitor.counts
        self._print(f"{c.lines} lines: {c.frames} frames, {c.parity_errors} parity errors, "
                    f"{c.bad_frames} E lines, {c.bus_errors} bus errors, {c.data_invalid} "
                    f"DATA-INVALID, {c.unknown_ids} UNKNOWN-DATAID, {c.garbage} unreadable")

    def _print(self, text: str) -> None:
        print(text, file=self.out)

    @staticmethod
    def _row(line: Line, at: float) -> str:
        clock = datetime.fromtimestamp(at).strftime("%H:%M:%S.%f")[:12]
        frame = line.frame
        if frame is None:
            what = {LineKind.BAD_FRAME: "E    bad frame (parity or stop bit), ignored",
                    LineKind.BUS_ERROR: "     bus error reported by the gateway",
                    LineKind.REPLY: "     command reply",
                    LineKind.GARBAGE: "     unreadable line"}[line.kind]
            return f"{clock:<12}  {what}: {line.text}"
        spec = frame.spec
        name = spec.name if spec is not None else "(unknown data-id)"
        if not frame.carries_value:
            value = "-"
        else:
            value = spec.show(frame.u16) if spec is not None else f"0x{frame.u16:04X}"
        parity = "ok" if frame.parity_ok else "FAIL"
        return (f"{clock:<12}  {frame.source:<3}  {frame.msg_type.label:<14}  "
                f"{frame.data_id:>3}  {name:<28}  {value:<36}  {parity}")

    @staticmethod
    def _json(line: Line, at: float) -> dict[str, object]:
        frame = line.frame
        if frame is None:
            return {"time": rfc3339(at), "kind": line.kind.value, "line": line.text}
        spec = frame.spec
        value: object = None
        if frame.carries_value:
            value = spec.as_json(frame.u16) if spec is not None else frame.u16
        return {
            "time": rfc3339(at), "kind": line.kind.value, "line": line.text,
            "source": frame.source, "from": SOURCE_NAMES[frame.source],
            "type": frame.msg_type.label, "data_id": frame.data_id,
            "name": spec.name if spec is not None else None,
            "value": value,
            "parity_ok": frame.parity_ok,
        }

