"""``python -m agent`` is ``hpagent``."""

from agent.commands.cli import main

main()
