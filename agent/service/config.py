"""The agent's configuration file (``/etc/hpagent/hpagent.yaml``): models, defaults and checks.

Defaults live here, in the models, and reach the generated JSON schema
(``config/hpagent.schema.json``). Loading is two passes: the schema pass (pydantic,
``extra="forbid"``) and a semantic pass for what needs the file system (profiles exist and are
valid, TLS and password files are readable). Both report every problem with file, line and key
path; the daemon never starts on a config with a problem.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from agent.figures.installation import Installation
from agent.service.defaults import DEFAULT_STATE_DIR
from drivers.yamlfile import LocatedError, YamlFileError, load_model, problems_at

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def _duration(value: object) -> object:
    """``10``, ``"10s"``, ``"5m"``, ``"250ms"`` -> seconds."""
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m is None:
            raise ValueError("a duration is a number of seconds or a string like '10s', '5m', '1h'")
        return float(m[1]) * _SECONDS[m[2]]
    return value


Duration = Annotated[
    float,
    BeforeValidator(_duration),
    Field(gt=0),
    WithJsonSchema({"anyOf": [{"type": "number", "exclusiveMinimum": 0},
                              {"type": "string", "pattern": _DURATION.pattern}]}),
]
def _pattern(regex: str, rule: str) -> tuple[AfterValidator, WithJsonSchema]:
    """A string rule whose error says it in words; the schema still carries the regex."""
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r}: {rule}")
        return value

    return AfterValidator(check), WithJsonSchema({"type": "string", "pattern": regex})


Name = Annotated[str, *_pattern(r"[a-z0-9][a-z0-9_-]{0,31}",
                                "use 1-32 lower-case letters, digits, '-' or '_'")]
DeviceId = Annotated[str, *_pattern(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}",
                                    "use 1-64 letters, digits, '.', '-' or '_' (it goes into "
                                    "MQTT topics)")]
Port = Annotated[int, Field(ge=1, le=65535)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _OneLink(_Model):
    """A device reached either over ``serial`` or over ``tcp``, never both."""

    LINKS: ClassVar[str] = "give 'serial' or 'tcp'"

    @model_validator(mode="after")
    def _one_link(self) -> Self:
        tcp, serial = getattr(self, "tcp", None), getattr(self, "serial", None)
        if tcp is not None and serial is not None:
            raise LocatedError(("serial",), "give 'tcp' or 'serial', not both")
        if tcp is None and serial is None:
            raise ValueError(self.LINKS)
        return self


class LogConfig(_Model):
    level: Literal["debug", "info", "warning", "error"] = Field("info", description="Least level.")
    format: Literal["auto", "json", "console"] = Field(
        "auto", description="'auto': JSON under systemd or when not on a terminal, else console.")


class TcpEndpoint(_Model):
    host: str = Field(description="Host name or IP address of the Modbus TCP device or gateway.")
    port: Port = Field(502, description="TCP port.")


class SerialEndpoint(_Model):
    port: str = Field(description="Serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...")
    baudrate: int | None = Field(None, description="Baud rate (default: the profile's).")
    parity: Literal["N", "E", "O"] | None = Field(None, description="Parity (default: profile's).")
    stopbits: Literal[1, 2] | None = Field(None, description="Stop bits (default: profile's).")


class ModbusDeviceConfig(_OneLink):
    """A Modbus device (RTU or TCP) read according to a profile."""

    kind: Literal["modbus"]
    name: Name = Field(description="Name of this device in samples and logs, e.g. 'heatpump'.")
    profile: str = Field(description="Profile name from config/profiles (e.g. 'nibe_s1155') or "
                         "a path to a profile file.")
    tcp: TcpEndpoint | None = Field(None, description="Modbus TCP endpoint (or give 'serial').")
    serial: SerialEndpoint | None = Field(None, description="Modbus RTU line (or give 'tcp').")
    unit: int | None = Field(None, ge=0, le=247, description="Unit id (default: the profile's).")
    interval: Duration = Field(10.0, description="Time between polls.")
    timeout: Duration = Field(1.0, description="Time to wait for one answer.")
    retries: int = Field(2, ge=0, le=10, description="Retries of an unanswered transaction.")
    max_gap: int | None = Field(None, ge=0, le=124,
                                description="Override the profile's largest gap in one read.")

    LINKS: ClassVar[str] = "give 'tcp' (Modbus TCP) or 'serial' (Modbus RTU)"


class NetEndpoint(_Model):
    host: str = Field(description="Host name or IP address (a network P1 dongle, ser2net, ...).")
    port: Port = Field(description="TCP port.")


class SerialLine(_Model):
    """A serial port whose line settings are found automatically unless all are given."""

    port: str = Field(description="Serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...")
    baudrate: int | None = Field(None, description="Pin the baud rate (with bytesize, parity).")
    bytesize: Literal[7, 8] | None = Field(None, description="Pin the data bits.")
    parity: Literal["N", "E", "O"] | None = Field(None, description="Pin the parity.")

    @model_validator(mode="after")
    def _all_or_none(self) -> Self:
        given = [v is not None for v in (self.baudrate, self.bytesize, self.parity)]
        if any(given) and not all(given):
            raise ValueError("pin the line with all of baudrate, bytesize and parity, or none "
                             "of them to detect it")
        return self


# The choices of drivers.p1_telegram.SPEC_CHOICES (a test holds them equal)
P1Spec = Literal["auto", "2.2", "4", "5", "5B", "5L", "5S", "Q3D"]


class P1DeviceConfig(_OneLink):
    """The smart meter's P1 port (DSMR), over a USB cable or a network dongle."""

    kind: Literal["p1"]
    name: Name = Field(description="Name of this meter in samples and logs, e.g. 'p1'.")
    serial: SerialLine | None = Field(None, description="USB P1 cable (or give 'tcp').")
    tcp: NetEndpoint | None = Field(None, description="P1-to-Ethernet dongle or ser2net.")
    spec: P1Spec = Field("auto", description="DSMR variant; 'auto' recognises it from the "
                         "telegrams.")
    interval: Duration = Field(10.0, description="How often the latest telegram is sampled.")
    silence: Duration = Field(30.0, description="No valid telegram for this long makes the "
                              "meter's readings unavailable.")

    LINKS: ClassVar[str] = "give 'serial' (a P1 cable) or 'tcp' (a network dongle)"


class SerialPortName(_Model):
    port: str = Field(description="Serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...")


class OtgwDeviceConfig(_OneLink):
    """An OpenTherm Gateway between thermostat and boiler, monitored passively."""

    kind: Literal["otgw"]
    name: Name = Field(description="Name of the boiler in samples and logs, e.g. 'boiler'.")
    serial: SerialPortName | None = Field(None, description="OTGW on a serial port (9600 8N1).")
    tcp: NetEndpoint | None = Field(None, description="Network OTGW (OTGW-firmware: port 25238).")
    interval: Duration = Field(10.0, description="How often the boiler's state is sampled; "
                               "flame, CH and DHW changes are recorded as they happen.")
    silence: Duration = Field(60.0, description="No message for this long makes the readings "
                              "unavailable.")
    allow_commands: bool = Field(False, description="Let hpagent send commands to the gateway "
                                 "(only PR=A and AA=); never by default.")
    alternatives: tuple[Annotated[int, Field(ge=1, le=255)], ...] = Field(
        (), description="Data-ids the gateway should ask the boiler for when the thermostat "
        "does not (AA=); needs allow_commands.")

    @model_validator(mode="after")
    def _commands(self) -> Self:
        if self.alternatives and not self.allow_commands:
            raise LocatedError(("alternatives",), "alternatives are sent as AA= commands: "
                               "set allow_commands: true, or remove them")
        return self


class MbusSerial(_Model):
    port: str = Field(description="Serial device of the M-Bus level converter.")
    baudrate: int = Field(2400, description="M-Bus baud rate (the meter's setting).")
    parity: Literal["N", "E", "O"] = Field("E", description="Parity (M-Bus uses even).")


class MbusDeviceConfig(_OneLink):
    """A heat meter on M-Bus (EN 13757), by primary or secondary address."""

    kind: Literal["mbus"]
    name: Name = Field(description="Name of the meter in samples and logs, e.g. 'heatmeter'.")
    serial: MbusSerial | None = Field(None, description="M-Bus level converter on a serial port.")
    tcp: NetEndpoint | None = Field(None, description="M-Bus gateway on the network.")
    address: int | None = Field(None, ge=0, le=250, description="Primary address (0-250).")
    secondary: str | None = Field(
        None, pattern=r"^[0-9A-Fa-f]{16}$", description="Secondary address: 16 hex digits "
        "(ID, manufacturer, version, medium); F is a wildcard.")
    interval: Duration = Field(300.0, description="Time between reads; battery meters count "
                               "every read, so keep this long.")
    timeout: Duration = Field(1.0, description="Time to wait for the meter's first byte.")
    retries: int = Field(2, ge=0, le=10, description="Retries of an unanswered request.")

    @model_validator(mode="after")
    def _address(self) -> Self:
        if (self.address is None) == (self.secondary is None):
            raise ValueError("give exactly one of 'address' (primary) and 'secondary'")
        return self


DeviceConfig = Annotated[
    ModbusDeviceConfig | P1DeviceConfig | OtgwDeviceConfig | MbusDeviceConfig,
    Field(discriminator="kind")]


class TlsConfig(_Model):
    ca_file: Path | None = Field(None, description="CA certificate(s) to trust (PEM); default: "
                                 "the system's CAs.")
    cert_file: Path | None = Field(None, description="Client certificate (PEM), with key_file.")
    key_file: Path | None = Field(None, description="Client private key (PEM), with cert_file.")

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("give both 'cert_file' and 'key_file', or neither")
        return self


class Destination(_Model):
    """An MQTT broker that receives signed messages."""

    name: Name = Field(description="Name of this destination, e.g. 'installer'.")
    host: str = Field(description="Broker host name or IP address.")
    port: Port | None = Field(None, description="Broker port (default 8883 with TLS, else 1883).")
    tls: TlsConfig | None = Field(None, description="Use TLS (strongly advised off the LAN).")
    username: str | None = Field(None, description="User name for the broker.")
    password_file: Path | None = Field(
        None, description="File holding the password (kept out of this config).")
    client_id: str | None = Field(None, description="MQTT client id (default: <device_id>-<name>).")
    keepalive: Duration = Field(60.0, description="MQTT keep-alive interval.")
    protocol: Literal["auto", "5", "3.1.1"] = Field(
        "auto", description="MQTT version; 'auto' tries 5 and falls back to 3.1.1.")
    topic_prefix: str = Field("hpagent/v1", description="Topics are <prefix>/<device_id>/<stream>.")
    streams: tuple[Literal["samples", "hourly", "daily"], ...] = Field(
        ("samples",), description="Streams to send: every sample, the ledger's hourly figures, "
        "the daily performance summary.")
    max_inflight: int = Field(20, ge=1, le=1000, description="Unacknowledged messages at most.")
    connect_timeout: Duration = Field(10.0, description="How long to wait for the broker to "
                                      "accept a connection (CONNACK).")
    retry_refused: Duration = Field(60.0, description="When the broker refuses a message (MQTT 5 "
                                    "ACL), keep it and send it again after this long (doubling).")

    @model_validator(mode="after")
    def _password_needs_user(self) -> Self:
        if self.password_file is not None and self.username is None:
            raise ValueError("'password_file' needs 'username'")
        return self

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else (8883 if self.tls else 1883)


class Config(_Model):
    """hpagent's configuration."""

    device_id: DeviceId = Field(description="This gateway's identity in topics and messages.")
    state_dir: Path = Field(DEFAULT_STATE_DIR, description="Database and key live here.")
    key_file: Path | None = Field(
        None, description="Signing key (default <state_dir>/gateway.key).")
    profiles_dirs: tuple[Path, ...] = Field(
        (), description="Extra directories of device profiles, searched before the bundled ones.")
    log: LogConfig = Field(default_factory=LogConfig)
    devices: tuple[DeviceConfig, ...] = Field(description="The devices to poll.")
    destinations: tuple[Destination, ...] = Field((), description="Where to publish.")
    installation: Installation = Field(
        default_factory=Installation, description="What the performance figures must know "
        "about the installation: meters, boiler, references, advice, guarantee.")

    def with_state_dir(self, state_dir: Path | None) -> Config:
        return self if state_dir is None else self.model_copy(update={"state_dir": state_dir})

    @property
    def signing_key(self) -> Path:
        return self.key_file if self.key_file is not None else self.state_dir / "gateway.key"


def semantic_problems(config: Config) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Problems the schema cannot see: duplicates, missing files, broken profiles."""
    from drivers.profile import load_profile

    for field, names in (("devices", [d.name for d in config.devices]),
                         ("destinations", [d.name for d in config.destinations])):
        for i, name in enumerate(names):
            if name in names[:i]:
                yield (field, i, "name"), f"{name!r} is used twice"
    for i, dev in enumerate(config.devices):
        if not isinstance(dev, ModbusDeviceConfig):
            continue
        try:
            load_profile(dev.profile, config.profiles_dirs)
        except FileNotFoundError as exc:
            yield ("devices", i, "profile"), str(exc)
        except YamlFileError as exc:
            yield ("devices", i, "profile"), f"profile {dev.profile!r} is invalid:\n  " + \
                str(exc).replace("\n", "\n  ")
    for i, dest in enumerate(config.destinations):
        files: list[tuple[tuple[str | int, ...], Path | None]] = [
            (("destinations", i, "password_file"), dest.password_file)]
        if dest.tls is not None:
            files += [(("destinations", i, "tls", k), getattr(dest.tls, k))
                      for k in ("ca_file", "cert_file", "key_file")]
        for loc, path in files:
            if path is not None and not os.access(path, os.R_OK):
                yield loc, f"{path} does not exist or is not readable"


def load_config(path: Path) -> Config:
    """Load, validate and check ``path``; :class:`YamlFileError` lists every problem."""
    config = load_model(path, Config)
    found = list(semantic_problems(config))
    if found:
        raise YamlFileError(problems_at(path, found))
    return config


def json_schema() -> dict[str, Any]:
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://hpagent.org/schema/hpagent.schema.json"
    return schema
