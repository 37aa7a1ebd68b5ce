"""The FlashAlpha client against scripted transports: error mapping, retries, tolerant parsing."""

from __future__ import annotations

import asyncio
import gc
import json

import httpx
import pytest
import stamina

from bot.api.client import FlashAlphaClient
from bot.api.errors import (
    AuthError,
    MalformedResponse,
    QuotaExceeded,
    SymbolNotFound,
    TierRestricted,
    Unavailable,
)
from bot.api.models import CumulativeFlow

KEY = "fa-secret-key-123"
ERRORS = {
    401: {"title": "Unauthorized", "status": 401, "detail": "Invalid API key."},
    403: {
        "status": "ERROR",
        "error": "tier_restricted",
        "message": "Requires Alpha.",
        "current_plan": "Growth",
        "required_plan": "Alpha",
    },
    404: {"error": "symbol_not_found", "message": "No data for XYZ."},
    429: {
        "status": "ERROR",
        "error": "Quota exceeded",
        "message": "spent",
        "current_plan": "Growth",
        "limit": 2500,
        "upgrade_to": "Alpha",
        "reset_at": "2026-03-01T00:00:00Z",
    },
}


@pytest.fixture(autouse=True)
def fast_retries():
    stamina.set_testing(True, attempts=3)
    yield
    stamina.set_testing(False)


def client_for(handler) -> FlashAlphaClient:
    return FlashAlphaClient("http://api.test", KEY, transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("status", "error", "check"),
    [
        (401, AuthError, lambda e: True),
        (403, TierRestricted, lambda e: e.required_plan == "Alpha" and e.current_plan == "Growth"),
        (404, SymbolNotFound, lambda e: True),
        (429, QuotaExceeded, lambda e: e.retry_after == 120 and e.reset_at.year == 2026),
    ],
)
async def test_documented_errors_map_to_their_exception(status, error, check):
    """Each documented status raises its own exception with the body's details, never the key."""
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, json=ERRORS[status], headers={"Retry-After": "120"})

    async with client_for(handler) as client:
        with pytest.raises(error) as err:
            await client.flow_summary("XYZ")
    assert check(err.value) and KEY not in str(err.value)
    assert len(calls) == 1, "client errors are not retried"
    assert calls[0].headers["X-Api-Key"] == KEY


async def test_5xx_is_retried_then_succeeds():
    """A 502 then a 200 within one call returns the 200's data."""
    answers = iter(
        [
            httpx.Response(502),
            httpx.Response(200, json={"symbol": "SPY", "flow_direction": "neutral"}),
        ]
    )
    async with client_for(lambda r: next(answers)) as client:
        summary = await client.flow_summary("SPY")
    assert summary.flow_direction == "neutral"


async def test_persistent_outage_raises_unavailable():
    """A source down for every retry raises Unavailable (the engine keeps the old snapshot)
    after exactly ``retries + 1`` requests (2 + 1), the first one included."""
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503)

    async with client_for(handler) as client:
        with pytest.raises(Unavailable):
            await client.flow_anomaly("SPY")
    assert len(calls) == 3


async def test_the_same_path_with_other_params_is_another_request_and_no_cookie_is_kept():
    """Requests built from remembered URLs still carry each call's own query, the key and
    the timeout; a Set-Cookie from the server is not sent back."""
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = {"metric": request.url.params["metric"], "n": 5, "entries": []}
        return httpx.Response(200, json=body, headers={"Set-Cookie": "track=1; Path=/"})

    async with client_for(handler) as client:
        for metric in ("heat", "pin_risk", "heat"):
            await client.zero_dte_leaderboard(metric, n=5)
    assert [str(r.url) for r in seen] == [
        "http://api.test/v1/flow/zero-dte/leaderboard?metric=heat&n=5",
        "http://api.test/v1/flow/zero-dte/leaderboard?metric=pin_risk&n=5",
        "http://api.test/v1/flow/zero-dte/leaderboard?metric=heat&n=5",
    ]
    assert all(r.headers["X-Api-Key"] == KEY and "cookie" not in r.headers for r in seen)
    assert all(r.extensions["timeout"]["read"] == 10.0 for r in seen)


@pytest.mark.parametrize(
    "body",
    [
        b'{"symbol": "SPY", "flow_dire',
        b"[1, 2]",
        json.dumps({"flow_direction": "neutral"}).encode(),
    ],
    ids=["truncated JSON", "not an object", "missing symbol"],
)
async def test_malformed_bodies_raise_malformed_response(body):
    """A 200 the bot cannot understand is a MalformedResponse, not a crash."""
    async with client_for(lambda r: httpx.Response(200, content=body)) as client:
        with pytest.raises(MalformedResponse):
            await client.flow_summary("SPY")


async def test_unknown_labels_and_extra_fields_are_kept_as_text():
    """A new flow_direction and unknown fields parse; the label stays as the server sent it."""
    body = {
        "symbol": "spy ",
        "flow_direction": "turbulent",
        "brand_new_field": 1,
        "flow_gex_pct_shift": None,
        "as_of": "2026-05-12T18:42:10.1234567Z",
    }
    async with client_for(lambda r: httpx.Response(200, json=body)) as client:
        summary = await client.flow_summary("SPY")
    assert summary.flow_direction == "turbulent" and summary.symbol == "SPY"
    assert summary.as_of.microsecond == 123456


async def test_leaderboard_params_and_rate_limit_headers():
    """Leaderboard calls send n/windowMinutes and remember X-RateLimit-* (unlimited → None)."""
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(request.url.params)
        return httpx.Response(
            200,
            json={"generatedUtc": "2026-05-12T18:42:10Z", "buyers": [], "sellers": []},
            headers={"X-RateLimit-Limit": "unlimited", "X-RateLimit-Remaining": "42"},
        )

    async with client_for(handler) as client:
        await client.options_leaderboard(5, 120)
    assert seen == {"n": "5", "windowMinutes": "120"}
    assert client.rate_limit.limit is None and client.rate_limit.remaining == 42


def test_models_share_their_set_of_given_fields():
    """Models whose bodies gave the same fields share one set (memory: a cumulative body has
    hundreds of points); each still reports exactly what its own body gave, and a copy with
    an update changes only the copy's."""
    flow = CumulativeFlow.model_validate(
        {
            "symbol": "spy",
            "points": [
                {"ts": "2026-06-05T13:30:00Z", "netVolume": 5, "cumulative": 5, "vwap": 1.5},
                {"ts": "2026-06-05T13:31:00Z", "netVolume": 2, "cumulative": 7, "vwap": 1.6},
                {"ts": "2026-06-05T13:32:00Z", "netVolume": 1},
            ],
        }
    )
    first, second, third = flow.points
    assert first.model_fields_set is second.model_fields_set
    assert third.model_fields_set == {"ts", "net_volume"}
    copied = first.model_copy(update={"vwap": 9.0, "trade_count": 3})
    assert "trade_count" in copied.model_fields_set
    assert (
        first.model_fields_set
        == second.model_fields_set
        == {
            "ts",
            "net_volume",
            "cumulative",
            "vwap",
        }
    )


async def test_a_prefetched_request_is_sent_once_and_its_answer_taken_once():
    """An early request answers the next identical call (no second request); the call after
    that asks again; another symbol was never prefetched and asks at once."""
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        symbol = request.url.path.rsplit("/", 1)[1]
        return httpx.Response(200, json={"symbol": symbol, "flow_direction": "neutral"})

    async with client_for(handler) as client:
        client.prefetch([lambda: client.flow_summary("SPY")])
        await client.first_answer(timeout=5)
        assert calls == ["/v1/flow/summary/SPY"]
        first = await client.flow_summary("SPY")
        assert calls == ["/v1/flow/summary/SPY"] and first.symbol == "SPY"
        await client.flow_summary("SPY")
        await client.flow_summary("QQQ")
    assert calls == ["/v1/flow/summary/SPY", "/v1/flow/summary/SPY", "/v1/flow/summary/QQQ"]


async def test_a_prefetched_error_reaches_the_call_that_takes_it():
    """A 404 to the early request is raised to the poll that takes it, as if it had asked."""
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(404, json=ERRORS[404])

    async with client_for(handler) as client:
        client.prefetch([lambda: client.flow_summary("XYZ")])
        with pytest.raises(SymbolNotFound):
            await client.flow_summary("XYZ")
    assert len(calls) == 1


async def test_answers_nobody_took_are_dropped_at_close(caplog):
    """A prefetch still in flight or answered with an error and never taken ends with the
    client: nothing pending, nothing logged as a lost exception."""
    release = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("SLOW"):
            await release.wait()
        return httpx.Response(503)

    client = FlashAlphaClient("http://api.test", KEY, transport=httpx.MockTransport(handler))
    client.prefetch([lambda: client.flow_summary("FAIL"), lambda: client.flow_summary("SLOW")])
    await asyncio.sleep(0.05)
    await client.aclose()
    await asyncio.sleep(0)
    gc.collect()
    await asyncio.sleep(0)
    assert "never retrieved" not in caplog.text


async def test_a_symbol_is_one_path_segment():
    """A symbol with `/`, `?` or `#` (auto-watched symbols come from API responses) cannot
    change the endpoint or swallow the query: it is percent-encoded; `BRK.B` is left as is."""
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json={"symbol": "X", "flow_direction": "neutral"})

    async with client_for(handler) as client:
        for symbol in ("BRK.B", "A/B", "C?D", "E#F"):
            await client.flow_summary(symbol, expiry="2026-06-05")
    assert [u.raw_path.decode() for u in seen] == [
        "/v1/flow/summary/BRK.B?expiry=2026-06-05",
        "/v1/flow/summary/A%2FB?expiry=2026-06-05",
        "/v1/flow/summary/C%3FD?expiry=2026-06-05",
        "/v1/flow/summary/E%23F?expiry=2026-06-05",
    ]
