"""``hpagent p1``: a technician's live view of a smart meter's P1 port.

Reads the port with the same driver the daemon uses (:class:`drivers.p1.P1Meter`: line and
spec detection, CRC checks) and prints a table per valid telegram, or, with ``--json``, one JSON
object per telegram: ``spec``, ``meter_time`` (RFC 3339 UTC), ``quantities`` (vocabulary name ->
number in the vocabulary's unit) and ``measured_at`` (the M-Bus capture time of gas, water and
district heat). ``--once`` stops after the first telegram. Exit codes: 0 done (or interrupted),
1 no valid telegram within the timeout (the message names the port and what arrived instead),
2 bad arguments. Heavy modules are imported when the command runs, so the CLI starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.service.defaults import failed

if TYPE_CHECKING:
    from drivers.p1 import P1Meter
    from drivers.p1_telegram import P1Telegram

P1 = "hpagent p1"  # how its errors begin


def main(port: str | None, tcp: str | None, spec: str, once: bool, as_json: bool,
         timeout: float) -> int:
    """Run the command; returns the exit code."""
    import asyncio

    from drivers.links import SerialLink, TcpLink, parse_tcp
    from drivers.p1 import P1Meter
    from drivers.p1_telegram import SPEC_CHOICES

    if (port is None) == (tcp is None):
        return failed("give --port PATH or --tcp HOST:PORT (one of them)", 2, P1)
    if spec not in SPEC_CHOICES:
        return failed(f"unknown --spec {spec!r} (allowed: {', '.join(SPEC_CHOICES)})", 2, P1)
    if timeout <= 0:
        return failed(f"--timeout must be positive, not {timeout:g}", 2, P1)
    link: SerialLink | TcpLink
    if tcp is not None:
        try:
            link = parse_tcp(tcp)
        except ValueError as exc:
            return failed(f"--tcp: {exc}", 2, P1)
    else:
        assert port is not None
        import os

        if not os.path.exists(port):
            return failed(f"serial port {port} does not exist (is the P1 cable plugged in?)", 1, P1)
        link = SerialLink(port)
    import structlog

    if not structlog.is_configured():  # the driver's warnings go to stderr, never into stdout
        from agent.service import logs

        logs.configure("warning")
    meter = P1Meter("p1", link, spec=spec, silence=timeout)
    try:
        return asyncio.run(_watch(meter, once, as_json, timeout))
    except KeyboardInterrupt:
        return 0


async def _watch(meter: P1Meter, once: bool, as_json: bool, timeout: float) -> int:
    import asyncio
    import json

    await meter.open()
    try:
        while True:
            try:
                async with asyncio.timeout(timeout):
                    telegram = await meter.next_telegram()
            except TimeoutError:
                return failed(_no_telegram(meter, timeout), 1, P1)
            if as_json:
                print(json.dumps(as_dict(telegram)), flush=True)
            else:
                print(table(telegram, meter), flush=True)
            if once:
                return 0
    finally:
        await meter.close()


def as_dict(telegram: P1Telegram) -> dict[str, object]:
    """The JSON form of one telegram."""
    from drivers.timestamps import rfc3339

    return {
        "spec": telegram.spec,
        "meter_time": (rfc3339(telegram.meter_time.timestamp())
                       if telegram.meter_time is not None else None),
        "quantities": dict(telegram.values),
        "measured_at": {q: rfc3339(t.timestamp()) for q, t in telegram.measured_at.items()},
    }


def table(telegram: P1Telegram, meter: P1Meter) -> str:
    """A readable table of one telegram, for a human on site."""
    from drivers.timestamps import rfc3339
    from drivers.vocabulary import VOCABULARY

    info = meter.describe()
    when = rfc3339(telegram.meter_time.timestamp()) if telegram.meter_time else "no meter clock"
    line = f" {info['line']}" if info["line"] else ""
    c = meter.counters
    lines = [
        f"{telegram.header}  DSMR {telegram.spec}  meter time {when}",
        f"{meter.where}{line}  telegrams {c.telegrams}, CRC errors {c.crc_errors}, "
        f"unparseable {c.parse_errors}, garbage bytes {c.garbage_bytes}",
        f"{'quantity':<24}{'value':>14}  {'unit':<5} measured at",
    ]
    for quantity, value in telegram.values.items():
        at = telegram.measured_at.get(quantity)
        lines.append(f"{quantity:<24}{value:>14g}  {VOCABULARY[quantity].unit:<5} "
                     f"{rfc3339(at.timestamp()) if at else ''}".rstrip())
    lines.extend(f"  skipped: {note}" for note in telegram.notes)
    return "\n".join(lines) + "\n"


def _no_telegram(meter: P1Meter, timeout: float) -> str:
    c = meter.counters
    seen = (f"{c.crc_errors} CRC errors, {c.parse_errors} unparseable telegrams, "
            f"{c.garbage_bytes} garbage bytes")
    reason = f"; last error: {meter.last_error}" if meter.last_error else ""
    hint = "" if meter.spec == "auto" else f" (is --spec {meter.spec} right?)"
    return (f"no valid P1 telegram from {meter.where} within {timeout:g} s ({seen}){reason}"
            f"{hint}")

