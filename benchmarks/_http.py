"""HTTP helpers of the service benchmarks: a server process until ready, and wrk's load."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]

KEY = "bench-key-0123456789"
LUA = r"""
local bodies, i = {}, 0
for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "seconds": %.6f, "p50": %.3f, "p95": %.3f, "p99": %.3f, ' ..
    '"errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(95) / 1e3, latency:percentile(99) / 1e3,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(
    cmd: list[str], env: dict[str, str], ready: str, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[0]} exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(ready, timeout=2).status_code == 200:
                    break
            time.sleep(1)
        else:
            raise RuntimeError(f"{cmd[0]} not ready in 300 s:\n{log.read_text()[-3000:]}")
        yield proc
    finally:
        import psutil

        try:
            family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            family = []
        for p in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.terminate()
        _, alive = psutil.wait_procs(family, timeout=30)
        for p in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()


def load(url: str, bodies: Path, *, concurrency: int, seconds: int, lua: Path) -> dict[str, float]:
    """A short warm-up (first requests pay for lazy imports and caches), then the measured run.
    wrk runs for a fixed time: its per-thread stop() does not end the run early."""
    env = dict(os.environ, BENCH_BODIES=str(bodies), BENCH_KEY=KEY)
    for duration, measured in ((3, False), (seconds, True)):
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{concurrency}",
                f"-d{duration}s",
                "--timeout",
                "10s",
                "-s",
                str(lua),
                url,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if measured:
            line = next(x for x in out.splitlines() if x.startswith("RESULT "))
            r: dict[str, float] = json.loads(line.removeprefix("RESULT "))
            r["rps"] = r["requests"] / r["seconds"]
            return r
    raise AssertionError("unreachable")
