"""Install hpagent on a gateway (Debian 12, Raspberry Pi OS bookworm): see scripts/install-gateway.

Every argument is checked against its documented pattern before anything is done; nothing is
passed through a shell. Dependencies come from the hash-pinned locks in scripts/ (pip
--require-hashes), from PyPI or, offline, from a wheelhouse. With --root the same steps build a
directory tree, and the commands that act on the running system (apt-get, useradd, chown,
runuser, systemctl, udevadm) are shown, not run.
"""

from __future__ import annotations

import argparse
import grp
import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from scripts import install_layout as layout
from scripts.install_layout import BadArgument, Entry

SOURCE = Path(__file__).resolve().parent.parent
BUILD_LOCK = SOURCE / "scripts" / "build-tools.lock"
LOCK = SOURCE / "scripts" / "requirements.lock"
SERVICE = "hpagent.service"
EXAMPLES = """\
examples:
  sudo scripts/install-gateway --device-id gw-0001 --p1-serial FTDI_FT232R_USB_UART_A6008isP
  sudo scripts/install-gateway --list-serial
  sudo scripts/install-gateway --wheelhouse /media/usb/wheels      (offline)
  sudo scripts/install-gateway --uninstall | --purge
  scripts/install-gateway --root /tmp/tree --device-id gw-0001    (a tree, without root)
"""


class Failed(Exception):
    """A step that could not be done; the message names it."""


def _checked(check: Callable[[str], str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        try:
            return check(text)
        except BadArgument as bad:
            raise argparse.ArgumentTypeError(str(bad)) from None
    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="install-gateway", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Install hpagent: the hpagent user, a hash-checked environment in\n"
                    "/opt/hpagent, the configuration, the signing key, udev names for serial\n"
                    "adapters and the hardened systemd unit. Run it again to upgrade:\n"
                    "configuration and key are kept, a running service is restarted.")
    p.add_argument("--device-id", type=_checked(layout.device_id), metavar="ID",
                   help=f"this gateway's id ({layout.DEVICE_ID_RULE}); needed on a new gateway")
    for name in layout.LINKS:
        p.add_argument(f"--{name}-serial", type=_checked(layout.serial_id), metavar="ID",
                       help=f"the adapter with this USB serial id becomes /dev/hpagent-{name}")
    p.add_argument("--wheelhouse", type=Path, metavar="DIR",
                   help="install the pinned packages from DIR, offline (pip --no-index)")
    p.add_argument("--root", type=Path, metavar="DIR",
                   help="install into the tree DIR without root; system commands are shown only")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--list-serial", action="store_true",
                      help="list the USB serial adapters and their ids, change nothing")
    mode.add_argument("--uninstall", action="store_true",
                      help="remove what was installed; keep /etc/hpagent and /var/lib/hpagent")
    mode.add_argument("--purge", action="store_true",
                      help="remove everything, configuration, key, data and user included")
    return p


class System:
    """The machine being installed, or with --root a tree: paths, commands, ownership."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.live = root is None

    def path(self, path: PurePosixPath) -> Path:
        return (self.root or Path("/")) / path.relative_to("/")

    def run(self, *argv: str, live_only: bool = False, check: bool = True,
            quiet: bool = False) -> int:
        """Run a command (never through a shell); with --root, a live-only one is shown."""
        if live_only:
            print(f"   {'not run (--root): ' if not self.live else ''}{' '.join(argv)}")
            if not self.live:
                return 0
        done = subprocess.run(argv, check=False, stdout=subprocess.DEVNULL if quiet else None)
        if check and done.returncode != 0:
            raise Failed(f"{' '.join(argv)} exited with {done.returncode}")
        return done.returncode

    def own(self, entry: Entry) -> None:
        """Give a path its owner, group and mode (ownership only on a live system)."""
        target = self.path(entry.path)
        if entry.kind != "link":
            target.chmod(entry.mode)
        if self.live:
            os.chown(target, pwd.getpwnam(entry.owner).pw_uid,
                     grp.getgrnam(entry.group).gr_gid, follow_symlinks=False)
        elif entry.owner != "root" or entry.group != "root":
            print(f"   not run (--root): chown {entry.owner}:{entry.group} {entry.path}")

    def write(self, entry: Entry, text: str) -> None:
        """Write a file whole (a new file renamed over the old), then its owner and mode."""
        target = self.path(entry.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and target.read_text() == text:
            print(f"   {entry.path}: unchanged")
        else:
            new = target.with_name(f".{target.name}.new")
            new.unlink(missing_ok=True)
            with os.fdopen(os.open(new, os.O_WRONLY | os.O_CREAT | os.O_EXCL, entry.mode),
                           "w") as file:
                file.write(text)
            new.replace(target)
            print(f"   {entry.path}: written")
        self.own(entry)

    def remove(self, path: PurePosixPath) -> None:
        target = self.path(path)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        else:
            return
        print(f"   {path}: removed")


def preflight(args: argparse.Namespace, system: System) -> None:
    """Refuse what cannot work before anything is changed (usage errors exit 2)."""
    if (args.uninstall or args.purge or args.list_serial) and (
            args.device_id or args.wheelhouse or links(args)):
        raise BadArgument("--uninstall, --purge and --list-serial take no install options")
    if args.root is not None and args.root.resolve() == Path("/"):
        raise BadArgument("--root /: leave --root out to install into this system")
    if args.root is not None and args.root.exists() and not args.root.is_dir():
        raise BadArgument(f"--root {args.root}: not a directory")
    if args.wheelhouse is not None and not args.wheelhouse.is_dir():
        raise BadArgument(f"--wheelhouse {args.wheelhouse}: not a directory")
    if (not (args.uninstall or args.purge or args.list_serial)
            and not system.path(layout.CONFIG).exists() and args.device_id is None):
        raise BadArgument(f"--device-id ID is needed: {layout.CONFIG} does not exist yet")


def links(args: argparse.Namespace) -> dict[str, str]:
    return {name: getattr(args, f"{name}_serial") for name in layout.LINKS
            if getattr(args, f"{name}_serial")}


def list_serial(system: System) -> None:
    folder = system.path(layout.SERIAL_BY_ID)
    names = sorted(folder.iterdir()) if folder.is_dir() else []
    rows = [(layout.serial_of(n.name), Path(os.path.realpath(n)).name, n.name) for n in names]
    if not rows:
        print(f"no USB serial adapters in {layout.SERIAL_BY_ID}: plug one in and ask again")
        return
    print(f"{'USB serial id (--p1-serial ID, ...)':<48} {'device':<10} {layout.SERIAL_BY_ID}/")
    for serial, device, name in rows:
        print(f"{serial or '(not a USB adapter)':<48} /dev/{device:<5} {name}")


def install(args: argparse.Namespace, system: System) -> None:
    was_active = system.live and system.run("systemctl", "is-active", "--quiet", SERVICE,
                                            check=False) == 0
    print("== packages")
    if importlib.util.find_spec("ensurepip") is None:  # Debian ships it in python3-venv
        system.run("apt-get", "update", "--quiet", live_only=True)
        system.run("apt-get", "install", "--yes", "--quiet", "--no-install-recommends",
                   "python3-venv", live_only=True)
    print("== user and directories")
    if not system.live or system.run("getent", "passwd", layout.USER, check=False,
                                     quiet=True) != 0:
        system.run("useradd", "--system", "--user-group", "--home-dir", str(layout.STATE_DIR),
                   "--no-create-home", "--shell", "/usr/sbin/nologin", layout.USER,
                   live_only=True)
    system.run("usermod", "--append", "--groups", "dialout", layout.USER, live_only=True)
    for path in (layout.CONFIG_DIR, layout.STATE_DIR):
        system.path(path).mkdir(parents=True, exist_ok=True)
        system.own(layout.entry(path))
    print(f"== hpagent into {layout.PREFIX} (pinned, hash-checked)")
    environment(args.wheelhouse, system)
    print("== configuration")
    configure(args.device_id, system)
    print("== signing key")
    signing_key(system)
    print("== service, udev names, serial drivers")
    system.write(layout.entry(layout.UNIT), (SOURCE / "systemd" / SERVICE).read_text())
    system.write(layout.entry(layout.MODULES), layout.MODULES_TEXT)
    serial_names(links(args), system)
    command = system.path(layout.COMMAND)
    command.parent.mkdir(parents=True, exist_ok=True)
    if not command.is_symlink():
        command.unlink(missing_ok=True)
        command.symlink_to(layout.PREFIX / "bin" / "hpagent")
    system.run("systemctl", "daemon-reload", live_only=True)
    system.run("systemctl", "restart", "systemd-modules-load.service", live_only=True)
    system.run("udevadm", "control", "--reload-rules", live_only=True)
    system.run("udevadm", "trigger", "--action=add", "--subsystem-match=tty", live_only=True)
    system.run("systemctl", "enable", SERVICE, live_only=True)
    if was_active:
        system.run("systemctl", "restart", SERVICE)
        print(f"   {SERVICE} was running: restarted with this version")
    elif system.live:
        print(f"   start it once the configuration checks clean: "
              f"hpagent config check {layout.CONFIG} && systemctl start hpagent")
    else:
        print(f"   not run (--root): systemctl restart {SERVICE} (only where it was running)")


def environment(wheelhouse: Path | None, system: System) -> None:
    """/opt/hpagent: the build tools, then the dependencies, both from the locks with their
    hashes (pip --require-hashes), then hpagent itself, built from this source tree."""
    prefix = system.path(layout.PREFIX)
    python = prefix / "bin" / "python"
    if not python.exists() or system.run(str(python), "-c", "", check=False) != 0:
        system.run(sys.executable, "-m", "venv", "--clear", str(prefix))
    system.own(layout.entry(layout.PREFIX))
    where = ["--no-index", "--find-links", str(wheelhouse)] if wheelhouse else []
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--no-cache-dir", "--root-user-action=ignore", *where]
    system.run(*pip, "--require-hashes", "--only-binary=:all:", "--requirement", str(BUILD_LOCK))
    system.run(*pip, "--require-hashes", "--no-build-isolation", "--requirement", str(LOCK))
    system.run(*pip, "--no-deps", "--no-build-isolation", "--no-index", "--force-reinstall",
               str(SOURCE))
    print(f"   {layout.PREFIX}: {len(lock_pins(LOCK)) + len(lock_pins(BUILD_LOCK))} pinned "
          "packages and hpagent")


def lock_pins(lock: Path) -> list[str]:
    return [line.split(" ")[0] for line in lock.read_text().splitlines() if "==" in line
            and not line.startswith("#")]


def configure(device: str | None, system: System) -> None:
    config = system.path(layout.CONFIG)
    if not config.exists():
        assert device is not None  # preflight
        example = (SOURCE / "config" / "hpagent.example.yaml").read_text()
        system.write(layout.entry(layout.CONFIG), layout.with_device_id(example, device))
        print(f"   edit {layout.CONFIG}, then: hpagent config check {layout.CONFIG}")
        return
    current = layout.device_id_in(config.read_text())
    print(f"   {layout.CONFIG} exists: left as it is (device_id {current})")
    if device is not None and device != current:
        print(f"   warning: --device-id {device} not applied; edit {layout.CONFIG} to change it")
    system.own(layout.entry(layout.CONFIG))


def signing_key(system: System) -> None:
    hpagent = str(system.path(layout.PREFIX / "bin" / "hpagent"))
    key = str(system.path(layout.KEY))
    as_service = ["runuser", "-u", layout.USER, "--"] if system.live else []
    if not system.path(layout.KEY).exists():
        system.run(*as_service, hpagent, "key", "init", "--key-file", key)
    else:
        print(f"   {layout.KEY} exists: kept")
    system.own(layout.entry(layout.KEY))  # also one made by hand, as root
    system.run(hpagent, "key", "show", "--jwk", "--key-file", key)


def serial_names(given: dict[str, str], system: System) -> None:
    rules = system.path(layout.UDEV_RULES)
    known = layout.links_in(rules.read_text()) if rules.exists() else {}
    wanted = {**known, **given}
    if wanted:
        system.write(layout.entry(layout.UDEV_RULES), layout.udev_rules(wanted))
    for name, serial in sorted(wanted.items()):
        print(f"   /dev/hpagent-{name}: the adapter with USB serial id {serial}")


def uninstall(purge: bool, system: System) -> None:
    print("== service")
    if system.live:
        system.run("systemctl", "disable", "--now", SERVICE, check=False)
    else:
        print(f"   not run (--root): systemctl disable --now {SERVICE}")
    print("== files")
    command = system.path(layout.COMMAND)
    for entry in layout.ENTRIES:
        if entry.path == layout.COMMAND and command.is_symlink() and \
                PurePosixPath(os.readlink(command)) != layout.PREFIX / "bin" / "hpagent":
            print(f"   {layout.COMMAND}: not ours, left")
        elif purge or not entry.kept_on_uninstall:
            system.remove(entry.path)
    system.run("systemctl", "daemon-reload", live_only=True)
    system.run("udevadm", "control", "--reload-rules", live_only=True)
    if purge:
        if system.live and system.run("getent", "passwd", layout.USER, check=False,
                                      quiet=True) == 0:
            system.run("userdel", layout.USER)
        elif not system.live:
            print(f"   not run (--root): userdel {layout.USER}")
    else:
        print(f"   kept: {layout.CONFIG_DIR} (configuration), {layout.STATE_DIR} (key and data), "
              f"the {layout.USER} user; --purge removes them")


def main(argv: Sequence[str] | None = None) -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # before pip's output
    p = parser()
    args = p.parse_args(argv)
    system = System(args.root.resolve() if args.root is not None else None)
    try:
        preflight(args, system)
    except BadArgument as bad:
        p.error(str(bad))
    if args.list_serial:
        list_serial(system)
        return 0
    if system.live and os.geteuid() != 0:
        print("install-gateway: run it as root (sudo), or with --root DIR", file=sys.stderr)
        return 1
    try:
        if args.uninstall or args.purge:
            uninstall(args.purge, system)
        else:
            install(args, system)
    except (Failed, OSError) as failed:
        print(f"install-gateway: {failed}", file=sys.stderr)
        return 1
    return 0
