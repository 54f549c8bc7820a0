"""The distribution: a wheel that carries the profiles, the console script, and the demo."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support import REPO


def test_wheel_carries_the_profiles_and_they_load_from_it(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(tmp_path), str(REPO)],
                   check=True, capture_output=True)
    wheel = next(tmp_path.glob("hpagent-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    profiles = sorted(n for n in names if n.startswith("drivers/profiles/"))
    shipped = sorted(p.name for p in (REPO / "config" / "profiles").glob("*.yaml"))
    assert [Path(n).name for n in profiles] == shipped
    assert "agent/py.typed" in names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(target), str(wheel)], check=True, capture_output=True)
    probe = ("import drivers.profile as p; print(p.bundled_profiles_dir()); "
             "print(len(p.available_profiles())); p.load_profile('eastron_sdm120')")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(target)}).stdout.split()
    assert out[0] == str(target / "drivers" / "profiles")
    assert int(out[1]) == len(shipped)


def test_help_lists_the_commands() -> None:
    out = subprocess.run([str(Path(sys.executable).parent / "hpagent"), "--help"],
                         check=True, capture_output=True, text=True).stdout
    for command in ("run", "verify", "demo", "config", "key", "hil", "p1", "modbus"):
        assert f"  {command} " in out or f"  {command}\n" in out


def test_hybrid_demo_verifies_every_poll_of_every_device() -> None:
    """Heat pump, sub-meter, boiler, heat meter and P1 quantities, every message verified."""
    result = subprocess.run([sys.executable, "-m", "agent", "demo", "--seconds", "10"],
                            capture_output=True, text=True, check=False, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    verdict = lines[-1]
    found = re.match(r"OK: (\d+) samples taken \((\d+) with readings\), (\d+) received in "
                     r"(\d+) verified messages, 0 bad, 0 missing", verdict)
    assert found, verdict
    taken, said, received, _ = map(int, found.groups())
    assert taken >= 10 and said >= taken - 1  # an OTGW has nothing to say before its first frame
    assert received >= said, "every sample with a reading arrived, verified"
    assert lines[-2].startswith("sources: boiler, heatmeter, heatpump, p1, submeter;")


def test_demo_with_the_embedded_broker() -> None:
    """Where mosquitto is missing, the demo brings an MQTT 3.1.1 broker of its own."""
    result = subprocess.run([sys.executable, "-m", "agent", "demo", "--seconds", "6",
                             "--installation", "heatpump", "--broker", "embedded"],
                            capture_output=True, text=True, check=False, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("OK: ")
