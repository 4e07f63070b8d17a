"""How long ``accessbot serve --http`` takes to be healthy on a data set, and what it holds then (not a test).

    python -m bench.serve_start                      # the large data set, SQLite
    python -m bench.serve_start --backend postgresql --size small
    python -m bench.serve_start --profile            # and where the start-up time goes (py-spy samples)
    python -m bench.serve_start --steps              # the start-up steps in this process: seconds and RSS each

The default prints, for the real serve process (:func:`bench.serve_process.served`): ``healthy_after_s`` (from
``Popen`` to the first 200 of ``GET /healthz``), its CPU time by then, ``rss_mb`` (``VmRSS``) when healthy and
again a few seconds later (work moved after the start is done by then) and the peak (``VmHWM``).

``--profile`` samples the serve process with py-spy from its first instant to healthy and prints the functions
where it spent the most samples (inclusive). ``--steps`` runs the same start-up in this interpreter (the start-up
checks, then :func:`bot.runtime.assemble` with its DEBUG timings) against the fake Slack and prints each step's
wall and CPU seconds and the RSS after it: where the time and the memory go, without a profiler.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.datasets import SIZES, Size, write

SETTLE_SECONDS = 5.0


def _status_mb(pid: int | str, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _serve_child() -> int | None:
    """The pid of this process's ``bot.cli serve`` child, once it exists."""
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if ppid == me and b"bot.cli\0serve" in command:
            return int(entry.name)
    return None


@contextmanager
def _sampled(out: Path) -> Iterator[Callable[[], None]]:
    """py-spy on the serve child from its first instant; the yielded function stops the sampling."""
    spy_path = shutil.which("py-spy")
    if spy_path is None:
        raise SystemExit("py-spy is not installed")
    spy: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()

    def attach() -> None:
        while not stop.is_set():
            pid = _serve_child()
            if pid is not None:
                spy.append(subprocess.Popen(
                    [spy_path, "record", "--pid", str(pid), "--rate", "250", "--format", "raw", "--output", str(out),
                     "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=attach, daemon=True)
    watcher.start()

    def finish() -> None:
        stop.set()
        watcher.join()
        for process in spy:
            process.send_signal(2)  # SIGINT: py-spy writes what it sampled
            process.wait(timeout=60)

    try:
        yield finish
    finally:
        finish()


def top_functions(raw: Path, limit: int = 30) -> list[tuple[int, str]]:
    """The functions with the most samples anywhere on the stack (inclusive), from py-spy's collapsed stacks."""
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        for frame in set(stack.split(";")):
            inclusive[frame] += int(count)
    return [(total, "(all samples)"), *((n, frame) for frame, n in inclusive.most_common(limit))]


def measure_serve(size: Size, path: Path, backend: str, *, profile: bool) -> dict[str, Any]:
    from bench.serve_process import served

    out = Path(tempfile.gettempdir()) / f"accessbot-serve-start-{os.getpid()}.txt"
    with _sampled(out) if profile else _nothing() as stop_sampling, \
            served(path, users=size.users, backend=backend) as bot:
        stop_sampling()
        pid = bot.process.pid
        figures: dict[str, Any] = {
            "size": size.name,
            "backend": backend,
            "healthy_after_s": round(bot.healthy_after, 2),
            "cpu_s_when_healthy": round(_cpu_seconds(pid), 2),
            "rss_mb_when_healthy": round(bot.rss_mb(), 1),
        }
        time.sleep(SETTLE_SECONDS)
        figures["rss_mb"] = round(bot.rss_mb(), 1)
        figures["peak_rss_mb"] = round(_status_mb(pid, "VmHWM"), 1)
        figures["cpu_s_after_settle"] = round(_cpu_seconds(pid), 2)
    if profile and out.exists():
        figures["py_spy_inclusive"] = [f"{n:6d}  {frame}" for n, frame in top_functions(out)]
        figures["py_spy_raw"] = str(out)  # collapsed stacks, for flamegraph.pl or a closer look
    return figures


@contextmanager
def _nothing() -> Iterator[Callable[[], None]]:
    yield lambda: None


class _Steps(logging.Handler):
    """Collects the ``start-up: STEP in N s`` DEBUG lines of :mod:`bot.runtime`, with the RSS after each."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.steps: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("start-up: "):
            self.steps.append(f"{message[len('start-up: '):]} (RSS {_status_mb('self', 'VmRSS'):.0f} MB)")


def measure_steps(size: Size, path: Path) -> dict[str, Any]:
    """The serve start-up in this process, step by step (against the fake Slack, on a SQLite file)."""
    from cryptography.fernet import Fernet

    from bench.serve_process import SIGNING_SECRET, _fake_slack
    from bot.runtime import assemble
    from bot.settings import Settings
    from bot.slack.app import slack_client
    from bot.startup import check_before_start

    collector = _Steps()
    runtime_log = logging.getLogger("bot")
    runtime_log.addHandler(collector)
    runtime_log.setLevel(logging.DEBUG)
    figures: dict[str, Any] = {"size": size.name, "backend": "sqlite", "rss_mb_at_start": _status_mb("self", "VmRSS")}
    with tempfile.TemporaryDirectory(prefix="accessbot-steps-") as tmp, _fake_slack(size.users) as fake:
        settings = Settings(SLACK_API_URL=fake.url, SLACK_BOT_TOKEN="xoxb-bench",  # type: ignore[call-arg]
                            SLACK_SIGNING_SECRET=SIGNING_SECRET, ACCESSBOT_CONFIG=str(path),
                            ACCESSBOT_DATABASE_URL=f"sqlite:///{tmp}/accessbot.db",
                            ACCESSBOT_ENCRYPTION_KEY=Fernet.generate_key().decode())
        wall, cpu = time.perf_counter(), time.process_time()
        client = slack_client(settings)
        checked = check_before_start(settings, socket_mode=False, client=client)
        collector.steps.append(f"check_before_start in {time.perf_counter() - wall:.2f} s "
                               f"(CPU {time.process_time() - cpu:.2f} s, RSS {_status_mb('self', 'VmRSS'):.0f} MB)")
        assembling, cpu_assembling = time.perf_counter(), time.process_time()
        runtime = assemble(settings, client, checked=checked)
        collector.steps.append(f"assemble in {time.perf_counter() - assembling:.2f} s "
                               f"(CPU {time.process_time() - cpu_assembling:.2f} s, "
                               f"RSS {_status_mb('self', 'VmRSS'):.0f} MB)")
        figures["total_s"] = round(time.perf_counter() - wall, 2)
        figures["total_cpu_s"] = round(time.process_time() - cpu, 2)
        figures["rss_mb"] = round(_status_mb("self", "VmRSS"), 1)
        figures["peak_rss_mb"] = round(_status_mb("self", "VmHWM"), 1)
        runtime.shutdown()
        runtime.container.db.dispose()
    runtime_log.removeHandler(collector)
    figures["steps"] = collector.steps
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_start")
    parser.add_argument("--size", default="large", choices=sorted(SIZES))
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--profile", action="store_true", help="sample the serve process with py-spy")
    parser.add_argument("--steps", action="store_true", help="time the start-up steps in this process instead")
    args = parser.parse_args()
    size = SIZES[args.size]
    directory = Path(tempfile.gettempdir()) / "accessbot-bench"
    directory.mkdir(parents=True, exist_ok=True)
    path = write(size, directory)
    if args.steps:
        figures = measure_steps(size, path)
    else:
        figures = measure_serve(size, path, args.backend, profile=args.profile)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
