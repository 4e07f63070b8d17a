"""The bench table: a registry of row functions, each measured once per data set size.

A row function takes the :class:`SizeRun` of one size and returns its figures by label, already formatted
(``{"config load: YAML → compiled policy": "2.41 s"}``). Register it with :func:`rows`, naming every label it
can return, in a module listed in :data:`ROW_MODULES`; ``python -m bench`` imports those and prints one table,
a column per size. To add rows (HTTP ack latency, expiry burst, outbox), write ``bench/rows_<topic>.py`` with
``@rows(...)`` functions and add the module to :data:`ROW_MODULES`.
"""

from __future__ import annotations

import gc
import statistics
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from bench.datasets import Size

ROW_MODULES: list[str] = ["bench.rows_policy", "bench.rows_http", "bench.rows_restart", "bench.rows_workers"]
"""The modules whose ``@rows`` functions make the table, in table order."""

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
"""The moment every decision of the bench is taken at (a Monday noon; the data sets have no windows)."""

Figures = dict[str, str]
RowFunction = Callable[["SizeRun"], Figures]


@dataclass(frozen=True, slots=True)
class RowGroup:
    labels: tuple[str, ...]
    measure: RowFunction
    sizes: frozenset[str] | None  # None = every size

    @property
    def name(self) -> str:
        return getattr(self.measure, "__name__", self.labels[0])


REGISTRY: list[RowGroup] = []


def rows(*labels: str, sizes: Sequence[str] | None = None) -> Callable[[RowFunction], RowFunction]:
    """Register a row function that returns figures for ``labels`` (``sizes``: only for these sizes)."""

    def register(measure: RowFunction) -> RowFunction:
        REGISTRY.append(RowGroup(tuple(labels), measure, frozenset(sizes) if sizes else None))
        return measure

    return register


@dataclass
class SizeRun:
    """One data set size: its YAML file and, loaded once on demand, what row functions share."""

    size: Size
    path: Path
    seconds: float  # how long each throughput figure is measured
    shared: dict[str, Any] = field(default_factory=dict)  # for row functions to keep what they built

    @cached_property
    def policy(self) -> Any:
        """The compiled policy, loaded once; then the objects alive are frozen out of the cyclic GC's way.

        ``gc.freeze()`` after a load keeps collections from walking the config's millions of long-lived objects
        in the middle of a decision (without it, p99 latencies here are GC pauses). The bot should do the same
        after each policy load.
        """
        from policy.flows import CompiledPolicy
        from policy.validation import load_config_file

        policy = CompiledPolicy(load_config_file(str(self.path)))
        gc.collect()
        gc.freeze()
        return policy


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    """(p50, p99) of ``samples``."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[98]


def measure_table(runs: Sequence[SizeRun], selected: Sequence[str] | None = None) -> list[tuple[str, list[str]]]:
    """Every registered row at every size: ``[(label, [figure per run])]`` in registration order."""
    table: dict[str, list[str]] = {}
    for group in REGISTRY:
        if selected and not any(s in group.name or any(s in label for label in group.labels) for s in selected):
            continue
        for label in group.labels:
            table.setdefault(label, ["—"] * len(runs))
        for column, run in enumerate(runs):
            if group.sizes is not None and run.size.name not in group.sizes:
                continue
            try:
                figures = group.measure(run)
            except Exception as exc:  # noqa: BLE001 - a failing row is shown as such; the others still run
                traceback.print_exc()
                figures = {label: f"error: {type(exc).__name__}" for label in group.labels}
            for label, value in figures.items():
                table.setdefault(label, ["—"] * len(runs))[column] = value
            print(f"  measured {group.name} at {run.size.name}", flush=True)
    return list(table.items())


def render(runs: Sequence[SizeRun], table: Sequence[tuple[str, list[str]]]) -> str:
    """A Markdown table: a row per figure, a column per size."""
    header = ["what", *(f"{r.size.name} ({_describe(r.size)})" for r in runs)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join([label, *values]) + " |" for label, values in table]
    return "\n".join(lines)


def _describe(size: Size) -> str:
    return f"{size.flows:,} flows, {size.users:,} users, {size.resources:,} resources"
