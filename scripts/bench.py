"""hpagent benchmarks: the figures a gateway that runs for years must meet, printed as a table.

Each row runs the real thing in separate processes (the agent as ``hpagent run``, the simulated
heat pump as ``hpagent hil heatpump``, a local mosquitto) and measures the agent process only,
from /proc (schedstat gives CPU time in nanoseconds per thread; status gives RSS).

    python scripts/bench.py            # everything
    python scripts/bench.py --quick    # shorter runs, same rows
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.delivery.ingest import Ingest
from agent.delivery.outbox import Outbox, Pending
from agent.sample import Sample
from agent.trust.keys import init_key
from drivers.planner import minimum_reads, plan
from drivers.profile import available_profiles, load_profile
from hil.broker import Mosquitto, free_port, wait_for_port

HPAGENT = [sys.executable, "-m", "agent"]


@dataclass
class Row:
    what: str
    measured: str
    target: str
    ok: bool | None  # None: informative, no target

    @property
    def verdict(self) -> str:
        return {True: "ok", False: "MISSED", None: ""}[self.ok]


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` so far, in nanoseconds."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that just ended
    return total


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _count(db: Path, table: Literal["samples", "outbox"]) -> int:
    """Rows in ``table`` of the agent's database ('samples', or 'outbox': the backlog)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
    except sqlite3.OperationalError:
        return 0  # the agent is still making its tables
    finally:
        con.close()


@contextmanager
def process(args: list[str], **kw: object) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)  # type: ignore[call-overload]
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def recipients(broker_port: int, names: tuple[str, ...] = ("local",), since: str | None = None
               ) -> str:
    """The config's recipients on a local broker, each granted every field at raw resolution."""
    start = f", from: '{since}'" if since else ""
    return "recipients:\n" + "".join(
        f"  - {{name: {n}, role: other, broker: {{host: 127.0.0.1, port: {broker_port}}},\n"
        f"     grants: [{{name: all, streams: [samples, hourly, daily, status], "
        f"fields: [all], purpose: bench{start}}}]}}\n" for n in names)


@contextmanager
def rig(workdir: Path, interval: float, commit_interval: float = 60.0
        ) -> Iterator[tuple[subprocess.Popen[bytes], Path, int]]:
    """Broker, simulated heat pump and agent; yields the agent process, its database, hp port."""
    broker = Mosquitto(workdir / "mosquitto")
    broker.start_sync()
    hp_port = free_port()
    state = workdir / "state"
    init_key(state / "gateway.key")
    config = workdir / "hpagent.yaml"
    config.write_text(f"""\
device_id: bench
state_dir: {state}
log: {{level: warning, format: json}}
devices:
  - kind: modbus
    name: heatpump
    profile: hpagent_bench_heatpump
    tcp: {{host: 127.0.0.1, port: {hp_port}}}
    interval: {interval}
    timeout: 1
storage: {{commit_interval: {commit_interval}}}
{recipients(broker.port)}""")
    try:
        with process([*HPAGENT, "hil", "heatpump", "--port", str(hp_port), "--speed", "60"]):
            wait_for_port(hp_port)
            with process([*HPAGENT, "run", "--config", str(config)]) as agent:
                db = state / "hpagent.db"
                deadline = time.monotonic() + interval + commit_interval + 30  # aligned polls
                while not db.exists() or _count(db, "samples") < 1:
                    if time.monotonic() > deadline or agent.poll() is not None:
                        agent.kill()
                        err = agent.stderr.read().decode() if agent.stderr else ""
                        raise RuntimeError(f"the agent took no sample: {err}")
                    time.sleep(0.05)
                yield agent, db, hp_port
    finally:
        broker.stop_sync()


def _next_commit(db: Path, after: int) -> int:
    """Wait until the agent's next commit shows in the database; its sample count then."""
    while (n := _count(db, "samples")) == after:
        time.sleep(0.01)
    return n


def bench_per_sample(workdir: Path, seconds: float, commit_interval: float = 60.0
                     ) -> list[Row]:
    """CPU per sample end to end (poll, store, sign, outbox, PUBACK), and memory, at 20 polls/s.
    Measured from one commit to a later one, so the samples counted are exactly those paid for."""
    with rig(workdir, interval=0.05, commit_interval=commit_interval) as (agent, db, _):
        time.sleep(2.0)  # warm up: imports done, caches filled, connections up
        n0 = _next_commit(db, _count(db, "samples"))
        c0, r0 = cpu_ns(agent.pid), rss_kib(agent.pid)
        rss_trace = [r0]
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(min(1.0, end - time.monotonic()))
            rss_trace.append(rss_kib(agent.pid))
        n1 = _next_commit(db, _count(db, "samples"))
        c1 = cpu_ns(agent.pid)
        peak = rss_kib(agent.pid, "VmHWM")
        left = _count(db, "outbox")
    samples = n1 - n0
    per_sample_ms = (c1 - c0) / samples / 1e6
    steady = rss_trace[-1] / 1024
    growth = (rss_trace[-1] - rss_trace[len(rss_trace) // 2]) / 1024
    how = f"commits every {commit_interval:g} s" if commit_interval else "a commit a sample"
    rows = [Row(f"CPU per sample, end to end, {how} ({samples} samples, outbox left {left})",
                f"{per_sample_ms:.3f} ms", "<= 0.5 ms", per_sample_ms <= 0.5)]
    if commit_interval:
        rows += [
            Row("Steady RSS of the agent", f"{steady:.1f} MB (peak {peak / 1024:.1f} MB)",
                "<= 50 MB", steady <= 50),
            Row(f"RSS growth over the second half ({seconds / 2:.0f} s)", f"{growth:+.2f} MB",
                "flat", abs(growth) < 0.5)]
    return rows


def bench_idle(workdir: Path, seconds: float) -> list[Row]:
    """CPU between polls: a 60 s poll interval, measured after one poll, before the next."""
    with rig(workdir, interval=60.0) as (agent, db, _):
        polled = _count(db, "samples")
        time.sleep(2.0)  # let the poll's publish and PUBACK settle
        c0, t0 = cpu_ns(agent.pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_ns(agent.pid), time.monotonic()
        extra = _count(db, "samples") - polled
    share = (c1 - c0) / ((t1 - t0) * 1e9) * 100
    note = f" ({extra} polls fell in the window)" if extra else ""
    return [Row(f"Idle CPU between polls ({seconds:.0f} s window){note}",
                f"{share:.4f} % of a core", "<= 0.03 %", share <= 0.03)]


def bench_transactions(workdir: Path) -> list[Row]:
    """Modbus transactions on the wire per poll, against the planner's minimum."""
    profile = load_profile("hpagent_bench_heatpump")
    minimum = minimum_reads(profile.registers, profile.limits)
    rows: list[Row] = []

    async def count() -> tuple[int, int]:
        from drivers.links import TcpLink
        from drivers.modbus import ModbusBus, ModbusDevice
        from hil.heatpump_server import SimulatedHeatPump

        port = free_port()
        hp = SimulatedHeatPump(port=port)
        await hp.start()
        device = ModbusDevice("hp", ModbusBus(TcpLink("127.0.0.1", port)), 1, profile)
        for _ in range(10):
            await device.read()
        await device.close()
        await hp.stop()
        return hp.reads, 10

    wire, polls = asyncio.run(count())
    rows.append(Row("Modbus transactions per poll, bench heat pump (on the wire)",
                    f"{wire / polls:.1f} (minimum {minimum})", "= planner minimum",
                    wire == polls * minimum))
    worst = []
    for name, path in sorted(available_profiles().items()):
        p = load_profile(str(path))
        planned, least = len(plan(p.registers, p.limits)), minimum_reads(p.registers, p.limits)
        if planned != least:
            worst.append(name)
    rows.append(Row(f"Planned reads = minimum, all {len(available_profiles())} profiles",
                    "all equal" if not worst else f"differ: {', '.join(worst)}",
                    "= planner minimum", not worst))
    return rows


def bench_help(runs: int = 15) -> list[Row]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "hpagent"), "--help"],
                       stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t)
    ms = statistics.median(times) * 1000
    return [Row(f"hpagent --help start-up (median of {runs})", f"{ms:.0f} ms", "<= 150 ms",
                ms <= 150)]


def bench_p1(workdir: Path, telegrams: int = 2000) -> list[Row]:
    """CPU per DSMR 5 telegram, from bytes to a stored sample, signed and queued on its own."""
    from agent.sample import ClockState, Sample
    from drivers.p1_telegram import P1Decoder
    from hil.p1_meter import SimulatedP1Meter

    meter = SimulatedP1Meter("5")
    data = [meter.step().data for _ in range(telegrams)]

    async def run() -> float:
        with pipeline(workdir, ("local",), 0.0) as (ingest, _):
            decoder = P1Decoder("auto")
            start = time.process_time()
            for i, raw in enumerate(data):
                for telegram in decoder.feed(raw):
                    assert not isinstance(telegram, Exception), telegram
                    ingest.add(Sample("p1", 1.8e9 + i, ClockState.SYNCED,
                                      tuple(telegram.readings())))
                await asyncio.sleep(0)
            return (time.process_time() - start) / telegrams * 1000

    per = asyncio.run(run())
    return [Row("CPU per P1 telegram (DSMR 5), bytes to stored sample", f"{per:.3f} ms",
                "(reported)", None)]


class _Acker:
    """A recipient that is always connected and acknowledges at once (no broker)."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.payload = 0  # bytes of the messages it received

    @property
    def live(self) -> bool:
        return True

    def offer(self, message: Pending) -> None:
        self.payload += len(message.token or "")  # made in memory: never a recipe here
        self.outbox.acknowledged(message.id)

    def kick(self) -> None:
        pass


@contextmanager
def pipeline(workdir: Path, names: tuple[str, ...], commit_interval: float
             ) -> Iterator[tuple[Ingest, dict[str, _Acker]]]:
    """The agent's store-to-outbox path in this process, every recipient granted everything."""
    from agent.consent.audit import LOG_NAME, AuditLog
    from agent.consent.dispatch import Dispatcher, Recipient
    from agent.consent.grants import Grant
    from agent.delivery.outbox import Outbox
    from agent.delivery.store import Store
    from agent.figures.installation import Installation
    from agent.figures.metrics import spec_for
    from agent.service.ledger_service import LedgerService
    from agent.trust.jws import Signer

    key = init_key(workdir / "gateway.key")
    store = Store(workdir / "hpagent.db")
    outbox = Outbox(store)
    dispatcher = Dispatcher(store, outbox, Signer(key), AuditLog(workdir / LOG_NAME, key, "bench"),
                            "bench", [Recipient(n) for n in names], spec_for(Installation()),
                            time.time)
    ackers = {n: _Acker(outbox) for n in names}
    dispatcher.outlets.update(ackers)
    dispatcher.reconcile([Grant(f"g-{n}", n, ("samples", "hourly", "daily"), ("all",), "raw",
                                "bench", 0.0, None, "config") for n in names])
    ingest = Ingest(store, outbox, commit_interval=commit_interval)
    ingest.then = dispatcher.on_commit
    ledger = LedgerService(store, dispatcher, Installation())
    ingest.on_commit = ledger.add_all
    try:
        yield ingest, ackers
    finally:
        store.close()


def heatpump_samples(start: float, step: float, n: int) -> Iterator[Sample]:
    """``n`` samples of the bench heat pump as its registers show them, ``step`` apart."""
    from agent.sample import ClockState, Sample
    from drivers.reading import Reading
    from hil.season import heatpump_course

    for t, values in heatpump_course(start, step, n):
        yield Sample("heatpump", t, ClockState.SYNCED,
                     tuple(Reading(q, v) for q, v in values.items()))


def bench_backlog(workdir: Path, days: float) -> list[Row]:
    """A week of 10-second samples stored while the broker was away; then the agent drains it
    to a local mosquitto: time, samples per second, and the agent's peak memory, which must not
    grow with the backlog (a backlog a seventh the size is drained for comparison)."""
    received, seconds, peak = _backlog(workdir / "week", days)
    _, _, small = _backlog(workdir / "day", days / 7)
    rate = received / seconds
    return [
        Row(f"Backlog drain, {days:g} days of 10-s samples ({received}) to mosquitto",
            f"{seconds:.2f} s: {rate:,.0f} samples/s", ">= 20,000/s", rate >= 20_000),
        Row("  the agent's peak RSS draining it (a seventh of it)",
            f"{peak / 1024:.1f} MB ({small / 1024:.1f} MB)", "bounded",
            peak - small <= 2048),
    ]


def _backlog(workdir: Path, days: float) -> tuple[int, float, int]:
    """Store ``days`` of samples, start the agent, drain: (samples, seconds, peak RSS KiB)."""
    from agent.delivery.store import Store

    n = int(days * 86400 / 10)
    state = workdir / "state"
    key = init_key(state / "gateway.key")
    now = time.time()
    store = Store(state / "hpagent.db")
    batch = []
    for sample in heatpump_samples(now - n * 10.0, 10.0, n):
        batch.append(sample)
        if len(batch) == 5000:
            with store.transaction():
                for x in batch:
                    store.add_sample(x)
            batch.clear()
    with store.transaction():
        for x in batch:
            store.add_sample(x)
    store.close()
    broker = Mosquitto(workdir / "mosquitto")
    broker.start_sync()
    since = time.strftime("%Y-%m-%d", time.gmtime(now - (days + 2) * 86400))
    config = workdir / "hpagent.yaml"
    config.write_text(f"device_id: bench\nstate_dir: {state}\nlog: {{level: warning}}\n"
                      f"devices: []\n{recipients(broker.port, since=since)}")
    try:
        received, first, last, peak = asyncio.run(_drain(config, broker.port, key, n))
    finally:
        broker.stop_sync()
    if received != n:
        raise RuntimeError(f"drained {received} of {n} samples")
    return received, last - first, peak


async def _drain(config: Path, port: int, key: Ed25519PrivateKey, n: int
                 ) -> tuple[int, float, float, int]:
    """Start the agent, count verified samples until ``n``: (samples, when the first message
    of samples came, when the last came, the agent's peak RSS in KiB)."""
    from agent.delivery.mqtt import BrokerSettings, Callbacks, MqttConnection
    from agent.trust.verify import Verifier

    verifier = Verifier(key.public_key())
    got = {"samples": 0}
    times: list[float] = []
    done = asyncio.Event()

    def on_message(topic: str, data: bytes) -> None:
        if topic.endswith("/presence"):
            return
        token = data.decode()
        if verifier.check(token, topic):
            body = orjson.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
            if body["stream"] == "samples":
                got["samples"] += len(body["samples"])
                times.append(time.perf_counter())
        if got["samples"] >= n:
            done.set()

    reader = MqttConnection(BrokerSettings("127.0.0.1", port, "bench-reader"),
                            Callbacks(message=on_message, subscriptions=["hpagent/v1/#"]))
    listening = asyncio.create_task(reader.run())
    await reader.wait_connected()
    agent = await asyncio.create_subprocess_exec(*HPAGENT, "run", "--config", str(config))
    try:
        async with asyncio.timeout(600):
            await done.wait()
        peak = rss_kib(agent.pid, "VmHWM")
    finally:
        agent.terminate()
        await agent.wait()
        await reader.close()
        await listening
    if not verifier.report.ok:
        raise RuntimeError(f"the drained messages do not verify: {verifier.report.to_json()}")
    return got["samples"], times[0], times[-1], peak


def bench_disk(workdir: Path, hours: float) -> list[Row]:
    """Bytes the agent writes to disk for a day of 10-second samples with two recipients,
    against the payload it publishes; at the default commit interval and a commit a sample."""
    rows = []
    for commit_interval in (60.0, 30.0, 0.0):
        folder = workdir / f"c{commit_interval:g}"
        folder.mkdir(parents=True)
        written, payload = asyncio.run(_day(folder, hours, commit_interval))
        ratio = written / payload
        per_day = written * 24 / hours / 1e6
        how = f"commits every {commit_interval:g} s" if commit_interval else "a commit a sample"
        rows.append(Row(f"Disk written per day, 10-s samples, 2 recipients, {how}",
                        f"{per_day:.1f} MB/day = {ratio:.2f}x the payload "
                        f"({payload * 24 / hours / 1e6:.1f} MB)", "<= 3x payload",
                        ratio <= 3 if commit_interval == 60.0 else None))
    return rows


async def _day(workdir: Path, hours: float, commit_interval: float) -> tuple[int, int]:
    """(bytes written, bytes published) for ``hours`` of 10-s samples, in this process."""
    n = int(hours * 360)
    every = max(int(commit_interval / 10), 1)
    with pipeline(workdir, ("installer", "resident"), 3600.0) as (ingest, ackers):
        store = ingest.store
        before = _written()
        for i, sample in enumerate(heatpump_samples(1.78e9, 10.0, n)):
            ingest.add(sample)
            if (i + 1) % every == 0:
                ingest.flush()
                await asyncio.sleep(0)
        ingest.flush()
        await asyncio.sleep(0)
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # what the WAL still owes the file
        written = _written() - before
    return written, sum(a.payload for a in ackers.values())


def _written() -> int:
    """Bytes this process has caused to be written to storage (/proc/self/io write_bytes)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError("/proc/self/io has no write_bytes")


def _tree_memory_kib(pid: int) -> int:
    """Memory of a process and all its descendants: the sum of their proportional set sizes
    (forked workers share pages with their parent; RSS would count those twice)."""
    total = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        stack += [int(c) for c in children]
    return total


def year_recording(cache: Path, what: str) -> Path:
    """A year of 10-second samples (made once, cached): ``heatpump``, the heat pump's own
    samples; ``installation``, the bench's whole hybrid installation in every line."""
    path = cache / f"year-10s-{what}.jsonl"
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    print(f"  making {path} (once) ...", file=sys.stderr, flush=True)
    from datetime import UTC, datetime

    start, end = datetime(2025, 10, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)
    partial = path.with_suffix(".partial")
    if what == "installation":
        from hil.season import run_season

        run_season(partial, start=start, end=end, step=10.0)
    else:
        from drivers.recording import Record, record_line
        from hil.heatpump_server import default_model
        from hil.season import as_shown

        model = default_model(start)
        with partial.open("wb", buffering=1 << 20) as f:
            t = start.timestamp()
            while t < end.timestamp():
                model.step(10.0)
                t += 10.0
                f.write(record_line(Record(t, as_shown(dict(model.snapshot())), "heatpump")))
    partial.rename(path)
    return path


def season_recording(cache: Path) -> Path:
    """The bench's heating season, October to April, in 10-second whole-installation lines
    (made once, cached)."""
    path = cache / "season-10s-installation.jsonl"
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    print(f"  making {path} (once) ...", file=sys.stderr, flush=True)
    from datetime import UTC, datetime

    from hil.season import run_season

    partial = path.with_suffix(".partial")
    run_season(partial, start=datetime(2025, 10, 1, tzinfo=UTC),
               end=datetime(2026, 5, 1, tzinfo=UTC), step=10.0)
    partial.rename(path)
    return path


def bench_report(workdir: Path, cache: Path) -> list[Row]:
    """``hpagent report`` over a year of 10-second samples: wall time and peak memory."""
    return [*_command_rows(workdir, year_recording(cache, "heatpump"), "Year report",
                           "heat pump samples", ["report"]),
            *_command_rows(workdir, year_recording(cache, "installation"), "Year report",
                           "whole-installation lines", ["report"])]


def bench_diagnosis(workdir: Path, cache: Path) -> list[Row]:
    """The findings of a season of 10-second samples, alone and in the season's report."""
    season = season_recording(cache)
    return [*_command_rows(workdir, season, "Season findings", "whole-installation lines",
                           ["diagnose", "--findings"]),
            *_command_rows(workdir, season, "Season report with findings",
                           "whole-installation lines", ["report"])]


def _command_rows(workdir: Path, path: Path, title: str, what: str, command: list[str]
                  ) -> list[Row]:
    """An ``hpagent`` command over a recording: its wall time and the peak memory of all its
    processes."""
    with path.open("rb") as f:
        lines = sum(1 for _ in f)
        f.seek(0)
        width = len(orjson.loads(f.readline())["q"])
    started = time.perf_counter()
    proc = subprocess.Popen([*HPAGENT, *command, "--recording", str(path), "--json", "--config",
                             str(workdir / "none.yaml")], stdout=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_memory_kib(proc.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(f"hpagent {' '.join(command)} failed ({proc.returncode})")
    return [
        Row(f"{title}, {lines / 1e6:.2f} M {what} ({width} quantities each)",
            f"{seconds:.1f} s", "<= 10 s", seconds <= 10),
        Row("  its peak memory (all processes)", f"{peak / 1024:.0f} MB", "<= 200 MB",
            peak / 1024 <= 200),
    ]


def render(rows: list[Row]) -> str:
    width = max(len(r.what) for r in rows)
    mwidth = max(len(r.measured) for r in rows)
    lines = [f"{'benchmark':<{width}}  {'measured':<{mwidth}}  {'target':<18}  verdict",
             "-" * (width + mwidth + 32)]
    lines += [f"{r.what:<{width}}  {r.measured:<{mwidth}}  {r.target:<18}  {r.verdict}"
              for r in rows]
    return "\n".join(lines)


CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hpagent-bench"

BENCHES: dict[str, Callable[[Path, bool], list[Row]]] = {
    "transactions": lambda d, q: bench_transactions(d),
    "per-sample": lambda d, q: [*bench_per_sample(d / "grouped", 60 if q else 180),
                                *bench_per_sample(d / "each", 10 if q else 40, 0.0)],
    "idle": lambda d, q: bench_idle(d, 20 if q else 50),
    "help": lambda d, q: bench_help(),
    "p1": lambda d, q: bench_p1(d, 500 if q else 2000),
    "backlog": lambda d, q: bench_backlog(d, 7.0),
    "disk": lambda d, q: bench_disk(d, 6 if q else 24),
    "report": lambda d, q: bench_report(d, CACHE),
    "diagnosis": lambda d, q: bench_diagnosis(d, CACHE),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter measurement windows")
    parser.add_argument("--only", choices=sorted(BENCHES), action="append",
                        help="run only these benchmarks")
    parser.add_argument("--json", action="store_true", help="rows as JSON")
    args = parser.parse_args()
    rows: list[Row] = []
    for name, bench in BENCHES.items():
        if args.only and name not in args.only:
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix=f"hpagent-bench-{name}-") as d:
            rows += bench(Path(d), args.quick)
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
    else:
        print(render(rows))
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
