"""Failover of replicas on PostgreSQL: kill -9 the leader at a random moment, many times.

Each run starts a fresh database on a PostgreSQL server started here (the tests' own
``tests/support/postgres.py``), the sandbox on the end-to-end scenario and the local Slack
Web API, and two real ``flowbot run`` replicas. The scenario's market is stepped through its
five scripted alerts (10:33, 11:06, 12:04, 13:16 New York) while, at a moment drawn uniformly
over the stepping, the replica that leads is killed with SIGKILL and a new follower is
started in its place. Per run it records:

- failover: the kill → the first summary request of the new leader (wall seconds);
- duplicates: posts of an alert already posted, with their time relative to the kill;
- lost: scripted alerts never posted.

    .venv/bin/python bench/failover.py [--runs 20] [--seed N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.sim import Sandbox, load_scenario
from tests.support.postgres import PostgresServer
from tests.support.slack_api import SlackApiServer
from tests.test_e2e_replicas import CLAIM_SECONDS, follows, leads, pg_config
from tests.test_e2e_run import SCENARIO, SUMMARY, BotProcess, _env, _kind, _wait_until

EXPECTED = [
    ("regime_flip", "SPY"),
    ("candidate", "NVDA"),
    ("regime_flip_ended", "SPY"),
    ("regime_flip", "IWM"),
    ("leaderboard_entry", "AMD"),
]
STEPS = ("10:33", "11:06", "12:04", "13:16")
STEP_SECONDS = 2.5  # wall time between market steps: a kill lands anywhere in 10 s of alerts


def one_run(server: PostgresServer, rng: random.Random, tmp: Path) -> dict[str, object]:
    """One database, two replicas, one kill at a random moment; what happened."""
    url = server.create_database()
    with Sandbox(scenario=load_scenario(SCENARIO), speed=0) as sb, SlackApiServer() as slack:
        cfg = pg_config(tmp, sb, slack, url)
        env = _env(slack.token)
        bots = [BotProcess(tmp, cfg, env, "r0")]
        try:
            _wait_until(lambda: leads(bots[0]), "the first replica to lead")
            bots.append(BotProcess(tmp, cfg, env, "r1"))
            _wait_until(lambda: follows(bots[1]), "the second replica to follow")
            time.sleep(1.0)  # a few polls of the 09:30 market: the baseline
            kill_at = rng.uniform(0, STEP_SECONDS * len(STEPS))
            killed: dict[str, float] = {}

            def kill_leader() -> None:
                leader = next(b for b in bots if b.proc.poll() is None and leads(b))
                leader.proc.kill()
                leader.proc.wait(10)
                killed["wall"] = time.time()
                killed["mono"] = time.monotonic()
                bots.append(BotProcess(tmp, cfg, env, f"r{len(bots)}"))

            timer = threading.Timer(kill_at, kill_leader)
            timer.start()
            for step in STEPS:
                sb.set_time_ny(step)
                time.sleep(STEP_SECONDS)
            timer.join()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and {_kind(p) for p in slack.posts} < set(EXPECTED):
                time.sleep(0.2)
            time.sleep(CLAIM_SECONDS + 2)  # a stray second delivery would land by now
            polls = [
                r.wall
                for r in sb.requests()
                if r.path.startswith(SUMMARY) and r.wall > killed["wall"]
            ]
        finally:
            for b in bots:
                if b.proc.poll() is None:
                    b.stop()
    posts = slack.posts
    seen: set[tuple[str, str]] = set()
    duplicates = []
    for p in posts:
        kind = _kind(p)
        if kind in seen:
            duplicates.append((kind, round(p.at - killed["mono"], 3)))
        seen.add(kind)
    return {
        "kill_at": round(kill_at, 2),
        "failover": round(min(polls) - killed["wall"], 3) if polls else None,
        "duplicates": duplicates,
        "lost": [k for k in EXPECTED if k not in seen],
        "posts": len(posts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    results = []
    with PostgresServer() as server:
        for i in range(args.runs):
            tmp = Path(tempfile.mkdtemp(prefix=f"flowbot-failover-{i}-"))
            result = one_run(server, rng, tmp)
            results.append(result)
            print(f"run {i + 1:2d}: {result}", flush=True)
    failovers = [float(r["failover"]) for r in results if r["failover"] is not None]  # type: ignore[arg-type]
    duplicates = sum(len(r["duplicates"]) for r in results)  # type: ignore[arg-type]
    lost = sum(len(r["lost"]) for r in results)  # type: ignore[arg-type]
    print(f"\nfailover over {args.runs} kill -9 runs (seed {seed}):")
    if failovers:
        print(
            f"  kill -> first poll by the new leader: median {statistics.median(failovers):.2f} s, "
            f"max {max(failovers):.2f} s"
        )
    print(f"  duplicate posts: {duplicates}; lost alerts: {lost}")


if __name__ == "__main__":
    main()
