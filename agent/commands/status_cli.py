"""``hpagent status`` and ``hpagent watch``: what the running daemon knows, for the technician.

Both ask the daemon over its status socket (owner and mode checked: :func:`ask`); ``status``
prints it once (rich tables, or ``--json``), ``watch`` keeps a live dashboard until Ctrl-C.
"""

from __future__ import annotations

import json
import time
from typing import Any

from agent.service.config import Config
from agent.service.defaults import failed
from agent.service.status import StatusError, ask, summary
from agent.trust.verify import printable

_STATE_STYLE = {"ok": "green", "degraded": "yellow", "down": "bold red", "waiting": "dim"}


def fetch(config: Config) -> dict[str, Any]:
    """The daemon's status; :class:`StatusError` if it cannot be had or trusted."""
    owner = config.state_dir.stat().st_uid if config.state_dir.exists() else None
    return ask(config.status_socket, owner)


def status(config: Config, as_json: bool) -> int:
    try:
        report = fetch(config)
    except StatusError as exc:
        return failed(str(exc))
    if as_json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        from rich.console import Console

        Console().print(*tables(report))
    return 0


def watch(config: Config, every: float, seconds: float | None) -> int:
    """Refresh every ``every`` seconds until Ctrl-C (or ``seconds``)."""
    from rich.console import Console, Group
    from rich.live import Live
    from rich.text import Text

    console = Console()
    end = None if seconds is None else time.monotonic() + seconds
    with Live(console=console, auto_refresh=False, screen=False) as live:
        while end is None or time.monotonic() < end:
            try:
                shown: Any = Group(*tables(fetch(config)))
            except StatusError as exc:
                shown = Text(f"hpagent: {exc}", style="bold red")
            live.update(shown, refresh=True)
            time.sleep(every)
    return 0


def tables(report: dict[str, Any]) -> list[Any]:
    """The status as a heading line and tables of devices and recipients."""
    from rich.table import Table
    from rich.text import Text

    head = Text(f"{report['device_id']}  hpagent {report.get('version', '?')}  up "
                f"{_duration(report.get('uptime_s', 0))}  clock {report.get('clock')}  key "
                f"{report['key_id'][:12]}…  {report['polls']} polls  "
                f"stored {report['store']['committed']} (waiting {report['store']['buffered']},"
                f" lost {report['store']['dropped']})")
    devices = Table(title="devices", title_justify="left")
    for col in ("device", "driver", "link", "state", "last poll", "values", "problems"):
        devices.add_column(col, overflow="fold")
    for d in report["devices"]:
        values = ", ".join(f"{q} {v}" for q, v in list(d.get("values", {}).items())[:6])
        problems = summary(d.get("problems", {}))
        age = f"{d['age_s']:.0f} s ago" if "age_s" in d else "-"
        devices.add_row(printable(d["name"]), str(d.get("driver", "")),
                        printable(str(d.get("link", ""))),
                        Text(d["state"], style=_STATE_STYLE.get(d["state"], "")), age,
                        printable(values), printable(problems))
    recipients = Table(title="recipients", title_justify="left")
    for col in ("recipient", "broker", "connected", "outbox", "sent", "acked", "grants",
                "problem"):
        recipients.add_column(col, overflow="fold")
    for r in report["recipients"]:
        problem = r.get("fault") or r.get("problem") or ""
        recipients.add_row(r["name"], r["broker"],
                           Text("yes" if r["connected"] else "no",
                                style="green" if r["connected"] else "bold red"),
                           str(r["outbox"]), str(r["sent"]), str(r["acked"]),
                           ", ".join(r["grants"]) or "none", printable(problem))
    return [head, devices, recipients]


def _duration(seconds: float) -> str:
    minutes, s = divmod(int(seconds), 60)
    hours, m = divmod(minutes, 60)
    days, h = divmod(hours, 24)
    return f"{days}d {h}h" if days else f"{h}h {m}m" if h else f"{m}m {s}s"
