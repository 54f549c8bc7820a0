"""MQTT brokers for the bench: a real mosquitto on loopback, or an embedded Python broker.

Tests and the demo start their own broker on a free loopback port with their own config (TLS,
client certificates, passwords, an ACL), and stop it afterwards. Mosquitto is the real peer;
the embedded broker (amqtt, MQTT 3.1.1 only) is the demo's fallback where mosquitto is absent,
and the test of the agent's fallback from MQTT 5 to 3.1.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")
        time.sleep(0.02)


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


class Broker(Protocol):
    host: str
    port: int

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Mosquitto:
    """A mosquitto process with a generated config; plain TCP, or TLS with optional client certs."""

    workdir: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    ca_file: Path | None = None  # with cert_file/key_file: a TLS listener
    cert_file: Path | None = None
    key_file: Path | None = None
    require_certificate: bool = False  # clients must present a certificate signed by ca_file
    users: dict[str, str] = field(default_factory=dict)  # user -> password; then no anonymous
    acl: str | None = None  # mosquitto ACL file text
    persistence: bool = False  # keep sessions and queued messages across a restart
    process: subprocess.Popen[bytes] | None = None

    def write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = ["per_listener_settings true", f"listener {self.port} {self.host}",
                 "log_dest stderr", "log_type error", "log_type warning",
                 f"user {getpass.getuser()}"]
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/"]
        else:
            lines.append("persistence false")
        if self.cert_file is not None:
            lines += [f"cafile {self.ca_file}", f"certfile {self.cert_file}",
                      f"keyfile {self.key_file}"]
            if self.require_certificate:
                lines += ["require_certificate true", "use_identity_as_username true"]
        if self.users:
            passwords = self.workdir / "passwords"
            passwords.write_text("")
            for user, password in self.users.items():
                subprocess.run([_tool("mosquitto_passwd"), "-b", str(passwords), user, password],
                               check=True, capture_output=True)
            lines += [f"password_file {passwords}", "allow_anonymous false"]
        elif not self.require_certificate:
            lines.append("allow_anonymous true")
        else:
            lines.append("allow_anonymous false")
        if self.acl is not None:
            acl = self.workdir / "acl"
            acl.write_text(self.acl)
            lines.append(f"acl_file {acl}")
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start_sync(self) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")
        conf = self.write_config()
        log = (self.workdir / "mosquitto.log").open("ab")
        self.process = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop_sync()
            raise RuntimeError(f"mosquitto did not start: {self.log_text()}") from None

    def stop_sync(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_text(self) -> str:
        path = self.workdir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def start(self) -> None:
        await asyncio.to_thread(self.start_sync)

    async def stop(self) -> None:
        await asyncio.to_thread(self.stop_sync)


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/sbin")
    if found is None:
        raise FileNotFoundError(f"{name} is not installed (it comes with Debian's mosquitto)")
    return found


@dataclass
class EmbeddedBroker:
    """amqtt in this process: MQTT 3.1.1, anonymous, plain TCP on loopback."""

    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    _broker: Any = None

    async def start(self) -> None:
        try:
            from amqtt.broker import Broker as Amqtt
        except ImportError:
            raise FileNotFoundError("neither mosquitto nor amqtt is installed: install mosquitto "
                                    "(apt-get install mosquitto) or hpagent[bench]") from None
        self._broker = Amqtt({
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                        {"allow_anonymous": True}},
        })
        await self._broker.start()

    async def stop(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()


BrokerKind = Literal["auto", "mosquitto", "embedded"]


def local_broker(workdir: Path, kind: BrokerKind = "auto") -> Mosquitto | EmbeddedBroker:
    """Mosquitto when it is installed (or asked for), else the embedded broker."""
    if kind == "mosquitto" or (kind == "auto" and mosquitto_binary() is not None):
        return Mosquitto(workdir)
    return EmbeddedBroker()
