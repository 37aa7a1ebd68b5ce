"""`flowbot demo` never touches live services and never deletes a directory it did not make."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from bot.demo import MARKER, OutDirError, prepare_out_dir, run_demo
from bot.settings import isolated_secrets, isolated_settings
from tests.support.slack_api import SlackApiServer

# Every variable a live deployment exports, set to something that would be noticed if read.
LIVE_SECRETS = {
    "FLASHALPHA_API_KEY": "fa-live-key-must-not-be-used",
    "SLACK_BOT_TOKEN": "xoxb-live-token-must-not-be-used",
    "SMTP_PASSWORD": "live-smtp-password",
}


class ConnectionTrap:
    """A TCP listener on 127.0.0.1 that accepts and counts connections (an SMTP server the
    demo must never dial)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def trap() -> Iterator[ConnectionTrap]:
    t = ConnectionTrap()
    yield t
    t.close()


@pytest.fixture
def live_environment(monkeypatch, tmp_path, trap) -> Iterator[tuple[SlackApiServer, Path]]:
    """The shell of an operator who followed "Going live": every secret and FLOWBOT_* set,
    pointing at a local Slack API and an SMTP trap, FLOWBOT_CONFIG at a file that fails."""
    with SlackApiServer() as slack:
        bad_config = tmp_path / "live.toml"
        bad_config.write_text("[bogus]\nx = 1\n")
        live_state = tmp_path / "live-state.sqlite3"
        for name, value in LIVE_SECRETS.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.webhook_url)
        monkeypatch.setenv("FLOWBOT_CONFIG", str(bad_config))
        monkeypatch.setenv("FLOWBOT_SLACK__API_URL", slack.api_url)
        monkeypatch.setenv("FLOWBOT_STATE__PATH", str(live_state))
        monkeypatch.setenv("FLOWBOT_EMAIL__HOST", "127.0.0.1")
        monkeypatch.setenv("FLOWBOT_EMAIL__PORT", str(trap.port))
        monkeypatch.setenv("FLOWBOT_WATCHLIST__SYMBOLS", "not json")
        yield slack, live_state


def test_demo_settings_ignore_every_flowbot_variable_and_secret(live_environment):
    """The demo's config builders read neither FLOWBOT_* (nor FLOWBOT_CONFIG) nor any secret."""
    settings = isolated_settings(watchlist={"symbols": ["SPY"]})
    assert settings.state.path == Path("flowbot.sqlite3")
    assert settings.email.host == "" and settings.slack.api_url == "https://slack.com/api/"
    secrets = isolated_secrets(flashalpha_api_key="sandbox-alpha")
    assert secrets.values() == ["sandbox-alpha"]


def test_demo_with_live_secrets_exported_sends_nothing_and_keeps_foreign_files(
    live_environment, trap, tmp_path
):
    """With live secrets and FLOWBOT_* exported, the demo runs on the sandbox, posts nothing to
    Slack, dials no SMTP server, writes no state outside --out; a foreign directory is refused
    and its file survives."""
    slack, live_state = live_environment
    foreign = tmp_path / "repo"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert run_demo(foreign, console=Console(file=io.StringIO())) == 2
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]

    out = tmp_path / "demo-output"
    printed = io.StringIO()
    # 0 = the session produced its flips, candidates and leaderboard alerts: the live
    # FlashAlpha key (which the sandbox rejects) was not used.
    assert run_demo(out, console=Console(file=printed, width=120)) == 0
    assert slack.calls == []
    assert trap.connections == 0
    assert not live_state.exists()
    assert (out / MARKER).is_file() and (out / "flowbot.sqlite3").is_file()
    lines = (out / "messages.jsonl").read_text().splitlines()
    assert len(lines) > 10 and all(json.loads(line)["ts"] for line in lines)
    assert "regime flip" in printed.getvalue().lower()


def test_out_dir_is_made_with_a_marker_and_only_a_marked_one_is_cleared(tmp_path):
    """A new or empty --out gets the marker; a marked one is cleared; others are refused."""
    fresh = tmp_path / "a" / "b"
    prepare_out_dir(fresh)
    assert [p.name for p in fresh.iterdir()] == [MARKER]

    (fresh / "old.eml").write_text("from the last demo")
    prepare_out_dir(fresh)
    assert [p.name for p in fresh.iterdir()] == [MARKER]

    empty = tmp_path / "empty"
    empty.mkdir()
    prepare_out_dir(empty)
    assert (empty / MARKER).is_file()

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.csv").write_text("1,2")
    with pytest.raises(OutDirError, match=r"not made by flowbot demo \(no \.flowbot-demo"):
        prepare_out_dir(foreign)
    assert [p.name for p in foreign.iterdir()] == ["data.csv"]

    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(OutDirError, match="not a directory"):
        prepare_out_dir(a_file)
    assert a_file.read_text() == "x"
