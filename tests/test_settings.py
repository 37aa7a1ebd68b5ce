"""Config loading: TOML + environment, secrets only from the environment, errors name file + key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import ConfigError, load_secrets, load_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("FLOWBOT_CONFIG", "FLASHALPHA_API_KEY", "SLACK_BOT_TOKEN", "SLACK_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "flowbot.toml"
    path.write_text(body)
    return path


def test_example_config_loads_with_the_documented_defaults():
    """config.example.toml is valid and its values are the documented defaults."""
    s = load_settings(ROOT / "config.example.toml")
    assert s.schedule.poll_seconds == "auto" and s.schedule.leaderboard_seconds == "auto"
    assert s.schedule.market_hours_only and s.schedule.timezone == "America/New_York"
    assert s.rules["candidate"].min_score == 70 and s.rules["top_n"].options_n == 5
    assert s.rules["top_n"].zero_dte_metrics == ["heat"] and s.rules["top_n"].zero_dte_n == 5
    assert all(r.cooldown_minutes == 30 for r in s.rules.values())


BAD = [
    # (id, TOML, words the message must contain)
    ("unknown key", "[watchlist]\nsymbolz = ['SPY']", "[watchlist.symbolz]: unknown key"),
    ("unknown section", "[bogus]\nx = 1", "[bogus]: unknown key"),
    ("wrong type", "[schedule]\npoll_seconds = 'often'", "[schedule.poll_seconds]"),
    ("unknown rule", "[rules.moon]\nx = 1", "[rules.moon]: unknown rule; known rules: candidate"),
    (
        "unknown rule key",
        "[rules.candidate]\nmin_scor = 1",
        "[rules.candidate.min_scor]: unknown key",
    ),
    ("unknown metric", "[rules.top_n]\nzero_dte_metrics = ['vibes']", "unknown metric 'vibes'"),
    ("bad timezone", "[schedule]\ntimezone = 'Mars/Olympus'", "unknown timezone 'Mars/Olympus'"),
    ("unknown plan", "[flashalpha]\nplan = 'platinum'", "[flashalpha.plan]"),
    (
        "zero request rate",
        "[flashalpha]\nmax_requests_per_second = 0",
        "[flashalpha.max_requests_per_second]",
    ),
    ("secret in the file", "[slack]\ntoken = 'xoxb-123'", "[slack.token]: unknown key"),
    ("broken TOML", "[watchlist\n", "not valid TOML"),
    (
        "password in the state URL",
        "[state]\nurl = 'postgresql://bot:hunter2@db/flowbot'",
        "[state.url]: holds a password: give it in the PGPASSWORD environment variable",
    ),
    ("state URL of another database", "[state]\nurl = 'mysql://db/x'", "[state.url]: must start"),
    (
        "password in the state URL's query",
        "[state]\nurl = 'postgresql://bot@db/flowbot?sslmode=require&password=hunter2'",
        "[state.url]: holds a password",
    ),
]


@pytest.mark.parametrize(("body", "words"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_config_names_the_file_and_the_key(tmp_path, body, words):
    """Every config mistake raises ConfigError naming the file and the offending key."""
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(path) in str(err.value) and words in str(err.value)
    assert "hunter2" not in str(err.value)


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    """FLOWBOT_<SECTION>__<KEY> beats the TOML value; lists are JSON; plans are case-insensitive."""
    path = write(tmp_path, "[watchlist]\nsymbols = ['SPY']\n[flashalpha]\nplan = 'Growth'")
    monkeypatch.setenv("FLOWBOT_WATCHLIST__SYMBOLS", '["nvda", " amd ", "NVDA"]')
    monkeypatch.setenv("FLOWBOT_SCHEDULE__POLL_SECONDS", "45")
    s = load_settings(path)
    assert s.watchlist.symbols == ["NVDA", "AMD"] and s.schedule.poll_seconds == 45
    assert s.flashalpha.plan == "growth"


BAD_ENV = [
    # (id, variable, value, the message's start)
    (
        "number out of range",
        "FLOWBOT_SCHEDULE__POLL_SECONDS",
        "-1",
        "FLOWBOT_SCHEDULE__POLL_SECONDS: [schedule.poll_seconds]: must be more than 0 seconds",
    ),
    (
        "list that is not JSON",
        "FLOWBOT_WATCHLIST__SYMBOLS",
        "SPY,QQQ",
        "FLOWBOT_WATCHLIST__SYMBOLS: not valid JSON",
    ),
    (
        "rule key, checked after parsing",
        "FLOWBOT_RULES__TOP_N__ZERO_DTE_METRICS",
        '["vibes"]',
        "FLOWBOT_RULES__TOP_N__ZERO_DTE_METRICS: [rules.top_n.zero_dte_metrics]: unknown metric",
    ),
    (
        "a whole section as JSON",
        "FLOWBOT_SCHEDULE",
        '{"timezone": "Mars/Olympus"}',
        "FLOWBOT_SCHEDULE: [schedule.timezone]: unknown timezone",
    ),
]


@pytest.mark.parametrize(
    ("variable", "value", "start"), [c[1:] for c in BAD_ENV], ids=[c[0] for c in BAD_ENV]
)
def test_bad_environment_value_names_the_variable_not_the_file(
    tmp_path, monkeypatch, variable, value, start
):
    """A bad FLOWBOT_* value is blamed on that variable, even when a (good) file is loaded."""
    path = write(tmp_path, "[watchlist]\nsymbols = ['SPY']")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(err.value).startswith(start)
    assert str(path) not in str(err.value)


def test_secrets_come_from_the_environment_and_never_print(monkeypatch):
    """Secrets are read from the environment and shown masked in reprs."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-not-a-real-token")
    secrets = load_secrets()
    assert secrets.slack_bot_token.get_secret_value() == "xoxb-not-a-real-token"
    assert "xoxb-not-a-real-token" not in repr(secrets)


def test_cli_exits_2_on_a_bad_config_before_any_request(tmp_path):
    """`flowbot once` with a bad key prints one line naming file and key and exits 2."""
    path = write(
        tmp_path, "[flashalpha]\nbase_url = 'http://127.0.0.1:9'\n[watchlist]\nsymbolz = []"
    )
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "once", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert str(path) in done.stderr and "watchlist.symbolz" in done.stderr
    assert "Traceback" not in done.stderr
