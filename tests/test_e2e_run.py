"""End to end: the real ``flowbot run`` process against the FlashAlpha sandbox and a local
Slack Web API server, on the scripted scenario ``tests/scenarios/e2e.toml``.

The sandbox clock is frozen (speed 0) and driven by the test; the bot polls every 0.3 s of
wall time. After each clock step the test waits for enough new requests that at least one
whole poll cycle ran on the new market (deadlines only turn a hang into a failure), then for
the expected Slack posts. With no events the quiet market never alerts (see the scenario).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.sim import Sandbox, load_scenario
from tests.support.slack_api import DEFAULT_TOKEN, Post, SlackApiServer

pytestmark = pytest.mark.e2e

SCENARIO = Path(__file__).parent / "scenarios" / "e2e.toml"
API_KEY = "sandbox-alpha"
WATCHLIST = ("SPY", "NVDA", "IWM", "AMD")
SUMMARY = "/v1/flow/summary/"
BOARD = "/v1/flow/options/leaderboard"
DEADLINE = 20.0  # seconds before a wait gives up (a failure, never a pass condition)

# What each alert's fallback text says (templates/slack/*.j2) -> (kind, symbol).
KINDS: list[tuple[str, re.Pattern[str]]] = [
    ("regime_flip_ended", re.compile(r"\b([A-Z]+) regime flip over: now amplifying\b")),
    ("regime_flip", re.compile(r"\b([A-Z]+) regime flip: dealers now\b")),
    ("candidate", re.compile(r"\b([A-Z]+) flow anomaly: candidate · bullish · score 78\b")),
    (
        "leaderboard_entry",
        re.compile(r"\b([A-Z]+) enters Options flow · top buyers \(240 min\) at #2 of top 3\b"),
    ),
]


def _kind(post: Post) -> tuple[str, str]:
    """``(kind, symbol)`` of a recorded post, from its fallback text."""
    text = post.text or ""
    for kind, pattern in KINDS:
        match = pattern.search(text)
        if match:
            return kind, match.group(1)
    return "unknown", text


def _wait_until(predicate: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    """Poll ``predicate`` until true; fail (never pass) when ``timeout`` runs out."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def _summary_counts(sb: Sandbox) -> dict[str, int]:
    return {s: sb.request_count(f"{SUMMARY}{s}") for s in WATCHLIST}


def _wait_polls(sb: Sandbox, cycles: int = 3) -> None:
    """Wait until every watchlist symbol's summary was requested ``cycles`` more times.

    Poll jobs never overlap (max_instances=1), so with 3 new requests per symbol the second
    cycle started after the caller's clock change and has finished (detect + deliver)."""
    before = _summary_counts(sb)
    _wait_until(
        lambda: all(n >= before[s] + cycles for s, n in _summary_counts(sb).items()),
        f"{cycles} more summary polls per symbol",
    )


def _wait_boards(sb: Sandbox, polls: int = 3) -> None:
    """Wait for ``polls`` more options-leaderboard requests (same reasoning as _wait_polls)."""
    before = sb.request_count(BOARD)
    _wait_until(lambda: sb.request_count(BOARD) >= before + polls, f"{polls} board polls")


def _write_config(tmp_path: Path, sb: Sandbox, slack: SlackApiServer) -> Path:
    cfg = tmp_path / "flowbot.toml"
    cfg.write_text(
        f"""
[flashalpha]
base_url = "{sb.base_url}"
plan = "alpha"
retries = 1
stale_after_seconds = 0      # the sandbox's session date is not today's
failing_after_polls = 20     # the 12:01 outage is about alerts; test_notices covers notices

[watchlist]
symbols = {json.dumps(list(WATCHLIST))}

[schedule]
poll_seconds = 0.3
leaderboard_seconds = 0.3
market_hours_only = false

[slack]
api_url = "{slack.api_url}"
channel = "#e2e"
max_posts_per_second = 20

[state]
path = "{tmp_path / "state.sqlite3"}"

[http]
listen = ""                  # off: tests/test_http.py covers the listener

[recap]
enabled = false

[digest]
enabled = false

[rules.regime_flip]
cooldown_minutes = 30

[rules.candidate]
cooldown_minutes = 30

[rules.flow_inflection]
enabled = false              # not this test's subject (tests/test_rules_new.py)

[rules.top_n]
cooldown_minutes = 30
watchlist_only = true
options_n = 3
zero_dte_metrics = []
""",
        encoding="utf-8",
    )
    return cfg


def _env(slack_token: str | None = None) -> dict[str, str]:
    """The parent's environment minus anything that configures Flowbot, plus the secrets."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("FLOWBOT_", "SLACK_", "FLASHALPHA_", "SMTP_"))
    }
    env["FLASHALPHA_API_KEY"] = API_KEY
    if slack_token is not None:
        env["SLACK_BOT_TOKEN"] = slack_token
    return env


def _flowbot() -> list[str]:
    script = Path(sys.executable).parent / "flowbot"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]


class BotProcess:
    """One ``flowbot run`` process; stdout/stderr go to files named after ``name``."""

    def __init__(self, tmp_path: Path, cfg: Path, env: dict[str, str], name: str):
        self.out = tmp_path / f"{name}.stdout"
        self.err = tmp_path / f"{name}.stderr"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [*_flowbot(), "run", "--config", str(cfg)],
                stdout=out,
                stderr=err,
                env=env,
                cwd=tmp_path,
            )

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait for the exit status (kill only if it hangs)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(
                f"flowbot did not exit within {timeout:.0f} s of SIGTERM"
            ) from None

    def output(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")


@pytest.fixture
def servers():
    """The sandbox on the e2e scenario (frozen clock at 09:30 New York) and the Slack server."""
    with Sandbox(scenario=load_scenario(SCENARIO), speed=0) as sb, SlackApiServer() as slack:
        yield sb, slack


def test_run_posts_exactly_the_scripted_alerts_across_restart_outage_and_slack_faults(
    servers, tmp_path
):
    """`flowbot run` posts each scripted alert exactly once, through a restart, an API
    outage, a Slack 429 and a Slack 500, with the follow-up in the alert's thread."""
    sb, slack = servers
    cfg = _write_config(tmp_path, sb, slack)
    env = _env(slack.token)
    bots: list[BotProcess] = []

    def start() -> BotProcess:
        bot = BotProcess(tmp_path, cfg, env, f"run{len(bots) + 1}")
        bots.append(bot)
        return bot

    def kinds(posts: list[Post]) -> list[tuple[str, str]]:
        return [_kind(p) for p in posts]

    try:
        # 09:30, quiet market: the first poll is the baseline (first board), no alert.
        bot = start()
        _wait_polls(sb)
        _wait_boards(sb)
        assert slack.posts == []

        # 10:33: SPY flipped at 10:32. Slack answers the first post 429 (Retry-After 1).
        slack.fail_next("chat.postMessage", status=429, retry_after=1)
        sb.set_time_ny("10:33")
        posts = slack.wait_for_posts(1, timeout=DEADLINE)
        _wait_polls(sb)
        assert kinds(slack.posts) == [("regime_flip", "SPY")]
        assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]
        spy_ts = posts[0].ts

        # Restart: the bot is down from 10:33 to 11:06; SPY's flip ends at 10:50 and NVDA
        # becomes a candidate at 11:05 meanwhile. The new process knows both from its state.
        assert bot.stop() == 0
        sb.set_time_ny("11:06")
        bot = start()
        slack.wait_for_posts(3, timeout=DEADLINE)
        _wait_polls(sb)
        _wait_boards(sb)
        # The end is told once amplifying held two polls (min_hold_polls), so after NVDA.
        assert kinds(slack.posts) == [
            ("regime_flip", "SPY"),
            ("candidate", "NVDA"),
            ("regime_flip_ended", "SPY"),
        ]

        # 12:01:30: IWM flipped at 12:01 but the summary endpoint answers 502 until 12:03.
        seen = len(sb.requests())
        down = sb.set_time_ny("12:01:30")
        _wait_polls(sb, 5)  # retries = 1: two requests per symbol and cycle
        outage = [r for r in sb.requests()[seen:] if r.path.startswith(SUMMARY)]
        assert {r.status for r in outage if r.sim_time == down} == {502}
        assert len(slack.posts) == 3

        # 12:04: the outage is over; the flip is alerted once.
        sb.set_time_ny("12:04")
        slack.wait_for_posts(4, timeout=DEADLINE)
        _wait_polls(sb)
        assert kinds(slack.posts)[3:] == [("regime_flip", "IWM")]

        # 13:16: the 13:15 block puts AMD at #2 of the top buyers; Slack answers 500 once.
        slack.fail_next("chat.postMessage", status=500)
        sb.set_time_ny("13:16")
        slack.wait_for_posts(5, timeout=DEADLINE)
        _wait_boards(sb)
        _wait_polls(sb)
        assert bot.stop() == 0
    except BaseException:
        for b in bots:
            if b.proc.poll() is None:
                b.proc.kill()
                b.proc.wait(5)
            print(f"----- {b.err.name} / {b.out.name}\n{b.output()}")
        print("----- posts:", *[p.text for p in slack.posts], sep="\n")
        raise

    posts = slack.posts
    assert kinds(posts) == [
        ("regime_flip", "SPY"),
        ("candidate", "NVDA"),
        ("regime_flip_ended", "SPY"),
        ("regime_flip", "IWM"),
        ("leaderboard_entry", "AMD"),
    ]
    assert [p.thread_ts for p in posts] == [None, None, spy_ts, None, None]
    assert {p.channel for p in posts} == {"#e2e"}
    assert all(p.blocks for p in posts)
    statuses = [c.status for c in slack.calls_to("chat.postMessage")]
    assert statuses == [429, 200, 200, 200, 200, 500, 200]  # each fault retried once
    for post in posts:
        dumped = json.dumps(post.params, ensure_ascii=False)
        assert API_KEY not in dumped and slack.token not in dumped
    for b in bots:
        text = b.output()
        assert API_KEY not in text and slack.token not in text, b.err.name
        assert "Traceback" not in text, text
        # Logs go to stderr; `run` prints nothing on stdout. SIGTERM is a graceful stop.
        assert b.out.read_text() == ""
        assert "stopping: finishing in-flight work" in " ".join(b.err.read_text().split())


def test_run_unknown_config_key_exits_2_before_any_request(tmp_path):
    """`flowbot run` with an unknown config key exits 2 naming the file and the key, and
    makes no request."""
    with Sandbox(scenario=load_scenario(SCENARIO), speed=0) as sb:
        cfg = tmp_path / "bad.toml"
        cfg.write_text(
            f'[flashalpha]\nbase_url = "{sb.base_url}"\nplan = "alpha"\n\n'
            '[watchlist]\nsymbolz = ["SPY", "NVDA"]\n',
            encoding="utf-8",
        )
        done = subprocess.run(
            [*_flowbot(), "run", "--config", str(cfg)],
            env=_env(DEFAULT_TOKEN),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        err = done.stderr
        assert str(cfg) in err and "watchlist.symbolz" in err, err
        assert API_KEY not in err + done.stdout
        assert sb.request_count() == 0
        assert not (tmp_path / "flowbot.sqlite3").exists()
