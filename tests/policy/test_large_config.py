"""A coarse guard: the bench's large config (1,000 flows, 10,000 users, 100,000 resources) loads in seconds.

Not a timed test: 30 s is ten times what it takes here; the guard only catches a return to minutes (the
approvability check and the double YAML parse once took 172 s). The bench (``python -m bench``) has the figures.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.datasets import SIZES, build, group_name, user_email
from policy.flows import CompiledPolicy
from policy.validation import load_config_file, warnings

GUARD_SECONDS = 30


def test_the_large_config_loads_checks_and_compiles_in_under_30_seconds(tmp_path: Path) -> None:
    path = tmp_path / "accessbot.yml"
    path.write_text(json.dumps(build(SIZES["large"])), encoding="utf-8")  # JSON is YAML, and quick to write

    started = time.perf_counter()
    config = load_config_file(str(path))
    found = warnings(config)
    policy = CompiledPolicy(config)
    elapsed = time.perf_counter() - started

    print(f"large config: loaded, checked and compiled in {elapsed:.1f} s")
    assert elapsed < GUARD_SECONDS, f"loading the large config took {elapsed:.1f} s"
    sizes = (len(config.flows), len(config.directory.users), len(policy.catalog.resources))
    assert sizes == (1_000, 10_000, 100_000)
    assert found == []
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    user = policy.directory.build_identity(slack_id=None, email=user_email(3), now=now)
    assert group_name(3) in user.groups
    offered = policy.requestable_resources(user, now, "pro", limit=20)
    assert len(offered) == 20
    permission = policy.permissions_for(user, now, offered[0].key)[0]
    choice = policy.choose_flow(user, now, [offered[0].key], permission.name)
    assert choice.flow.name in {c.name for c in policy.usable_flows(user, now)}
