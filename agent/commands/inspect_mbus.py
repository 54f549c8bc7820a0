"""``hpagent mbus scan`` and ``hpagent mbus read``: find and read M-Bus meters on site.

``scan`` answers "which meters are on this bus, at which addresses?": a primary scan (SND_NKE to
0..250; each meter that acknowledges is asked who it is) and, with ``--secondary``, the wildcard
search over secondary addresses, which finds meters that all still sit at the factory address
0. Progress goes to standard error, as one line updated in place on a terminal and as plain
lines otherwise; the result goes to standard output, as a table or JSON.

``read`` answers "what does this meter say, and what will the agent take from it?": the header
(manufacturer, identification, medium, status) and every data record, each marked with the
vocabulary quantity it feeds or the reason it is ignored (historic, tariff, pulse input, ...).

Both talk to the line through :mod:`drivers.mbus` exactly as the agent does. Exit status: 0 on
success (a scan that finds nothing still succeeded), 1 when the port cannot be used or the meter
does not answer properly, 2 for bad arguments.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from typing import Literal, TextIO

from agent.service.defaults import failed
from drivers.links import SerialLink
from drivers.mbus import (
    Found,
    LinkError,
    MbusError,
    MbusMaster,
    ScanStep,
    answer_window,
    read_meter,
    scan_primary,
    scan_secondary,
)
from drivers.mbus_frames import Response, parse_address
from drivers.vocabulary import VOCABULARY

Parity = Literal["N", "E", "O"]
_PROGRESS_EVERY = 25  # probes between plain progress lines when not on a terminal


def scan(port: str, baudrate: int, secondary: bool, as_json: bool, *, parity: Parity = "E",
         timeout: float | None = None) -> int:
    """Scan the bus on ``port``; ``timeout`` per probe defaults to twice the standard's window.

    The default line is 8E1 (EN 13757-2); ``parity`` exists for converters set otherwise and
    for pseudo-terminals, which refuse parity.
    """
    link = SerialLink(port, baudrate, parity)
    per_probe = timeout if timeout is not None else 2 * answer_window(link)
    master = MbusMaster(link, timeout=per_probe, retries=0)
    progress = Progress(sys.stderr)
    try:
        found, collisions = asyncio.run(_scan(master, secondary, progress))
    except LinkError as exc:
        progress.done()
        return failed(str(exc), 1)
    except KeyboardInterrupt:
        progress.done()
        return failed("scan interrupted", 1)
    progress.done()
    if as_json:
        print(json.dumps({"link": str(link), "meters": [_found_json(f) for f in found],
                          "collisions": collisions}, indent=2))
    else:
        _print_found(sys.stdout, found, collisions)
    return 0


async def _scan(master: MbusMaster, secondary: bool, progress: Progress
                ) -> tuple[list[Found], list[str]]:
    found: list[Found] = []
    collisions: list[str] = []
    try:
        async for step in scan_primary(master):
            _collect(step, found, collisions)
            progress.step(step)
        if secondary:
            async for step in scan_secondary(master):
                _collect(step, found, collisions)
                progress.step(step)
    finally:
        await master.close()
    return found, collisions


def _collect(step: ScanStep, found: list[Found], collisions: list[str]) -> None:
    if step.found is not None:
        found.append(step.found)
    elif step.collision and step.phase == "primary":
        collisions.append(step.probe)  # secondary collisions are resolved by the search


class Progress:
    """One line rewritten in place on a terminal; occasional plain lines otherwise."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._width = 0

    def step(self, step: ScanStep) -> None:
        total = f"/{step.total}" if step.total is not None else ""
        text = f"{step.phase} scan: probe {step.done}{total} ({step.probe})"
        if step.found is not None:
            self._line(f"{step.phase} scan: found {_where(step.found)}")
        elif step.collision and step.phase == "primary":
            self._line(f"primary scan: several meters answer at address {step.probe}")
        if self.tty:
            self.out.write("\r" + text.ljust(self._width))
            self._width = len(text)
        elif step.done % _PROGRESS_EVERY == 0 or step.done == step.total:
            self.out.write(text + "\n")
        self.out.flush()

    def _line(self, text: str) -> None:
        if self.tty:
            self.out.write("\r" + text.ljust(self._width) + "\n")
            self._width = 0
        else:
            self.out.write(text + "\n")

    def done(self) -> None:
        if self.tty and self._width:
            self.out.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.out.flush()


def _where(found: Found) -> str:
    parts = []
    if found.primary is not None:
        parts.append(f"primary {found.primary}")
    if found.secondary is not None:
        parts.append(f"secondary {found.secondary}")
    r = found.response
    if r is not None:
        parts.append(f"{r.manufacturer} {r.ident} {r.medium_name}")
    return ", ".join(parts)


def _found_json(found: Found) -> dict[str, object]:
    r = found.response
    return {"primary": found.primary, "secondary": found.secondary,
            "manufacturer": r.manufacturer if r else None, "ident": r.ident if r else None,
            "medium": r.medium_name if r else None}


def _print_found(out: TextIO, found: list[Found], collisions: list[str]) -> None:
    if not found:
        print("no meter answered", file=out)
    else:
        print(f"{'primary':>7}  {'secondary':<16}  {'maker':<5}  {'ident':<8}  medium", file=out)
        for f in found:
            r = f.response
            print(f"{'' if f.primary is None else f.primary:>7}  {f.secondary or '?':<16}  "
                  f"{r.manufacturer if r else '?':<5}  {r.ident if r else '?':<8}  "
                  f"{r.medium_name if r else '?'}", file=out)
    for address in collisions:
        print(f"several meters answer at primary address {address}: give each its own "
              "address, or read them by secondary address", file=out)


def read(port: str, address: str, baudrate: int, as_json: bool, *, parity: Parity = "E",
         timeout: float | None = None) -> int:
    """Read the meter at ``address`` (primary number or 16-hex secondary) and show every record."""
    try:
        target = parse_address(address)
    except ValueError as exc:
        return failed(f"--address: {exc}", 2)
    link = SerialLink(port, baudrate, parity)
    master = MbusMaster(link, timeout=timeout if timeout is not None else 1.0, retries=2)

    async def once() -> Response:
        try:
            return await read_meter(master, target, reset=True)
        finally:
            await master.close()

    try:
        response = asyncio.run(once())
    except MbusError as exc:
        return failed(str(exc), 1)
    if as_json:
        print(json.dumps(_response_json(response), indent=2, ensure_ascii=False))
    else:
        _print_response(sys.stdout, response)
    return 0


def _response_json(r: Response) -> dict[str, object]:
    return {
        "secondary_address": r.secondary_address, "manufacturer": r.manufacturer,
        "ident": r.ident, "version": r.version, "medium": r.medium_name,
        "access_number": r.access, "status": r.status, "status_text": r.status_text,
        "values": r.values,
        "records": [dataclasses.asdict(x) for x in r.records],
    }


def _print_response(out: TextIO, r: Response) -> None:
    print(f"meter      {r.manufacturer} {r.ident} version {r.version} ({r.medium_name})",
          file=out)
    print(f"secondary  {r.secondary_address}", file=out)
    print(f"status     0x{r.status:02X} {r.status_text}, access number {r.access}", file=out)
    print(file=out)
    print(f"{'#':>2}  {'DIB':<9}  {'VIB':<6}  {'function':<13}  st  ta  su  "
          f"{'record':<24}  {'value':>14} {'unit':<10}  vocabulary", file=out)
    for x in r.records:
        if x.quantity is not None and x.reading is not None:
            used = f"-> {x.quantity} = {x.reading} {VOCABULARY[x.quantity].unit}"
        elif x.quantity is not None:
            used = f"-> {x.quantity}: {x.note}"
        else:
            used = f"ignored: {x.note}" if x.note else ""
        value = x.value if len(x.value) <= 14 else x.value[:13] + "…"
        print(f"{x.index:>2}  {x.dib:<9}  {x.vib:<6}  {x.function:<13}  {x.storage:>2}  "
              f"{x.tariff:>2}  {x.subunit:>2}  {x.description:<24}  {value:>14} {x.unit:<10}  "
              f"{used}", file=out)

