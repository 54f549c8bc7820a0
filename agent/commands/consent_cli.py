"""``hpagent consent``: the resident's grants, given, revoked, listed, shown and audited.

Grants live in the audit log in the state directory (``consent.log``); the running daemon sees a
change before it makes or sends its next message (and a stopped one before it sends anything),
withdraws what was queued under a revoked grant and tells the recipient which messages those
were. Commands that write act as the owner of the state directory (when run as root they take
on that user), so the service can still extend the log they wrote to.
"""

from __future__ import annotations

import json
import os
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

from agent.consent.audit import LOG_NAME, AuditLog, AuditLogError, GrantState, reconcile
from agent.consent.grants import Grant, new_id
from agent.service.config import Config, local_time
from agent.service.defaults import failed
from agent.trust.audit import check_log
from agent.trust.keys import KeyFileError, load_private_key, load_public_key
from agent.trust.verify import printable
from drivers.timestamps import rfc3339


def act_as_owner(state_dir: Path) -> None:
    """Run as the owner of ``state_dir`` when started as root: files written stay the
    service's own."""
    if os.geteuid() != 0 or not state_dir.exists():
        return
    st = state_dir.stat()
    if st.st_uid == 0:
        return
    os.setgroups([])
    os.setgid(st.st_gid)
    os.setuid(st.st_uid)


def _log(config: Config) -> AuditLog:
    key = load_private_key(config.signing_key)
    return AuditLog(config.state_dir / LOG_NAME, key, config.device_id)


def _config_grants(config: Config, now: float) -> list[Grant]:
    return [g.grant(r.name, now) for r in config.recipients for g in r.grants]


def _when(text: str | None, default: float | None) -> float | None:
    """A date (local midnight) or an RFC 3339 time; ``default`` when not given."""
    if text is None:
        return default
    try:
        return local_time(date.fromisoformat(text))
    except ValueError:
        return local_time(datetime.fromisoformat(text.replace("Z", "+00:00")))


def _split(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def grant(config: Config, recipient: str, streams: str, fields: str, resolution: str,
          purpose: str, start: str | None, until: str | None, days: float | None,
          as_json: bool) -> int:
    names = [r.name for r in config.recipients]
    if recipient not in names:
        return failed(f"recipient {recipient!r} is not in the configuration (recipients: "
                      f"{', '.join(names) or 'none'}); add it with its broker first", 2)
    now = time.time()
    try:
        begin = _when(start, now)
        end = _when(until, None)
    except ValueError as exc:
        return failed(f"--from/--until: {exc} (use YYYY-MM-DD or an RFC 3339 time)", 2)
    assert begin is not None
    if days is not None:
        if end is not None:
            return failed("give --until or --days, not both", 2)
        end = begin + days * 86400
    try:
        g = Grant(new_id(), recipient, _split(streams), _split(fields), resolution, purpose,
                  begin, end, "cli")
    except ValueError as exc:
        return failed(f"the grant is not valid: {exc}", 2)
    act_as_owner(config.state_dir)
    try:
        audit = _log(config)
        reconcile(audit, _config_grants(config, now), now)
        audit.append("grant", now, grant=g.terms(), by="resident")
    except (AuditLogError, KeyFileError, OSError) as exc:
        return failed(str(exc))
    print(json.dumps(g.terms(), indent=2) if as_json else
          f"granted {g.id} to {recipient}: {', '.join(g.streams)}; {len(g.allowed)} fields; "
          f"{g.resolution}; {_span(g)}")
    return 0


def revoke(config: Config, grant_id: str, reason: str | None) -> int:
    act_as_owner(config.state_dir)
    now = time.time()
    try:
        audit = _log(config)
        reconcile(audit, _config_grants(config, now), now)
        state = audit.states().get(grant_id)
        if state is None:
            return failed(f"no grant {grant_id!r} (see 'hpagent consent list')", 2)
        if state.ended is not None:
            print(f"{grant_id} was already {state.ended} at {rfc3339(state.ended_at or 0)}")
            return 0
        body: dict[str, Any] = {"grant_id": grant_id, "by": "resident"}
        if reason:
            body["reason"] = reason
        audit.append("revoke", now, **body)
    except (AuditLogError, KeyFileError, OSError) as exc:
        return failed(str(exc))
    print(f"revoked {grant_id} ({state.grant.recipient}): the agent withdraws what was queued "
          "under it before it sends another message, and the recipient gets a signed notice")
    return 0


def _states(config: Config) -> tuple[dict[str, GrantState], list[Grant]]:
    """The log's grants, and the config's that the daemon has not applied yet."""
    key = load_private_key(config.signing_key)
    states = AuditLog(config.state_dir / LOG_NAME, key, config.device_id).states()
    pending = [g for g in _config_grants(config, time.time()) if g.id not in states]
    return states, pending


def _status(state: GrantState | None, g: Grant, now: float) -> str:
    if state is None:
        return "config, not yet applied"
    if state.ended is not None:
        return state.ended
    if g.start > now:
        return "from " + rfc3339(g.start)[:10]
    return "active"


def _span(g: Grant) -> str:
    until = "until revoked" if g.until is None else f"until {rfc3339(g.until)}"
    return f"from {rfc3339(g.start)} {until}"


def list_grants(config: Config, as_json: bool) -> int:
    try:
        states, pending = _states(config)
    except (AuditLogError, KeyFileError) as exc:
        return failed(str(exc))
    now = time.time()
    rows = [(s.grant, s) for s in states.values()] + [(g, None) for g in pending]
    if as_json:
        print(json.dumps([{**g.terms(), "state": _status(s, g, now)} for g, s in rows],
                         indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"grants of {config.device_id}", title_justify="left")
    for col in ("grant", "recipient", "streams", "fields", "resolution", "valid", "state",
                "purpose"):
        table.add_column(col, overflow="fold")
    for g, s in rows:
        table.add_row(g.id, g.recipient, ", ".join(g.streams), ", ".join(g.fields), g.resolution,
                      _span(g), _status(s, g, now), printable(g.purpose))
    Console().print(table)
    return 0


def show(config: Config, grant_id: str, as_json: bool) -> int:
    try:
        states, pending = _states(config)
        entries = check_log(_log(config).tokens(), load_public_key(config.signing_key)).entries
    except (AuditLogError, KeyFileError) as exc:
        return failed(str(exc))
    state = states.get(grant_id)
    g = state.grant if state is not None else next((p for p in pending if p.id == grant_id),
                                                   None)
    if g is None:
        return failed(f"no grant {grant_id!r} (see 'hpagent consent list')", 2)
    history = [e for e in entries if e.get("grant_id") == grant_id
               or (e.get("grant") or {}).get("id") == grant_id]
    out = {**g.terms(), "state": _status(state, g, time.time()),
           "history": [{k: e[k] for k in ("seq", "at", "action", "by", "reason") if k in e}
                       for e in history]}
    if as_json:
        print(json.dumps(out, indent=2))
        return 0
    for key in ("id", "recipient", "state", "purpose", "streams", "given_as", "fields",
                "resolution", "from", "until", "source"):
        value = out[key]
        text = ", ".join(value) if isinstance(value, list) else str(value)
        print(f"{key:<11} {printable(text)}")
    for e in out["history"]:
        print(f"{'history':<11} #{e['seq']} {e['at']} {e['action']} by {e.get('by', '?')}"
              f"{': ' + printable(e['reason']) if e.get('reason') else ''}")
    return 0


def audit(config: Config | None, export: Path | None, verify: Path | None, key: Path | None,
          as_json: bool) -> int:
    """Show the log and its check; export it (with the public key beside it); or check an
    exported log with the gateway's public key."""
    try:
        if verify is not None:
            if key is None:
                return failed("--verify needs --key (the gateway's public key, PEM or JWK)", 2)
            tokens = [t for t in verify.read_text(encoding="ascii").splitlines() if t]
            public = load_public_key(key)
        else:
            assert config is not None
            log = _log(config)
            tokens = log.tokens()
            public = load_public_key(config.signing_key)
    except (KeyFileError, OSError, UnicodeDecodeError) as exc:
        return failed(str(exc))
    check = check_log(tokens, public)
    if export is not None:
        from agent.trust.jws import public_jwk

        export.write_text("".join(t + "\n" for t in tokens), encoding="ascii")
        export.with_name(export.name + ".jwk").write_text(json.dumps(public_jwk(public)))
    if as_json:
        print(json.dumps({"ok": check.ok, "entries": check.entries, "problem": check.problem},
                         indent=2))
    else:
        for e in check.entries:
            subject = e.get("grant_id") or (e.get("grant") or {}).get("id", "")
            print(f"#{e['seq']:<4} {e['at']}  {e['action']:<7} {printable(str(subject)):<32} "
                  f"by {printable(str(e.get('by', '?')))}"
                  f"{'  ' + printable(str(e['reason'])) if e.get('reason') else ''}")
        verdict = "OK" if check.ok else f"FAILED: {printable(check.problem or '')}"
        print(f"{verdict}: {len(check.entries)} of {len(tokens)} entries verified")
        if export is not None:
            print(f"exported to {export} (public key: {export}.jwk)")
    return 0 if check.ok else 1
