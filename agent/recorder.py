"""``hpagent record``: the configured devices' samples written to a recording, for N seconds.

Uses the daemon's own drivers and sampler; nothing is stored or published. A recording is the
input of ``hpagent report --recording`` and ``hpagent replay``, and a way to bring a field
installation's data to the bench.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from agent.clock import SystemClock
from agent.config import Config
from agent.devices import build_schedules
from agent.recording import Writer, from_sample
from agent.sample import Sample
from agent.sampler import Sampler


async def record(config: Config, path: Path, seconds: float) -> int:
    writer = Writer(path)
    tty = sys.stderr.isatty()

    def deliver(sample: Sample) -> None:
        writer.write(from_sample(sample))
        if tty:
            print(f"\r{writer.lines} samples written to {path}\x1b[K", end="", file=sys.stderr,
                  flush=True)

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
    print(f"{'' if not tty else chr(10)}{writer.lines} samples written to {path}", file=sys.stderr)
    return 0 if writer.lines else 1
