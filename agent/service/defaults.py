"""Paths, exit codes and the error line shared by the CLI and the configuration (import-light)."""

import sys
from pathlib import Path
from typing import Final

DEFAULT_CONFIG: Final = Path("/etc/hpagent/hpagent.yaml")
DEFAULT_STATE_DIR: Final = Path("/var/lib/hpagent")
EX_CONFIG: Final = 78  # sysexits.h: configuration error


def failed(message: str, code: int = 1, command: str = "hpagent") -> int:
    """Say what went wrong on stderr, as ``hpagent: ...``; returns the exit code."""
    print(f"{command}: {message}", file=sys.stderr)
    return code
