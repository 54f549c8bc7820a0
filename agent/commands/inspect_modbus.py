"""``hpagent modbus read``: every quantity of a profile, read once from a device and decoded.

For the technician on site: is the wiring right, is the unit id right, does the device answer
every register of its profile, and do the values make sense? Uses the daemon's own driver and
read plan, so what it shows is what the agent will store. ``--raw`` adds the register words.
"""

from __future__ import annotations

import json
from typing import Any

from agent.service.defaults import failed


def read(profile_name: str, port: str | None, tcp: str | None, unit: int | None,
         baudrate: int | None, as_json: bool, raw: bool, timeout: float) -> int:
    import asyncio

    from drivers.links import SerialLink, TcpLink, parse_tcp
    from drivers.modbus import rtu_link
    from drivers.profile import load_profile
    from drivers.yamlfile import YamlFileError

    if (port is None) == (tcp is None):
        return failed("give --port PATH (Modbus RTU) or --tcp HOST:PORT (Modbus TCP)", 2)
    try:
        profile = load_profile(profile_name)
    except (FileNotFoundError, YamlFileError) as exc:
        return failed(str(exc), 2)
    link: SerialLink | TcpLink
    if tcp is not None:
        try:
            link = parse_tcp(tcp if ":" in tcp else f"{tcp}:502")
        except ValueError as exc:
            return failed(f"--tcp: {exc}", 2)
    else:
        assert port is not None
        link = rtu_link(port, profile, baudrate)
    from agent.service import logs

    logs.configure("error")
    rows, reads = asyncio.run(_read(link, profile, unit if unit is not None else profile.unit,
                                    timeout))
    if as_json:
        print(json.dumps({"profile": profile_name, "link": str(link), "reads": reads,
                          "registers": rows}, indent=2, ensure_ascii=False))
    else:
        print(_table(rows, raw))
        print(f"{sum(r['quality'] == 'good' for r in rows)}/{len(rows)} registers good, "
              f"{reads} reads, {link}")
    return 0 if all(r["quality"] == "good" for r in rows) else 1


async def _read(link: Any, profile: Any, unit: int, timeout: float
                ) -> tuple[list[dict[str, Any]], int]:
    from drivers.modbus import ModbusBus, ModbusDevice
    from drivers.vocabulary import VOCABULARY

    device = ModbusDevice("inspect", ModbusBus(link, timeout=timeout, retries=1), unit, profile)
    readings = await device.read()
    await device.close()
    by_quantity = {r.quantity: r for r in readings}
    rows = []
    for i, dec in enumerate(device.decoders):
        reading = by_quantity[dec.quantity]
        words = device.raw_words(i)
        rows.append({
            "quantity": dec.quantity, "value": reading.value,
            "unit": VOCABULARY[dec.quantity].unit, "quality": reading.quality.value,
            "register": dec.register.label, "raw": words,
            "detail": reading.detail})
    return rows, len(device.reads)


def _table(rows: list[dict[str, Any]], raw: bool) -> str:
    def cell(row: dict[str, Any]) -> str:
        if row["quality"] != "good":
            return str(row["quality"])
        value = row["value"]
        return f"{value:g} {row['unit']}".strip() if isinstance(value, float) else str(value)

    head = ["quantity", "value", "register"] + (["raw words"] if raw else [])
    body = [[r["quantity"], cell(r), r["register"]] +
            ([" ".join(f"{w:04X}" for w in r["raw"]) if r["raw"] else "-"] if raw else [])
            for r in rows]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(x, widths, strict=True)) for x in body]
    problems = [f"{r['quantity']}: {r['detail']}" for r in rows if r["detail"]]
    return "\n".join(lines + (["", *problems] if problems else []))

