"""Destinations and routes in the config: what a user writes, what loads, what is refused at
start (exit 2, naming the key or the variable) and what the environment overrides as JSON."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.deliver.base import BuildContext
from bot.destinations import build_destinations
from bot.settings import ConfigError, load_settings
from bot.sim import Sandbox

ROUTED = """
[[destinations]]
name = "desk"
kind = "slack"
channel = "#desk"

[[destinations]]
name = "team"
kind = "discord"

[[routes]]
match = { rule = "candidate" }
destinations = ["desk", "team"]
"""

ENV = {"SLACK_BOT_TOKEN": "xoxb-test", "DISCORD_WEBHOOK_URL": "http://127.0.0.1:9/hook"}


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "flowbot.toml"
    path.write_text(body)
    return path


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FLOWBOT_CONFIG", "FLOWBOT_DESTINATIONS", "FLOWBOT_ROUTES", "SLACK_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_routed_config_builds_its_destinations(tmp_path: Path) -> None:
    """Declared destinations are built by kind; the digest keeps its implicit email one."""
    settings = load_settings(write(tmp_path, ROUTED))
    built = build_destinations(settings, BuildContext(environ=ENV))
    assert sorted(built.by_name) == ["desk", "email", "team"]
    assert built.alerts == ("desk", "team")


def test_old_config_keeps_its_single_slack_destination(tmp_path: Path) -> None:
    """No [[destinations]]: SLACK_BOT_TOKEN makes [slack] the one destination, as before."""
    settings = load_settings(write(tmp_path, '[slack]\nchannel = "#old"\n'))
    built = build_destinations(settings, BuildContext(environ={"SLACK_BOT_TOKEN": "xoxb-t"}))
    assert built.alerts == ("slack",) and built.by_name["slack"].channel == "#old"  # type: ignore[attr-defined]
    console = build_destinations(settings, BuildContext(environ={}))
    assert console.alerts == ("console",)


REFUSED = [
    # (id, TOML, environment, words the message must contain)
    (
        "unknown kind",
        '[[destinations]]\nname = "x"\nkind = "pager"\n',
        ENV,
        "[destinations[0].kind]: unknown destination kind 'pager'; known kinds: slack",
    ),
    (
        "secret written in the file",
        '[[destinations]]\nname = "x"\nkind = "discord"\nurl = "https://discord.com/api/webhooks/1/2"\n',
        ENV,
        "[destinations[0].url]: unknown key",
    ),
    (
        "duplicate name",
        ROUTED + '[[destinations]]\nname = "desk"\nkind = "console"\n',
        ENV,
        "[destinations[2].name]: duplicate destination name 'desk'",
    ),
    (
        "route to an unknown destination",
        ROUTED + '[[routes]]\nmatch = { rule = "top_n" }\ndestinations = ["risk"]\n',
        ENV,
        "[routes[1].destinations]: unknown destination 'risk'; known: desk, email, team",
    ),
    (
        "unknown match value",
        ROUTED + '[[routes]]\nmatch = { rule = "top_m" }\n',
        ENV,
        "[routes[1].match.rule]: unknown rule 'top_m'; known: ",
    ),
    (
        "missing secret",
        ROUTED,
        {"SLACK_BOT_TOKEN": "xoxb-test"},
        "destination 'team': environment variable DISCORD_WEBHOOK_URL is not set",
    ),
]


@pytest.mark.parametrize(
    ("body", "environ", "words"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_mistakes_are_refused_at_start(
    tmp_path: Path, body: str, environ: dict[str, str], words: str
) -> None:
    """Each mistake is a ConfigError naming the key or the variable, never a value."""
    with pytest.raises(ConfigError) as err:
        settings = load_settings(write(tmp_path, body))
        build_destinations(settings, BuildContext(environ=environ))
    assert words in str(err.value)
    assert "xoxb-test" not in str(err.value)


def test_lists_of_tables_come_from_the_environment_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FLOWBOT_DESTINATIONS, FLOWBOT_ROUTES and FLOWBOT_ROUTE__DESTINATIONS replace the file's."""
    monkeypatch.setenv("FLOWBOT_DESTINATIONS", '[{"name": "screen", "kind": "console"}]')
    monkeypatch.setenv(
        "FLOWBOT_ROUTES", '[{"match": {"kind": "notice"}, "destinations": ["screen"]}]'
    )
    monkeypatch.setenv("FLOWBOT_ROUTE__DESTINATIONS", '["screen"]')
    settings = load_settings(write(tmp_path, ROUTED))
    assert [d.name for d in settings.destinations] == ["screen"]
    assert settings.routes[0].match.kind == ["notice"] and settings.route.destinations == ["screen"]


def test_cli_exits_2_when_a_destination_secret_is_missing(tmp_path: Path) -> None:
    """`flowbot once` with a route to Discord but no DISCORD_WEBHOOK_URL exits 2, names the
    variable, and makes no request."""
    env = {"PATH": "/usr/bin:/bin", "SLACK_BOT_TOKEN": "xoxb-test", "FLASHALPHA_API_KEY": "k"}
    with Sandbox(speed=0) as sandbox:
        path = write(tmp_path, f"[flashalpha]\nbase_url = '{sandbox.base_url}'\n" + ROUTED)
        done = subprocess.run(
            [sys.executable, "-m", "bot", "once", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env=env,
        )
        assert sandbox.request_count() == 0
    assert done.returncode == 2, done.stderr
    assert "DISCORD_WEBHOOK_URL is not set" in done.stderr and "Traceback" not in done.stderr
    assert "xoxb-test" not in done.stderr + done.stdout
