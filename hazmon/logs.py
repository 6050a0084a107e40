"""Logging set-up: one format for hazmon's own lines and the libraries' (asyncua, paho, aiohttp).

JSON lines when stderr is not a terminal, readable lines when it is. hazmon logs with
structlog; the libraries log with the standard library, whose records go through
structlog's `ProcessorFormatter` with the same renderer, so every line of the daemon's
and the simulator's stderr has the same shape (``event``, ``level``, ``timestamp``,
plus ``logger`` for a library line).

The libraries' own chatter (asyncua logs each node it adds and each request it
serves: 1,273 lines in 2 minutes of the simulator) is kept at WARNING. An expected
event a library reports with a traceback (the OPC UA peer closed the session or the
connection: a server shutting down) becomes one warning line naming the error,
without the traceback (`_ExpectedEvents`); a traceback is for a bug.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import structlog
from asyncua.ua.status_codes import get_name_and_doc

__all__ = ["LIBRARY_LOGGERS", "configure_logging"]

# libraries whose INFO lines are chatter; WARNING and above still show
LIBRARY_LOGGERS = ("asyncua", "paho", "aiohttp", "aiohttp.access", "aiohttp.server", "psycopg")

# OPC UA status codes that say the peer went away or closed the session (OPC 10000-4 §7.34 / -6)
_GONE_STATUS = (
    "BadSessionClosed",
    "BadSessionIdInvalid",
    "BadConnectionClosed",
    "BadSecureChannelClosed",
    "BadServerHalted",
    "BadShutdown",
    "BadCommunicationError",
    "BadNotConnected",
)


def _expected(e: BaseException) -> bool:
    """The peer went away: a connection error, a timeout, a cancel, or one of `_GONE_STATUS`."""
    if isinstance(e, ConnectionError | TimeoutError | asyncio.CancelledError | EOFError):
        return True
    code = getattr(e, "code", None)
    return (
        isinstance(code, int)
        and "asyncua" in type(e).__module__
        and get_name_and_doc(code)[0] in _GONE_STATUS
    )


class _ExpectedEvents(logging.Filter):
    """A library's traceback for an expected event -> one warning line naming the error."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or not record.name.startswith(LIBRARY_LOGGERS) or not _expected(exc):
            return True
        record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc}".rstrip(": ")
        record.args = None
        record.exc_info, record.exc_text = None, None
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def configure_logging(level: str = "info", json: bool | None = None, library_level: str = "warning") -> None:
    """Configure structlog and the stdlib root logger for the process (again: replaces the set-up).

    Args:
        level: hazmon's own level (and the root logger's).
        json: JSON lines; None: when stderr is not a terminal.
        library_level: the level of `LIBRARY_LOGGERS` (their INFO lines are chatter).
    """
    if json is None:
        json = not sys.stderr.isatty()
    lvl = getattr(logging, level.upper())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False) if json else structlog.dev.ConsoleRenderer()
    )
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name("hazmon")
    handler.addFilter(_ExpectedEvents())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.stdlib.add_log_level,
                timestamper,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for h in list(root.handlers):  # an earlier call's
        if h.name == "hazmon":
            root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(lvl)
    lib_lvl = max(lvl, getattr(logging, library_level.upper()))
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(lib_lvl)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
