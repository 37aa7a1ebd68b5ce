"""The operator's HTTP listener over real HTTP on 127.0.0.1: a real bot polling the sandbox and
posting to the local Slack, the listener on a free port, scraped with httpx and parsed with
``prometheus_client.parser``; the status page rendered by headless Chromium. The listener reads
the sandbox's simulated clock, the same one each tick is given."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
import stamina
from matplotlib.image import imread
from prometheus_client.parser import text_string_to_metric_families

from bot.app import Bot
from bot.http import start_http, stop_http
from bot.settings import ConfigError, load_settings
from bot.sim import Sandbox
from tests.support.slack_api import DEFAULT_TOKEN, SlackApiServer
from tests.test_engine import QUIET, at, make_bot, tick

HOSTILE = '<script>alert("x")</script> & <b>bold</b>'
ROOT = Path(__file__).resolve().parents[1]
LEAKY_ERROR = f"POST https://hooks.slack.com/services/T0/B0/SECRETPATH failed ({DEFAULT_TOKEN})"


@pytest.fixture(autouse=True)
def fast_retries():
    stamina.set_testing(True, attempts=2)
    yield
    stamina.set_testing(False)


@pytest.fixture
def sandbox():
    with Sandbox(scenario=QUIET, speed=0) as sb:
        yield sb


@pytest.fixture
def slack():
    with SlackApiServer() as server:
        yield server


@contextlib.asynccontextmanager
async def serving(
    bot: Bot,
    clock: Callable[[], datetime],
    *,
    running: Callable[[], bool] = lambda: True,
    in_session: Callable[[datetime], bool] = lambda now: True,
) -> AsyncIterator[httpx.AsyncClient]:
    """The listener on a free port of 127.0.0.1, and a client pointed at it."""
    runner = await start_http(
        bot, "127.0.0.1:0", is_running=running, clock=clock, in_session=in_session
    )
    try:
        host, port = runner.addresses[0][:2]
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}", trust_env=False) as c:
            yield c
    finally:
        await stop_http(runner)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics body: (name, sorted labels) → value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def busy_bot(sandbox: Sandbox, slack: SlackApiServer, tmp_path: Path) -> Bot:
    """A bot at 10:40 New York: SPY's 10:33 flip queued while Slack fails (its row's last
    error names a webhook URL and a token), NVDA silenced with a hostile comment."""
    bot = make_bot(sandbox, slack, tmp_path / "s.sqlite3")
    await tick(bot, at(sandbox, "09:30"))
    slack.fail_next("chat.postMessage", status=500, count=50)
    await tick(bot, at(sandbox, "10:33"))
    now = at(sandbox, "10:40")
    await bot.engine.poll_symbols(now)
    (row,) = bot.store.pending("slack")
    bot.store.mark_failed(row.id, error=LEAKY_ERROR)
    bot.store.add_silence(
        {"symbol": ["NVDA"], "rule": ["candidate"]},
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(hours=2),
        comment=HOSTILE,
        created_by="desk",
    )
    return bot


async def test_ready_after_a_good_poll_and_metrics_show_requests_alerts_and_queue(
    sandbox, slack, tmp_path
):
    """/healthz and /readyz answer 200 after a good poll; /metrics parses and counts the
    summary requests, the flip, and the queued row (depth refreshed by the scrape itself)."""
    bot = make_bot(sandbox, slack, tmp_path / "s.sqlite3")
    await tick(bot, at(sandbox, "09:30"))
    await bot.engine.poll_symbols(at(sandbox, "10:33"))  # SPY flips: queued, not yet sent
    async with serving(bot, sandbox.clock.now) as http:
        health = await http.get("/healthz")
        ready = await http.get("/readyz")
        scrape = await http.get("/metrics")
        await bot.worker.flush()
        after = samples((await http.get("/metrics")).text)
    await bot.aclose()

    assert (health.status_code, health.text) == (200, "ok\n")
    assert (ready.status_code, ready.json()) == (200, {"ready": True, "reasons": []})
    assert scrape.headers["content-type"].startswith("text/plain; version=")
    before = samples(scrape.text)
    assert before[("flowbot_api_requests_total", (("outcome", "ok"), ("source", "summary")))] == 4
    flips = (("reason", "first_notification"), ("rule", "regime_flip"))
    assert before[("flowbot_alerts_total", flips)] == 1
    assert before[("flowbot_outbox_depth", (("destination", "slack"),))] == 1
    assert after[("flowbot_outbox_depth", (("destination", "slack"),))] == 0
    assert after[("flowbot_deliveries_total", (("destination", "slack"), ("result", "sent")))] == 1
    assert "sandbox-alpha" not in scrape.text


async def test_bad_key_makes_readyz_503_saying_the_key_was_rejected(sandbox, slack, tmp_path):
    """A 401 from FlashAlpha turns /readyz to 503 naming the rejected key (never the key
    itself), and the status page says so."""
    bot = make_bot(sandbox, slack, tmp_path / "s.sqlite3", key="wrong-key")
    await tick(bot, at(sandbox, "10:00"))
    async with serving(bot, sandbox.clock.now) as http:
        ready = await http.get("/readyz")
        page = (await http.get("/")).text
    await bot.aclose()
    assert ready.status_code == 503
    assert ready.json() == {
        "ready": False,
        "reasons": ["FlashAlpha rejected the API key (HTTP 401)"],
    }
    assert "rejected (HTTP 401)" in page
    assert "wrong-key" not in ready.text + page


async def test_stuck_outbox_makes_readyz_503_until_the_destination_takes_it(
    sandbox, slack, tmp_path
):
    """A row Slack keeps refusing is fine for 10 minutes; past that /readyz is 503 naming the
    destination and the wait, and 200 again once the row is delivered."""
    bot = make_bot(sandbox, slack, tmp_path / "s.sqlite3")
    await tick(bot, at(sandbox, "09:30"))
    slack.fail_next("chat.postMessage", status=500, count=50)
    await tick(bot, at(sandbox, "10:33"))
    async with serving(bot, sandbox.clock.now) as http:
        await tick(bot, at(sandbox, "10:43"))
        at_ten = await http.get("/readyz")
        await tick(bot, at(sandbox, "10:45"))
        stuck = await http.get("/readyz")
        slack.reset()
        bot.worker.start()
        try:
            await asyncio.to_thread(slack.wait_for_posts, 1, 10.0)
        finally:
            await bot.worker.stop()
        recovered = await http.get("/readyz")
    await bot.aclose()
    assert at_ten.status_code == 200, at_ten.json()
    assert stuck.status_code == 503
    assert stuck.json()["reasons"] == [
        "outbox stuck: slack has 1 row(s) waiting, the oldest for 12 min"
    ]
    assert recovered.status_code == 200, recovered.json()


async def test_readyz_names_a_stopped_scheduler_and_a_silent_api(sandbox, slack, tmp_path):
    """Not ready before any answer, with the scheduler stopped, or when no source answered
    for over 5 minutes in session; a closed market does not count as silent."""
    bot = make_bot(sandbox, slack, tmp_path / "s.sqlite3")
    running = True
    async with serving(bot, sandbox.clock.now, running=lambda: running) as http:
        at(sandbox, "09:30")
        fresh = (await http.get("/readyz")).json()["reasons"]
        await tick(bot, at(sandbox, "10:00"))
        running = False
        stopped = (await http.get("/readyz")).json()["reasons"]
        running = True
        at(sandbox, "10:06")
        silent = await http.get("/readyz")
    async with serving(bot, sandbox.clock.now, in_session=lambda now: False) as http:
        closed = await http.get("/readyz")
    await bot.aclose()
    assert fresh == ["no source has answered yet"]
    assert stopped == ["scheduler not running"]
    assert silent.status_code == 503
    assert silent.json()["reasons"] == [
        "no source answered in the last 5 min (last at 10:00 ET, 6 min ago)"
    ]
    assert closed.status_code == 200


async def test_status_page_shows_the_day_escaped_and_without_secrets(sandbox, slack, tmp_path):
    """The page lists the flip (New York time, rule, symbol, outcome), the sources, the
    silence and the failing outbox; a hostile comment is escaped once; the delivery
    error is shown without its webhook URL or token."""
    bot = await busy_bot(sandbox, slack, tmp_path)
    async with serving(bot, sandbox.clock.now) as http:
        response = await http.get("/")
    await bot.aclose()
    page = response.text
    assert response.headers["content-type"].startswith("text/html")
    assert '<meta http-equiv="refresh" content="30">' in page
    assert '<td class="time">10:33 ET</td><td>regime flip</td><td><strong>SPY</strong>' in page
    assert '<td class="warn">pending</td>' in page
    assert '<td class="break">summary</td>' in page and "10:40:00 ET" in page
    assert "rule = candidate; symbol = NVDA" in page and "12:40 ET" in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "<script>" not in page and "&amp;lt;" not in page
    assert "last error: POST &lt;url&gt; failed (***)" in page
    for secret in ("SECRETPATH", "hooks.slack.com", DEFAULT_TOKEN, "sandbox-alpha"):
        assert secret not in page
    assert "://" not in page and "src=" not in page, "no external assets, no URLs"


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "needs headless Chromium: apt-get install -y --no-install-recommends chromium"
    return path


async def screenshot(url: str, path: Path, width: int, profile: Path) -> None:
    """Headless Chromium's screenshot of ``url`` in a ``width`` × 1600 px window."""
    process = await asyncio.create_subprocess_exec(
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--screenshot={path}",
        f"--window-size={width},1600",
        url,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]


@pytest.mark.e2e
async def test_status_page_renders_in_chromium_at_400_and_1200_px(sandbox, slack, tmp_path):
    """Headless Chromium draws the page at phone and desktop widths: a PNG of that width with
    text on it (many colours, a fair share of non-background pixels)."""
    bot = await busy_bot(sandbox, slack, tmp_path)
    async with serving(bot, sandbox.clock.now) as http:
        url = str(http.base_url)
        shots = {w: tmp_path / f"status-{w}.png" for w in (400, 1200)}
        for width, path in shots.items():
            await screenshot(url, path, width, tmp_path / "profile")
    await bot.aclose()
    for width, path in shots.items():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = imread(path)
        assert image.shape[:2] == (1600, width)
        pixels = image.reshape(-1, image.shape[2])[:, :3]
        background = np.all(pixels == pixels[0], axis=1)
        assert len(np.unique(pixels, axis=0)) > 50, "text is drawn"
        assert background.mean() < 0.99, "the page is not blank"


@pytest.mark.parametrize(
    ("listen", "error"),
    [
        ("localhost", "is not host:port"),  # no port
        ("127.0.0.1:99999", "is not host:port"),  # port out of range
        (":9464", "is not host:port"),  # no host
        ("127.0.0.1:0", "the port must be 1-65535"),  # a random port is of no use to a scraper
    ],
)
def test_a_bad_http_listen_is_a_config_error_naming_the_key(listen, error):
    """A wrong ``[http] listen`` names the key before anything runs."""
    with pytest.raises(ConfigError, match=r"\[http\.listen\]") as caught:
        load_settings(None, http={"listen": listen})
    assert error in str(caught.value)


def test_http_listen_defaults_to_localhost_and_can_be_turned_off():
    """The listener is on 127.0.0.1:9464 unless ``listen = ""`` (off) or an IPv6 address."""
    assert load_settings(None).http.listen == "127.0.0.1:9464"
    assert load_settings(None, http={"listen": ""}).http.listen == ""
    assert load_settings(None, http={"listen": "[::1]:9464"}).http.listen == "[::1]:9464"


def test_the_listener_is_imported_only_when_on():
    """``flowbot run``'s scheduler module leaves aiohttp's server, Jinja and :mod:`bot.http`
    unloaded: with ``listen = ""`` they are never imported."""
    code = (
        "import sys\n"
        "import bot.schedule\n"
        "print(sorted({'aiohttp.web', 'bot.http', 'jinja2'} & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "[]"
