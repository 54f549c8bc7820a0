"""Builds the configured devices' drivers; devices on one physical link share its client."""

from __future__ import annotations

from pathlib import Path

from agent.config import Config, ModbusDeviceConfig
from agent.sampler import Schedule


def build_schedules(config: Config) -> list[Schedule]:
    from drivers.links import Link, SerialLink, TcpLink
    from drivers.modbus import ModbusBus, ModbusDevice
    from drivers.profile import load_profile

    buses: dict[Link, ModbusBus] = {}
    schedules = []
    for dev in config.devices:
        if isinstance(dev, ModbusDeviceConfig):
            profile = load_profile(dev.profile, tuple(Path(p) for p in config.profiles_dirs))
            link: Link
            if dev.tcp is not None:
                link = TcpLink(dev.tcp.host, dev.tcp.port)
            else:
                assert dev.serial is not None
                factory = profile.serial
                link = SerialLink(
                    dev.serial.port,
                    baudrate=dev.serial.baudrate or (factory.baudrate if factory else 9600),
                    parity=dev.serial.parity or (factory.parity if factory else "N"),
                    stopbits=dev.serial.stopbits or (factory.stopbits if factory else 1))
            bus = buses.get(link)
            if bus is None:
                bus = buses[link] = ModbusBus(link, timeout=dev.timeout, retries=dev.retries)
            unit = dev.unit if dev.unit is not None else profile.unit
            driver = ModbusDevice(dev.name, bus, unit, profile, max_gap=dev.max_gap)
            schedules.append(Schedule(driver, dev.interval))
    return schedules
