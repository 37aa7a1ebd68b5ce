"""The ``flowbot`` command (and ``python -m bot``): imports the CLI with the cycle collector
off (:mod:`bot.startup`), then runs it. ``python -m bot.cli`` runs the same commands."""

from __future__ import annotations

from bot.startup import starting


def main() -> None:
    """Console-script entry point: :func:`bot.cli.main` after a collector-free import."""
    with starting():
        from bot import cli
    cli.main()


if __name__ == "__main__":
    main()
