"""The daemon's answer to ``hpagent status``: what it knows now, on a local Unix socket.

Read-only by construction: the daemon writes one JSON document to whoever connects and closes
the connection; it reads nothing from it. The socket is made mode 0600 (the service user; root
may ask too), in a directory only the service writes (``/run/hpagent``, systemd's
``RuntimeDirectory=``), and a client checks its owner and mode before it believes the answer.

A device's state comes from its last sample: ``ok`` (every reading good), ``degraded`` (some
not), ``down`` (none), ``waiting`` (no poll yet); each reading that is not good carries what
failed, naming the port, address or register.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import structlog

from agent.sample import Sample
from drivers.timestamps import rfc3339

log = structlog.get_logger("hpagent.status")


def device_state(sample: Sample | None) -> str:
    if sample is None:
        return "waiting"
    good = [r for r in sample.readings if r.good]
    if not sample.readings or len(good) == len(sample.readings):
        return "ok"
    return "degraded" if good else "down"


def device_report(describe: dict[str, object], interval: float, sample: Sample | None,
                  now: float) -> dict[str, Any]:
    """One device as the status says it: what it is, its state, its last values and faults."""
    out: dict[str, Any] = {**describe, "interval_s": interval, "state": device_state(sample)}
    if sample is not None:
        out["last_poll"] = rfc3339(sample.t)
        out["age_s"] = round(now - sample.t, 1)
        out["values"] = sample.values
        out["problems"] = {r.quantity: f"{r.quality.value}: {r.detail}" if r.detail
                           else r.quality.value for r in sample.readings if not r.good}
    return out


def summary(problems: dict[str, str]) -> str:
    """A device's problems in a line: the first in full, then how many more (a device that does
    not answer fails every register with the same words)."""
    if not problems:
        return ""
    quantity, problem = next(iter(problems.items()))
    more = len(problems) - 1
    return f"{quantity}: {problem}" + (f" (and {more} more quantities)" if more else "")


class StatusServer:
    """Serves ``report()`` as JSON on ``path`` to every connection."""

    def __init__(self, path: Path, report: Callable[[], dict[str, Any]]) -> None:
        self.path = path
        self.report = report
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Listen; a socket that cannot be made is logged, never fatal: status is a help."""
        try:
            if self.path.is_socket():
                self.path.unlink()  # left by a daemon that was killed
            old = os.umask(0o177)
            try:
                self._server = await asyncio.start_unix_server(self._answer, str(self.path))
            finally:
                os.umask(old)
        except OSError as exc:
            log.warning("status.unavailable", path=str(self.path), error=str(exc))

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(orjson.dumps(self.report()) + b"\n")
            await writer.drain()
        except (ConnectionError, OSError):
            pass  # the client went away: its loss
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


class StatusError(Exception):
    """No trustworthy answer on the status socket; the message says why and what to do."""


def ask(path: Path, owner: int | None, timeout: float = 5.0) -> dict[str, Any]:
    """The running daemon's status, from a socket that ``owner`` (uid) owns and only it may
    write to; :class:`StatusError` otherwise."""
    import socket

    try:
        st = path.lstat()
    except FileNotFoundError:
        raise StatusError(f"no daemon answers at {path}: is it running? "
                          "(systemctl status hpagent)") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise StatusError(f"{path} is not a socket")
    if owner is not None and st.st_uid not in (owner, 0):
        raise StatusError(f"{path} belongs to uid {st.st_uid}, not to the service's user "
                          f"(uid {owner}, the state directory's owner): not asking it")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH | stat.S_IRWXO):
        raise StatusError(f"{path} is open to others (mode {stat.S_IMODE(st.st_mode):o}): "
                          "not asking it")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            chunks = []
            while chunk := sock.recv(1 << 16):
                chunks.append(chunk)
        except (ConnectionRefusedError, FileNotFoundError):
            raise StatusError(f"no daemon answers at {path}: is it running? "
                              "(systemctl status hpagent)") from None
        except OSError as exc:
            raise StatusError(f"cannot ask {path}: {exc.strerror or exc}") from None
    try:
        answer: dict[str, Any] = orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError:
        raise StatusError(f"{path} answered with something that is not the status") from None
    return answer
