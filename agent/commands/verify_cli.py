"""Feeds :class:`~agent.trust.verify.Verifier` from a broker subscription or a file; renders it."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.delivery.mqtt import BrokerSettings, Callbacks, MqttConnection
from agent.trust.verify import Report, Verifier
from drivers.links import parse_tcp


def _is_status(topic: str | None) -> bool:
    return topic is not None and topic.endswith("/status")


def read_file(path: Path, key: Ed25519PublicKey) -> Report:
    """One message per line: the token alone, or ``topic token`` (``mosquitto_sub -v``)."""
    verifier = Verifier(key)
    with path.open(encoding="ascii", errors="replace") as f:
        for raw in f:
            line = raw.strip()
            if not line:
                continue
            topic, _, token = line.rpartition(" ")
            if _is_status(topic or None):
                verifier.skip()
            else:
                verifier.check(token, topic or None)
    return verifier.report


def listen(broker: str, topic: str, key: Ed25519PublicKey, *, count: int | None,
           seconds: float | None, ca_file: Path | None = None, client_cert: Path | None = None,
           client_key: Path | None = None, username: str | None = None,
           password_file: Path | None = None) -> Report:
    link = parse_tcp(broker)
    password = password_file.read_text().rstrip("\r\n") if password_file else None
    settings = BrokerSettings(
        host=link.host, port=link.port, client_id=f"hpagent-verify-{os.getpid()}",
        tls=ca_file is not None,
        ca_file=ca_file, cert_file=client_cert, key_file=client_key, username=username,
        password=password)
    return asyncio.run(_listen(settings, topic, key, count, seconds))


async def _listen(settings: BrokerSettings, topic: str, key: Ed25519PublicKey,
                  count: int | None, seconds: float | None) -> Report:
    verifier = Verifier(key)
    done = asyncio.Event()

    def on_message(msg_topic: str, payload: bytes) -> None:
        if _is_status(msg_topic):
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
    lines = [f"{'device':<16} {'stream':<10} {'good':>7} {'bad':>5} {'missing':>8} "
             f"{'dup':>5} {'seq':>15}"]
    for s in report.streams.values():
        span = f"{s.first_seq}..{s.last_seq}" if s.first_seq is not None else "-"
        lines.append(f"{s.device_id:<16} {s.stream:<10} {s.good:>7} {s.bad:>5} "
                     f"{len(s.missing):>8} {s.duplicates:>5} {span:>15}")
    for p in report.problems[:50]:
        lines.append(f"bad #{p.index}{' on ' + p.topic if p.topic else ''}: {p.reason}")
    if len(report.problems) > 50:
        lines.append(f"... and {len(report.problems) - 50} more bad messages")
    for s in report.streams.values():
        if s.missing:
            lines.append(f"missing in {s.device_id}/{s.stream}: {_ranges(s.missing)}")
    verdict = "OK" if report.ok else "FAILED"
    if report.received == 0:
        verdict = "FAILED: no messages received"
    lines.append(f"{verdict}: {report.received} received, {report.good} good, {report.bad} bad, "
                 f"{report.missing} missing")
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
