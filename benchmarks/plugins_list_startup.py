"""Start-up cost of `fmkit plugins list` next to `python -c "import torch"`, measured side by side.

Usage: python benchmarks/plugins_list_startup.py [repeats]
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time


def timed(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    fm = timed([sys.executable, "-m", "fmkit", "plugins", "list"], repeats)
    torch = timed([sys.executable, "-c", "import torch"], repeats)
    bare = timed([sys.executable, "-c", "pass"], repeats)
    print(f"fmkit plugins list : {fm * 1000:7.1f} ms (median of {repeats}; target < 500 ms)")
    print(f"python -c 'import torch': {torch * 1000:7.1f} ms")
    print(f"python -c pass     : {bare * 1000:7.1f} ms")
    print(f"ratio fmkit/torch-import: {fm / torch:.2f}x")


if __name__ == "__main__":
    main()
