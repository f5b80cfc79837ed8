"""Helpers shared by the benchmarks: run a function in a child process and measure it."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def run_child(code: str) -> dict[str, Any]:
    """Run Python `code` in a fresh interpreter; it prints one JSON line. Adds wall time and peak RSS."""
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # The child reports its own peak: ru_maxrss of RUSAGE_CHILDREN is the maximum over every
    # child so far, which would hide a small run behind a big one.
    probe = (
        "import atexit, resource, sys\n"
        "atexit.register(lambda: sys.stderr.write("
        "f'\\nPEAK_RSS_KIB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n'))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe + code], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    own = [line for line in proc.stderr.splitlines() if line.startswith("PEAK_RSS_KIB ")]
    result["peak_rss_mib"] = (int(own[-1].split()[1]) if own else max(peak_kib, before)) / 1024
    return result


def run_sampled(
    cmd: list[str], env: dict[str, str] | None = None, every: float = 0.5
) -> dict[str, Any]:
    """Run a command, sampling the RSS of its process tree every `every` seconds: wall time, the
    peak of the command's own process, and the peak of its children by kind (a JVM, Python
    workers). Raises with the tail of its output when it fails."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    peaks = {"main": 0, "jvm": 0, "python_workers": 0}
    lines: list[str] = []

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    import threading

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            peaks["main"] = max(peaks["main"], root.memory_info().rss)
            jvm = workers = 0
            for child in root.children(recursive=True):
                try:
                    rss = child.memory_info().rss
                    if "java" in child.name():
                        jvm += rss
                    else:
                        workers += rss
                except psutil.NoSuchProcess:
                    continue
            peaks["jvm"] = max(peaks["jvm"], jvm)
            peaks["python_workers"] = max(peaks["python_workers"], workers)
        except psutil.NoSuchProcess:
            break
        time.sleep(every)
    reader.join()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{''.join(lines)[-3000:]}")
    return {"wall_s": wall, **{f"{k}_mib": v / 2**20 for k, v in peaks.items()}, "output": lines}


def bench_name(ledger: Path) -> str:
    """A ledger's name under data/bench/partitioned and data/bench/runs: its folder's name for the
    benchmark ledgers (data/bench/NAME), with its parent's otherwise (the demo's: demo-ledger)."""
    return ledger.name if ledger.parent.name == "bench" else f"{ledger.parent.name}-{ledger.name}"
