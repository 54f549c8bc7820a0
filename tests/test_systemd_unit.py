"""The unit file: systemd's own tools judge it (exposure score, verification), and it keeps what
the agent depends on (notify, watchdog, no restart on a bad config, serial ports, boot id)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import REPO

UNIT = REPO / "systemd" / "hpagent.service"
MAX_EXPOSURE = 1.5
HOST_UNITS = next((p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
                   if (p / "sysinit.target").exists()), None)


def analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is not installed (Debian's package: systemd)")
    return path


def settings(unit: Path = UNIT) -> dict[str, list[str]]:
    """Key -> values, in order (a key may repeat), of every section."""
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_exposure_is_at_most_1_5() -> None:
    done = subprocess.run([analyze(), "security", "--offline=true", "--no-pager", str(UNIT)],
                          capture_output=True, text=True, check=False)
    score = re.search(r"Overall exposure level for hpagent\.service: ([0-9.]+)", done.stdout)
    assert score is not None, done.stdout + done.stderr
    exposed = [line for line in done.stdout.splitlines()
               if line.startswith("✗") and not line.rstrip().endswith("0.0")]
    assert float(score.group(1)) <= MAX_EXPOSURE, "\n".join(exposed)


def test_systemd_verifies_the_unit(tmp_path: Path) -> None:
    """``systemd-analyze verify`` in a root of its own, where the ExecStart= binary exists."""
    tool = analyze()
    if HOST_UNITS is None:
        pytest.skip("no systemd unit directory on this machine to verify against")
    shutil.copytree(HOST_UNITS, tmp_path / "usr/lib/systemd/system", symlinks=True)
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, tmp_path / "etc/systemd/system/hpagent.service")
    program = tmp_path / "opt/hpagent/bin/hpagent"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    done = subprocess.run([tool, "verify", "--man=no", f"--root={tmp_path}", "hpagent.service"],
                          capture_output=True, text=True, check=False)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr


def test_notify_with_a_watchdog_and_no_restart_on_a_bad_config() -> None:
    unit = settings()
    assert unit["Type"] == ["notify"]
    assert unit["NotifyAccess"] == ["main"]
    assert float(unit["WatchdogSec"][0]) > 0
    assert unit["Restart"] == ["on-failure"]
    assert unit["RestartPreventExitStatus"] == ["78"]
    # systemd tests RestartPreventExitStatus= against the main process's status only: a config
    # check in ExecStartPre= exiting 78 would be restarted every RestartSec for ever
    assert "ExecStartPre" not in unit
    assert unit["ExecStart"] == ["/opt/hpagent/bin/hpagent run --config /etc/hpagent/hpagent.yaml"]


def test_serial_ports_state_config_and_boot_id() -> None:
    unit = settings()
    assert unit["SupplementaryGroups"] == ["dialout"]
    assert unit["DevicePolicy"] == ["closed"]
    allowed = {value.split()[0] for value in unit["DeviceAllow"]}
    assert {"char-ttyUSB", "char-ttyACM", "char-ttyAMA", "char-ttyS"} <= allowed
    assert "PrivateDevices" not in unit, "a private /dev would miss adapters plugged in later"
    assert unit["StateDirectory"] == ["hpagent"]
    assert unit["StateDirectoryMode"] == ["0700"]
    assert unit["ConfigurationDirectory"] == ["hpagent"]
    assert unit["MemoryDenyWriteExecute"] == ["yes"]
    assert unit["ProtectClock"] == ["yes"]
    assert unit["ProcSubset"] == ["pid"]
    # with /proc/sys hidden, the boot id comes from systemd (agent/service/clock.py)
    assert any("HPAGENT_BOOT_ID=%b" in value.split() for value in unit["Environment"])
    families = unit["RestrictAddressFamilies"][0].split()
    assert sorted(families) == ["AF_INET", "AF_INET6", "AF_UNIX"]
