"""The ``hpagent`` command line: the daemon, commissioning, diagnosis and the bench.

Each command imports what it needs when it runs, so that ``hpagent --help`` and the quick
commands start fast on a small gateway. Exit codes: 0 success, 1 failure, 2 usage,
78 configuration error (sysexits EX_CONFIG).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, NoReturn

import typer

from agent.service.defaults import DEFAULT_CONFIG, DEFAULT_STATE_DIR, EX_CONFIG

if TYPE_CHECKING:
    from agent.figures.metrics import Period
    from agent.service.config import Config

app = typer.Typer(name="hpagent", no_args_is_help=True, add_completion=False,
                  rich_markup_mode=None, pretty_exceptions_enable=False,
                  help="Heat pump performance telemetry: poll, store, sign, publish.")
config_app = typer.Typer(no_args_is_help=True, help="Check the configuration.")
key_app = typer.Typer(no_args_is_help=True, help="The gateway's signing key.")
hil_app = typer.Typer(no_args_is_help=True, help="Simulated devices of the test bench.")
app.add_typer(config_app, name="config")
app.add_typer(key_app, name="key")
modbus_app = typer.Typer(no_args_is_help=True, help="Modbus devices, for diagnosis on site.")
mbus_app = typer.Typer(no_args_is_help=True, help="M-Bus heat meters, for diagnosis on site.")
app.add_typer(mbus_app, name="mbus")
app.add_typer(hil_app, name="hil")
app.add_typer(modbus_app, name="modbus")
consent_app = typer.Typer(no_args_is_help=True, help="What the resident shares, with whom: "
                          "grants and their audit log.")
app.add_typer(consent_app, name="consent")

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Configuration file.")]
StateDirOpt = Annotated[Path | None, typer.Option(
    "--state-dir", help="State directory (database, key); overrides the config.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"hpagent: {message}", err=True)
    raise typer.Exit(code)


def _load_config(path: Path, state_dir: Path | None) -> Config:
    from agent.service.config import load_config
    from drivers.yamlfile import YamlFileError

    try:
        return load_config(path).with_state_dir(state_dir)
    except YamlFileError as exc:
        fail(f"configuration has problems:\n{exc}", EX_CONFIG)


@app.command()
def run(config: ConfigOpt = DEFAULT_CONFIG, state_dir: StateDirOpt = None) -> None:
    """Run the agent until SIGTERM or SIGINT, then flush and exit 0."""
    import asyncio

    # structlog imports rich whenever it is installed (the demo's live view needs it), for
    # coloured tracebacks the daemon never renders: 4 MB of the daemon's resident memory on a
    # small gateway. A None entry makes ``import rich`` fail, so structlog takes its plain path.
    sys.modules.setdefault("rich", None)  # type: ignore[arg-type]
    from agent.delivery.store import StoreError
    from agent.service import logs
    from agent.service.daemon import run_until_signalled
    from agent.trust.keys import KeyFileError

    cfg = _load_config(config, state_dir)
    logs.configure(cfg.log.level, cfg.log.format)
    try:
        asyncio.run(run_until_signalled(cfg))
    except (KeyFileError, StoreError) as exc:
        fail(str(exc))


@config_app.command("check")
def config_check(file: Annotated[Path, typer.Argument(help="Configuration file to check.")],
                 ) -> None:
    """Check a configuration file; list every problem with file, line and key (exit 78)."""
    cfg = _load_config(file, None)
    grants = sum(len(r.grants) for r in cfg.recipients)
    typer.echo(f"{file}: ok ({len(cfg.devices)} devices, {len(cfg.recipients)} recipients, "
               f"{grants} grants)")


@config_app.command("schema")
def config_schema() -> None:
    """Print the JSON schema of the configuration file."""
    from agent.service.config import json_schema

    typer.echo(json.dumps(json_schema(), indent=2, ensure_ascii=False))


def _key_path(config: Path, state_dir: Path | None, key_file: Path | None) -> Path:
    if key_file is not None:
        return key_file
    if config.exists():
        return _load_config(config, state_dir).signing_key
    return (state_dir or DEFAULT_STATE_DIR) / "gateway.key"


KeyFileOpt = Annotated[Path | None, typer.Option("--key-file", help="The key file itself.")]


@key_app.command("init")
def key_init(config: ConfigOpt = DEFAULT_CONFIG, state_dir: StateDirOpt = None,
             key_file: KeyFileOpt = None) -> None:
    """Create the gateway's Ed25519 signing key (mode 0600); never overwrites one."""
    from agent.trust.jws import thumbprint
    from agent.trust.keys import KeyFileError, init_key

    path = _key_path(config, state_dir, key_file)
    try:
        key = init_key(path)
    except KeyFileError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}")
    typer.echo(f"created {path} (key id {thumbprint(key.public_key())})")


@key_app.command("show")
def key_show(config: ConfigOpt = DEFAULT_CONFIG, state_dir: StateDirOpt = None,
             key_file: KeyFileOpt = None,
             jwk: Annotated[bool, typer.Option("--jwk", help="As a JSON Web Key.")] = False,
             ) -> None:
    """Print the gateway's public key (PEM, or JWK with its RFC 7638 key id)."""
    from agent.trust.jws import public_jwk
    from agent.trust.keys import KeyFileError, load_private_key, public_pem

    path = _key_path(config, state_dir, key_file)
    try:
        public = load_private_key(path).public_key()
    except KeyFileError as exc:
        fail(str(exc))
    typer.echo(json.dumps(public_jwk(public)) if jwk else public_pem(public), nl=jwk)


@app.command("verify")
def verify_cmd(
    key: Annotated[Path, typer.Option("--key", help="Public key of the gateway (PEM or JWK).")],
    broker: Annotated[str | None, typer.Option(help="HOST:PORT of the broker.")] = None,
    topic: Annotated[str, typer.Option(help="Topic filter to subscribe to.")] = "hpagent/v1/#",
    file: Annotated[Path | None, typer.Option(help="Messages saved one per line.")] = None,
    count: Annotated[int | None, typer.Option(help="Stop after this many messages.")] = None,
    seconds: Annotated[float | None, typer.Option(help="Stop after this long.")] = None,
    ca_file: Annotated[Path | None, typer.Option(help="CA for TLS (enables TLS).")] = None,
    client_cert: Annotated[Path | None, typer.Option(help="Client certificate (TLS).")] = None,
    client_key: Annotated[Path | None, typer.Option(help="Client key (TLS).")] = None,
    username: Annotated[str | None, typer.Option(help="Broker user name.")] = None,
    password_file: Annotated[Path | None, typer.Option(help="File with the password.")] = None,
    audience: Annotated[str | None, typer.Option(
        help="The recipient you are: messages meant for anyone else are bad.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check signatures, chains, epochs, heartbeats and grants of messages from a broker or a
    file."""
    from agent.commands.verify_cli import listen, read_file, render
    from agent.service import logs
    from agent.trust.keys import KeyFileError, load_public_key

    if (broker is None) == (file is None):
        fail("give exactly one of --broker and --file", 2)
    try:
        public = load_public_key(key)
    except KeyFileError as exc:
        fail(str(exc))
    logs.configure("warning")
    if file is not None:
        report = read_file(file, public, audience)
    else:
        assert broker is not None
        if count is None and seconds is None:
            fail("with --broker, give --count and/or --seconds", 2)
        report = listen(broker, topic, public, count=count, seconds=seconds, ca_file=ca_file,
                        client_cert=client_cert, client_key=client_key, username=username,
                        password_file=password_file, audience=audience)
    typer.echo(json.dumps(report.to_json(), indent=2) if as_json else render(report))
    raise typer.Exit(0 if report.ok else 1)


@consent_app.command("grant")
def consent_grant(
    recipient: Annotated[str, typer.Option(help="Recipient (as named in the config).")],
    streams: Annotated[str, typer.Option(help="Comma-separated: samples, hourly, daily, "
                                         "status, findings.")],
    fields: Annotated[str, typer.Option(help="Comma-separated fields or sets: performance, "
                                        "diagnostics, household, all.")],
    purpose: Annotated[str, typer.Option(help="What the data is for, in words.")],
    resolution: Annotated[str, typer.Option(help="raw, 1min, 15min, hourly or daily.")
                          ] = "raw",
    from_: Annotated[str | None, typer.Option("--from", help="YYYY-MM-DD or RFC 3339; "
                                              "default now; earlier gives history.")] = None,
    until: Annotated[str | None, typer.Option(help="YYYY-MM-DD or RFC 3339.")] = None,
    days: Annotated[float | None, typer.Option(help="Valid this many days.")] = None,
    config: ConfigOpt = DEFAULT_CONFIG, state_dir: StateDirOpt = None, as_json: JsonOpt = False,
) -> None:
    """Give a recipient a grant; it is in the signed audit log and in force at once."""
    from agent.commands.consent_cli import grant

    raise typer.Exit(grant(_load_config(config, state_dir), recipient, streams, fields,
                           resolution, purpose, from_, until, days, as_json))


@consent_app.command("revoke")
def consent_revoke(
    grant_id: Annotated[str, typer.Argument(help="The grant (see 'hpagent consent list').")],
    reason: Annotated[str | None, typer.Option(help="Why, for the log and the notice.")] = None,
    config: ConfigOpt = DEFAULT_CONFIG, state_dir: StateDirOpt = None,
) -> None:
    """Revoke a grant: nothing more leaves under it, not even what is queued."""
    from agent.commands.consent_cli import revoke

    raise typer.Exit(revoke(_load_config(config, state_dir), grant_id, reason))


@consent_app.command("list")
def consent_list(config: ConfigOpt = DEFAULT_CONFIG, state_dir: StateDirOpt = None,
                 as_json: JsonOpt = False) -> None:
    """Every grant: to whom, what, how fine, how long, and whether it is in force."""
    from agent.commands.consent_cli import list_grants

    raise typer.Exit(list_grants(_load_config(config, state_dir), as_json))


@consent_app.command("show")
def consent_show(
    grant_id: Annotated[str, typer.Argument(help="The grant.")],
    config: ConfigOpt = DEFAULT_CONFIG, state_dir: StateDirOpt = None, as_json: JsonOpt = False,
) -> None:
    """One grant's terms, every field it gives, and its history."""
    from agent.commands.consent_cli import show

    raise typer.Exit(show(_load_config(config, state_dir), grant_id, as_json))


@consent_app.command("audit")
def consent_audit(
    export: Annotated[Path | None, typer.Option(help="Write the log (and the public key "
                                                "beside it, .jwk) here.")] = None,
    verify: Annotated[Path | None, typer.Option(help="Check an exported log instead.")] = None,
    key: Annotated[Path | None, typer.Option(help="With --verify: the gateway's public key.")
                   ] = None,
    config: ConfigOpt = DEFAULT_CONFIG, state_dir: StateDirOpt = None, as_json: JsonOpt = False,
) -> None:
    """The audit log of consent, checked entry by entry (exit 1 if it fails)."""
    from agent.commands.consent_cli import audit

    cfg = _load_config(config, state_dir) if verify is None else None
    raise typer.Exit(audit(cfg, export, verify, key, as_json))


@app.command("p1")
def p1_cmd(
    port: Annotated[str | None, typer.Option(help="Serial port of the P1 cable.")] = None,
    tcp: Annotated[str | None, typer.Option(help="HOST:PORT of a network P1 dongle.")] = None,
    spec: Annotated[str, typer.Option(help="DSMR variant: auto, 2.2, 4, 5, 5B, 5L, 5S, Q3D.")
                    ] = "auto",
    once: Annotated[bool, typer.Option("--once", help="Stop after one telegram.")] = False,
    as_json: JsonOpt = False,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds without a "
                                           "valid telegram.")] = 30.0,
) -> None:
    """Show a smart meter's P1 telegrams, decoded into hpagent's quantities."""
    from agent.commands.inspect_p1 import main as p1_main

    raise typer.Exit(p1_main(port, tcp, spec, once, as_json, timeout))


@modbus_app.command("read")
def modbus_read(
    profile: Annotated[str, typer.Option(help="Profile name (config/profiles) or file.")],
    port: Annotated[str | None, typer.Option(help="Serial port (Modbus RTU).")] = None,
    tcp: Annotated[str | None, typer.Option(help="HOST[:PORT] (Modbus TCP, port 502).")] = None,
    unit: Annotated[int | None, typer.Option(help="Unit id (default: the profile's).")] = None,
    baudrate: Annotated[int | None, typer.Option(help="RTU baud rate (default: profile's).")
                        ] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Show the register words too.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer.")] = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """Read every quantity of a profile from a device once, decoded (exit 1 if any fails)."""
    from agent.commands.inspect_modbus import read

    raise typer.Exit(read(profile, port, tcp, unit, baudrate, as_json, raw, timeout))


@app.command("otgw")
def otgw_cmd(
    port: Annotated[str | None, typer.Option(help="Serial port of the OpenTherm Gateway.")
                    ] = None,
    tcp: Annotated[str | None, typer.Option(help="HOST:PORT of a network OTGW.")] = None,
    seconds: Annotated[float | None, typer.Option(help="Stop after this long.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Watch an OpenTherm Gateway passively: every message decoded, never a command sent."""
    from agent.commands.inspect_otgw import main as otgw_main

    raise typer.Exit(otgw_main(port, tcp, as_json, seconds))


MbusPort = Annotated[str, typer.Option(help="Serial port of the M-Bus level converter.")]
MbusBaud = Annotated[int, typer.Option(help="Baud rate.")]
MbusParity = Annotated[str, typer.Option(help="Parity: E (M-Bus), or N on a pty.")]
MbusTimeout = Annotated[float | None, typer.Option(help="Seconds to wait for an answer.")]


@mbus_app.command("scan")
def mbus_scan(port: MbusPort, baudrate: MbusBaud = 2400,
              secondary: Annotated[bool, typer.Option(
                  "--secondary/--primary-only", help="Also search secondary addresses.")] = True,
              parity: MbusParity = "E", timeout: MbusTimeout = None,
              as_json: JsonOpt = False) -> None:
    """Find the meters on an M-Bus line: primary addresses 0-250, then secondary search."""
    from agent.commands.inspect_mbus import scan

    raise typer.Exit(scan(port, baudrate, secondary, as_json, parity=_parity(parity),
                          timeout=timeout))


@mbus_app.command("read")
def mbus_read(port: MbusPort,
              address: Annotated[str, typer.Option(help="Primary address or 16-hex secondary.")],
              baudrate: MbusBaud = 2400, parity: MbusParity = "E", timeout: MbusTimeout = None,
              as_json: JsonOpt = False) -> None:
    """Read one meter and show every record, and which ones hpagent uses."""
    from agent.commands.inspect_mbus import read

    raise typer.Exit(read(port, address, baudrate, as_json, parity=_parity(parity),
                          timeout=timeout))


def _parity(value: str) -> Literal["N", "E", "O"]:
    if value not in ("N", "E", "O"):
        fail(f"--parity must be N, E or O, not {value!r}", 2)
    return value  # type: ignore[return-value]


@app.command()
def record(
    file: Annotated[Path, typer.Argument(help="Recording to write (appended to).")],
    seconds: Annotated[float, typer.Option(help="How long to record.")],
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Write the configured devices' samples to a recording (JSON Lines) for a while."""
    import asyncio

    from agent.commands.recorder import record as run_record
    from agent.service import logs

    cfg = _load_config(config, None)
    logs.configure(cfg.log.level, cfg.log.format)
    raise typer.Exit(asyncio.run(run_record(cfg, file, seconds)))


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(help="The recording to replay.")],
    out: Annotated[Path | None, typer.Option(help="Write the signed messages to this file.")
                   ] = None,
    broker: Annotated[str | None, typer.Option(help="Publish them to HOST:PORT instead.")
                      ] = None,
    config: ConfigOpt = DEFAULT_CONFIG, state_dir: StateDirOpt = None, as_json: JsonOpt = False,
) -> None:
    """Run the whole pipeline on a recording, with its own times; then print the report."""
    import asyncio

    from agent.commands.replay import replay as run_replay
    from agent.service import logs

    cfg = _load_config(config, None) if config.exists() else None
    logs.configure("warning")
    raise typer.Exit(asyncio.run(run_replay(file, cfg, out, broker, state_dir, as_json)))


RecordingOpt = Annotated[Path | None, typer.Option(help="A recording instead of the store.")]
FromOpt = Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD.")]
ToOpt = Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD (included).")]
WorkersOpt = Annotated[int | None, typer.Option(help="Processes reading a recording.")]


def _period(from_: str | None, to: str | None, season: int | None = None) -> Period | None:
    """The period of --from/--to (local days, both included) or --season; None: all data."""
    from datetime import date

    from agent.figures.metrics import day_period, season_period

    if season is not None and (from_ or to):
        fail("give --season or --from/--to, not both", 2)
    if season is not None:
        return season_period(season)
    if not (from_ or to):
        return None
    if not (from_ and to):
        fail("give both --from and --to", 2)
    try:
        return day_period(date.fromisoformat(from_), date.fromisoformat(to))
    except ValueError as exc:
        fail(f"--from/--to: {exc} (use YYYY-MM-DD)", 2)


def _sources(config: Path, state_dir: Path | None, recording: Path | None
             ) -> tuple[Config | None, Path | None]:
    """The config (if its file exists) and the database to read when there is no recording."""
    cfg = _load_config(config, state_dir) if config.exists() else None
    if recording is not None:
        return cfg, None
    return cfg, (cfg.state_dir if cfg is not None else (state_dir or DEFAULT_STATE_DIR)
                 ) / "hpagent.db"


@app.command()
def report(
    recording: RecordingOpt = None, from_: FromOpt = None, to: ToOpt = None,
    season: Annotated[int | None, typer.Option(help="The 12 months from 1 October YYYY.")
                      ] = None,
    config: ConfigOpt = DEFAULT_CONFIG, state_dir: StateDirOpt = None,
    workers: WorkersOpt = None, as_json: JsonOpt = False,
) -> None:
    """Performance of a period: SPF, heat coverage, gas, savings, the advice, the guarantee and
    the findings of the diagnosis."""
    from agent.commands.report import run as run_report
    from agent.diagnosis.thresholds import DiagnosisConfig
    from agent.figures.installation import Installation

    period = _period(from_, to, season)
    cfg, store = _sources(config, state_dir, recording)
    raise typer.Exit(run_report(
        recording, store, cfg.installation if cfg is not None else Installation(), period,
        as_json, workers, cfg.diagnosis if cfg is not None else DiagnosisConfig()))


@app.command()
def status(config: ConfigOpt = DEFAULT_CONFIG, state_dir: StateDirOpt = None,
           as_json: JsonOpt = False) -> None:
    """What the running daemon knows: devices and their health, last values and their age,
    outbox per recipient, clock, key, uptime, version."""
    from agent.commands.status_cli import status as show

    raise typer.Exit(show(_load_config(config, state_dir), as_json))


@app.command()
def watch(config: ConfigOpt = DEFAULT_CONFIG, state_dir: StateDirOpt = None,
          every: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 2.0,
          seconds: Annotated[float | None, typer.Option(help="Stop after this long.")] = None,
          ) -> None:
    """A live dashboard of the running daemon, until Ctrl-C."""
    from agent.commands.status_cli import watch as live

    raise typer.Exit(live(_load_config(config, state_dir), every, seconds))


@app.command()
def diagnose(
    findings: Annotated[bool, typer.Option(
        "--findings", help="Why the installation underperforms: the diagnosis rules over the "
        "period's samples, with evidence, likely cause and action.")] = False,
    recording: RecordingOpt = None, from_: FromOpt = None, to: ToOpt = None,
    config: ConfigOpt = DEFAULT_CONFIG, state_dir: StateDirOpt = None,
    workers: WorkersOpt = None,
    language: Annotated[str, typer.Option(help="Language of causes and actions: en or nl.")
                        ] = "en",
    as_json: JsonOpt = False,
) -> None:
    """Every check on site (config, key, clock, disk, daemon, devices, brokers, grants) as a
    pass/fail table with a hint for each failure; or, with --findings, why the installation
    underperforms."""
    from agent.commands.findings import run as run_findings
    from agent.diagnosis.thresholds import DiagnosisConfig
    from agent.figures.installation import Installation

    if not findings:
        from agent.commands.checks import run as run_checks
        from agent.service import logs

        logs.configure("error")  # the table says what failed; no log lines in between
        raise typer.Exit(run_checks(_load_config(config, state_dir), as_json))
    if language not in ("en", "nl"):
        fail(f"--language must be en or nl, not {language!r}", 2)
    period = _period(from_, to)
    cfg, store = _sources(config, state_dir, recording)
    raise typer.Exit(run_findings(
        recording, store, cfg.installation if cfg is not None else Installation(),
        cfg.diagnosis if cfg is not None else DiagnosisConfig(), period, as_json, workers,
        "nl" if language == "nl" else "en"))


@hil_app.command("season")
def hil_season(
    out: Annotated[Path, typer.Option(help="The recording to write (truth: <out>.truth.json).")],
    from_: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (UTC).")
                     ] = "2025-10-01",
    to: Annotated[str, typer.Option(help="Day after the last, YYYY-MM-DD.")] = "2026-05-01",
    step: Annotated[float, typer.Option(help="Seconds between samples.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Weather and behaviour seed.")] = 1,
    fault: Annotated[list[str] | None, typer.Option(
        metavar="NAME", help="Plant a fault (repeat, or comma-separate): steep_curve, "
        "undersized_radiators, oversized_pump, short_cycling, bivalent_high, backup_mild, "
        "heat_meter_air, frozen_sensor.")] = None,
) -> None:
    """Simulate a hybrid installation's heating season fast: a recording and its ground truth."""
    from hil.season import main as season_main

    raise typer.Exit(season_main(out, from_, to, step, seed, fault or ()))


@hil_app.command("heatpump")
def hil_heatpump(
    port: Annotated[int, typer.Option(help="TCP port to serve Modbus on.")] = 5020,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    speed: Annotated[float, typer.Option(help="Simulated seconds per real second.")] = 1.0,
    unit: Annotated[int, typer.Option(help="Modbus unit id.")] = 1,
) -> None:
    """Serve the simulated air-to-water heat pump over Modbus TCP until Ctrl-C."""
    import asyncio

    from agent.service import logs
    from hil.heatpump_server import serve_forever

    logs.configure("info")
    try:
        asyncio.run(serve_forever(host, port, unit=unit, speed=speed))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        fail(f"cannot serve on {host}:{port}: {exc.strerror}")


@app.command()
def demo(seconds: Annotated[float | None, typer.Option(
        help="Stop after this many seconds (default: run until Ctrl-C).")] = None,
         speed: Annotated[float, typer.Option(help="Simulation speed-up.")] = 60.0,
         interval: Annotated[float, typer.Option(help="Poll interval, seconds.")] = 2.0,
         installation: Annotated[str, typer.Option(
             help="hybrid: heat pump, sub-meter, boiler (OTGW), heat meter (M-Bus), P1; "
                  "heatpump: the heat pump alone.")] = "hybrid",
         broker: Annotated[str, typer.Option(
             help="auto (mosquitto if installed), mosquitto, or embedded.")] = "auto") -> None:
    """Simulated installation + local broker + agent + verifier, with a live table."""
    import asyncio

    from agent.commands.demo import run_demo

    if installation not in ("hybrid", "heatpump"):
        fail(f"--installation must be hybrid or heatpump, not {installation!r}", 2)
    if broker not in ("auto", "mosquitto", "embedded"):
        fail(f"--broker must be auto, mosquitto or embedded, not {broker!r}", 2)
    ok = asyncio.run(run_demo(seconds=seconds, speed=speed, interval=interval,
                              installation=installation,
                              broker_kind=broker))  # type: ignore[arg-type]
    raise typer.Exit(0 if ok else 1)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
