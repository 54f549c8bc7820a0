"""The agent's configuration file (``/etc/hpagent/hpagent.yaml``): models, defaults and checks.

Defaults live here, in the models, and reach the generated JSON schema
(``config/hpagent.schema.json``). Loading is two passes: the schema pass (pydantic,
``extra="forbid"``) and a semantic pass for what needs the file system (profiles exist and are
valid, TLS and password files are readable). Both report every problem with file, line and key
path; the daemon never starts on a config with a problem.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
import stat
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from agent.diagnosis.thresholds import DiagnosisConfig
from agent.figures.installation import Installation
from agent.service.defaults import DEFAULT_STATE_DIR
from drivers.yamlfile import LocatedError, YamlFileError, load_model, problems_at

if TYPE_CHECKING:
    from agent.consent.grants import Grant

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
    key_file: Path | None = Field(None, description="Client private key (PEM), with cert_file; "
                                  "readable by the service user alone.")

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("give both 'cert_file' and 'key_file', or neither")
        return self


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address: traffic that never leaves the gateway."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Broker(_Model):
    """The MQTT broker a recipient reads from. TLS is on unless the broker is on loopback."""

    host: str = Field(description="Broker host name or IP address.")
    port: Port | None = Field(None, description="Broker port (default 8883 with TLS, else 1883).")
    tls: TlsConfig | bool | None = Field(
        None, description="TLS settings, true (the system's CAs) or false (plain MQTT). Default: "
        "on, except for a broker on loopback.")
    insecure: bool = Field(False, description="Accept plain MQTT to a broker that is not on "
                           "loopback (the password and the data cross the network in the "
                           "clear); logged as a warning at every start.")
    username: str | None = Field(None, description="User name for the broker.")
    password_file: Path | None = Field(
        None, description="File holding the password (kept out of this config; not readable "
        "by others).")
    client_id: str | None = Field(None, description="MQTT client id (default: "
                                  "<device_id>-<recipient>).")
    keepalive: Duration = Field(60.0, description="MQTT keep-alive interval.")
    protocol: Literal["auto", "5", "3.1.1"] = Field(
        "auto", description="MQTT version; 'auto' tries 5 and falls back to 3.1.1.")
    topic_prefix: str = Field("hpagent/v1", description="Topics are "
                              "<prefix>/<device_id>/<recipient>/<stream>.")
    max_inflight: int = Field(20, ge=1, le=1000, description="Unacknowledged messages at most.")
    connect_timeout: Duration = Field(10.0, description="How long to wait for the broker to "
                                      "accept a connection (CONNACK).")
    retry_refused: Duration = Field(60.0, description="When the broker refuses a message (MQTT 5 "
                                    "ACL), keep it and send it again after this long (doubling).")

    @model_validator(mode="after")
    def _safe(self) -> Self:
        if self.password_file is not None and self.username is None:
            raise LocatedError(("password_file",), "'password_file' needs 'username'")
        if not self.tls_enabled and not is_loopback(self.host) and not self.insecure:
            raise LocatedError(("tls",), f"plain MQTT to {self.host} (not loopback) would send "
                               "the password and the granted data in the clear: remove "
                               "'tls: false', or set 'insecure: true' to accept that")
        return self

    @property
    def tls_enabled(self) -> bool:
        if isinstance(self.tls, bool):
            return self.tls
        return self.tls is not None or not is_loopback(self.host)

    @property
    def tls_files(self) -> TlsConfig:
        return self.tls if isinstance(self.tls, TlsConfig) else TlsConfig()

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else (8883 if self.tls_enabled else 1883)


Stream = Literal["samples", "hourly", "daily", "status", "findings"]
Resolution = Literal["raw", "1min", "15min", "hourly", "daily"]


class GrantConfig(_Model):
    """A grant given at commissioning; the resident can revoke it (``hpagent consent revoke``)."""

    name: Name = Field(description="Names the grant within its recipient, e.g. 'guarantee'.")
    streams: tuple[Stream, ...] = Field(min_length=1, description="Streams the recipient "
                                        "receives.")
    fields: tuple[str, ...] = Field(min_length=1, description="Vocabulary quantities, daily "
                                    "figures, or sets of them: performance, diagnostics, "
                                    "household, all.")
    resolution: Resolution = Field("raw", description="Samples as taken, or aggregates per "
                                   "interval (counters as differences, gauges as means).")
    purpose: str = Field(min_length=1, description="What the data is for, in words the resident "
                         "agreed to.")
    start: date | datetime | None = Field(
        None, alias="from", description="Data from this date (local midnight) or time; "
        "default: when the gateway first applies the grant. An earlier date gives the history "
        "the gateway still holds.")
    until: date | datetime | None = Field(
        None, description="The grant ends at this date (local midnight) or time; default: "
        "when revoked.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _terms(self) -> Self:
        from agent.consent.grants import problems

        start = 0.0 if self.start is None else local_time(self.start)
        until = None if self.until is None else local_time(self.until)
        for problem in problems(self.streams, self.fields, self.resolution, self.purpose,
                                start, until):
            key, _, message = problem.partition(": ")
            raise LocatedError((key,), message)
        return self

    def grant(self, recipient: str, applied: float) -> Grant:
        """The grant these terms give ``recipient``, first applied at ``applied``."""
        from agent.consent.grants import Grant, config_id

        terms = self.model_dump(mode="json", by_alias=True)
        start = applied if self.start is None else local_time(self.start)
        until = None if self.until is None else local_time(self.until)
        return Grant(config_id(recipient, self.name, terms), recipient, self.streams,
                     self.fields, self.resolution, self.purpose, start, until, "config")


def local_time(value: date | datetime) -> float:
    """A date is its local (Dutch) midnight; a time without an offset is local time."""
    from agent.figures.metrics import LOCAL

    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return (value if value.tzinfo else value.replace(tzinfo=LOCAL)).timestamp()


class RecipientConfig(_Model):
    """A party the resident shares data with, and what it was granted."""

    name: Name = Field(description="Names the recipient in topics, grants and logs, e.g. "
                       "'installer'.")
    role: Literal["installer", "manufacturer", "designated", "resident", "other"] = Field(
        description="Who it is: the installer, the manufacturer, a government-designated party, "
        "the resident's own system, or another party.")
    broker: Broker = Field(description="Where its messages go.")
    grants: tuple[GrantConfig, ...] = Field((), description="Grants given at commissioning.")

    @property
    def client_id(self) -> str | None:
        return self.broker.client_id


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|kB|MB|GB)\s*$")


def _size(value: object) -> object:
    """``500MB`` -> bytes (decimal units, as disks are sold)."""
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m is None:
            raise ValueError("a size is a number of bytes or a string like '500MB', '2GB'")
        return int(float(m[1]) * {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[m[2]])
    return value


ByteSize = Annotated[int, BeforeValidator(_size), Field(gt=0), WithJsonSchema(
    {"anyOf": [{"type": "integer", "exclusiveMinimum": 0},
               {"type": "string", "pattern": _SIZE.pattern}]})]


class Storage(_Model):
    """How samples are kept on the gateway's SD card."""

    commit_interval: float = Field(
        60.0, ge=0, le=300, description="Seconds samples wait in memory to be committed together "
        "(0: each at once). Every commit writes whole blocks to the SD card: a minute writes "
        "about 2.3x what is published, 30 s 3.4x, each sample at once 7x. A power cut loses at "
        "most this much of raw samples; counters make the energy whole.")
    max_age: Duration = Field(90 * 86400.0, description="Raw samples older than this are "
                              "removed; hourly and daily figures are kept for good.")
    max_size: ByteSize = Field(500_000_000, description="When the database holds more than this, "
                               "the oldest raw samples are removed first.")


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
    recipients: tuple[RecipientConfig, ...] = Field(
        (), description="Who receives what: each recipient's broker and grants.")
    storage: Storage = Field(default_factory=Storage)
    heartbeat: Duration = Field(300.0, description="How often each recipient granted 'status' "
                                "gets a signed heartbeat.")
    status_socket: Path = Field(Path("/run/hpagent/status.sock"), description="Where the "
                                "daemon answers 'hpagent status' (systemd's RuntimeDirectory).")
    installation: Installation = Field(
        default_factory=Installation, description="What the performance figures must know "
        "about the installation: meters, boiler, references, advice, guarantee.")
    diagnosis: DiagnosisConfig = Field(
        default_factory=DiagnosisConfig, description="Why it underperforms: the design the "
        "findings hold the installation against, and each rule's thresholds.")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "destinations" in data:
            raise LocatedError(("destinations",), "'destinations' became 'recipients' (each "
                               "with a 'role', a 'broker' and its 'grants'): see "
                               "config/hpagent.example.yaml")
        return data

    def with_state_dir(self, state_dir: Path | None) -> Config:
        return self if state_dir is None else self.model_copy(update={"state_dir": state_dir})

    @property
    def signing_key(self) -> Path:
        return self.key_file if self.key_file is not None else self.state_dir / "gateway.key"


def _exposed(path: Path) -> bool:
    """Readable or writable by users other than owner and group."""
    try:
        return bool(path.stat().st_mode & stat.S_IRWXO)
    except OSError:
        return False


def semantic_problems(config: Config) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Problems the schema cannot see: duplicates, missing or exposed files, broken profiles."""
    from drivers.profile import load_profile

    for field, names in (("devices", [d.name for d in config.devices]),
                         ("recipients", [r.name for r in config.recipients])):
        for i, name in enumerate(names):
            if name in names[:i]:
                yield (field, i, "name"), f"{name!r} is used twice"
    for i, r in enumerate(config.recipients):
        names = [g.name for g in r.grants]
        for j, name in enumerate(names):
            if name in names[:j]:
                yield ("recipients", i, "grants", j, "name"), f"{name!r} is used twice"
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
    for i, r in enumerate(config.recipients):
        b = r.broker
        tls = b.tls_files
        files: list[tuple[tuple[str, ...], Path | None, bool]] = [
            (("password_file",), b.password_file, True),
            (("tls", "ca_file"), tls.ca_file, False),
            (("tls", "cert_file"), tls.cert_file, False),
            (("tls", "key_file"), tls.key_file, True)]
        for key, path, secret in files:
            loc: tuple[str | int, ...] = ("recipients", i, "broker", *key)
            if path is None:
                continue
            if not os.access(path, os.R_OK):
                yield loc, f"{path} does not exist or is not readable"
            elif secret and _exposed(path):
                yield loc, (f"{path} is accessible by others (mode "
                            f"{stat.S_IMODE(path.stat().st_mode):o}): run 'chmod o-rwx {path}'")
        if b.tls_enabled and tls.ca_file is not None and os.access(tls.ca_file, os.R_OK):
            try:
                ssl.create_default_context(cafile=str(tls.ca_file))
            except (ssl.SSLError, ValueError) as exc:
                yield ("recipients", i, "broker", "tls", "ca_file"), \
                    f"{tls.ca_file} holds no usable CA certificate ({exc})"


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
