"""Serial lines without hardware: pseudo-terminals, for simulated meters and gateways.

:class:`VirtualSerialPort` is one pty: the agent opens its device node (``path``, a stable
symlink like ``/dev/serial/by-id/...``) and the simulated device reads and writes the other
side. ``unplug()`` and ``plug()`` act out a USB cable pulled and plugged back: the node vanishes,
then reappears at the same path. :class:`PtyPair` links two device nodes, for two programs that
both expect to open a serial port (a pymodbus RTU server and a client). Both are driven by the
event loop; no threads.

Note (seen on Linux 6.x): a pty refuses parity settings (EINVAL), so tests run 8N1 and keep the
real line settings in the config.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import tty
from pathlib import Path

from drivers.tasks import cancel


class VirtualSerialPort:
    def __init__(self, path: Path | None = None) -> None:
        self.link_path = path
        self._master = -1
        self._slave = -1
        self._pending = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.plug()

    @property
    def path(self) -> str:
        """The device node the agent opens."""
        return str(self.link_path) if self.link_path is not None else os.ttyname(self._slave)

    @property
    def plugged(self) -> bool:
        return self._master >= 0

    def plug(self) -> None:
        """Create the pty (again) and point ``path`` at it."""
        if self.plugged:
            return
        self._master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        tty.setraw(self._master)
        os.set_blocking(self._master, False)
        if self.link_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link_path.unlink()
            self.link_path.symlink_to(os.ttyname(self._slave))

    def unplug(self) -> None:
        """The cable is pulled: the node disappears and an open port gets an I/O error."""
        if not self.plugged:
            return
        if self.link_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link_path.unlink()
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1
        self._pending.clear()

    def write(self, data: bytes) -> None:
        """Bytes from the device to the agent (dropped while unplugged, as on a real line)."""
        if not self.plugged:
            return
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._master, view)
            except BlockingIOError:
                return  # the agent is not reading and the pty buffer is full: bytes are lost
            except OSError:
                return
            view = view[n:]

    async def read(self) -> bytes:
        """Bytes from the agent to the device, as soon as any arrive."""
        loop = asyncio.get_running_loop()
        while True:
            if not self.plugged:
                await asyncio.sleep(0.05)
                continue
            try:
                data = os.read(self._master, 4096)
            except BlockingIOError:
                data = b""
            except OSError:
                data = b""
                await asyncio.sleep(0.05)
            if data:
                return data
            ready: asyncio.Future[None] = loop.create_future()
            fd = self._master
            loop.add_reader(fd, _wake, ready)
            try:
                await asyncio.wait_for(ready, 0.5)  # re-check: the port may be unplugged meanwhile
            except TimeoutError:
                pass
            finally:
                with contextlib.suppress(ValueError, OSError):
                    loop.remove_reader(fd)

    def close(self) -> None:
        self.unplug()


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


class PtyPair:
    """Two device nodes joined back to back: what one side writes, the other reads."""

    def __init__(self) -> None:
        self.a = VirtualSerialPort()
        self.b = VirtualSerialPort()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def port_a(self) -> str:
        return self.a.path

    @property
    def port_b(self) -> str:
        return self.b.path

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._pump(self.a, self.b)),
                       asyncio.create_task(self._pump(self.b, self.a))]

    @staticmethod
    async def _pump(src: VirtualSerialPort, dst: VirtualSerialPort) -> None:
        while True:
            dst.write(await src.read())

    async def stop(self) -> None:
        await cancel(*self._tasks)
        self.a.close()
        self.b.close()
