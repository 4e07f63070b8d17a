"""Benchmark the query language: parse time per query and matches per second over 100,000 entitlements.

Run by hand: ``python bench/bench_query.py [--size N] [--repeat R]``. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from functools import partial

from policy.query import parse_query
from policy.resources import Entitlement, Permission, Resource, Risk

QUERIES = {
    "simple =": 'resource_name = "db-4242"',
    "integration !=": "integration != postgresql",
    "in list": "resource_type in (database, schema, bucket)",
    "contains": 'resource_path contains "/eu/"',
    "starts_with": "resource_name starts_with db-1",
    "tag =": "resource_tag.env = prod",
    "tag not contains": "resource_tag.team not contains pay",
    "risk >=": "resource_risk >= high",
    "compound": (
        "integration = postgresql and (resource_tag.env = prod or resource_tag.env = staging)\n"
        "and not permission in (admin, owner) and resource_risk <= high"
    ),
    "long or-chain": " or ".join(f"source_id = id-{i}" for i in range(50)),
}
RISKS: list[Risk] = ["low", "medium", "high", "critical"]


def catalog(size: int, seed: int = 0) -> list[Entitlement]:
    rng = random.Random(seed)
    permissions = [Permission("postgresql", name, rng.choice(RISKS)) for name in ("read", "write", "admin")]
    entitlements = []
    for i in range(size):
        env, team = rng.choice(["prod", "staging", "dev"]), rng.choice(["payments", "bi", "web"])
        tags = [("env", env), ("team", team)]
        resource = Resource(
            integration=rng.choice(["postgresql", "slack_usergroup", "webhook"]),
            type=rng.choice(["database", "schema", "usergroup", "bucket"]),
            name=f"db-{i}",
            path=f"/clusters/{rng.choice(['eu', 'us'])}/db-{i}",
            source_id=f"id-{i}",
            tags=tuple(tags[: rng.randint(0, 2)]),
            risk=rng.choice(RISKS),
        )
        entitlements.append(Entitlement(resource, rng.choice(permissions)))
    return entitlements


def best_of(repeat: int, run: Callable[[], object]) -> float:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return min(timings)


def parse_many(text: str, times: int) -> None:
    for _ in range(times):
        parse_query(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    start = time.perf_counter()
    parse_query("resource_name = x")
    print(f"first parse (builds the grammar, once per process): {(time.perf_counter() - start) * 1e3:.1f} ms")
    entitlements = catalog(args.size)
    baseline = best_of(args.repeat, lambda: [e for e in entitlements if True])
    print(f"baseline list comprehension: {args.size / baseline / 1e6:.1f} M items/s\n")

    print(f"{'query':<18} {'parse µs':>9} {'matches/s':>12} {'hits':>7}")
    parses = 200
    for label, text in QUERIES.items():
        parse_time = best_of(args.repeat, partial(parse_many, text, parses)) / parses
        query = parse_query(text)
        match_time = best_of(args.repeat, partial(query.filter, entitlements))
        hits = len(query.filter(entitlements))
        print(f"{label:<18} {parse_time * 1e6:>9.0f} {args.size / match_time / 1e6:>10.2f} M {hits:>7}")


if __name__ == "__main__":
    main()
