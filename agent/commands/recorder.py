"""``hpagent record``: the configured devices' samples written to a recording, for N seconds.

Uses the daemon's own drivers and sampler; nothing is stored or published. A recording is the
input of ``hpagent report --recording`` and ``hpagent replay``, and a way to bring a field
installation's data to the bench.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent.commands.progress import Progress
from agent.sample import Sample
from agent.service.clock import SystemClock
from agent.service.config import Config
from agent.service.devices import build_schedules
from agent.service.sampler import Sampler
from drivers.recording import Writer


async def record(config: Config, path: Path, seconds: float) -> int:
    writer = Writer(path)
    progress = Progress()

    def deliver(sample: Sample) -> None:
        writer.write(sample.record())
        progress.update(f"{writer.lines} samples written to {path}")

    sampler = Sampler(build_schedules(config), SystemClock(), deliver)
    running = asyncio.create_task(sampler.run())
    try:
        await asyncio.wait_for(asyncio.shield(running), seconds)
    except TimeoutError:
        pass
    finally:
        sampler.stop()
        await running
        writer.close()
    progress.done(f"{writer.lines} samples written to {path}")
    return 0 if writer.lines else 1
