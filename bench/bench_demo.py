"""How fast `accessbot demo` is ready, and what a page action costs end to end.

    python bench/bench_demo.py [N]

Prints the time from start to a served page, and the latency of N page actions (`/access list`: the page's
POST, the signed payload to the bot, the bot's answer through its response_url into the workspace).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import urllib.request

from bot.demo.server import Demo


def main(n: int) -> None:
    started = time.perf_counter()
    with Demo(port=0) as demo:
        with urllib.request.urlopen(demo.url, timeout=10) as answer:
            answer.read()
        ready = time.perf_counter() - started
        latencies = []
        for _ in range(n):
            body = json.dumps({"user": "UALICE", "type": "command", "text": "/access list"}).encode()
            request = urllib.request.Request(f"{demo.url}demo/act", data=body,
                                             headers={"Content-Type": "application/json"})
            t0 = time.perf_counter()
            with urllib.request.urlopen(request, timeout=30) as answer:
                answer.read()
            latencies.append((time.perf_counter() - t0) * 1000)
        latencies.sort()
        print(f"demo ready (bot assembled, page served) in {ready:.2f} s")
        print(f"/access list round trip over {n} actions: median {statistics.median(latencies):.1f} ms, "
              f"p95 {latencies[int(0.95 * (n - 1))]:.1f} ms, max {latencies[-1]:.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
