"""Builds the configured devices' drivers; devices on one physical link share its client.

Each driver family is imported only when a device of that family is configured, so a gateway
without a P1 meter never loads dsmr-parser.
"""

from __future__ import annotations

from pathlib import Path

from agent.service.config import (
    Config,
    MbusDeviceConfig,
    ModbusDeviceConfig,
    OtgwDeviceConfig,
    P1DeviceConfig,
)
from agent.service.sampler import Schedule
from drivers.links import Link, SerialLink, TcpLink
from drivers.reading import Driver


def build_schedules(config: Config) -> list[Schedule]:
    schedules = []
    buses: dict[Link, object] = {}  # one client per physical link, shared by its devices
    for dev in config.devices:
        driver: Driver
        if isinstance(dev, P1DeviceConfig):
            driver = _p1(dev)
        elif isinstance(dev, OtgwDeviceConfig):
            driver = _otgw(dev)
        elif isinstance(dev, MbusDeviceConfig):
            driver = _mbus(dev, buses)
        else:
            driver = _modbus(dev, config, buses)
        schedules.append(Schedule(driver, dev.interval))
    return schedules


def _otgw(dev: OtgwDeviceConfig) -> Driver:
    from drivers.otgw import OtgwMonitor

    link: Link
    if dev.tcp is not None:
        link = TcpLink(dev.tcp.host, dev.tcp.port)
    else:
        assert dev.serial is not None
        link = SerialLink(dev.serial.port, 9600)
    return OtgwMonitor(dev.name, link, allow_commands=dev.allow_commands,
                       alternatives=dev.alternatives, silence=dev.silence)


def _mbus(dev: MbusDeviceConfig, buses: dict[Link, object]) -> Driver:
    from drivers.mbus import MbusMaster, MbusMeter

    link: Link
    if dev.tcp is not None:
        link = TcpLink(dev.tcp.host, dev.tcp.port)
    else:
        assert dev.serial is not None
        link = SerialLink(dev.serial.port, dev.serial.baudrate, dev.serial.parity)
    master = buses.get(link)
    if not isinstance(master, MbusMaster):
        master = buses[link] = MbusMaster(link, timeout=dev.timeout, retries=dev.retries)
    return MbusMeter(dev.name, link, address=dev.address, secondary=dev.secondary,
                     timeout=dev.timeout, retries=dev.retries, master=master)


def _p1(dev: P1DeviceConfig) -> Driver:
    from drivers.p1 import P1Meter

    if dev.tcp is not None:
        return P1Meter(dev.name, TcpLink(dev.tcp.host, dev.tcp.port), spec=dev.spec,
                       silence=dev.silence)
    assert dev.serial is not None
    s = dev.serial
    line = (s.baudrate, s.bytesize, s.parity) if s.baudrate and s.bytesize and s.parity else None
    return P1Meter(dev.name, SerialLink(s.port), spec=dev.spec, line=line, silence=dev.silence)


def _modbus(dev: ModbusDeviceConfig, config: Config, buses: dict[Link, object]) -> Driver:
    from drivers.modbus import ModbusBus, ModbusDevice, rtu_link
    from drivers.profile import load_profile

    profile = load_profile(dev.profile, tuple(Path(p) for p in config.profiles_dirs))
    link: Link
    if dev.tcp is not None:
        link = TcpLink(dev.tcp.host, dev.tcp.port)
    else:
        assert dev.serial is not None
        link = rtu_link(dev.serial.port, profile, dev.serial.baudrate, dev.serial.parity,
                        dev.serial.stopbits)
    bus = buses.get(link)
    if not isinstance(bus, ModbusBus):
        bus = buses[link] = ModbusBus(link, timeout=dev.timeout, retries=dev.retries)
    unit = dev.unit if dev.unit is not None else profile.unit
    return ModbusDevice(dev.name, bus, unit, profile, max_gap=dev.max_gap)
