"""The seeds' polling pattern: one request at a time with the official ``flashalpha`` SDK.

Summary + flow-anomaly for each symbol, then the options leaderboard and the four 0DTE
leaderboards: the same 2 x N + 5 requests as ``flowbot once`` with every 0DTE metric watched.

    python bench/sdk_loop.py BASE_URL API_KEY SYMBOL [SYMBOL ...]
"""

from __future__ import annotations

import sys

from flashalpha import FlashAlpha


def main(base_url: str, key: str, names: list[str]) -> int:
    """Poll once; return the number of requests that failed."""
    fa = FlashAlpha(key, base_url=base_url)
    failed = 0
    calls = [(fa.flow_summary, s) for s in names] + [(fa.strategy_flow_anomaly, s) for s in names]
    calls.sort(key=lambda c: names.index(c[1]))  # per symbol: summary, then anomaly
    for call, symbol in calls:
        try:
            call(symbol)
        except Exception:
            failed += 1
    boards = [lambda: fa.flow_options_leaderboard(n=8, window_minutes=240)]
    for metric in ("heat", "pin_risk", "abs_flow", "charm_intensity"):
        boards.append(lambda m=metric: fa.flow_zero_dte_leaderboard(metric=m, n=8))
    for board in boards:
        try:
            board()
        except Exception:
            failed += 1
    return failed


if __name__ == "__main__":
    sys.exit(min(main(sys.argv[1], sys.argv[2], sys.argv[3:]), 1))
