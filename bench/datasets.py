"""The bench's data sets, built deterministically: the same size and seed give the same YAML, byte for byte.

``small``: 10 flows, 100 users, 1,000 resources. ``large``: 1,000 flows, 10,000 users in 500 groups, 100,000
resources in 20 integrations × 20 permissions. Each is written as an ``accessbot.yml`` (that is how users load
it) and the bench measures loading that file.

Every flow is one the side-by-side engines (Cedar, Casbin) can express exactly: a requestor group, one
integration, some permissions and a resource selector (``any``, ``tags``, ``names``, ``except``) or a bundle of
such targets; ``bench/engines.py`` translates them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class Size:
    name: str
    flows: int
    users: int
    groups: int
    integrations: int
    permissions: int  # per integration
    resources: int  # in all


SIZES: dict[str, Size] = {
    "small": Size("small", flows=10, users=100, groups=10, integrations=2, permissions=5, resources=1_000),
    "large": Size("large", flows=1_000, users=10_000, groups=500, integrations=20, permissions=20, resources=100_000),
}
RESOURCE_TYPES = ("database", "schema", "bucket")
ENVS = ("prod", "staging", "dev")
TEAMS = tuple(f"team{i}" for i in range(40))
SEED = 14


def user_email(index: int) -> str:
    return f"user{index}@example.com"


def group_name(index: int) -> str:
    return f"g{index}"


def build(size: Size, seed: int = SEED) -> dict[str, Any]:
    """The config of ``size`` as plain data (what ``yaml.safe_load`` of its file gives)."""
    rng = random.Random(seed)
    users = [
        {
            "email": user_email(i),
            "slack_id": f"U{i:07d}",
            "groups": [group_name(i % size.groups)] + ([group_name((i * 7 + 3) % size.groups)] if i % 3 == 0 else []),
            "manager": user_email(i // 10) if i >= 10 else None,
            "attributes": {"department": f"dept{i % 25}", "level": str(1 + i % 7)},
        }
        for i in range(size.users)
    ]
    for user in users:
        if user["manager"] is None:
            del user["manager"]
    oncall = [
        {
            "schedule": f"rota{s}",
            "timezone": "Europe/Berlin",
            "rotation": {
                "every": "7d",
                "starts": "2026-01-05T09:00",  # a string to PyYAML (no seconds), a timestamp to YAML 1.2 parsers
                "members": [user_email((s * 13 + k) % size.users) for k in range(4)],
            },
        }
        for s in range(max(1, size.groups // 50))
    ]
    per_integration = size.resources // size.integrations
    integrations = []
    for i in range(size.integrations):
        permissions: dict[str, Any] = {}
        for p in range(size.permissions):
            permissions[f"perm{p}"] = {"risk_level": "high"} if p % 5 == 4 else {}
        resources = []
        for j in range(per_integration):
            env = ENVS[rng.randrange(len(ENVS))]
            resources.append(
                {
                    "type": RESOURCE_TYPES[j % len(RESOURCE_TYPES)],
                    "name": f"{env}-{TEAMS[j % len(TEAMS)]}-{i}-{j}",
                    "path": f"cluster{j % 8}/{env}",
                    "tags": {"env": env, "team": TEAMS[j % len(TEAMS)]},
                }
            )
        integrations.append(
            {
                "name": f"int{i}",
                "type": "noop",
                "owners": [user_email(i * 17 % size.users)],
                "risk_level": "medium",
                "resources": resources,
                "permissions": permissions,
            }
        )
    bundles = [
        {
            "name": f"bundle{b}",
            "targets": [
                {
                    "integration": f"int{(b + t) % size.integrations}",
                    "permissions": [f"perm{b % size.permissions}"],
                    "resources": {"tags": {"team": TEAMS[(b + t) % len(TEAMS)]}},
                }
                for t in range(2)
            ],
        }
        for b in range(max(1, size.flows // 20))
    ]
    scopes = [
        {"name": f"scope{s}", "query": f'resource_tag.env = "prod" and resource_tag.team = "{TEAMS[s]}"'}
        for s in range(max(1, size.flows // 50))
    ]
    flows = [_flow(k, size, rng, integrations, len(bundles)) for k in range(size.flows)]
    return {
        "admins": [user_email(0)],
        "timezone": "UTC",
        "directory": {"users": users, "oncall": oncall},
        "integrations": integrations,
        "bundles": bundles,
        "access_scopes": scopes,
        "flows": flows,
    }


def _flow(k: int, size: Size, rng: random.Random, integrations: list[dict[str, Any]], bundles: int) -> dict[str, Any]:
    integration = integrations[k % size.integrations]
    permissions = sorted({f"perm{(k + d) % size.permissions}" for d in (0, 1, 3)})
    shape = k % 5
    target: dict[str, Any]
    if shape == 0:
        target = {"integration": integration["name"], "permissions": permissions, "resources": {"any": True}}
    elif shape in (1, 2):
        target = {
            "integration": integration["name"],
            "permissions": permissions,
            "resources": {"tags": {"env": ENVS[k % 2]}},
        }
    elif shape == 3:
        names = [r["name"] for r in rng.sample(integration["resources"], min(20, len(integration["resources"])))]
        target = {"integration": integration["name"], "permissions": permissions, "resources": {"names": names}}
    else:
        target = {"bundle": f"bundle{k % bundles}"}
    flow: dict[str, Any] = {
        "name": f"flow{k}",
        "labels": ["bench", ENVS[k % 3]],
        "requestors": {"conditions": [{"attribute": "group", "op": "is", "values": [group_name(k % size.groups)]}]},
        "targets": [target],
        "grant_for": f"{1 + k % 8}h",
        "settings": {"require_justification": k % 2 == 0},
    }
    if k % 2 == 1:
        flow["approval"] = {
            "type": "approvers",
            "combine": "any_of",
            "groups": [
                {"conditions": [{"attribute": "group", "op": "is", "values": [group_name((k * 7) % size.groups)]}]},
                {"conditions": [{"attribute": "owner", "op": "is", "values": [True]}]},
            ],
            "escalation": {
                "every": "30m",
                "tiers": [{"conditions": [{"attribute": "user", "values": [user_email(1)]}]}],
            },
        }
    return flow


def write(size: Size, directory: Path, seed: int = SEED) -> Path:
    """Write ``size``'s ``accessbot.yml`` under ``directory`` (reused when it is already there)."""
    path = directory / f"accessbot-{size.name}-{seed}.yml"
    if not path.exists():
        text = yaml.dump(build(size, seed), Dumper=_dumper(), sort_keys=False, width=200, default_flow_style=None)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return path


def _dumper() -> type[yaml.SafeDumper]:
    return getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # type: ignore[no-any-return]
