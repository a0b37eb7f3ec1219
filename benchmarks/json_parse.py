"""How much faster does the server parse a large request body with orjson than with json?

The body is the one `serve_heavy_lane.py` sends (8 inputs of 120,000 characters, about 1 MB).
Both parsers read it in turn, --rounds times, each round timing --repeat parses of each and keeping
the median; the ratio json/orjson is taken within each round. This is the time the server's event
loop is held by one such request (the parse holds the GIL), so every other request waits for it.

Usage: python benchmarks/json_parse.py [--rounds 10] [--repeat 50]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from _common import ROOT

sys.path.insert(0, str(ROOT / "core"))


def median_seconds(parse, body: bytes, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        parse(body)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args()
    from fmkit.serve import json_bodies

    if json_bodies.orjson is None:
        raise SystemExit("orjson is not installed (pip install 'fmkit[serve]')")
    body = json.dumps({"inputs": ["my card was declined at the shop " * (120_000 // 33)] * 8}).encode()
    assert json_bodies.loads(body) == json.loads(body)
    ratios, std, fast = [], [], []
    for i in range(args.rounds):
        a = median_seconds(json.loads, body, args.repeat)
        b = median_seconds(json_bodies.loads, body, args.repeat)
        std.append(a), fast.append(b), ratios.append(a / b)
        print(f"round {i + 1:>2}: json {1000 * a:.2f} ms, fmkit (orjson) {1000 * b:.2f} ms, json/orjson {a / b:.2f}x",
              flush=True)
    print(f"body {len(body):,} bytes; json median {1000 * statistics.median(std):.2f} ms, orjson "
          f"{1000 * statistics.median(fast):.2f} ms; json/orjson median {statistics.median(ratios):.2f}x, "
          f"range {min(ratios):.2f}..{max(ratios):.2f} over {args.rounds} rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
