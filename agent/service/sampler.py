"""Polls every device at its own interval and hands each poll on as a :class:`Sample`.

One asyncio task per device. Polls are aligned to multiples of the interval on the wall clock
(every 10 s at :00, :10, ...), so samples of different devices line up; a poll that overruns
skips the ticks it missed rather than bursting to catch up. Between polls nothing runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from agent.sample import ClockState, Sample
from drivers.reading import Driver, EventSource

log = structlog.get_logger("hpagent.sampler")


class Clock(Protocol):
    boot_id: str

    def now(self) -> float: ...

    def uptime(self) -> float: ...

    def state(self) -> ClockState: ...


@dataclass(frozen=True)
class Schedule:
    driver: Driver
    interval: float


class Sampler:
    def __init__(self, schedules: Sequence[Schedule], clock: Clock,
                 deliver: Callable[[Sample], object]) -> None:
        self.schedules = list(schedules)
        self.clock = clock
        self.deliver = deliver
        self.polls = 0
        self._stopping = False
        self._waiting: set[asyncio.Task[object]] = set()  # device loops asleep between polls
        self._clock_state: ClockState | None = None
        self._crashed: set[str] = set()

    async def run(self) -> None:
        """Poll until :meth:`stop`; a poll in progress is finished and delivered."""
        async with asyncio.TaskGroup() as tasks:
            for schedule in self.schedules:
                tasks.create_task(self._poll_forever(schedule), name=schedule.driver.name)

    def stop(self) -> None:
        """End every device's loop: at once if it is waiting, after its poll if it is polling."""
        self._stopping = True
        for task in self._waiting:
            task.cancel()

    async def _poll_forever(self, schedule: Schedule) -> None:
        driver = schedule.driver
        me = asyncio.current_task()
        assert me is not None
        await driver.open()
        try:
            while not self._stopping:
                delay = schedule.interval - (self.clock.now() % schedule.interval)
                self._waiting.add(me)
                try:
                    await asyncio.sleep(delay)
                except asyncio.CancelledError:
                    if self._stopping:
                        break
                    raise
                finally:
                    self._waiting.discard(me)
                if not self._stopping:
                    await self.poll_once(driver)
        finally:
            await driver.close()

    async def poll_once(self, driver: Driver) -> Sample | None:
        t = self.clock.now()
        uptime = self.clock.uptime()
        try:
            readings = await driver.read()
            events = driver.take_events() if isinstance(driver, EventSource) else []
        except Exception:  # a driver bug must not stop the other devices: log it once
            if driver.name not in self._crashed:
                log.exception("driver.crashed", source=driver.name)
                self._crashed.add(driver.name)
            return None
        self._crashed.discard(driver.name)
        state = self.clock.state()
        if state is not self._clock_state:
            log.info("clock.state", state=state.value)
            self._clock_state = state
        sample = Sample(driver.name, t, state, tuple(readings), self.clock.boot_id, uptime,
                        tuple(events))
        self.polls += 1
        self.deliver(sample)
        return sample
