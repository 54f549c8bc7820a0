"""sd_notify: tell systemd we are ready, how we are, alive (watchdog) and stopping.

The protocol is a datagram of ``KEY=value`` lines to the AF_UNIX socket named in
``NOTIFY_SOCKET`` (sd_notify(3)); outside systemd that variable is unset and nothing is sent.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from typing import Final

STATUS_EVERY: Final = 30.0  # seconds between status updates when there is no watchdog


def notify(state: str) -> None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(state.encode())


def watchdog_period() -> float | None:
    """systemd's watchdog period in seconds, if it watches this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec or os.environ.get("WATCHDOG_PID", str(os.getpid())) != str(os.getpid()):
        return None
    return int(usec) / 1e6


class KeepAlive:
    """From the event loop (so a hung loop is seen): WATCHDOG=1 at half the watchdog period,
    and STATUS= whenever ``status()`` has changed. Does nothing outside systemd."""

    def __init__(self, loop: asyncio.AbstractEventLoop, status: Callable[[], str]) -> None:
        self._loop = loop
        self._status = status
        self._said = ""
        self._watchdog = watchdog_period()
        self._every = self._watchdog / 2 if self._watchdog else STATUS_EVERY
        self._timer: asyncio.Handle | None = None
        if os.environ.get("NOTIFY_SOCKET"):
            self._timer = loop.call_soon(self._tick)

    def _tick(self) -> None:
        lines = ["WATCHDOG=1"] if self._watchdog else []
        status = self._status()
        if status != self._said:
            lines.append(f"STATUS={status}")
            self._said = status
        if lines:
            notify("\n".join(lines))
        self._timer = self._loop.call_later(self._every, self._tick)

    def stopping(self, status: str) -> None:
        """STOPPING=1 with a last status line; the watchdog goes on until :meth:`stop`."""
        self._status = lambda: status
        self._said = status
        notify(f"STOPPING=1\nSTATUS={status}")

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
