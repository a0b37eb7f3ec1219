"""Should ONNX Runtime's threads spin? Served throughput and latency of the main job's int8 ONNX
export with intra-op spinning off (fmkit's default) and on (FMKIT_ORT_SPINNING=1), under 1 and 16
clients, the two settings alternating round by round in one run.

Usage: python benchmarks/serve_spinning.py EXPORT_DIR [--seconds 6] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

from serve_throughput import measure


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("export")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rows: dict[tuple[str, int], list[dict]] = {}
    for r in range(args.rounds):
        for clients in (1, 16):
            for spin in ("0", "1"):
                os.environ["FMKIT_ORT_SPINNING"] = spin
                m = measure(Path(args.export), "onnx", "auto", True, clients, args.seconds)
                rows.setdefault((spin, clients), []).append(m)
                print(f"round {r + 1} clients {clients:>2} spinning {'on ' if spin == '1' else 'off'}: "
                      f"{m['throughput']:>4} req/s p50 {m['p50']:.1f} ms p99 {m['p99']:.1f} ms", flush=True)
    print("\nmedians over rounds (off / on):")
    for clients in (1, 16):
        off, on = rows[("0", clients)], rows[("1", clients)]
        for key, unit in (("throughput", "req/s"), ("p50", "ms"), ("p99", "ms")):
            a, b = statistics.median(x[key] for x in off), statistics.median(x[key] for x in on)
            print(f"  clients {clients:>2} {key:>10}: off {a:.1f} {unit}, on {b:.1f} {unit}, off/on {a / b:.2f}x "
                  f"(rounds off {[round(x[key], 1) for x in off]}, on {[round(x[key], 1) for x in on]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
