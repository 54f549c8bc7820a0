"""Where a device is: a TCP endpoint or a serial line. Shared by every driver; no I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class TcpLink:
    host: str
    port: int

    def __str__(self) -> str:
        return f"tcp {self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class SerialLink:
    port: str
    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: int = 1
    bytesize: int = 8

    def __str__(self) -> str:
        return f"serial {self.port} {self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"


Link = TcpLink | SerialLink


def parse_tcp(text: str) -> TcpLink:
    """``HOST:PORT`` (``[v6addr]:PORT`` for IPv6) -> TcpLink; ValueError names what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return TcpLink(host.strip("[]"), int(port))
