"""Does one large request hold up other clients? Small requests' p99 latency while a large (allowed)
request is served, against their p99 with no large request, side by side in each round.

`fmkit serve` runs as its own process on the main job's MiniLM intent export; one client sends
one-text requests back to back; in the "loaded" half of a round another process sends requests of
8 inputs of 120,000 characters each back to back for --loaded-seconds (under the default limits,
so the server must answer them). Issue 16's
target: loaded p99 within 2x of unloaded p99. The large inputs take the batcher's heavy lane;
this measures whether that keeps the small requests moving.

With --isolate-parse a second server of the same export runs with ``--max-input-chars 100000``:
it reads and parses each large body, then answers 413 without predicting. Its large requests are
paced to the first server's (one each as long as a served one took in the same round), so the two
ratios split the cost of receiving and parsing 1 MB bodies on the event loop from the cost of
predicting them.

Usage: python benchmarks/serve_heavy_lane.py [EXPORT_DIR] [--rounds 5] [--backend onnx] [--isolate-parse]
Without EXPORT_DIR the main job's recipe is trained as it stands and exported (onnx).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, spread_verdict
from serve_throughput import export_dir, free_port

SMALL = {"inputs": ["I would like to check my account balance"]}
BIG = {"inputs": ["my card was declined at the shop " * (120_000 // 33)] * 8}


def p99(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(0.99 * len(values)))]


def small_latencies(client, until) -> list[float]:
    out = []
    while not until():
        t = time.perf_counter()
        r = client.post("/v1/predict", json=SMALL)
        assert r.status_code == 200, r.text
        out.append(time.perf_counter() - t)
    return out


def _send_large(url: str, seconds: float, started, out, expect: int = 200, pace: float = 0.0) -> None:
    """Child process: large requests back to back for ``seconds``; their times go to ``out``. A process
    of its own, so encoding and sending 1 MB bodies never holds the measuring client's GIL."""
    import httpx

    body = json.dumps(BIG).encode()
    times = []
    with httpx.Client(base_url=url, timeout=300, headers={"content-type": "application/json"}) as c:
        stop = time.perf_counter() + seconds
        started.set()
        while time.perf_counter() < stop:
            t = time.perf_counter()
            r = c.post("/v1/predict", content=body)
            times.append(time.perf_counter() - t)
            assert r.status_code == expect, r.text[:300]
            time.sleep(max(0.0, pace - (time.perf_counter() - t)))  # one request per ``pace`` seconds
    out.put(times)


def one_round(url: str, unloaded_n: int, loaded_seconds: float, expect: int = 200,
              pace: float = 0.0) -> tuple[float, float, int, float, int]:
    """p99 of small requests alone, then while another process sends large requests back to back for
    ``loaded_seconds`` (a large request takes well under a second, so one alone would leave too few
    small requests beside it to give a p99)."""
    import httpx

    ctx = multiprocessing.get_context("spawn")
    started, out = ctx.Event(), ctx.Queue()
    sender = ctx.Process(target=_send_large, args=(url, loaded_seconds, started, out, expect, pace))
    with httpx.Client(base_url=url, timeout=120) as c:
        count = iter(range(unloaded_n + 1))
        unloaded = small_latencies(c, lambda: next(count) >= unloaded_n)
        sender.start()
        started.wait(60)
        time.sleep(0.1)  # let the first large request reach the server
        loaded = small_latencies(c, lambda: not sender.is_alive() or not out.empty())
        big_seconds = out.get(timeout=300)
        sender.join()
    return p99(unloaded), p99(loaded), len(loaded), statistics.mean(big_seconds), len(big_seconds)


def start_server(export: Path, backend: str, extra: list[str]) -> tuple[subprocess.Popen, str]:
    """``fmkit serve`` of ``export`` on a free port, started and warmed up: (process, url)."""
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "core"), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-m", "fmkit", "serve", str(export), "--port", str(port),
                             "--backend", backend, *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise SystemExit(f"the server did not start: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.2)
    for _ in range(30):  # warm-up
        httpx.post(f"{url}/v1/predict", json=SMALL, timeout=30)
    return proc, url


def _summary(name: str, ratios: list[float]) -> str:
    return (f"{name}loaded/unloaded p99: median {statistics.median(ratios):.2f}x, range {min(ratios):.2f}.."
            f"{max(ratios):.2f} over {len(ratios)} rounds ({spread_verdict(ratios, 2.0, False)} target <= 2x)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("export", nargs="?")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--backend", default="onnx", choices=["onnx", "torch"])
    ap.add_argument("--unloaded-requests", type=int, default=300)
    ap.add_argument("--loaded-seconds", type=float, default=4.0,
                    help="how long large requests are sent back to back in each round's loaded half")
    ap.add_argument("--isolate-parse", action="store_true",
                    help="also a server that parses the large bodies and refuses them (413), paced alike")
    args = ap.parse_args()
    export = Path(args.export) if args.export else export_dir([])
    servers = []
    ratios: list[float] = []
    parse_only: list[float] = []
    try:
        servers.append(start_server(export, args.backend, []))
        if args.isolate_parse:
            servers.append(start_server(export, args.backend, ["--max-input-chars", "100000"]))
        print(f"export {export} backend {args.backend}; large request: 8 inputs x {len(BIG['inputs'][0]):,} chars")
        print(f"{'round':>5} {'server':>10} {'p99 unloaded ms':>16} {'p99 loaded ms':>14} {'ratio':>6} "
              f"{'small served':>12} {'large n':>7} {'large s':>8}")
        for i in range(args.rounds):
            a, b, n, big_s, big_n = one_round(servers[0][1], args.unloaded_requests, args.loaded_seconds)
            ratios.append(b / a)
            print(f"{i + 1:>5} {'served':>10} {1000 * a:>16.1f} {1000 * b:>14.1f} {b / a:>6.2f} {n:>12} {big_n:>7} "
                  f"{big_s:>8.2f}", flush=True)
            if args.isolate_parse:
                a, b, n, _, parsed_n = one_round(servers[1][1], args.unloaded_requests, args.loaded_seconds,
                                                 expect=413, pace=big_s)
                parse_only.append(b / a)
                print(f"{i + 1:>5} {'parse only':>10} {1000 * a:>16.1f} {1000 * b:>14.1f} {b / a:>6.2f} {n:>12} "
                      f"{parsed_n:>7} {'(413)':>8}", flush=True)
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait(timeout=30)
    print(_summary("", ratios))
    if parse_only:
        print(_summary("parse only (large bodies read, parsed and refused, no prediction): ", parse_only))
    return 0


if __name__ == "__main__":
    sys.exit(main())
