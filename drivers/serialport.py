"""Byte streams from serial ports and TCP sockets, for the stream drivers (P1, OTGW, M-Bus).

The only module that imports pyserial. A serial port is opened non-blocking and watched by the
event loop (no reader thread, no polling); a TCP link (P1 dongles, ser2net, network OTGWs) is an
asyncio stream. Either way a driver sees the same :class:`ByteStream`, and a port that vanishes
(a USB cable pulled) or a peer that hangs up raises :class:`StreamClosed`, after which the driver
opens the link again.
"""

from __future__ import annotations

import asyncio
import contextlib
import termios

import serial

from drivers.links import Link, SerialLink, TcpLink


class StreamClosed(ConnectionError):
    """The port disappeared, the peer hung up, or the stream was closed."""


class SerialStream:
    def __init__(self, link: SerialLink, port: serial.Serial) -> None:
        self.link = link
        self._port = port
        self._loop = asyncio.get_running_loop()

    @classmethod
    def open(cls, link: SerialLink) -> SerialStream:
        """Open ``link``; OSError naming the port if it is missing, busy or refuses settings."""
        try:
            port = serial.Serial(link.port, baudrate=link.baudrate, bytesize=link.bytesize,
                                 parity=link.parity, stopbits=link.stopbits, timeout=0,
                                 write_timeout=0, exclusive=True)
        except (serial.SerialException, ValueError, OSError, termios.error) as exc:
            raise OSError(f"cannot open {link}: {exc}") from None
        return cls(link, port)

    def set_line(self, baudrate: int, bytesize: int, parity: str, stopbits: int = 1) -> None:
        """Change the line settings of the open port (used to detect a meter's settings).

        If the port refuses them, its previous settings are restored, so that a later change
        starts from a consistent state (pyserial would otherwise keep the refused value).
        """
        before = self._port.get_settings()
        try:
            self._port.apply_settings({"baudrate": baudrate, "bytesize": bytesize,
                                       "parity": parity, "stopbits": stopbits})
        except (serial.SerialException, ValueError, OSError, termios.error) as exc:
            with contextlib.suppress(serial.SerialException, ValueError, OSError, termios.error):
                self._port.apply_settings(before)
            raise OSError(f"{self.link.port} refuses {baudrate} {bytesize}{parity}{stopbits}: "
                          f"{exc}") from None
        self.link = SerialLink(self.link.port, baudrate, parity,  # type: ignore[arg-type]
                               stopbits, bytesize)

    async def read(self, max_bytes: int = 4096) -> bytes:
        while True:
            try:
                data = self._port.read(max_bytes)  # timeout=0: what is there, without waiting
            except (serial.SerialException, OSError, TypeError) as exc:
                raise StreamClosed(f"{self.link.port}: {exc}") from None
            if data:
                return bytes(data)
            await self._readable()

    async def _readable(self) -> None:
        ready: asyncio.Future[None] = self._loop.create_future()
        fd = self._port.fileno()
        self._loop.add_reader(fd, _wake, ready)
        try:
            await ready
        finally:
            self._loop.remove_reader(fd)

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = self._port.write(view) or 0
            except serial.SerialTimeoutException:
                n = 0
            except (serial.SerialException, OSError) as exc:
                raise StreamClosed(f"{self.link.port}: {exc}") from None
            view = view[n:]
            if view:
                await asyncio.sleep(0.005)  # kernel buffer full: let the line drain

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self._port.close()


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


class TcpStream:
    def __init__(self, link: TcpLink, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.link = link
        self._reader, self._writer = reader, writer

    @classmethod
    async def open(cls, link: TcpLink, timeout: float = 10.0) -> TcpStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(link.host, link.port)
        except TimeoutError:
            raise OSError(f"cannot connect to {link}: no answer within {timeout:g} s") from None
        except OSError as exc:
            raise OSError(f"cannot connect to {link}: {exc.strerror or exc}") from None
        return cls(link, reader, writer)

    async def read(self, max_bytes: int = 4096) -> bytes:
        try:
            data = await self._reader.read(max_bytes)
        except OSError as exc:
            raise StreamClosed(f"{self.link}: {exc}") from None
        if not data:
            raise StreamClosed(f"{self.link}: closed by the peer")
        return data

    async def write(self, data: bytes) -> None:
        try:
            self._writer.write(data)
            await self._writer.drain()
        except OSError as exc:
            raise StreamClosed(f"{self.link}: {exc}") from None

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


ByteStream = SerialStream | TcpStream  # what the stream drivers read and write


async def open_stream(link: Link, timeout: float = 10.0) -> ByteStream:
    """Open a serial port or a TCP connection; OSError names the link when that fails."""
    if isinstance(link, TcpLink):
        return await TcpStream.open(link, timeout)
    return SerialStream.open(link)
