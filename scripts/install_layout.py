"""What scripts/install-gateway puts where, with which owner and mode, and the text it writes.

Pure: no file is touched here, so tests read the same table the installer applies. Runs on the
gateway's system Python before hpagent exists (standard library only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final, Literal

USER: Final = "hpagent"
PREFIX: Final = PurePosixPath("/opt/hpagent")
CONFIG_DIR: Final = PurePosixPath("/etc/hpagent")
CONFIG: Final = CONFIG_DIR / "hpagent.yaml"
STATE_DIR: Final = PurePosixPath("/var/lib/hpagent")
KEY: Final = STATE_DIR / "gateway.key"
UNIT: Final = PurePosixPath("/etc/systemd/system/hpagent.service")
UDEV_RULES: Final = PurePosixPath("/etc/udev/rules.d/70-hpagent.rules")
MODULES: Final = PurePosixPath("/etc/modules-load.d/hpagent.conf")
COMMAND: Final = PurePosixPath("/usr/local/bin/hpagent")
SERIAL_BY_ID: Final = PurePosixPath("/dev/serial/by-id")

# The same rule as DeviceId in agent/service/config.py (it goes into MQTT topics); a test holds
# the two together.
DEVICE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
DEVICE_ID_RULE: Final = "1-64 letters, digits, '.', '-' or '_', starting with a letter or digit"
# udev's ID_SERIAL (vendor_model_serial) keeps only these characters; none is special in a
# udev match, so an id that passes is matched literally.
SERIAL_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9#+.:=@_-]{0,127}")
SERIAL_ID_RULE: Final = ("a USB serial id as `install-gateway --list-serial` shows it: letters, "
                         "digits and # + . : = @ _ -")
# The stable names a serial adapter can get, /dev/hpagent-<name>.
LINKS: Final = ("p1", "rs485", "otgw", "mbus")


class BadArgument(ValueError):
    """An argument that does not match its documented pattern."""


def device_id(text: str) -> str:
    if not DEVICE_ID.fullmatch(text):
        raise BadArgument(f"{text!r} is not a device id: use {DEVICE_ID_RULE}")
    return text


def serial_id(text: str) -> str:
    if not SERIAL_ID.fullmatch(text):
        raise BadArgument(f"{text!r} is not a serial id: use {SERIAL_ID_RULE}")
    return text


@dataclass(frozen=True)
class Entry:
    """A path the installer owns: what it is, its owner, group and mode, and who removes it."""

    path: PurePosixPath
    kind: Literal["dir", "file", "link"]
    owner: str
    group: str
    mode: int
    kept_on_uninstall: bool  # configuration and state survive --uninstall, not --purge


ENTRIES: Final = (
    Entry(PREFIX, "dir", "root", "root", 0o755, kept_on_uninstall=False),
    Entry(COMMAND, "link", "root", "root", 0o777, kept_on_uninstall=False),
    Entry(UNIT, "file", "root", "root", 0o644, kept_on_uninstall=False),
    Entry(UDEV_RULES, "file", "root", "root", 0o644, kept_on_uninstall=False),
    Entry(MODULES, "file", "root", "root", 0o644, kept_on_uninstall=False),
    # the service reads its config (group) but cannot change it; nobody else reads it
    Entry(CONFIG_DIR, "dir", "root", USER, 0o750, kept_on_uninstall=True),
    Entry(CONFIG, "file", "root", USER, 0o640, kept_on_uninstall=True),
    # database and signing key: the service user's alone (the key is made 0600 by the agent)
    Entry(STATE_DIR, "dir", USER, USER, 0o700, kept_on_uninstall=True),
    Entry(KEY, "file", USER, USER, 0o600, kept_on_uninstall=True),
)


def entry(path: PurePosixPath) -> Entry:
    return next(e for e in ENTRIES if e.path == path)


MODULES_TEXT: Final = """\
# Written by scripts/install-gateway. The serial drivers load at boot, so that their device
# majors (ttyUSB, ttyACM) are in /proc/devices when hpagent.service starts: its DeviceAllow=
# is resolved then, and an adapter plugged in later must still be allowed.
usbserial
cdc_acm
"""

_RULE = re.compile(r'^SUBSYSTEM=="tty", ENV\{ID_SERIAL\}=="([^"]+)", SYMLINK\+="hpagent-(\w+)"$')


def udev_rules(links: dict[str, str]) -> str:
    """Rules that name each adapter /dev/hpagent-<name> by its USB serial id."""
    lines = [
        "# Written by scripts/install-gateway: stable names for the gateway's serial adapters, by",
        "# their USB serial id (ID_SERIAL, set by 60-serial.rules; `install-gateway --list-serial`",
        "# shows them). Use /dev/hpagent-<name> in /etc/hpagent/hpagent.yaml.",
    ]
    for name in LINKS:
        if name in links:
            lines.append(f'SUBSYSTEM=="tty", ENV{{ID_SERIAL}}=="{serial_id(links[name])}", '
                         f'SYMLINK+="hpagent-{name}"')
    return "\n".join(lines) + "\n"


def links_in(rules: str) -> dict[str, str]:
    """The links an earlier run wrote (a later run without --NAME-serial keeps them)."""
    found = {}
    for line in rules.splitlines():
        match = _RULE.match(line)
        if match and match.group(2) in LINKS and SERIAL_ID.fullmatch(match.group(1)):
            found[match.group(2)] = match.group(1)
    return found


_BY_ID = re.compile(r"^usb-(.+)-if[0-9a-fA-F]{2}(?:-port\d+)?$")


def serial_of(by_id_name: str) -> str | None:
    """The ID_SERIAL in a /dev/serial/by-id name (usb-<ID_SERIAL>-if<NN>[-port<N>])."""
    match = _BY_ID.match(by_id_name)
    return match.group(1) if match else None


_DEVICE_ID_LINE = re.compile(r"^device_id:.*$", re.MULTILINE)
_DEVICE_ID_VALUE = re.compile(r"""^device_id:\s*["']?([^"'\s#]+)""", re.MULTILINE)


def with_device_id(config: str, device: str) -> str:
    """The example config with this gateway's id; quoted, so that YAML reads it as a string
    whatever it looks like (an id such as 1e3 would otherwise be a number)."""
    line = f'device_id: "{device_id(device)}"'
    if not _DEVICE_ID_LINE.search(config):
        raise BadArgument("the example configuration has no device_id line")
    return _DEVICE_ID_LINE.sub(lambda _: line, config, count=1)


def device_id_in(config: str) -> str | None:
    match = _DEVICE_ID_VALUE.search(config)
    return match.group(1) if match else None
