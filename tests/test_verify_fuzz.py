"""``hpagent verify`` never raises on hostile input: a million and more inputs, seeded.

Three kinds of input: mutations of genuine tokens (bytes flipped, inserted, cut, parts swapped,
control and bidirectional characters, padding), tokens whose header or payload is replaced by
hostile JSON (deep nesting, duplicate members, huge numbers, wrong types) but not re-signed,
and hostile payloads that *are* signed with the gateway's key, so that every type check after
the signature is reached. Then the report is rendered and must hold no control character.
"""

from __future__ import annotations

import json
import random
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.commands.verify_cli import render
from agent.trust.jws import Signer, b64url
from agent.trust.verify import Verifier
from tests.test_verify import Stream, sample, terms

KEY = Ed25519PrivateKey.generate()
MUTATED = 1_000_000
SIGNED = 20_000
HOSTILE_TEXT = ("\x00", "\x1b[2J", "\u202e", "\ud7ff", "\ufeff", "\r", "\n", "=", "+", "/",
                " ", ".", "..", "é", "\x7f", "\u2028")


def genuine() -> list[str]:
    out = []
    for stream, content in (("samples", sample()),
                            ("consent", {"kind": "granted", "terms": terms()}),
                            ("consent", {"kind": "revoked", "at": "2026-01-01T00:00:00.000Z"}),
                            ("status", {"kind": "heartbeat",
                                        "streams": {"samples": {"epoch": "E1", "seq": 3}}}),
                            ("hourly", {"hour": "2026-01-01T00:00:00.000Z",
                                        "period": ["2026-01-01T00:00:00.000Z",
                                                   "2026-01-01T01:00:00.000Z"],
                                        "energy": {"hp.heat_energy": {"-": 1.0}}}),
                            ("daily", {"day": "2026-01-01", "spf": 3.1})):
        s = Stream(stream, key=KEY)
        out += [s.next(**content), s.next(**content)]
    return out


def hostile_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(12 if depth < 4 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 2**53, 2**64, -(2**70), 10**400 // 10**399])
    if kind == 3:
        return rng.choice([0.5, -0.0, 1e308, float("nan"), float("inf")])
    if kind in (4, 5, 6):
        return "".join(rng.choice((*HOSTILE_TEXT, "a", "samples", "seq", "E1"))
                       for _ in range(rng.randrange(6)))
    if kind in (7, 8, 9):
        return [hostile_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["seq", "epoch", "ts", "quantities", "samples", "streams", "kind",
                        "terms", "fields", "x"]): hostile_json(rng, depth + 1)
            for _ in range(rng.randrange(4))}


def hostile_payload(rng: random.Random) -> dict[str, Any]:
    body: dict[str, Any] = {"v": 2, "device_id": "gw", "aud": "installer", "grant": "g-1",
                            "stream": rng.choice(["samples", "status", "consent", "hourly",
                                                  "daily", "findings"]),
                            "epoch": "E1", "seq": 1, "prev": None}
    for key in rng.sample(sorted(body), rng.randrange(len(body) + 1)):
        body[key] = hostile_json(rng)
    for _ in range(rng.randrange(4)):
        body[rng.choice(["samples", "intervals", "kind", "streams", "terms", "period",
                         "resolution", "quantities", "hour"])] = hostile_json(rng)
    return body


def mutate(rng: random.Random, token: str, corpus: list[str]) -> str:
    text = token
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(9)
        at = rng.randrange(len(text) + 1)
        if op == 0:
            text = text[:at] + chr(rng.randrange(0x20, 0x7F)) + text[at + 1:]
        elif op == 1:
            text = text[:at] + rng.choice(HOSTILE_TEXT) + text[at:]
        elif op == 2:
            text = text[:at] + text[at + rng.randrange(1, 40):]
        elif op == 3:
            text = text[:at]
        elif op == 4:
            parts = text.split(".")
            rng.shuffle(parts)
            text = ".".join(parts)
        elif op == 5:
            text += "." + rng.choice(corpus).split(".")[rng.randrange(3)]
        elif op == 6:
            parts = text.split(".")
            if len(parts) == 3:
                parts[rng.randrange(2)] = b64url(json.dumps(hostile_json(rng)).encode())
            text = ".".join(parts)
        elif op == 7:
            text = b64url(b"[" * rng.randrange(1, 5000)) + text[text.find("."):]
        else:
            text = text[:at] + rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ-_=") + text[at + 1:]
    return text


def test_a_million_hostile_inputs_never_raise() -> None:
    rng = random.Random(20261204)
    corpus = genuine()
    topics = [None, "hpagent/v1/gw/installer/samples", "\x1b[31m/\u202e", "", "#"]
    verifier = Verifier(KEY.public_key(), rng.choice([None, "installer"]))
    for _ in range(MUTATED):
        verifier.check(mutate(rng, rng.choice(corpus), corpus), rng.choice(topics))
    signer = Signer(KEY)
    for _ in range(SIGNED):
        raw = json.dumps(hostile_payload(rng)).encode()
        verifier.check(signer.sign(raw), rng.choice(topics))
    for token in corpus:
        verifier.check(token, rng.choice(topics))
    report = verifier.report
    assert report.received == MUTATED + SIGNED + len(corpus)
    assert report.bad > MUTATED * 0.9
    out = render(report)
    json.dumps(report.to_json())
    assert not any(ord(c) < 32 and c != "\n" for c in out)
    assert "\u202e" not in out and "\x7f" not in out
