"""For any grants, revocations, outages and samples: a recipient receives only what it was
granted, within the grant's validity, and nothing under a grant once it was revoked."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent.consent.fields import RESOLUTIONS
from agent.consent.grants import Grant, problems
from agent.sample import ClockState, Sample
from agent.trust.verify import Verifier
from drivers.reading import Reading
from drivers.timestamps import rfc3339
from tests.pipeline import Pipeline

T0 = 1_767_222_000.0  # 2026-01-01 00:00 local time
STEP = 300.0
HOURS = 28  # a local day closes, with the grace of hourly gas
QUANTITIES = ("hp.heat_energy", "hp.electric_energy", "hp.supply_temp", "hp.mode",
              "grid.power", "grid.import_energy", "gas.volume", "room.temp", "hp.outdoor_temp")
FIELDS = ("performance", "household", "all", "hp.supply_temp", "grid.power", "gas.volume",
          "spf", "heat_kwh", "hp.heat_energy", "room.temp")


@dataclass(frozen=True)
class Plan:
    recipient: str
    streams: tuple[str, ...]
    fields: tuple[str, ...]
    resolution: str
    start_h: float
    hours: float | None
    revoke_h: float | None


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    while True:
        streams = tuple(draw(st.sets(st.sampled_from(("samples", "hourly", "daily", "status")),
                                     min_size=1)))
        resolution = draw(st.sampled_from(tuple(RESOLUTIONS)))
        if not problems(streams, ("all",), resolution, "p", 0.0, None):
            break
    return Plan(draw(st.sampled_from(("a", "b"))), streams,
                tuple(draw(st.sets(st.sampled_from(FIELDS), min_size=1))), resolution,
                draw(st.sampled_from((-3.0, 0.0, 2.5, 7.0))),
                draw(st.sampled_from((None, 3.0, 12.0, 26.0))),
                draw(st.sampled_from((None, 1.0, 5.5, 20.0))))


def sample(i: int, present: frozenset[str]) -> Sample:
    t = T0 + i * STEP
    values: dict[str, Any] = {
        "hp.heat_energy": 100 + i * 0.25, "hp.electric_energy": 30 + i * 0.08,
        "hp.supply_temp": 35.0 + i % 7, "hp.mode": "heating" if i % 5 else "dhw",
        "grid.power": 400.0 + i % 11, "grid.import_energy": 5000 + i * 0.1,
        "gas.volume": 1500 + i * 0.01, "room.temp": 20.5, "hp.outdoor_temp": 4.0 - i % 3}
    return Sample("dev", t, ClockState.SYNCED,
                  tuple(Reading(q, v) for q, v in values.items() if q in present))


async def run(state: Path, plan: list[Plan], subsets: list[frozenset[str]],
              outage: tuple[int, int]) -> tuple[Pipeline, list[Grant], dict[str, float]]:
    p = Pipeline(state, ("a", "b"), key=Ed25519PrivateKey.generate(), now=T0)
    grants = [p.grant(x.recipient, x.streams, x.fields, x.resolution,
                      start=T0 + x.start_h * 3600,
                      until=None if x.hours is None else T0 + (x.start_h + x.hours) * 3600)
              for x in plan]
    revoke_at = {g.id: T0 + x.revoke_h * 3600 for g, x in zip(grants, plan, strict=True)
                 if x.revoke_h is not None}
    revoked: dict[str, float] = {}
    b = p.outlets["b"]
    steps = int(HOURS * 3600 / STEP)
    for i in range(steps):
        p.now = T0 + i * STEP
        for g in grants:
            if g.id in revoke_at and g.id not in revoked and p.now >= revoke_at[g.id]:
                p.revoke(g)
                revoked[g.id] = p.now
        p.dispatcher.settle()  # the daemon's timer at each grant's end
        b.live = not outage[0] <= i < outage[1]
        if i == outage[1]:
            b.drain()  # reconnected: the backlog first
        p.add(sample(i, subsets[i % len(subsets)]))
        if i % 12 == 0:
            p.dispatcher.heartbeat()
        await p.settle()
        for outlet in p.outlets.values():
            if outlet.live:
                outlet.drain()
    p.now += 6 * 3600  # later: whatever may still come, comes
    p.dispatcher.settle()
    for outlet in p.outlets.values():
        outlet.live = True
        outlet.drain()
    await p.settle()
    return p, grants, revoked


ALL = frozenset(QUANTITIES)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(plans(), min_size=1, max_size=4),
       st.lists(st.frozensets(st.sampled_from(QUANTITIES), min_size=1), min_size=1, max_size=4),
       st.tuples(st.integers(0, 300), st.integers(0, 120)).map(lambda o: (o[0], o[0] + o[1])))
@example(  # messages withdrawn by a revocation are numbered but never sent: not lost
    plan=[Plan("a", ("samples",), ("all",), "raw", 0.0, 26.0, 1.0),
          Plan("b", ("samples", "daily", "hourly", "status"),
               ("hp.heat_energy", "room.temp", "performance"), "1min", 0.0, None, 20.0),
          Plan("b", ("samples", "daily", "hourly", "status"), ("all",), "1min", 7.0, 26.0,
               None)],
    subsets=[ALL, frozenset({"room.temp"}), ALL], outage=(223, 306))
def test_recipients_receive_only_what_they_were_granted(
        plan: list[Plan], subsets: list[frozenset[str]], outage: tuple[int, int]) -> None:
    with tempfile.TemporaryDirectory() as state:
        p, grants, revoked = asyncio.run(run(Path(state), plan, subsets, outage))
        by_id = {g.id: g for g in grants}
        for name, outlet in p.outlets.items():
            verifier = Verifier(p.key.public_key(), name)
            for token in outlet.tokens():
                verifier.check(token)
            report = verifier.report
            assert report.bad == 0 and report.missing == 0, report.problems
            for body, when in zip(outlet.bodies(), outlet.arrived, strict=True):
                if body["stream"] == "consent":
                    continue
                g = by_id[body["grant"]]
                assert g.recipient == name and body["aud"] == name
                assert body["stream"] in g.streams
                assert when < revoked.get(g.id, float("inf")), "sent after its revocation"
                assert g.until is None or when < g.until, "sent after the grant ended"
                check_content(body, g)
        p.close()


def check_content(body: dict[str, Any], g: Grant) -> None:
    """Fields, resolution and the time of the data, held against the grant itself."""
    start, until = rfc3339(g.start), None if g.until is None else rfc3339(g.until)
    stream = body["stream"]
    if stream == "samples":
        assert body["resolution"] == g.resolution
        for item in body.get("samples", []):
            assert set(item["quantities"]) | set(item.get("quality", {})) <= g.allowed
            assert start <= item["ts"] and (until is None or item["ts"] < until)
        for item in body.get("intervals", []):
            for section in ("counters", "gauges", "states"):
                assert set(item.get(section, {})) <= g.allowed
            assert start <= item["from"] and (until is None or item["to"] <= until)
    elif stream in ("hourly", "daily"):
        keys = set(body) - {"v", "device_id", "aud", "grant", "stream", "epoch", "seq",
                            "prev", "hour", "day", "period"}
        if stream == "hourly":
            keys = {q for section in keys for q in body[section]}
        assert keys <= g.allowed
        assert start <= body["period"][0] and (until is None or body["period"][1] <= until)
