"""A real `creditguard serve` (BentoML) process on a free loopback port, for the service tests."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import requests

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the service and its workers (BentoML leaves our process group: signal each)."""
    with contextlib.suppress(psutil.NoSuchProcess):
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        for p in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.terminate()
        _, alive = psutil.wait_procs(family, timeout=30)
        for p in alive:  # a slow graceful shutdown on a loaded machine
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
    proc.wait(timeout=30)


@contextlib.contextmanager
def serving(
    env: dict[str, str], home: Path, *, workers: int = 1, timeout: float = 180
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """`creditguard serve` with `env`, its log in HOME/serve.log; yields (url, process, log)
    once /readyz answers."""
    port = free_port()
    log = home / "serve.log"
    cli = Path(sys.executable).with_name("creditguard")
    proc = subprocess.Popen(
        [str(cli), "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=home,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or busy loading the models
                pass
            if proc.poll() is not None:
                raise RuntimeError(log.read_text()[-3000:])
            time.sleep(1)
        else:
            raise RuntimeError(f"service did not become ready in {timeout:.0f} s")
        yield url, proc, log
    finally:
        stop(proc)
