"""``hpagent run`` as systemd starts it: the notify protocol, the watchdog, and no W+X memory.

The test is systemd's side of sd_notify(3): an AF_UNIX datagram socket named in
``NOTIFY_SOCKET``, with ``WATCHDOG_USEC`` set. The unit sets ``MemoryDenyWriteExecute=yes``;
the kernel's own W^X (prctl PR_SET_MDWE, Linux 6.3+) refuses the same mappings, so the second
case runs the whole daemon (Modbus, SQLite, signing, MQTT) under it.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.trust.keys import load_private_key
from hil.broker import Mosquitto
from hil.heatpump_server import SimulatedHeatPump
from tests.support import Recipient
from tests.test_daemon import set_up

PR_SET_MDWE, PR_GET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 66, 1

# Python code that turns on the kernel's W^X for itself, then is `hpagent`.
UNDER_WX = f"""\
import ctypes, runpy, sys
if ctypes.CDLL(None, use_errno=True).prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0):
    sys.exit("prctl(PR_SET_MDWE) failed")
sys.argv[0] = "hpagent"
runpy.run_module("agent", run_name="__main__", alter_sys=True)
"""


def kernel_has_mdwe() -> bool:
    return int(ctypes.CDLL(None, use_errno=True).prctl(PR_GET_MDWE, 0, 0, 0, 0)) >= 0


class NotifySocket:
    """systemd's end of sd_notify: every datagram, split into its KEY=value lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[str] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.setblocking(False)

    async def wait_until(self, done: Callable[[list[str]], bool], timeout: float = 60.0) -> None:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            while not done(self.lines):
                self.lines += (await loop.sock_recv(self._sock, 4096)).decode().splitlines()

    def close(self) -> None:
        self._sock.close()


def told(lines: list[str]) -> bool:
    """Ready, a status line, and the watchdog pinged more than once."""
    return ("READY=1" in lines and lines.count("WATCHDOG=1") >= 2
            and any(line.startswith("STATUS=polling 1 device") for line in lines))


@pytest.mark.parametrize("wx_denied", [False, True], ids=["plain", "kernel-wx-denied"])
async def test_ready_status_watchdog_and_stopping(tmp_path: Path, mosquitto: Mosquitto,
                                                  heatpump: SimulatedHeatPump,
                                                  wx_denied: bool) -> None:
    if wx_denied and not kernel_has_mdwe():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+): W^X cannot be tried here")
    config, state = set_up(tmp_path, heatpump.port, mosquitto.port)
    notify = NotifySocket(tmp_path / "notify")
    recipient = Recipient(mosquitto.port, load_private_key(state / "gateway.key").public_key(),
                          topic="hpagent/v1/gw-daemon/local/#")
    await recipient.start()
    program = ["-c", UNDER_WX] if wx_denied else ["-m", "agent"]
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000"}
    log = tmp_path / "daemon.log"
    with log.open("wb") as stderr:
        daemon = await asyncio.create_subprocess_exec(
            sys.executable, *program, "run", "--config", str(config), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=stderr)
    try:
        await notify.wait_until(told)
        await recipient.wait_for(2, timeout=60)  # polled, stored, signed, published, verified
        daemon.send_signal(signal.SIGTERM)
        await notify.wait_until(lambda lines: "STOPPING=1" in lines)
        code = await daemon.wait()
    finally:
        if daemon.returncode is None:
            daemon.kill()
            await daemon.wait()
        await recipient.stop()
        notify.close()
    assert code == 0, log.read_text()
    stopping = notify.lines.index("STOPPING=1")
    assert notify.lines.index("READY=1") < stopping
    assert notify.lines[stopping + 1].startswith("STATUS=stopping")
    assert not any(line.startswith("STATUS=polling") for line in notify.lines[stopping:])
