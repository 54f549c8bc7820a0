"""``hpagent diagnose``: every check a technician runs on site, pass or fail, with a hint.

The configuration, the signing key, the clock, the disk, the daemon, every device (from the
running daemon's status; when it is not running, read once here), every recipient's broker
(connected with its own TLS and credentials), and the grants. A device's values are held
against plausible ranges for their unit. Exit 1 when any check fails.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import asdict, dataclass, replace
from typing import Any, Final

from agent.service.config import Config
from agent.service.status import StatusError, device_report, summary
from agent.trust.verify import printable
from drivers.reading import Value
from drivers.vocabulary import VOCABULARY

PASS, WARN, FAIL = "pass", "warn", "fail"
PROBE_S: Final = 15.0  # how long a device not polled by the daemon gets to say something
MIN_FREE: Final = 100_000_000  # bytes free on the state directory's file system

# What a reading in each unit can plausibly be; beyond it the sensor or the map is wrong.
PLAUSIBLE: Final[dict[str, tuple[float, float]]] = {
    "°C": (-50.0, 130.0), "W": (-60_000.0, 60_000.0), "l/min": (0.0, 1_000.0),
    "Hz": (0.0, 500.0), "%": (0.0, 100.0), "bar": (0.0, 10.0), "V": (0.0, 300.0),
    "A": (0.0, 100.0), "kWh": (0.0, 1e9), "m³": (0.0, 1e9), "h": (0.0, 1e6)}

HINTS: Final = {
    "modbus": "check the cable (RS-485 A/B, termination), the unit id and the line settings "
              "against the device; 'hpagent modbus read --profile ...' tries it by hand",
    "p1": "check the P1 cable; some meters send only after the grid operator enabled the port; "
          "'hpagent p1 --port ...' shows what arrives",
    "otgw": "check the gateway's cable and that it sits between thermostat and boiler; "
            "'hpagent otgw --port ...' shows the OpenTherm traffic",
    "mbus": "check the level converter, the meter's address and that it is powered; "
            "'hpagent mbus scan --port ...' finds the meters on the line",
}


@dataclass
class Check:
    name: str
    result: str  # pass, warn, fail
    detail: str
    hint: str = ""


def run(config: Config, as_json: bool) -> int:
    checks = [*_local(config)]
    status = _daemon(config, checks)
    checks += _devices(config, status)
    checks += asyncio.run(_brokers(config))
    checks += _grants(config)
    if as_json:
        print(json.dumps([asdict(c) for c in checks], indent=2, ensure_ascii=False))
    else:
        _table(checks)
    return 1 if any(c.result == FAIL for c in checks) else 0


def _local(config: Config) -> list[Check]:
    from agent.service.clock import SystemClock
    from agent.trust.keys import KeyFileError, load_private_key

    out = [Check("config", PASS, f"{len(config.devices)} devices, {len(config.recipients)} "
                 "recipients")]
    try:
        load_private_key(config.signing_key)
        out.append(Check("key", PASS, str(config.signing_key)))
    except KeyFileError as exc:
        out.append(Check("key", FAIL, str(exc), "the key is made once: 'hpagent key init'"))
    synced = SystemClock().state().value == "synced"
    out.append(Check("clock", PASS if synced else WARN, "synchronised" if synced else
                     "not synchronised: samples are marked unsynced",
                     "" if synced else "check NTP: 'timedatectl timesync-status'"))
    out.append(_disk(config))
    return out


def _disk(config: Config) -> Check:
    where = config.state_dir if config.state_dir.exists() else config.state_dir.parent
    try:
        free = shutil.disk_usage(where).free
    except OSError as exc:
        return Check("disk", FAIL, f"{where}: {exc.strerror}", "is the SD card mounted?")
    db = config.state_dir / "hpagent.db"
    size = db.stat().st_size if db.exists() else 0
    detail = f"{free / 1e6:,.0f} MB free; database {size / 1e6:,.1f} MB of " \
             f"{config.storage.max_size / 1e6:,.0f} MB allowed"
    if free < MIN_FREE:
        return Check("disk", FAIL if free < MIN_FREE / 10 else WARN, detail,
                     "free space, or lower storage.max_size: raw samples are evicted first")
    return Check("disk", PASS, detail)


def _daemon(config: Config, checks: list[Check]) -> dict[str, Any] | None:
    from agent.commands.status_cli import fetch

    try:
        status = fetch(config)
    except StatusError as exc:
        checks.append(Check("daemon", WARN, str(exc), "systemctl start hpagent; devices are "
                            "read once here instead"))
        return None
    checks.append(Check("daemon", PASS, f"running, {status['polls']} polls, "
                        f"up {status.get('uptime_s', 0)} s"))
    return status


def _devices(config: Config, status: dict[str, Any] | None) -> list[Check]:
    reports = status["devices"] if status is not None else asyncio.run(_probe(config))
    return [_device(d) for d in reports]


def _device(d: dict[str, Any]) -> Check:
    name, state = f"device {d['name']}", d["state"]
    hint = HINTS.get(str(d.get("driver")), "")
    problems = summary(d.get("problems", {}))
    if state in ("down", "waiting"):
        why = problems or "no reading yet"
        return Check(name, FAIL, printable(f"{d.get('link')}: {why}"), hint)
    odd = implausible(d.get("values", {}))
    if odd:
        return Check(name, WARN, printable("implausible: " + ", ".join(odd)),
                     "check the sensor, and the profile's scale and word order")
    if state == "degraded":
        return Check(name, WARN, printable(problems), hint)
    return Check(name, PASS, f"{d.get('link')}: {len(d.get('values', {}))} quantities")


def implausible(values: dict[str, Value]) -> list[str]:
    out = []
    for q, v in values.items():
        quantity = VOCABULARY.get(q)
        bounds = PLAUSIBLE.get(quantity.unit) if quantity is not None else None
        if bounds is not None and isinstance(v, int | float) and not isinstance(v, bool) \
                and not bounds[0] <= v <= bounds[1]:
            out.append(f"{q} = {v} {quantity.unit if quantity else ''}".strip())
    return out


async def _probe(config: Config) -> list[dict[str, Any]]:
    """Read every device once here (the daemon does not run): its report as the status's."""
    import time

    from agent.sample import ClockState, Sample
    from agent.service.devices import build_schedules

    out = []
    for schedule in build_schedules(config):
        driver = schedule.driver
        readings = []
        try:
            await driver.open()
            async with asyncio.timeout(PROBE_S):
                while True:  # stream devices (P1, OTGW) need a telegram or a frame first
                    readings = await driver.read()
                    if any(r.good for r in readings):
                        break
                    await asyncio.sleep(1.0)
        except TimeoutError:
            pass
        finally:
            await driver.close()
        sample = Sample(driver.name, time.time(), ClockState.UNSYNCED, tuple(readings))
        report = device_report(driver.describe(), schedule.interval, sample, time.time())
        if not readings:
            report["state"] = "down"
        out.append(report)
    return out


async def _brokers(config: Config) -> list[Check]:
    from agent.delivery.mqtt import Callbacks, MqttConnection
    from agent.service.daemon import broker_settings

    async def one(recipient: Any) -> Check:
        settings = replace(broker_settings(recipient, config.device_id), will_topic=None,
                           client_id=f"{config.device_id}-diagnose-{recipient.name}")
        refused = asyncio.Event()
        connection = MqttConnection(settings, Callbacks(unavailable=lambda _: refused.set()))
        task = asyncio.create_task(connection.run())
        name = f"broker {recipient.name}"
        try:
            async with asyncio.timeout(settings.connect_timeout + 5):
                up = asyncio.create_task(connection.wait_connected())
                down = asyncio.create_task(refused.wait())
                await asyncio.wait([up, down], return_when=asyncio.FIRST_COMPLETED)
                up.cancel()
                down.cancel()
        except TimeoutError:
            connection.problem = connection.problem or "no answer"
        finally:
            ok, problem = connection.connected, connection.problem
            await connection.close()
            await task
        if ok:
            tls = "TLS" if settings.tls else "plain MQTT"
            return Check(name, WARN if not settings.tls and recipient.broker.insecure else PASS,
                         f"{settings.label}: connected ({tls})")
        return Check(name, FAIL, printable(f"{settings.label}: {problem}"),
                     _broker_hint(problem or ""))

    return list(await asyncio.gather(*(one(r) for r in config.recipients)))


def _broker_hint(problem: str) -> str:
    if "TLS" in problem or "certificate" in problem:
        return "check the CA file, the client certificate and the gateway's clock"
    if "not authorised" in problem or "password" in problem:
        return "check username and password_file against the broker's users"
    return "check the host name, the port and that the network reaches the broker"


def _grants(config: Config) -> list[Check]:
    import time

    from agent.consent.audit import LOG_NAME, AuditLog, AuditLogError
    from agent.trust.keys import KeyFileError, load_private_key

    try:
        log = AuditLog(config.state_dir / LOG_NAME, load_private_key(config.signing_key),
                       config.device_id)
        states = log.states()
    except (AuditLogError, KeyFileError) as exc:
        return [Check("grants", FAIL, printable(str(exc)),
                      "restore consent.log from a copy; 'hpagent consent audit' checks it")]
    now = time.time()
    out = []
    for r in config.recipients:
        pending = [g.name for g in r.grants]
        active = [s.grant for s in states.values() if s.grant.recipient == r.name
                  and s.active(now)]
        name = f"grants {r.name}"
        if not active and not pending:
            out.append(Check(name, WARN, "no grant: it receives nothing",
                             "'hpagent consent grant --recipient ...' if it should"))
            continue
        ending = [g.id for g in active if g.until is not None and g.until - now < 14 * 86400]
        detail = ", ".join(g.id for g in active) or "from the config, applied at the next start"
        out.append(Check(name, WARN if ending else PASS, detail + (
            f"; ending within 14 days: {', '.join(ending)}" if ending else ""),
            "a new grant before it ends keeps data flowing" if ending else ""))
    return out


_STYLE: Final[dict[str, str]] = {PASS: "green", WARN: "yellow", FAIL: "bold red"}


def _table(checks: list[Check]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title="hpagent diagnose", title_justify="left")
    for col in ("check", "result", "detail", "hint"):
        table.add_column(col, overflow="fold")
    for c in checks:
        table.add_row(c.name, Text(c.result, style=_STYLE[c.result]), c.detail, c.hint)
    Console().print(table)
    failed = sum(c.result == FAIL for c in checks)
    print(f"{len(checks)} checks: {failed} failed, "
          f"{sum(c.result == WARN for c in checks)} warnings")
