"""Load a config in a fresh process and print what it cost, as JSON (used by the bench; not a test).

python -m bench.load_probe FILE

Figures: ``load_s`` (read, parse, validate, cross-check: ``load_config_file``), ``compile_s`` (the compiled
policy, with the collector paused as the bot compiles it), ``rss_mb`` (resident memory after loading, settled as
the bot settles it: collected and frozen), ``peak_rss_mb`` (the most it held while loading), ``first_search_s``
(the first type-ahead after load, which builds an integration's index), ``reload_s`` (the same file loaded again
through ``PolicyHolder.reload``, taking over the indexes built so far), ``rss_after_reload_mb`` and
``peak_rss_after_reload_mb`` (the old policy is held while the new one is built).
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(path: str) -> dict[str, float]:
    from bench.registry import NOW
    from bot.lifecycle.policy_holder import PolicyHolder, settle_memory
    from policy.catalog import Catalog
    from policy.flows import CompiledPolicy
    from policy.validation import collector_paused, load_config_file

    started = time.perf_counter()
    config = load_config_file(path)
    loaded = time.perf_counter()
    with collector_paused():
        policy = CompiledPolicy(config, Catalog(config))
    compiled = time.perf_counter()
    settle_memory()
    rss = _status_mb("VmRSS")
    peak = _status_mb("VmHWM")
    identity = policy.directory.build_identity(slack_id=None, email=config.directory.users[0].email, now=NOW)
    searched = time.perf_counter()
    policy.requestable_resources(identity, NOW, "pro", limit=20)
    first_search = time.perf_counter() - searched
    holder = PolicyHolder(policy, path)
    reloading = time.perf_counter()
    if not holder.reload():
        raise SystemExit("the reload was refused")
    reload_s = time.perf_counter() - reloading
    del policy, config  # only the holder's policy is left
    gc.collect()
    return {
        "load_s": loaded - started,
        "compile_s": compiled - loaded,
        "rss_mb": rss,
        "peak_rss_mb": peak,
        "rss_after_reload_mb": _status_mb("VmRSS"),
        "peak_rss_after_reload_mb": _status_mb("VmHWM"),
        "first_search_s": first_search,
        "reload_s": reload_s,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
