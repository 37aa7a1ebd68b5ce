"""Logging for the bot: readable on a terminal (rich), and scrubbed of every secret value."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from rich.console import Console
from rich.logging import RichHandler

__all__ = ["SecretScrubber", "setup_logging"]


class SecretScrubber(logging.Filter):
    """Replaces any configured secret (API key, token, webhook URL, password) in a record's
    final message with ``***``: a second line of defence behind never logging them."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        scrubbed = message
        for secret in self._secrets:
            scrubbed = scrubbed.replace(secret, "***")
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


def setup_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """Log to stderr through rich, at ``level``; quiet the HTTP libraries' per-request lines."""
    # RichHandler's default console writes to stdout; logs belong on stderr (stdout carries
    # command output, e.g. the file paths `flowbot digest` prints).
    handler = RichHandler(
        console=Console(stderr=True), show_path=False, rich_tracebacks=False, markup=False
    )
    handler.addFilter(SecretScrubber(secrets))
    logging.basicConfig(
        level=level, format="%(message)s", datefmt="%H:%M:%S", handlers=[handler], force=True
    )
    for noisy in ("httpx", "httpcore", "apscheduler.executors", "slack_sdk", "aiosmtplib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
