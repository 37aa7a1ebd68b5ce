"""Logs a container or a terminal can read, and the CLI's small options (--version, check)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.logs import setup_logging

ROOT = Path(__file__).resolve().parents[1]
SECRET = "xoxb-secret-token-123"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    names = ("apscheduler", "apscheduler.scheduler", "httpx", "flowbot.engine")
    levels = {n: logging.getLogger(n).level for n in names}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


def emit_sample() -> None:
    logging.getLogger("apscheduler.scheduler").info("Adding job tentatively -- it will be ...")
    logging.getLogger("apscheduler.scheduler").warning("Run time of job was missed by 0:00:07")
    logging.getLogger("flowbot.engine").warning(
        "SPY: flow_feed 6 min behind\nsecond line, token %s", SECRET
    )


def test_plain_is_the_default_off_a_terminal_one_line_per_record():
    """Not a TTY → plain lines (no rich layout), APScheduler INFO hidden, secrets scrubbed."""
    out = io.StringIO()
    setup_logging("INFO", [SECRET], "auto", stream=out)
    emit_sample()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("WARNING apscheduler.scheduler: Run time of job was missed by 0:00:07")
    assert lines[1].endswith(
        "WARNING flowbot.engine: SPY: flow_feed 6 min behind\\nsecond line, token ***"
    )
    assert lines[0][:20].endswith("Z") and lines[0][10] == "T"  # UTC ISO time first


def test_json_format_is_one_object_per_line():
    """--log-format json: every line parses to ts/level/logger/message; secrets scrubbed."""
    out = io.StringIO()
    setup_logging("INFO", [SECRET], "json", stream=out)
    emit_sample()
    try:
        raise RuntimeError(f"boom {SECRET}")
    except RuntimeError:
        logging.getLogger("flowbot.engine").exception("poll failed")
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["level"], r["logger"]) for r in records] == [
        ("WARNING", "apscheduler.scheduler"),
        ("WARNING", "flowbot.engine"),
        ("ERROR", "flowbot.engine"),
    ]
    assert records[1]["message"] == "SPY: flow_feed 6 min behind\nsecond line, token ***"
    assert records[2]["exc"].startswith("Traceback") and "boom ***" in records[2]["exc"]
    assert SECRET not in out.getvalue()
    assert all(r["ts"].endswith("Z") for r in records)


def test_debug_shows_the_scheduler_info_lines():
    """--log-level DEBUG lets APScheduler's INFO lines through again."""
    out = io.StringIO()
    setup_logging("DEBUG", [], "plain", stream=out)
    emit_sample()
    assert "Adding job tentatively" in out.getvalue()


def test_unknown_format_is_refused():
    """A typo in --log-format is an error naming the choices, not a silent default."""
    with pytest.raises(ValueError, match="unknown log format 'xml'; use auto, rich, plain, json"):
        setup_logging("INFO", [], "xml", stream=io.StringIO())


def flowbot(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **(env or {})},
    )


def test_version_prints_the_package_version(tmp_path):
    """`flowbot --version` prints the version pyproject.toml declares."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    done = flowbot("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == f"flowbot {declared}"


def test_check_with_an_empty_watchlist_says_so_and_exits_2(tmp_path):
    """`flowbot check` on an empty watchlist: a clear message, exit 2, no IndexError."""
    path = tmp_path / "flowbot.toml"
    path.write_text("[flashalpha]\nbase_url = 'http://127.0.0.1:9'\n[watchlist]\nsymbols = []\n")
    done = flowbot("check", "--config", str(path), cwd=tmp_path)
    assert done.returncode == 2
    assert "[watchlist] symbols is empty" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_cli_blames_a_bad_variable_not_the_file(tmp_path):
    """`flowbot once` with a bad FLOWBOT_* value names the variable and exits 2."""
    path = tmp_path / "flowbot.toml"
    path.write_text("[flashalpha]\nbase_url = 'http://127.0.0.1:9'\n")
    done = flowbot(
        "once", "--config", str(path), cwd=tmp_path, env={"FLOWBOT_SCHEDULE__POLL_SECONDS": "0"}
    )
    assert done.returncode == 2
    assert "FLOWBOT_SCHEDULE__POLL_SECONDS: [schedule.poll_seconds]" in done.stderr
    assert str(path) not in done.stderr


WITHOUT_SIM = """
import sys
sys.modules["starlette"] = None  # as in the production image, which has no `sim` extra
sys.modules["uvicorn"] = None
sys.argv = ["flowbot", *sys.argv[1:]]
from bot.cli import main
main()
"""


@pytest.mark.parametrize("command", [["demo", "--out", "out"], ["sim", "--port", "0"]])
def test_sandbox_commands_without_the_sim_extra_say_what_to_install(tmp_path, command):
    """Without starlette/uvicorn, `demo` and `sim` exit 2 naming `flowbot[sim]`, create
    nothing, and the rest of the CLI still loads."""
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_SIM, *command],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'flowbot[sim]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []
    version = subprocess.run(
        [sys.executable, "-c", WITHOUT_SIM, "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert version.returncode == 0 and version.stdout.startswith("flowbot ")
