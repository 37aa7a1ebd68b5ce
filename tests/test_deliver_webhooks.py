"""Discord, Teams and generic webhook delivery: each real destination (httpx) against a local
receiver that checks the payload the way the real service would.

Covers what each service shows for a normal alert, that API text with markdown or mention
characters stays inert, that a huge message is cut to the service's limits (and says what
was left out), how failures are classified for the outbox (429 with its Retry-After, 5xx and
network errors recoverable; other 4xx permanent), that neither the URL nor the secret ever
shows in an error, the webhook's Idempotency-Key and its signature.
"""

from __future__ import annotations

import json
import re
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from bot.deliver import discord, teams, webhook
from bot.deliver.base import (
    AlertRef,
    BuildContext,
    Delivered,
    DeliveryError,
    Destination,
    DestinationKind,
    Envelope,
    FileUpload,
    MissingSecret,
)
from bot.deliver.discord import DiscordConfig, DiscordDestination
from bot.deliver.teams import MAX_BODY_BYTES, TeamsDestination
from bot.deliver.webhook import (
    PAYLOAD_VERSION,
    WebhookConfig,
    WebhookDestination,
    sign,
    verify_signature,
)
from bot.escape import finish, markdown_escape
from bot.events import Category, Dialect, Message, Severity
from tests.support.webhook_receivers import (
    DISCORD_TOKEN,
    TEAMS_SIG,
    WEBHOOK_TOKEN,
    DiscordReceiver,
    TeamsReceiver,
    WebhookReceiver,
    card_texts,
    markdown_texts,
    readme_verify,
    would_ping,
)

T0 = datetime(2026, 6, 5, 14, 32, tzinfo=UTC)
SESSION = "2026-06-05"
SECRET = "whsec-SECRET-0000"
HOSTILE = "<!channel> <@123> @everyone **bold** [click](https://evil.example) <script>_x_ `y`"
FLIP = AlertRef("regime_flip", "SPY", "regime_flip", Severity.CRITICAL, None, T0, "k-SPY")


def rendered(
    dialect: Dialect, symbol: str = "SPY", severity: Severity | None = Severity.CRITICAL
) -> Message:
    """A regime-flip alert as the renderer hands it to a destination in ``dialect``: the
    template's own ``*bold*`` translated, ``symbol`` (API text) escaped for the dialect."""

    def done(template: str) -> str:
        return finish(template.replace("{s}", markdown_escape(symbol)), dialect.value)

    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": done("{s} · gamma flip")}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": done("Dealers now *short gamma* in {s}")},
            "fields": [
                {"type": "mrkdwn", "text": done("*Live GEX* (per 1% move)\n-$1.2B")},
                {"type": "mrkdwn", "text": done("*Symbol*\n{s}")},
            ],
        },
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": done("as of 10:32 · {s}")}]},
    ]
    text = done("{s} regime flip: dealers now short gamma")
    return Message("regime_flip", text, blocks, severity=severity, dialect=dialect)


def huge(dialect: Dialect) -> Message:
    """Far beyond every limit: a 5,000-character header, 60 sections of 3,000 characters
    with 10 fields of 2,000 each, a 9,000-character context."""
    section = {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "s" * 3000},
        "fields": [{"type": "mrkdwn", "text": f"{'n' * 300}\n{'v' * 1700}"}] * 10,
    }
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "H" * 5000}},
        *[section] * 60,
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c" * 9000}]},
    ]
    return Message("group", "x" * 9000, blocks, severity=Severity.WARNING, dialect=dialect)


def envelope(message: Message | None, **kwargs: Any) -> Envelope:
    """An outbox row carrying ``message`` (one regime-flip alert unless overridden)."""
    fields: dict[str, Any] = {
        "id": 7,
        "dedupe_key": "alert:regime_flip:-:SPY:2026-06-05T14:32",
        "category": Category.ALERT,
        "session": SESSION,
        "created_at": T0,
        "message": message,
        "alerts": (FLIP,),
        **kwargs,
    }
    return Envelope(**fields)


def free_port_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks/{WEBHOOK_TOKEN}"


def leaks(exc: BaseException, *secrets: str) -> list[str]:
    """The secrets that show anywhere in ``exc``: its text, repr or formatted traceback."""
    shown = "".join([str(exc), repr(exc), *traceback.format_exception(exc)])
    return [s for s in secrets if s in shown]


@pytest.fixture
def discord_rx() -> Iterator[DiscordReceiver]:
    with DiscordReceiver() as rx:
        yield rx


@pytest.fixture
def teams_rx() -> Iterator[TeamsReceiver]:
    with TeamsReceiver() as rx:
        yield rx


@pytest.fixture
def webhook_rx() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as rx:
        yield rx


# ---------------------------------------------------------------------- all three kinds
@dataclass(frozen=True)
class Kind:
    """One destination kind with its receiver, for the tests every kind must pass."""

    receiver: Callable[[], Any]
    destination: Callable[[str], Destination]
    dialect: Dialect
    kind: DestinationKind
    url_env: str
    secret: str  # the part of the URL that must never show


KINDS = {
    "discord": Kind(
        DiscordReceiver,
        lambda url: DiscordDestination(url, min_interval=0),
        Dialect.MARKDOWN,
        discord.KIND,
        "DISCORD_WEBHOOK_URL",
        DISCORD_TOKEN,
    ),
    "teams": Kind(
        TeamsReceiver,
        lambda url: TeamsDestination(url, min_interval=0),
        Dialect.PLAIN,
        teams.KIND,
        "TEAMS_WEBHOOK_URL",
        TEAMS_SIG,
    ),
    "webhook": Kind(
        lambda: WebhookReceiver(SECRET),
        lambda url: WebhookDestination(url, SECRET, min_interval=0),
        Dialect.PLAIN,
        webhook.KIND,
        "WEBHOOK_URL",
        WEBHOOK_TOKEN,
    ),
}


@pytest.mark.parametrize(
    ("status", "retry_after", "recoverable", "waits"),
    [
        # rate limited: try again, not before the service's Retry-After
        (429, 3, True, 3.0),
        # the service is having trouble: the outbox's backoff
        (500, None, True, None),
        (503, None, True, None),
        # the payload or the URL is wrong: trying again cannot help, dead letter at once
        (400, None, False, None),
        (404, None, False, None),
    ],
)
@pytest.mark.parametrize("name", sorted(KINDS))
async def test_failures_are_classified_and_never_show_the_url(
    name: str, status: int, retry_after: int | None, recoverable: bool, waits: float | None
) -> None:
    """Each answer becomes a DeliveryError the outbox can act on, naming the HTTP status
    but neither the URL nor its token or signature nor the signing secret."""
    kind = KINDS[name]
    with kind.receiver() as rx:
        rx.fail_next(status, retry_after=retry_after)
        dest = kind.destination(rx.url)
        with pytest.raises(DeliveryError) as caught:
            await dest.send(envelope(rendered(kind.dialect)))
        await dest.close()
        url, base_url = rx.url, rx.base_url
    error = caught.value
    assert (error.recoverable, error.retry_after) == (recoverable, waits)
    assert f"HTTP {status}" in str(error)
    assert leaks(error, url, base_url, kind.secret, SECRET) == []


@pytest.mark.parametrize("name", sorted(KINDS))
async def test_network_error_is_recoverable_and_bad_url_is_not(name: str) -> None:
    """Nothing listening: recoverable (the receiver may come back); a URL that is not
    http(s): permanent. Neither error shows the URL."""
    kind = KINDS[name]
    url = free_port_url()
    refused = kind.destination(url)
    with pytest.raises(DeliveryError) as caught:
        await refused.send(envelope(rendered(kind.dialect)))
    await refused.close()
    assert caught.value.recoverable and "connection error" in str(caught.value)
    assert leaks(caught.value, url, WEBHOOK_TOKEN) == []

    wrong = kind.destination(f"ftp://example.invalid/{WEBHOOK_TOKEN}")
    with pytest.raises(DeliveryError) as caught:
        await wrong.send(envelope(rendered(kind.dialect)))
    await wrong.close()
    assert not caught.value.recoverable
    assert leaks(caught.value, WEBHOOK_TOKEN) == []


@pytest.mark.parametrize("name", sorted(KINDS))
async def test_kind_builds_from_config_and_environment(name: str) -> None:
    """A ``[[destinations]]`` entry with only name and kind reads its URL from the default
    variable and delivers; the kind's dialect is what its renderer must produce."""
    kind = KINDS[name]
    with kind.receiver() as rx:
        cfg = kind.kind.config_model.model_validate({"name": "desk-2", "kind": name})
        environ = {kind.url_env: rx.url, "FLOWBOT_WEBHOOK_SECRET": SECRET}
        if name == "webhook":
            cfg = cfg.model_copy(update={"secret_env": "FLOWBOT_WEBHOOK_SECRET"})
        dest = kind.kind.build(cfg, BuildContext(environ=environ))
        assert isinstance(dest, Destination)
        assert dest.name == "desk-2" and dest.capabilities.dialect is kind.dialect
        assert not dest.capabilities.threads and not dest.capabilities.files
        await dest.send(envelope(rendered(kind.dialect)))
        await dest.close()
        assert len(rx.wait_for(1)) == 1


@pytest.mark.parametrize("name", sorted(KINDS))
def test_missing_url_variable_is_named_without_a_value(name: str) -> None:
    """An unset variable stops the build with its name and the destination's name."""
    kind = KINDS[name]
    cfg = kind.kind.config_model.model_validate({"name": "desk-2", "kind": name})
    with pytest.raises(MissingSecret, match=f"'desk-2'.*{kind.url_env}"):
        kind.kind.build(cfg, BuildContext(environ={}))


@pytest.mark.parametrize("name", sorted(KINDS))
async def test_files_and_emails_are_refused_permanently(name: str) -> None:
    """A chart upload or a digest email cannot go to a webhook: a permanent error, no request."""
    kind = KINDS[name]
    with kind.receiver() as rx:
        dest = kind.destination(rx.url)
        chart = FileUpload("recap.png", "Recap", b"\x89PNG")
        for row in (envelope(None, file=chart), envelope(None, email=b"Subject: x\r\n\r\nx")):
            with pytest.raises(DeliveryError) as caught:
                await dest.send(row)
            assert not caught.value.recoverable
        await dest.close()
        assert rx.calls == []


# ---------------------------------------------------------------------- Discord
async def test_discord_posts_one_embed_with_colour_fields_and_footer(
    discord_rx: DiscordReceiver,
) -> None:
    """The header is the title, the section the description, fields inline name/value
    pairs, the context the (plain) footer, critical the red bar; the answer's message id
    comes back as ``ts``."""
    dest = DiscordDestination(discord_rx.url, username="Flowbot", min_interval=0)
    delivered = await dest.send(envelope(rendered(Dialect.MARKDOWN)))
    await dest.close()
    (call,) = discord_rx.wait_for(1)
    assert call.query["wait"] == "true"
    payload = call.json()
    assert payload["embeds"] == [
        {
            "title": "SPY · gamma flip",
            "description": "Dealers now **short gamma** in SPY",
            "fields": [
                {"name": "**Live GEX** (per 1% move)", "value": "-$1.2B", "inline": True},
                {"name": "**Symbol**", "value": "SPY", "inline": True},
            ],
            "footer": {"text": "as of 10:32 · SPY"},
            "color": 0xE01E5A,
        }
    ]
    assert payload["username"] == "Flowbot" and "content" not in payload
    assert payload["allowed_mentions"] == {"parse": []}
    answered = json.loads(call.answer)
    assert delivered == Delivered(channel=answered["channel_id"], ts=answered["id"])


async def test_discord_api_text_stays_inert(discord_rx: DiscordReceiver) -> None:
    """Mentions, @everyone and markdown from the API arrive escaped exactly once: nothing
    pings, nothing turns bold or into a link, and the footer shows the text literally."""
    message = rendered(Dialect.MARKDOWN, symbol=HOSTILE)
    dest = DiscordDestination(discord_rx.url, min_interval=0)
    await dest.send(envelope(message))
    await dest.close()
    (payload,) = discord_rx.payloads
    assert would_ping(payload) == set()
    (embed,) = payload["embeds"]
    escaped = markdown_escape(HOSTILE).replace("\ue000", "<").replace("\ue001", ">")
    assert embed["description"] == f"Dealers now **short gamma** in {escaped}"
    assert embed["fields"][1]["value"] == escaped  # escaped once, not twice
    assert r"\*\*bold\*\*" in escaped and r"\\" not in escaped
    assert embed["footer"]["text"] == f"as of 10:32 · {HOSTILE}"


@pytest.mark.parametrize(
    ("mention", "content", "allowed", "pinged"),
    [
        # a user named in the route's config, and nobody else
        (
            "<@123456789012345678>",
            "<@123456789012345678>",
            {"users": ["123456789012345678"]},
            {"user:123456789012345678"},
        ),
        # a role
        ("<@&42>", "<@&42>", {"roles": ["42"]}, {"role:42"}),
        # Slack's spelling of @here, translated: the desk configured it, so it may ping
        ("<!here>", "@here", {"parse": ["everyone"]}, {"everyone"}),
        # no mention configured: no content at all
        (None, None, {}, set()),
    ],
    ids=["user", "role", "here", "none"],
)
async def test_discord_mention_comes_from_config_only(
    mention: str | None, content: str | None, allowed: dict[str, Any], pinged: set[str]
) -> None:
    """The route's mention is the whole content and the only thing allowed to ping."""
    with DiscordReceiver(allow_parse=frozenset({"everyone"})) as rx:
        dest = DiscordDestination(rx.url, min_interval=0)
        await dest.send(envelope(rendered(Dialect.MARKDOWN, symbol=HOSTILE), mention=mention))
        await dest.close()
        (payload,) = rx.payloads
    assert payload.get("content") == content
    assert payload["allowed_mentions"] == {"parse": [], **allowed}
    assert would_ping(payload) == pinged


async def test_discord_huge_message_is_cut_to_embed_limits(discord_rx: DiscordReceiver) -> None:
    """Discord accepts a message far over every limit, cut to 6,000 characters, and the
    embed says how many sections and fields were left out."""
    message = huge(Dialect.MARKDOWN)
    dest = DiscordDestination(discord_rx.url, min_interval=0)
    await dest.send(envelope(message, mention="<@&42>"))
    await dest.close()
    (call,) = discord_rx.wait_for(1)  # accepted: the receiver checked every limit
    (embed,) = call.json()["embeds"]
    fields = embed["fields"]
    size = len(embed["title"]) + len(embed["description"]) + len(embed["footer"]["text"])
    size += sum(len(f["name"]) + len(f["value"]) for f in fields)
    assert size <= 6000 and len(embed["title"]) == 256 and embed["title"].endswith("…")
    *shown, note = embed["description"].split("\n\n")
    sections = re.fullmatch(r"… (\d+) more sections left out", note)
    assert sections and shown and len(shown) + int(sections[1]) == 60
    left_out = re.fullmatch(r"(\d+) more fields left out", fields[-1]["value"])
    assert left_out and len(fields) - 1 + int(left_out[1]) == 600


def test_discord_one_long_section_is_cut_not_dropped() -> None:
    """A single section over 4,096 characters is shown cut, ending in an ellipsis."""
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "word " * 2000}}]
    payload = discord.build_execute_payload(Message("notice", "n", blocks))
    description = payload["embeds"][0]["description"]
    assert 4090 <= len(description) <= 4096 and description.startswith("word word")
    assert description.endswith("…")


async def test_discord_deleted_webhook_and_rate_limit_body(discord_rx: DiscordReceiver) -> None:
    """A revoked token is Discord's 10015 (permanent, and the token is not shown); a 429's
    JSON ``retry_after`` is honoured even when the header rounds it."""
    revoked = DiscordDestination(discord_rx.url.replace(DISCORD_TOKEN, "revoked-tok"))
    with pytest.raises(DeliveryError) as caught:
        await revoked.send(envelope(rendered(Dialect.MARKDOWN)))
    await revoked.close()
    assert not caught.value.recoverable and "code 10015" in str(caught.value)
    assert leaks(caught.value, "revoked-tok") == []

    discord_rx.fail_next(429, retry_after=0.25)
    dest = DiscordDestination(discord_rx.url, min_interval=0)
    with pytest.raises(DeliveryError) as caught:
        await dest.send(envelope(rendered(Dialect.MARKDOWN)))
    await dest.close()
    # header "Retry-After: 1" (whole seconds), body 0.25: the longer one wins
    assert caught.value.recoverable and caught.value.retry_after == 1.0


def test_discord_config_rejects_a_username_discord_refuses() -> None:
    """Discord refuses webhook names containing "discord": caught at config load."""
    with pytest.raises(ValidationError, match="username"):
        DiscordConfig.model_validate({"name": "d", "kind": "discord", "username": "Discord Bot"})
    cfg = DiscordConfig.model_validate({"name": "d", "kind": "discord"})
    assert (cfg.url_env, cfg.username) == ("DISCORD_WEBHOOK_URL", None)


# ---------------------------------------------------------------------- Teams
def card_of(payload: dict[str, Any]) -> dict[str, Any]:
    (attachment,) = payload["attachments"]
    card: dict[str, Any] = attachment["content"]
    return card


async def test_teams_posts_an_adaptive_card(teams_rx: TeamsReceiver) -> None:
    """The card: a header styled by severity with the severity word, the section text,
    each field as a label/value row, the context small and subtle after a separator."""
    dest = TeamsDestination(teams_rx.url, min_interval=0)
    delivered = await dest.send(envelope(rendered(Dialect.PLAIN)))
    await dest.close()
    assert delivered == Delivered()
    (call,) = teams_rx.wait_for(1)
    assert call.status == 202
    card = card_of(call.json())
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    header, text, *rows, context = card["body"]
    assert header["type"] == "Container" and header["style"] == "attention"
    title, word = (block["inlines"][0] for block in header["items"])
    assert title == {
        "type": "TextRun",
        "text": "SPY · gamma flip",
        "weight": "Bolder",
        "size": "Medium",
    }
    assert (word["text"], word["color"]) == ("CRITICAL", "attention")
    assert text["inlines"][0]["text"] == "Dealers now short gamma in SPY"
    labels = [[c["items"][0]["inlines"][0]["text"] for c in row["columns"]] for row in rows]
    assert labels == [["Live GEX (per 1% move)", "-$1.2B"], ["Symbol", "SPY"]]
    assert context["separator"] is True
    assert context["inlines"][0] == {
        "type": "TextRun",
        "text": "as of 10:32 · SPY",
        "size": "Small",
        "isSubtle": True,
    }


async def test_teams_api_text_stays_inert(teams_rx: TeamsReceiver) -> None:
    """API text is shown literally, and only in TextRuns, which Teams never reads as
    markdown: no bold, no link from data."""
    dest = TeamsDestination(teams_rx.url, min_interval=0)
    await dest.send(envelope(rendered(Dialect.PLAIN, symbol=HOSTILE), mention="<!here>"))
    await dest.close()
    (payload,) = teams_rx.payloads
    card = card_of(payload)
    assert markdown_texts(card) == []
    assert f"Dealers now short gamma in {HOSTILE}" in card_texts(card)
    assert "<!here>" not in str(payload)  # a Workflows card cannot ping: mention not shown


async def test_teams_huge_message_fits_the_card_limit(teams_rx: TeamsReceiver) -> None:
    """A message far over 28 KB becomes a card within it that counts what was left out."""
    dest = TeamsDestination(teams_rx.url, min_interval=0)
    await dest.send(envelope(huge(Dialect.PLAIN)))
    await dest.close()
    (call,) = teams_rx.wait_for(1)
    assert len(call.body) <= MAX_BODY_BYTES
    texts = card_texts(card_of(call.json()))
    note = re.fullmatch(r"… (\d+) more sections left out \(Teams card size limit\)", texts[-1])
    shown = sum(1 for t in texts if t.startswith("sss"))
    assert note and shown >= 1 and shown + int(note[1]) == 61  # 60 sections + the context


async def test_teams_without_severity_has_no_style(teams_rx: TeamsReceiver) -> None:
    """A message without a severity (the recap) gets a plain header and no severity word."""
    dest = TeamsDestination(teams_rx.url, min_interval=0)
    await dest.send(envelope(rendered(Dialect.PLAIN, severity=None), category=Category.RECAP))
    await dest.close()
    header = card_of(teams_rx.payloads[0])["body"][0]
    assert "style" not in header and len(header["items"]) == 1


async def test_teams_wrong_signature_is_permanent(teams_rx: TeamsReceiver) -> None:
    """A Workflows URL with a stale ``sig`` is refused for good, and the sig never shows."""
    dest = TeamsDestination(teams_rx.url.replace(TEAMS_SIG, "stale-sig"), min_interval=0)
    with pytest.raises(DeliveryError) as caught:
        await dest.send(envelope(rendered(Dialect.PLAIN)))
    await dest.close()
    assert not caught.value.recoverable
    assert "DirectApiAuthorizationRequired (HTTP 401)" in str(caught.value)
    assert leaks(caught.value, "stale-sig", TEAMS_SIG) == []


# ---------------------------------------------------------------------- generic webhook
async def test_webhook_payload_v1_and_headers(webhook_rx: WebhookReceiver) -> None:
    """The documented payload, plain text, with the Idempotency-Key and a signature the
    README snippet accepts."""
    dest = WebhookDestination(webhook_rx.url, SECRET, min_interval=0)
    row = envelope(rendered(Dialect.PLAIN), delayed=True)
    assert await dest.send(row) == Delivered()
    await dest.close()
    (call,) = webhook_rx.wait_for(1)
    assert call.json() == {
        "version": PAYLOAD_VERSION,
        "kind": "alert",
        "rule": "regime_flip",
        "symbol": "SPY",
        "state": "regime_flip",
        "severity": "critical",
        "title": "SPY · gamma flip",
        "text": "SPY regime flip: dealers now short gamma",
        "fields": [
            {"name": "Live GEX (per 1% move)", "value": "-$1.2B"},
            {"name": "Symbol", "value": "SPY"},
        ],
        "as_of": "2026-06-05T14:32:00+00:00",
        "session": SESSION,
        "dedupe_key": row.dedupe_key,
        "alerts": [FLIP.to_json()],
        "delayed": True,
    }
    assert call.headers["content-type"] == "application/json"
    assert call.headers["idempotency-key"] == row.dedupe_key
    timestamp, signature = call.headers["x-flowbot-timestamp"], call.headers["x-flowbot-signature"]
    assert readme_verify(SECRET, timestamp, call.body, signature)
    assert verify_signature(SECRET, timestamp, call.body, signature)


async def test_webhook_signature_fails_when_anything_changes(webhook_rx: WebhookReceiver) -> None:
    """An altered body, another secret, an old timestamp or a malformed header fails."""
    dest = WebhookDestination(webhook_rx.url, SECRET, min_interval=0)
    await dest.send(envelope(rendered(Dialect.PLAIN)))
    await dest.close()
    (call,) = webhook_rx.wait_for(1)
    ts, sig = call.headers["x-flowbot-timestamp"], call.headers["x-flowbot-signature"]
    altered = call.body.replace(b'"critical"', b'"info"')
    assert altered != call.body
    now = float(ts)
    assert verify_signature(SECRET, ts, call.body, sig, now=now)
    assert not verify_signature(SECRET, ts, altered, sig, now=now)
    assert not readme_verify(SECRET, ts, altered, sig)
    assert not verify_signature("other-secret", ts, call.body, sig, now=now)
    assert not verify_signature(SECRET, ts, call.body, sig, now=now + 301)  # replayed later
    assert not verify_signature(SECRET, str(int(ts) + 1), call.body, sig, now=now)
    assert not verify_signature(SECRET, "soon", call.body, sig, now=now)
    assert not verify_signature(SECRET, ts, call.body, sig.removeprefix("sha256="), now=now)
    assert not verify_signature(SECRET, ts, call.body, "sha256=é", now=now)


@pytest.mark.parametrize(
    ("timestamp", "now", "body", "valid"),
    [
        ("1780000000", 1780000000.0, b'{"a":1}', True),  # fresh
        ("1780000000", 1780000299.0, b'{"a":1}', True),  # within 5 minutes
        ("1780000000", 1780000301.0, b'{"a":1}', False),  # too old
        ("1780000000", 1780000000.0, '{"s":"é"}'.encode(), True),  # non-ASCII body
    ],
)
def test_verify_signature_matches_the_readme_snippet(
    timestamp: str, now: float, body: bytes, valid: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The library helper and the README snippet (stdlib only) agree on each case."""
    header = sign(SECRET, timestamp, body)
    monkeypatch.setattr(time, "time", lambda: now)
    assert verify_signature(SECRET, timestamp, body, header) is valid
    assert readme_verify(SECRET, timestamp, body, header) is valid


async def test_webhook_idempotency_key_is_stable_across_retries(
    webhook_rx: WebhookReceiver,
) -> None:
    """A failed send and its two retries of one outbox row carry the same key, so the
    receiver can drop the duplicate; the key is the row's dedupe key."""
    row = envelope(rendered(Dialect.PLAIN))
    dest = WebhookDestination(webhook_rx.url, SECRET, min_interval=0)
    webhook_rx.fail_next(500)
    with pytest.raises(DeliveryError):
        await dest.send(row)
    await dest.send(row)
    await dest.send(row)
    await dest.send(envelope(rendered(Dialect.PLAIN), id=8, dedupe_key="another-row"))
    await dest.close()
    keys = [c.headers["idempotency-key"] for c in webhook_rx.calls]
    assert keys == [row.dedupe_key] * 3 + ["another-row"]
    assert [c.status for c in webhook_rx.calls] == [500, 200, 200, 200]
    assert webhook_rx.duplicates == 1


async def test_webhook_text_is_plain_and_literal(webhook_rx: WebhookReceiver) -> None:
    """API text arrives exactly as the API sent it: no escapes, no entities."""
    message = rendered(Dialect.PLAIN, symbol=HOSTILE)
    dest = WebhookDestination(webhook_rx.url, SECRET, min_interval=0)
    await dest.send(envelope(message))
    await dest.close()
    (payload,) = webhook_rx.payloads
    assert payload["text"] == f"{HOSTILE} regime flip: dealers now short gamma"
    assert payload["fields"][1] == {"name": "Symbol", "value": HOSTILE}


async def test_webhook_without_secret_is_unsigned_and_a_notice_has_no_alert() -> None:
    """Without ``secret_env`` no signature headers are sent; a notice (no alerts) has null
    rule/symbol/state and ``as_of`` = when it was queued."""
    with WebhookReceiver() as rx:
        dest = WebhookDestination(rx.url, min_interval=0)
        notice = rendered(Dialect.PLAIN, severity=Severity.WARNING)
        await dest.send(envelope(notice, category=Category.NOTICE, alerts=()))
        await dest.close()
        (call,) = rx.wait_for(1)
    assert "x-flowbot-signature" not in call.headers
    assert "x-flowbot-timestamp" not in call.headers
    payload = call.json()
    assert (payload["kind"], payload["rule"], payload["symbol"], payload["state"]) == (
        "notice",
        None,
        None,
        None,
    )
    assert payload["severity"] == "warning" and payload["alerts"] == []
    assert payload["as_of"] == T0.isoformat()


async def test_webhook_wrong_secret_is_permanent_and_secret_never_shows(
    webhook_rx: WebhookReceiver,
) -> None:
    """The receiver refuses a wrong signature (401): permanent, no secret in the error."""
    dest = WebhookDestination(webhook_rx.url, "wrong-SECRET-value", min_interval=0)
    with pytest.raises(DeliveryError) as caught:
        await dest.send(envelope(rendered(Dialect.PLAIN)))
    await dest.close()
    assert not caught.value.recoverable and "HTTP 401" in str(caught.value)
    assert leaks(caught.value, "wrong-SECRET-value", SECRET, WEBHOOK_TOKEN) == []


def test_webhook_secret_variable_must_be_set() -> None:
    """``secret_env`` naming an unset variable stops the build rather than sending unsigned."""
    cfg = WebhookConfig.model_validate({"name": "ops", "kind": "webhook", "secret_env": "OPS_KEY"})
    with pytest.raises(MissingSecret, match="OPS_KEY"):
        webhook.KIND.build(cfg, BuildContext(environ={"WEBHOOK_URL": "http://127.0.0.1:9/h"}))


async def test_receiver_outage_window_then_recovery(webhook_rx: WebhookReceiver) -> None:
    """``fail_for`` answers 500 to everything inside the window and nothing after it."""
    dest = WebhookDestination(webhook_rx.url, SECRET, min_interval=0)
    webhook_rx.fail_for(60, 503)
    for _ in range(2):
        with pytest.raises(DeliveryError) as caught:
            await dest.send(envelope(rendered(Dialect.PLAIN)))
        assert caught.value.recoverable
    with WebhookReceiver(SECRET) as other:
        other.fail_for(0.05, 500)
        time.sleep(0.1)  # past the window: the next request is accepted
        later = WebhookDestination(other.url, SECRET, min_interval=0)
        await later.send(envelope(rendered(Dialect.PLAIN)))
        await later.close()
        assert [c.status for c in other.calls] == [200]
    await dest.close()
    assert [c.status for c in webhook_rx.calls] == [503, 503]


# ---------------------------------------------------------------------- the receivers
def _embed(**overrides: Any) -> dict[str, Any]:
    return {"embeds": [{"title": "t", **overrides}], "allowed_mentions": {"parse": []}}


def _card(body: list[dict[str, Any]], **card: Any) -> dict[str, Any]:
    content = {"type": "AdaptiveCard", "version": "1.4", "body": body, **card}
    content = {k: v for k, v in content.items() if v is not None}
    attachment = {"contentType": "application/vnd.microsoft.card.adaptive", "content": content}
    return {"type": "message", "attachments": [attachment]}


@pytest.mark.parametrize(
    ("make", "payload", "headers", "status"),
    [
        # Discord: one character over 6,000 across the embed
        (DiscordReceiver, _embed(description="d" * 4096, footer={"text": "f" * 1904}), {}, 400),
        # Discord: no allowed_mentions, so text in content could ping
        (DiscordReceiver, {"content": "hi"}, {}, 400),
        # Discord: an empty field value and a colour given as a hex string
        (DiscordReceiver, _embed(fields=[{"name": "n", "value": ""}]), {}, 400),
        (DiscordReceiver, _embed(color="#E01E5A"), {}, 400),
        # Discord: a valid execute
        (DiscordReceiver, _embed(color=0xE01E5A), {}, 200),
        # Teams: a card without its version, and one over 28 KB
        (TeamsReceiver, _card([{"type": "TextBlock", "text": "x"}], version=None), {}, 400),
        (TeamsReceiver, _card([{"type": "TextBlock", "text": "x" * 29_000}]), {}, 413),
        (TeamsReceiver, _card([{"type": "TextBlock", "text": "x"}]), {}, 202),
        # webhook: unsigned where a secret is set; no Idempotency-Key; not payload v1
        (lambda: WebhookReceiver(SECRET), {"version": 1}, {}, 401),
        (lambda: WebhookReceiver(), {"version": 1}, {}, 400),
        (lambda: WebhookReceiver(), {"version": 1}, {"Idempotency-Key": "k"}, 422),
    ],
    ids=[
        "discord-6001",
        "discord-no-allowed-mentions",
        "discord-empty-field",
        "discord-colour-string",
        "discord-ok",
        "teams-no-version",
        "teams-over-28kb",
        "teams-ok",
        "webhook-unsigned",
        "webhook-no-key",
        "webhook-incomplete",
    ],
)
def test_receivers_refuse_what_the_service_would(
    make: Callable[[], Any], payload: dict[str, Any], headers: dict[str, str], status: int
) -> None:
    """The receivers are strict like the services, so the delivery tests above mean
    something: each bad payload is refused with the service's status."""
    with make() as rx:
        url = rx.url + ("&" if "?" in rx.url else "?") + "wait=true"
        body = json.dumps(payload).encode()
        answer = httpx.post(
            url, content=body, headers={"Content-Type": "application/json", **headers}
        )
    assert answer.status_code == status
