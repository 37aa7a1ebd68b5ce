"""Logging for the bot: rich on a terminal, one plain line per record otherwise, or one JSON
object per line for log collectors; every secret value scrubbed, whatever the format."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal, TextIO

from rich.console import Console
from rich.logging import RichHandler

__all__ = ["LOG_FORMATS", "JsonFormatter", "PlainFormatter", "SecretScrubber", "setup_logging"]

LogFormat = Literal["auto", "rich", "plain", "json"]
LOG_FORMATS: tuple[str, ...] = ("auto", "rich", "plain", "json")
"""Values of ``--log-format``; ``auto`` = ``rich`` when stderr is a terminal, else ``plain``."""

# Libraries whose INFO lines are per request or per job ("Adding job tentatively…"): shown
# only from WARNING up, unless the whole log runs at DEBUG.
_NOISY = ("httpx", "httpcore", "apscheduler", "slack_sdk", "aiosmtplib")


class SecretScrubber(logging.Filter):
    """Replaces any configured secret (API key, token, webhook URL, password) in a record's
    final message with ``***``: a second line of defence behind never logging them."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if len(s) >= 4]

    def scrub(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        scrubbed = self.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


class PlainFormatter(logging.Formatter):
    """``2026-11-27T14:31:05Z WARNING flowbot.engine: message``: UTC, one line per record
    (line breaks in the message or traceback are written as ``\\n``), secrets scrubbed."""

    def __init__(self, scrubber: SecretScrubber) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._scrubber = scrubber

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc(record)

    def format(self, record: logging.LogRecord) -> str:
        return self._scrubber.scrub(super().format(record)).replace("\n", "\\n")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``{"ts": "2026-11-27T14:31:05.123Z", "level": "WARNING",
    "logger": "flowbot.engine", "message": "...", "exc": "Traceback..."}`` (``exc`` only when
    the record carries an exception); secrets scrubbed."""

    def __init__(self, scrubber: SecretScrubber) -> None:
        super().__init__()
        self._scrubber = scrubber

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": _utc(record, millis=True),
            "level": record.levelname,
            "logger": record.name,
            "message": self._scrubber.scrub(record.getMessage()),
        }
        if record.exc_info:
            out["exc"] = self._scrubber.scrub(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


def _utc(record: logging.LogRecord, *, millis: bool = False) -> str:
    when = datetime.fromtimestamp(record.created, UTC)
    spec = "milliseconds" if millis else "seconds"
    return when.isoformat(timespec=spec).replace("+00:00", "Z")


def setup_logging(
    level: str = "INFO",
    secrets: Iterable[str] = (),
    log_format: str = "auto",
    stream: TextIO | None = None,
) -> None:
    """Log to ``stream`` (stderr) at ``level`` in ``log_format`` (see :data:`LOG_FORMATS`).

    The HTTP, Slack, SMTP and APScheduler libraries log from WARNING up unless ``level`` is
    ``DEBUG``. Raises ``ValueError`` for an unknown format or level.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}; use {', '.join(LOG_FORMATS)}")
    level = level.upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ValueError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING or ERROR")
    stream = stream or sys.stderr
    if log_format == "auto":
        log_format = "rich" if stream.isatty() else "plain"
    scrubber = SecretScrubber(secrets)
    handler: logging.Handler
    if log_format == "rich":
        # Logs belong on stderr (stdout carries command output, e.g. the paths `digest` prints).
        handler = RichHandler(
            console=Console(file=stream), show_path=False, rich_tracebacks=False, markup=False
        )
        handler.setFormatter(logging.Formatter("%(message)s", datefmt="%H:%M:%S"))
    else:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(
            JsonFormatter(scrubber) if log_format == "json" else PlainFormatter(scrubber)
        )
    handler.addFilter(scrubber)
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
