"""Shared fixtures: real peers on loopback (pymodbus servers, mosquitto) and log capture."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog

from hil.broker import Mosquitto, free_port, mosquitto_binary
from hil.heatpump_server import SimulatedHeatPump
from tests.support import LogEvents


@pytest.fixture
def logs() -> Iterator[LogEvents]:
    """Structured log events emitted during the test, as dicts (every level)."""
    structlog.reset_defaults()  # an earlier configure() may have filtered levels or cached loggers
    with structlog.testing.capture_logs() as captured:
        yield captured


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
async def mosquitto(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    """A plain mosquitto on a free loopback port, anonymous access."""
    if mosquitto_binary() is None:
        pytest.fail("mosquitto is not installed: run 'make test', which installs it")
    broker = Mosquitto(tmp_path / "mosquitto")
    await broker.start()
    yield broker
    await broker.stop()


@pytest.fixture
async def heatpump(port: int) -> AsyncIterator[SimulatedHeatPump]:
    """The simulated heat pump (Modbus TCP) on ``port``, running for the whole test."""
    hp = SimulatedHeatPump(port=port, speed=60, tick=0.25)
    await hp.start()
    yield hp
    await hp.stop()
