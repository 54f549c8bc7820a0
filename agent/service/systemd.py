"""sd_notify: tell systemd we are ready, alive (watchdog) and stopping. No-op outside systemd."""

from __future__ import annotations

import asyncio
import os
import socket


def notify(state: str) -> None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(state.encode())


def start_watchdog(loop: asyncio.AbstractEventLoop) -> None:
    """Ping systemd's watchdog at half its period, from the event loop (so a hang is seen)."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec or os.environ.get("WATCHDOG_PID", str(os.getpid())) != str(os.getpid()):
        return
    period = int(usec) / 2e6

    def ping() -> None:
        notify("WATCHDOG=1")
        loop.call_later(period, ping)

    loop.call_later(period, ping)
