"""Paths and exit codes shared by the CLI and the configuration (kept import-light)."""

from pathlib import Path
from typing import Final

DEFAULT_CONFIG: Final = Path("/etc/hpagent/hpagent.yaml")
DEFAULT_STATE_DIR: Final = Path("/var/lib/hpagent")
EX_CONFIG: Final = 78  # sysexits.h: configuration error
