"""Feeds :class:`~agent.trust.verify.Verifier` from a broker subscription or a file; renders it."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.delivery.mqtt import BrokerSettings, Callbacks, MqttConnection
from agent.trust.verify import Report, Verifier, printable
from drivers.links import parse_tcp


def _unsigned(topic: str | None) -> bool:
    """The retained online/offline presence: the only messages that are not signed."""
    return topic is not None and topic.endswith("/presence")


def read_file(path: Path, key: Ed25519PublicKey, audience: str | None = None) -> Report:
    """One message per line: the token alone, or ``topic token`` (``mosquitto_sub -v``)."""
    verifier = Verifier(key, audience)
    with path.open(encoding="ascii", errors="replace") as f:
        for raw in f:
            line = raw.strip()
            if not line:
                continue
            topic, _, token = line.rpartition(" ")
            if _unsigned(topic or None):
                verifier.skip()
            else:
                verifier.check(token, topic or None)
    return verifier.report


def listen(broker: str, topic: str, key: Ed25519PublicKey, *, count: int | None,
           seconds: float | None, ca_file: Path | None = None, client_cert: Path | None = None,
           client_key: Path | None = None, username: str | None = None,
           password_file: Path | None = None, audience: str | None = None) -> Report:
    link = parse_tcp(broker)
    password = password_file.read_text().rstrip("\r\n") if password_file else None
    settings = BrokerSettings(
        host=link.host, port=link.port, client_id=f"hpagent-verify-{os.getpid()}",
        tls=ca_file is not None,
        ca_file=ca_file, cert_file=client_cert, key_file=client_key, username=username,
        password=password)
    return asyncio.run(_listen(settings, topic, Verifier(key, audience), count, seconds))


async def _listen(settings: BrokerSettings, topic: str, verifier: Verifier,
                  count: int | None, seconds: float | None) -> Report:
    done = asyncio.Event()

    def on_message(msg_topic: str, payload: bytes) -> None:
        if _unsigned(msg_topic):
            verifier.skip()
            return
        verifier.check(payload.decode("ascii", errors="replace"), msg_topic)
        if count is not None and verifier.report.received >= count:
            done.set()

    connection = MqttConnection(settings, Callbacks(message=on_message, subscriptions=[topic]))
    task = asyncio.create_task(connection.run())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), seconds)
    await connection.close()
    await task
    return verifier.report


def render(report: Report) -> str:
    """The report as a table; every text that came from a message is made printable."""
    lines = [f"{'device':<16} {'audience':<12} {'stream':<9} {'good':>7} {'bad':>5} "
             f"{'missing':>8} {'dup':>5} {'seq':>15}  epoch"]
    for s in report.streams.values():
        for e in s.epochs or []:
            span = f"{e.first_seq}..{e.last_seq}" if e.first_seq is not None else "-"
            lines.append(f"{printable(s.device_id):<16} {printable(s.audience):<12} "
                         f"{printable(s.stream):<9} {e.good:>7} {s.bad:>5} {len(e.missing):>8} "
                         f"{e.duplicates:>5} {span:>15}  {printable(e.epoch)}")
    for p in report.problems[:50]:
        where = f" on {printable(p.topic)}" if p.topic else ""
        lines.append(f"bad #{p.index}{where}: {printable(p.reason)}")
    if len(report.problems) > 50:
        lines.append(f"... and {len(report.problems) - 50} more bad messages")
    for s in report.streams.values():
        name = f"{printable(s.device_id)}/{printable(s.audience)}/{printable(s.stream)}"
        if s.restarts:
            lines.append(f"epoch change in {name}: the chain began again {s.restarts} time(s) "
                         "without its history (the gateway lost or replaced its database)")
        for e in s.epochs:
            if e.gaps:
                lines.append(f"missing in {name}: {_ranges(e.gaps)}")
            if e.lost_newest:
                lines.append(f"lost newest in {name}: {_ranges(e.lost_newest)} (a heartbeat "
                             f"announced seq {e.announced})")
    verdict = "OK" if report.ok else "FAILED"
    if report.received == 0:
        verdict = "FAILED: no messages received"
    lines.append(f"{verdict}: {report.received} received, {report.good} good, {report.bad} bad, "
                 f"{report.missing} missing, {report.restarts} epoch changes")
    return "\n".join(lines)


def _ranges(seqs: list[int]) -> str:
    out: list[str] = []
    start = prev = seqs[0]
    for s in [*seqs[1:], None]:
        if s is not None and s == prev + 1:
            prev = s
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if s is not None:
            start = prev = s
    return ", ".join(out)
