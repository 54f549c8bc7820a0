"""The recipient's check: signatures and each stream's sequence/hash chain."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from agent.trust.jws import Signer, chain_hash
from agent.trust.keys import init_key, load_private_key
from agent.trust.verify import Verifier
from tests.support import hpagent

KEY = Ed25519PrivateKey.generate()
TOPIC = "hpagent/v1/gw/samples"


def chain(n: int, key: Ed25519PrivateKey = KEY, supply: float = 30.0) -> list[str]:
    signer, prev, tokens = Signer(key), None, []
    for seq in range(1, n + 1):
        body = {"v": 1, "device_id": "gw", "stream": "samples", "seq": seq, "prev": prev,
                "ts": "2026-11-25T00:00:00.000Z", "clock": "synced", "source": "hp",
                "quantities": {"hp.supply_temp": supply + seq}}
        token = signer.sign(json.dumps(body).encode())
        tokens.append(token)
        prev = chain_hash(token)
    return tokens


def run(tokens: list[str], topic: str | None = TOPIC) -> Verifier:
    v = Verifier(KEY.public_key())
    for t in tokens:
        v.check(t, topic)
    return v


def test_a_clean_chain_is_ok() -> None:
    report = run(chain(5)).report
    assert report.ok and report.good == 5 and report.bad == 0 and report.missing == 0


def test_a_dropped_message_is_missing() -> None:
    tokens = chain(6)
    report = run(tokens[:2] + tokens[3:]).report
    assert not report.ok
    assert report.missing == 1
    assert next(iter(report.streams.values())).missing == [3]


def test_an_altered_message_is_bad() -> None:
    tokens = chain(3)
    header, body, sig = tokens[1].split(".")
    forged = f"{header}.{body[:-2]}xx.{sig}"
    report = run([tokens[0], forged, tokens[2]]).report
    assert report.bad == 1 and "signature" in report.problems[0].reason
    assert report.missing == 1


def test_a_replaced_message_breaks_the_chain() -> None:
    """Re-signed by the gateway's key but not the message the chain committed to."""
    tokens = chain(3)
    other = chain(3, supply=40.0)  # same key and seqs, other content
    report = run([tokens[0], other[1], tokens[2]]).report
    assert report.bad >= 1
    assert any("prev does not match" in p.reason or "does not link" in p.reason
               for p in report.problems)


def test_duplicates_are_counted_not_held_against_the_stream() -> None:
    tokens = chain(3)
    report = run([tokens[0], tokens[1], tokens[1], tokens[2]]).report
    assert report.ok
    assert next(iter(report.streams.values())).duplicates == 1


def test_a_message_on_someone_elses_topic_is_bad() -> None:
    report = run(chain(1), topic="hpagent/v1/other-gateway/samples").report
    assert report.bad == 1 and "published on" in report.problems[0].reason


def test_another_key_is_bad() -> None:
    report = run(chain(2, key=Ed25519PrivateKey.generate())).report
    assert report.bad == 2 and not report.ok


def test_nothing_received_is_not_ok() -> None:
    assert not Verifier(KEY.public_key()).report.ok


@given(st.permutations(list(range(8))))
def test_any_arrival_order_of_a_full_chain_verifies(order: list[int]) -> None:
    tokens = chain(8)
    report = run([tokens[i] for i in order]).report
    assert report.ok and report.good == 8


def test_cli_verify_file(tmp_path: Path) -> None:
    key_file = tmp_path / "gateway.key"
    init_key(key_file)
    tokens = chain(4, key=load_private_key(key_file))
    good = tmp_path / "good.txt"
    good.write_text("".join(f"{TOPIC} {t}\n" for t in tokens) + "hpagent/v1/gw/status online\n")
    gapped = tmp_path / "gapped.txt"
    gapped.write_text("\n".join([tokens[0], tokens[2], tokens[3]]) + "\n")

    def verify(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return hpagent("verify", "--file", str(path), "--key", str(key_file), *extra)

    ok = verify(good)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK: 4 received, 4 good, 0 bad, 0 missing" in ok.stdout
    bad = verify(gapped, "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["missing"] == 1 and report["streams"][0]["missing"] == [2]
