"""Policy decisions per second with 1,000 flows and 100,000 resources (prints figures; not a test).

python bench/bench_policy.py [--flows 1000] [--resources 100000] [--seconds 3]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure this checkout, not an installed copy

from policy.config import Config  # noqa: E402
from policy.flows import CompiledPolicy  # noqa: E402
from policy.identity import Identity  # noqa: E402


def build_config(flows: int, resources: int) -> Config:
    integrations = [
        {
            "name": f"int{i}",
            "type": "noop",
            "resources": [
                {
                    "type": "database",
                    "name": f"db{i}_{j}",
                    "tags": {"env": random.choice(["prod", "staging"])},
                }
                for j in range(resources // 100)
            ],
            "permissions": {"read_only": {}, "read_write": {"risk_level": "high"}},
        }
        for i in range(100)
    ]
    flow_list = [
        {
            "name": f"flow{k}",
            "requestors": {"conditions": [{"attribute": "group", "op": "is", "values": [f"team{k % 200}"]}]},
            "targets": [
                {
                    "integration": f"int{k % 100}",
                    "permissions": ["read_only"],
                    "resources": {"tags": {"env": "prod"}},
                }
            ],
            "grant_for": "4h",
            "approval": {
                "type": "approvers",
                "groups": [{"conditions": [{"attribute": "group", "op": "is", "values": ["dba"]}]}],
            },
        }
        for k in range(flows)
    ]
    return Config.model_validate({"integrations": integrations, "flows": flow_list})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=1000)
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    random.seed(7)
    started = time.perf_counter()
    config = build_config(args.flows, args.resources)
    loaded = time.perf_counter()
    policy = CompiledPolicy(config)
    compiled = time.perf_counter()
    print(
        f"config: {args.flows} flows, {len(policy.catalog.resources)} resources; "
        f"validate {loaded - started:.2f}s, compile {compiled - loaded:.2f}s"
    )
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    users = [
        Identity(slack_id=f"U{i}", email=f"u{i}@example.com", groups=frozenset({f"team{i % 200}"}))
        for i in range(1000)
    ]
    prod = {k: r for k, r in policy.catalog.resources.items() if r.tag("env") == "prod"}
    by_integration: dict[str, list[str]] = {}
    for key, resource in prod.items():
        by_integration.setdefault(resource.integration, []).append(key)
    cases = []
    for user in users:
        team = int(next(iter(user.groups))[4:])
        integration = f"int{team % 100}"
        cases.append((user, random.choice(by_integration[integration])))
    decisions = 0
    deadline = time.perf_counter() + args.seconds
    begin = time.perf_counter()
    while time.perf_counter() < deadline:
        for user, key in cases[:200]:
            policy.choose_flow(user, now, [key], "read_only")
            decisions += 1
    elapsed = time.perf_counter() - begin
    print(
        f"choose_flow (who may request this resource+permission, which flow, what it needs): "
        f"{decisions / elapsed:,.0f} decisions/s"
    )
    varied = [  # every user, 20 different resources each
        (user, [random.choice(by_integration[f"int{int(next(iter(user.groups))[4:]) % 100}"])])
        for _ in range(20)
        for user in users
    ]
    decisions = 0
    deadline = time.perf_counter() + args.seconds
    begin = time.perf_counter()
    while time.perf_counter() < deadline:
        for user, keys in varied:
            policy.choose_flow(user, now, keys, "read_only")
        decisions += len(varied)
    elapsed = time.perf_counter() - begin
    print(f"choose_flow, 1,000 users, a random resource each time: {decisions / elapsed:,.0f} decisions/s")
    count = 0
    begin = time.perf_counter()
    for user, _ in cases[:200]:
        policy.usable_flows(user, now)
        count += 1
    print(f"usable_flows per user: {count / (time.perf_counter() - begin):,.0f}/s")
    strangers = [
        Identity(slack_id=f"S{i}", email=f"s{i}@example.com", groups=frozenset({f"team{i % 200}"}))
        for i in range(2000)
    ]
    begin = time.perf_counter()
    for stranger in strangers:
        policy.usable_flows(stranger, now)
    print(f"usable_flows per user never seen before: {len(strangers) / (time.perf_counter() - begin):,.0f}/s")
    begin = time.perf_counter()
    for user, _ in cases[:50]:
        policy.requestable_resources(user, now, "db", limit=100)
    print(f"type-ahead search (100 options): {50 / (time.perf_counter() - begin):,.0f} searches/s")


if __name__ == "__main__":
    main()
