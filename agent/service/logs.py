"""Structured logging: JSON lines under systemd (journald keeps the fields), readable on a TTY.

Events are named ``subject.transition`` (``source.unavailable``, ``broker.connected``) and carry
their facts as fields. Libraries that log through the standard library (pymodbus) go through the
same renderer; pymodbus's per-poll error chatter is silenced below debug level because our
drivers log each fault once, when it starts and when it ends.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Literal

import structlog

Format = Literal["auto", "json", "console"]


def use_json(fmt: Format) -> bool:
    if fmt == "auto":
        return "JOURNAL_STREAM" in os.environ or not sys.stderr.isatty()
    return fmt == "json"


def configure(level: str = "info", fmt: Format = "auto") -> None:
    numeric = logging.getLevelNamesMapping()[level.upper()]
    as_json = use_json(fmt)
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor
    if as_json:
        shared.append(structlog.processors.dict_tracebacks)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared]))
    root = logging.getLogger()
    root.handlers[:] = [handler]  # also replaces handlers a library installed on import
    root.setLevel(numeric)
    logging.getLogger("pymodbus").setLevel(
        logging.DEBUG if numeric <= logging.DEBUG else logging.CRITICAL)
