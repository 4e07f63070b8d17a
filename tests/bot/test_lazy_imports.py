"""A serving bot loads the drivers of what its config uses, not of everything it could use: psycopg (~20 MB of
RSS) only with a PostgreSQL integration or database, httpx (~8 MB with what it pulls in) only once an incident
tool's schedule is read. Checked in a fresh interpreter that imports everything ``accessbot serve`` imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import bot.cli, bot.runtime, bot.slack.app  # what `accessbot serve` imports before it reads its config
from bot.clock import SystemClock
from bot.lifecycle.oncall import OncallReadings
from integrations.base import ConnectorContext, connector_factory

loaded = lambda: {name: name in sys.modules for name in ("psycopg", "httpx")}
seen = {"serving code": loaded()}
for kind in ("noop", "webhook", "slack_usergroup"):
    connector_factory(kind)
readings = OncallReadings(None, SystemClock(), env={})
readings.close()
seen["non-PostgreSQL connectors, on-call readings made"] = loaded()
readings._client()
seen["a schedule read"] = loaded()
connector_factory("postgresql")
seen["a PostgreSQL integration"] = loaded()
print(json.dumps(seen))
"""


def test_drivers_load_only_for_what_is_used() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {
        "serving code": {"psycopg": False, "httpx": False},
        "non-PostgreSQL connectors, on-call readings made": {"psycopg": False, "httpx": False},
        "a schedule read": {"psycopg": False, "httpx": True},
        "a PostgreSQL integration": {"psycopg": True, "httpx": True},
    }
