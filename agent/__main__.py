"""``python -m agent`` is ``hpagent``."""

from agent.cli import main

main()
