"""The recipient's check: signatures, each stream's chain and epoch, heartbeats, audience and
grant terms; and its safety on hostile input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from agent.commands.verify_cli import render
from agent.trust.jws import Signer, b64url, chain_hash
from agent.trust.keys import init_key, load_private_key
from agent.trust.verify import Verifier, printable
from tests.support import hpagent

KEY = Ed25519PrivateKey.generate()
TOPIC = "hpagent/v1/gw/installer/samples"


class Stream:
    """Messages of one stream as a gateway makes them: seq, prev and epoch."""

    def __init__(self, stream: str = "samples", *, key: Ed25519PrivateKey = KEY,
                 aud: str = "installer", epoch: str = "E1", grant: str | None = "g-1") -> None:
        self.signer, self.stream, self.aud, self.epoch, self.grant = (
            Signer(key), stream, aud, epoch, grant)
        self.seq: int = 0
        self.prev: str | None = None

    def next(self, **content: Any) -> str:
        self.seq += 1
        body = {"v": 2, "device_id": "gw", "aud": self.aud, "grant": self.grant,
                "stream": self.stream, "epoch": self.epoch, "seq": self.seq, "prev": self.prev,
                **content}
        token = self.signer.sign(json.dumps(body).encode())
        self.prev = chain_hash(token)
        return token


def sample(supply: float = 30.0, ts: str = "2026-11-25T00:00:00.000Z") -> dict[str, Any]:
    return {"resolution": "raw", "samples": [{"ts": ts, "clock": "synced", "source": "hp",
                                              "quantities": {"hp.supply_temp": supply}}]}


def chain(n: int, key: Ed25519PrivateKey = KEY, supply: float = 30.0) -> list[str]:
    s = Stream(key=key)
    return [s.next(**sample(supply + i)) for i in range(n)]


def run(tokens: list[str], topic: str | None = TOPIC, audience: str | None = None) -> Verifier:
    v = Verifier(KEY.public_key(), audience)
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
    assert next(iter(report.streams.values())).epochs[0].gaps == [3]


def test_an_altered_message_is_bad() -> None:
    tokens = chain(3)
    header, body, sig = tokens[1].split(".")
    middle = "B" if body[20] != "B" else "C"  # a character in the middle: still canonical
    forged = f"{header}.{body[:20]}{middle}{body[21:]}.{sig}"
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


def test_a_reencoded_signature_is_not_a_second_message() -> None:
    """Set unused bits in the signature's last base64url character: the same bytes, another
    text. It must be refused, not taken as a second message with the same seq (an attack)."""
    tokens = chain(2)
    header, body, sig = tokens[1].split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # 64 bytes = 85 characters + 4 spare bits: the last character's low 4 bits are unused
    twin = alphabet[alphabet.index(sig[-1]) | 0x1]
    assert twin != sig[-1]
    report = run([tokens[0], tokens[1], f"{header}.{body}.{sig[:-1]}{twin}",
                  f"{header}.{body}.{sig}="]).report
    assert report.good == 2 and report.bad == 2
    assert not any("two different messages" in p.reason for p in report.problems)
    assert all("malformed" in p.reason for p in report.problems)


def test_a_message_on_someone_elses_topic_is_bad() -> None:
    report = run(chain(1), topic="hpagent/v1/other-gateway/installer/samples").report
    assert report.bad == 1 and "published on" in report.problems[0].reason


def test_a_message_meant_for_another_audience_is_bad() -> None:
    resident = Stream(aud="resident")
    report = run([resident.next(**sample())], topic=None, audience="installer").report
    assert report.bad == 1 and "meant for 'resident', not for 'installer'" in \
        report.problems[0].reason


def test_another_key_is_bad() -> None:
    report = run(chain(2, key=Ed25519PrivateKey.generate())).report
    assert report.bad == 2 and not report.ok


def test_another_type_of_token_is_bad() -> None:
    """An audit log entry, signed by the same key, is not a message."""
    token = Signer(KEY, "hpagent-audit").sign(b'{"v":2}')
    report = run([token]).report
    assert report.bad == 1 and "typ" in report.problems[0].reason


def test_nothing_received_is_not_ok() -> None:
    assert not Verifier(KEY.public_key()).report.ok


@given(st.permutations(list(range(8))))
def test_any_arrival_order_of_a_full_chain_verifies(order: list[int]) -> None:
    tokens = chain(8)
    report = run([tokens[i] for i in order]).report
    assert report.ok and report.good == 8


def test_a_chain_restarted_without_its_history_is_an_epoch_change() -> None:
    old, new = Stream(epoch="E1"), Stream(epoch="E2")
    tokens = [old.next(**sample()) for _ in range(3)] + [new.next(**sample()) for _ in range(2)]
    report = run(tokens).report
    assert report.ok, report.problems
    stream = next(iter(report.streams.values()))
    assert stream.restarts == 1
    assert [(e.epoch, e.first_seq, e.last_seq) for e in stream.epochs] == [("E1", 1, 3),
                                                                           ("E2", 1, 2)]
    assert "epoch change in gw/installer/samples" in render(report)


def test_a_heartbeat_shows_the_newest_messages_lost() -> None:
    samples, status = Stream(), Stream("status")
    tokens = [samples.next(**sample()) for _ in range(5)]
    beat = status.next(kind="heartbeat", streams={"samples": {"epoch": "E1", "seq": 5}})
    report = run([*tokens[:3], beat], topic=None).report
    assert not report.ok and report.missing == 2
    epoch = report.streams[("gw", "installer", "samples")].epochs[0]
    assert epoch.lost_newest == [4, 5]
    assert "lost newest in gw/installer/samples: 4-5 (a heartbeat announced seq 5)" in \
        render(report)


def terms(**changes: Any) -> dict[str, Any]:
    return {"streams": ["samples"], "fields": ["hp.supply_temp"], "resolution": "raw",
            "from": "2026-11-01T00:00:00.000Z", "until": None, **changes}


def test_messages_keep_to_the_grant_they_name() -> None:
    consent, samples = Stream("consent"), Stream()
    notice = consent.next(kind="granted", terms=terms(until="2026-12-01T00:00:00.000Z"))
    ok = samples.next(**sample())
    extra = samples.next(resolution="raw", samples=[
        {"ts": "2026-11-25T00:00:00.000Z", "clock": "synced", "source": "hp",
         "quantities": {"hp.supply_temp": 30.0, "room.temp": 20.5}}])
    late = samples.next(**sample(ts="2026-12-02T00:00:00.000Z"))
    coarse = samples.next(resolution="15min", intervals=[])
    report = run([notice, ok, extra, late, coarse], topic=None).report
    reasons = [p.reason for p in report.problems]
    assert len(reasons) == 3
    assert "fields not granted: 'room.temp'" in reasons[0]
    assert "outside the grant's validity" in reasons[1]
    assert "resolution '15min', granted 'raw'" in reasons[2]


def test_nothing_may_follow_a_revoked_notice() -> None:
    consent, samples = Stream("consent"), Stream()
    tokens = [consent.next(kind="granted", terms=terms()), samples.next(**sample()),
              consent.next(kind="revoked", at="2026-11-25T00:00:01.000Z"),
              samples.next(**sample())]
    report = run(tokens, topic=None).report
    assert report.bad == 1 and "after its revoked notice" in report.problems[0].reason


def test_hostile_text_is_printed_without_control_characters() -> None:
    hostile = "\x1b[2J\x1b]0;pwned\x07\u202egnp.exe\r\n"
    report = run([chain(1)[0]], topic=f"hpagent/v1/{hostile}").report
    out = render(report)
    assert not any(ord(c) < 32 and c != "\n" for c in out)
    assert "\u202e" not in out and "\\x1b" in out and "\\u202e" in out
    assert printable("é ok") == "é ok"


def test_a_header_nested_deeply_is_bad_not_a_crash() -> None:
    deep = b64url(b"[" * 100_000) + "." + b64url(b"{}") + "." + b64url(bytes(64))
    report = run([deep, b64url(b"{" * 900 + b"}" * 900) + ".e30.AA"]).report
    assert report.bad == 2


def test_cli_verify_file(tmp_path: Path) -> None:
    key_file = tmp_path / "gateway.key"
    init_key(key_file)
    tokens = chain(4, key=load_private_key(key_file))
    good = tmp_path / "good.txt"
    good.write_text("".join(f"{TOPIC} {t}\n" for t in tokens)
                    + "hpagent/v1/gw/installer/presence online\n")
    gapped = tmp_path / "gapped.txt"
    gapped.write_text("\n".join([tokens[0], tokens[2], tokens[3]]) + "\n")

    def verify(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return hpagent("verify", "--file", str(path), "--key", str(key_file), *extra)

    ok = verify(good, "--audience", "installer")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK: 4 received, 4 good, 0 bad, 0 missing, 0 epoch changes" in ok.stdout
    wrong = verify(good, "--audience", "resident")
    assert wrong.returncode == 1 and "meant for 'installer', not for 'resident'" in wrong.stdout
    bad = verify(gapped, "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["missing"] == 1 and report["streams"][0]["epochs"][0]["gaps"] == [2]

