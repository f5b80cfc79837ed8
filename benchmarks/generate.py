"""Synthetic ledger generation: invoices per second and peak memory at 10,000 and 100,000 clients.

Memory must stay bounded as the portfolio grows (clients are simulated and written in chunks), so the
run prints the 100,000-client figures beside the 10,000-client ones and their ratio.

    .venv/bin/python benchmarks/generate.py [--clients 100000] [--months 36]
"""

from __future__ import annotations

import argparse
import tempfile

from _util import run_child

CODE = """
import json, time
from features.synthetic import GeneratorConfig, generate_ledger
t = time.perf_counter()
counts = generate_ledger(GeneratorConfig(clients={clients}, months={months}, seed=1), {out!r}, progress=False)
print(json.dumps({{"seconds": time.perf_counter() - t, **counts}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=36)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for clients in (args.clients // 10, args.clients):
            code = CODE.format(clients=clients, months=args.months, out=f"{tmp}/ledger{clients}")
            r = run_child(code)
            rows.append((clients, r))
            print(
                f"{clients:>9,} clients x {args.months} months: {r['invoices']:>12,} invoices in "
                f"{r['seconds']:6.1f} s = {r['invoices'] / r['seconds']:>10,.0f} invoices/s, "
                f"peak RSS {r['peak_rss_mib']:,.0f} MiB",
                flush=True,
            )
    (small, rs), (big, rb) = rows
    print(
        f"ratio {big // small}x clients: {rb['invoices'] / rs['invoices']:.1f}x invoices, "
        f"{rb['peak_rss_mib'] / rs['peak_rss_mib']:.2f}x peak memory "
        f"(goal: under 4096 MiB at 100,000 x 36: {'met' if rb['peak_rss_mib'] < 4096 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
