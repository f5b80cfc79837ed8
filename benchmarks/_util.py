"""Helpers shared by the benchmarks: run a function in a child process and measure it."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
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
