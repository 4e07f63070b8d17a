"""One command for the bench: ``python -m bench`` (from the repository root).

Builds the data sets deterministically (``bench/datasets.py``), writes them as ``accessbot.yml`` files, measures
every registered row (``bench/registry.py``) at every size and prints one Markdown table.

    python -m bench [--sizes small,large] [--only decisions,type-ahead] [--seconds 2] [--data DIR]
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure this checkout, not an installed copy

from bench.datasets import SIZES, write  # noqa: E402
from bench.registry import ROW_MODULES, SizeRun, measure_table, render  # noqa: E402


def machine() -> str:
    cores = os.cpu_count() or 0
    return f"{platform.machine()}, {cores} cores, Python {platform.python_version()}, {platform.system()}"


def reference_loop() -> float:
    """Seconds of a fixed pure-Python loop (2,000,000 additions), best of three: how fast this interpreter is on
    this machine now. Machines of the same kind differ by up to 2x from one session to the next; comparing two
    tables' figures means comparing their reference loops first."""
    best = float("inf")
    for _ in range(3):
        started, total = time.perf_counter(), 0
        for i in range(2_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,large", help="comma-separated: " + ", ".join(SIZES))
    parser.add_argument("--only", default="", help="comma-separated words; rows whose name or label has one")
    parser.add_argument("--seconds", type=float, default=2.0, help="how long each throughput is measured")
    parser.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "accessbot-bench"))
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.sizes.split(",") if n.strip()]
    unknown = [n for n in names if n not in SIZES]
    if unknown:
        parser.error(f"unknown size(s) {', '.join(unknown)}; known: {', '.join(SIZES)}")
    for module in ROW_MODULES:
        importlib.import_module(module)
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    reference = reference_loop()
    runs = []
    for name in names:
        started = time.perf_counter()
        path = write(SIZES[name], data)
        print(f"data set {name}: {path} ({path.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s)")
        runs.append(SizeRun(SIZES[name], path, args.seconds))
    only = [w.strip() for w in args.only.split(",") if w.strip()]
    table = measure_table(runs, only or None)
    print()
    print(f"machine: {machine()}; reference loop (2M additions, best of 3): {reference:.3f} s at the start, "
          f"{reference_loop():.3f} s at the end")
    print(render(runs, table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
