"""Progress of long CLI work on stderr: one line rewritten in place on a terminal, else quiet."""

from __future__ import annotations

import sys


class Progress:
    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._shown = False

    def update(self, text: str) -> None:
        if self.tty:
            print(f"\r{text}\x1b[K", end="", file=sys.stderr, flush=True)
            self._shown = True

    def done(self, text: str) -> None:
        if self._shown:
            print("\r\x1b[K", end="", file=sys.stderr)
        print(text, file=sys.stderr, flush=True)
