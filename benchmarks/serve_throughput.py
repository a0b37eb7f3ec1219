"""Serving the main job's MiniLM intent model: throughput and p50/p99 latency for the torch and onnx
backends, float and int8, with micro-batching on and off, under 1 and 16 concurrent clients.

Each configuration runs `fmkit serve` in its own process; an asyncio httpx load generator sends
one-text requests for a fixed time. All rows come from one run, side by side.

Usage: python benchmarks/serve_throughput.py [EXPORT_DIR] [--seconds 8]
Without EXPORT_DIR the main job's recipe is trained for one epoch and exported (onnx + int8).
Targets: onnx >= 2x eager throughput with 1 client and >= 1.3x with 16; micro-batching >= 2.5x
unbatched under 16 clients; int8 >= 1.8x faster than float with accuracy within 1 point.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT

TEXTS = ["I would like to check my account balance", "my card was declined at the shop",
         "how do I reset my password", "can I change my delivery address", "I want to cancel my order",
         "the app keeps crashing when I log in", "what are your opening hours", "I was charged twice"]


def export_dir(argv: list[str]) -> Path:
    given = [a for a in argv if not a.startswith("--") and Path(a).is_dir()]
    if given:
        return Path(given[0])
    import fmkit

    os.chdir(ROOT)
    run = fmkit.train(str(ROOT / "examples/recipes/intents-minilm.yaml"),
                      overrides=["train.epochs=2", "train.progress=off", "tracking.run_name=serve-bench",
                                 "export.formats=[onnx]", "export.quantize=int8"])
    return Path(run.exports["onnx"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def load(url: str, clients: int, seconds: float) -> tuple[int, list[float]]:
    import httpx

    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def worker(i: int):
            n = i
            while time.perf_counter() < stop:
                t = time.perf_counter()
                r = await client.post("/v1/predict", json={"inputs": [TEXTS[n % len(TEXTS)]]})
                r.raise_for_status()
                latencies.append(time.perf_counter() - t)
                n += 1
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        elapsed = time.perf_counter() - t0
    return int(len(latencies) / elapsed), latencies


def measure(path: Path, backend: str, precision: str, batching: bool, clients: int, seconds: float) -> dict:
    port = free_port()
    cmd = [sys.executable, "-m", "fmkit", "serve", str(path), "--port", str(port), "--backend", backend,
           "--precision", precision, "--max-batch-size", "16", "--max-wait-ms", "5"]
    if not batching:
        cmd.append("--no-batching")
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import httpx

        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        asyncio.run(load(url, clients, 1.5))  # warm-up
        throughput, lat = asyncio.run(load(url, clients, seconds))
    finally:
        server.terminate()
        server.wait(30)
    lat.sort()
    return {"throughput": throughput, "p50": 1000 * statistics.median(lat), "p99": 1000 * lat[int(0.99 * (len(lat) - 1))]}


def main() -> None:
    seconds = float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 8.0
    path = export_dir(sys.argv[1:])
    meta = json.loads((path / "export.json").read_text())
    print(f"export: {path}")
    rows = {}
    for backend, precision, batching, clients in [
        ("torch", "float", True, 1), ("onnx", "float", True, 1), ("onnx", "int8", True, 1),
        ("torch", "float", False, 16), ("torch", "float", True, 16),
        ("onnx", "float", False, 16), ("onnx", "float", True, 16), ("onnx", "int8", True, 16),
    ]:
        r = measure(path, backend, precision, batching, clients, seconds)
        rows[(backend, precision, batching, clients)] = r
        print(f"{backend:5s} {precision:5s} batching {'on ' if batching else 'off'} {clients:2d} clients: "
              f"{r['throughput']:5d} req/s  p50 {r['p50']:7.1f} ms  p99 {r['p99']:7.1f} ms", flush=True)

    def ratio(a, b):
        return rows[a]["throughput"] / max(rows[b]["throughput"], 1)

    def line(what, value, target):
        print(f"{what}: {value:.2f}x ({'meets' if value >= target else 'MISSES'} target >= {target}x)")

    line("onnx vs eager, 1 client", ratio(("onnx", "float", True, 1), ("torch", "float", True, 1)), 2.0)
    line("onnx vs eager, 16 clients", ratio(("onnx", "float", True, 16), ("torch", "float", True, 16)), 1.3)
    line("micro-batching vs none, 16 clients (onnx)", ratio(("onnx", "float", True, 16), ("onnx", "float", False, 16)), 2.5)
    line("micro-batching vs none, 16 clients (torch)", ratio(("torch", "float", True, 16), ("torch", "float", False, 16)), 2.5)
    line("int8 vs float onnx, 1 client", ratio(("onnx", "int8", True, 1), ("onnx", "float", True, 1)), 1.8)
    line("int8 vs float onnx, 16 clients", ratio(("onnx", "int8", True, 16), ("onnx", "float", True, 16)), 1.8)
    q = meta.get("int8", {})
    if q:
        change = {k: round(v, 4) for k, v in q.get("metric_change", {}).items()}
        print(f"int8 (export check): {q['float_bytes'] / 1e6:.1f} MB -> {q['int8_bytes'] / 1e6:.1f} MB, "
              f"{q['speedup']:.2f}x per batch, metric change {change} (target: accuracy within 1 point)")


if __name__ == "__main__":
    main()
