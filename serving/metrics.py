"""Prometheus metrics of the service with a bounded label set (see `serving.guard`): requests and
their duration by endpoint (a path the service serves, or `other`) and status code. With several
workers each writes to BentoML's multiprocess directory (`PROMETHEUS_MULTIPROC_DIR`) and
`/metrics` adds them up."""

from __future__ import annotations

import os
import threading
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RequestMetrics:
    """The counters, created on first use (nothing happens at import)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: tuple[Any, Any] | None = None

    def _metrics(self) -> tuple[Any, Any]:
        with self._lock:
            if self._made is None:
                labels = ["endpoint", "http_response_code"]
                self._made = (
                    Counter("creditguard_requests", "HTTP requests", labels),
                    Histogram(
                        "creditguard_request_duration_seconds",
                        "HTTP request duration",
                        labels,
                        buckets=BUCKETS,
                    ),
                )
            return self._made

    def record(self, endpoint: str, status: int, seconds: float) -> None:
        total, duration = self._metrics()
        total.labels(endpoint, str(status)).inc()
        duration.labels(endpoint, str(status)).observe(seconds)


def exposition() -> tuple[bytes, str]:
    """Every worker's metrics, added up (or this process's, when it runs alone), and their
    content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
