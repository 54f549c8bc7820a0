"""scripts/install-gateway as an installer runs it, into a ``--root`` tree: twice (an upgrade),
then ``--uninstall``, then ``--purge``; crafted arguments are refused before anything happens.

It installs offline from the wheelhouse `make test` downloads from the locks (as an image build
does), with every proxy pointing at a closed loopback port: a download would fail, not leave.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pydantic import TypeAdapter, ValidationError

from agent.service.config import DeviceId
from scripts import install_layout as layout
from tests.support import REPO

SCRIPT = REPO / "scripts" / "install-gateway"
P1 = "FTDI_FT232R_USB_UART_A6008isP"
RS485 = "1a86_USB_Serial-if00"
OFFLINE = "http://127.0.0.1:9"  # the discard port, closed: any download fails at once


def wheelhouse() -> Path:
    path = Path(os.environ.get("HPAGENT_WHEELHOUSE", REPO / ".venv" / "wheelhouse"))
    if not any(path.glob("*.whl")):
        pytest.fail(f"no wheelhouse at {path}: run 'make test', which downloads it from the locks")
    return path


def install_gateway(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, HTTP_PROXY=OFFLINE, HTTPS_PROXY=OFFLINE,
               http_proxy=OFFLINE, https_proxy=OFFLINE)
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          check=False, env=env)


def snapshot(tree: Path) -> dict[str, tuple[int, str]]:
    """Every file and link outside the environment: mode and content hash (or link target)."""
    found = {}
    for path in sorted(tree.rglob("*")):
        name = "/" + str(path.relative_to(tree))
        if name.startswith(str(layout.PREFIX)) or (path.is_dir() and not path.is_symlink()):
            continue
        found[name] = ((path.lstat().st_mode & 0o7777, os.readlink(path)) if path.is_symlink()
                       else (path.stat().st_mode & 0o7777,
                             hashlib.sha256(path.read_bytes()).hexdigest()))
    return found


def pins(lock: Path) -> dict[str, str]:
    return {canonicalize_name(line.split("==")[0]): line.split("==")[1].split()[0]
            for line in lock.read_text().splitlines() if "==" in line and line[0] != "#"}


def test_install_upgrade_uninstall_purge(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    first = install_gateway("--root", str(tree), "--device-id", "gw-0042", "--p1-serial", P1,
                            "--wheelhouse", str(wheelhouse()))
    assert first.returncode == 0, first.stdout + first.stderr
    for entry in layout.ENTRIES:
        path = tree / entry.path.relative_to("/")
        if entry.kind == "link":
            assert os.readlink(path) == str(layout.PREFIX / "bin" / "hpagent")
        else:
            assert path.stat().st_mode & 0o7777 == entry.mode, entry.path
            if (entry.owner, entry.group) != ("root", "root"):
                assert f"chown {entry.owner}:{entry.group} {entry.path}" in first.stdout
    config = tree / "etc/hpagent/hpagent.yaml"
    assert 'device_id: "gw-0042"' in config.read_text().splitlines()
    assert (tree / "etc/systemd/system/hpagent.service").read_bytes() == \
        (REPO / "systemd/hpagent.service").read_bytes()
    assert f'ENV{{ID_SERIAL}}=="{P1}", SYMLINK+="hpagent-p1"' in \
        (tree / "etc/udev/rules.d/70-hpagent.rules").read_text()
    assert "not run (--root): systemctl enable hpagent.service" in first.stdout
    freeze = subprocess.run([str(tree / "opt/hpagent/bin/python"), "-m", "pip", "freeze",
                             "--all"], capture_output=True, text=True, check=True).stdout
    installed: dict[str, str] = {canonicalize_name(n): v for n, _, v in
                 (line.partition("==") for line in freeze.splitlines()) if v}
    locked = pins(REPO / "scripts/requirements.lock") | pins(REPO / "scripts/build-tools.lock")
    assert {name: installed.get(name) for name in locked} == locked
    checked = subprocess.run([str(tree / "opt/hpagent/bin/hpagent"), "config", "check",
                              str(config)], capture_output=True, text=True, check=False)
    assert "device_id" not in checked.stdout + checked.stderr, "the id the installer wrote is valid"

    config.write_text(config.read_text().replace("interval: 10s", "interval: 20s"))  # edited
    before = snapshot(tree)
    second = install_gateway("--root", str(tree), "--device-id", "gw-other", "--rs485-serial",
                             RS485, "--wheelhouse", str(wheelhouse()))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "--device-id gw-other not applied" in second.stdout
    after = snapshot(tree)
    rules = "/etc/udev/rules.d/70-hpagent.rules"
    assert {k: v for k, v in after.items() if k != rules} == \
        {k: v for k, v in before.items() if k != rules}, "config, key and unit are kept"
    assert layout.links_in((tree / rules[1:]).read_text()) == {"p1": P1, "rs485": RS485}

    uninstalled = install_gateway("--root", str(tree), "--uninstall")
    assert uninstalled.returncode == 0, uninstalled.stdout + uninstalled.stderr
    left = snapshot(tree)
    assert left == {k: v for k, v in after.items() if k in (str(layout.CONFIG), str(layout.KEY))}
    assert not (tree / "opt/hpagent").exists()

    purged = install_gateway("--root", str(tree), "--purge")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert snapshot(tree) == {}
    assert not (tree / "var/lib/hpagent").exists()
    assert not (tree / "etc/hpagent").exists()


CRAFTED = ["x; touch {tmp}/pwned", "$(touch {tmp}/pwned)", "`touch {tmp}/pwned`", "a/b",
           "gw\nid", "gw-0001\n", "", "-gw", ".gw", "gw 1", "gw'1", 'gw"1', "a" * 65, "ü"]


@pytest.mark.parametrize("crafted", CRAFTED)
def test_a_crafted_device_id_is_refused_before_anything(tmp_path: Path, crafted: str) -> None:
    tree = tmp_path / "tree"
    crafted = crafted.format(tmp=tmp_path)
    done = install_gateway("--root", str(tree), f"--device-id={crafted}")
    assert done.returncode == 2
    assert f"argument --device-id: {crafted!r} is not a device id: use 1-64 letters" in done.stderr
    assert not tree.exists(), "nothing was created"
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("crafted", ['x", RUN+="/bin/touch /tmp/pwned', "a b", "id\n", "*"])
def test_a_crafted_serial_id_is_refused(tmp_path: Path, crafted: str) -> None:
    done = install_gateway("--root", str(tmp_path / "tree"), "--device-id", "gw-1",
                           f"--rs485-serial={crafted}")
    assert done.returncode == 2
    assert "is not a serial id" in done.stderr
    assert not (tmp_path / "tree").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--uninstall", "--device-id", "gw-1"], "take no install options"),
    (["--uninstall", "--purge"], "not allowed with argument"),
    ([], "--device-id ID is needed: /etc/hpagent/hpagent.yaml does not exist yet"),
    (["--device-id", "gw-1", "--wheelhouse", "/no/such/dir"], "--wheelhouse /no/such/dir"),
])
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = install_gateway("--root", str(tmp_path / "tree"), *args)
    assert (done.returncode, message in done.stderr) == (2, True), done.stderr
    assert not (tmp_path / "tree").exists()


def test_list_serial_shows_each_adapter_and_its_id(tmp_path: Path) -> None:
    by_id = tmp_path / "dev/serial/by-id"
    by_id.mkdir(parents=True)
    (by_id / f"usb-{P1}-if00-port0").symlink_to("../../ttyUSB0")
    (by_id / "usb-Arduino__www.arduino.cc__0043_75830-if00").symlink_to("../../ttyACM0")
    done = install_gateway("--root", str(tmp_path), "--list-serial")
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()[1:]]
    assert rows == [["Arduino__www.arduino.cc__0043_75830", "/dev/ttyACM0",
                     "usb-Arduino__www.arduino.cc__0043_75830-if00"],
                    [P1, "/dev/ttyUSB0", f"usb-{P1}-if00-port0"]]


@given(st.text(alphabet=st.sampled_from("aZ09_.-/ ;$\n\t'\"ü"), max_size=70))
def test_the_device_id_rule_is_the_configs(text: str) -> None:
    try:
        TypeAdapter(DeviceId).validate_python(text)
        config_accepts = True
    except ValidationError:
        config_accepts = False
    assert (layout.DEVICE_ID.fullmatch(text) is not None) == config_accepts


def test_the_locks_pin_every_dependency_with_hashes() -> None:
    """After a dependency change in pyproject.toml this fails until `make lock` is run."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    runtime = pins(REPO / "scripts/requirements.lock")
    build = pins(REPO / "scripts/build-tools.lock")
    for needed, locked in ((project["project"]["dependencies"], runtime),
                           (project["build-system"]["requires"], build)):
        for text in needed:
            requirement = Requirement(text)
            version = locked.get(canonicalize_name(requirement.name))
            assert version is not None, f"{requirement.name} is not in the lock: make lock"
            assert requirement.specifier.contains(version), f"{requirement} but locked {version}"
    shared = runtime.keys() & build.keys()
    assert {n: runtime[n] for n in shared} == {n: build[n] for n in shared}
    for lock in ("requirements.lock", "build-tools.lock"):
        blocks = (REPO / "scripts" / lock).read_text().split("==")[1:]
        assert all("--hash=sha256:" in block for block in blocks), f"{lock}: a pin without hash"
