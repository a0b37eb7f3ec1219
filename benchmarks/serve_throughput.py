"""Serving the main job's MiniLM intent model: throughput and p50/p99 latency for the torch and onnx
backends, float and int8, with micro-batching on and off, under 1 and 16 concurrent clients.

Each configuration runs `fmkit serve` in its own process; an asyncio httpx load generator sends
one-text requests for a fixed time. All rows come from one run, side by side.

Usage: python benchmarks/serve_throughput.py [EXPORT_DIR] [--seconds 8] [--rounds 3] [--python-client]
The load comes from `hey` when it is installed (`apt install hey`), else from an httpx client.
Without EXPORT_DIR the main job's recipe is trained as it stands and exported (onnx + int8).
Targets: onnx >= 2x eager throughput with 1 client and >= 1.3x with 16; micro-batching >= 2.5x
unbatched under 16 clients; int8 >= 1.8x faster than float with accuracy within 1 point.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
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


HEY = shutil.which("hey") is not None and "--python-client" not in sys.argv


def export_dir(argv: list[str]) -> Path:
    given = [a for a in argv if not a.startswith("--") and Path(a).is_dir()]
    if given:
        return Path(given[0])
    import fmkit

    os.chdir(ROOT)
    run = fmkit.train(str(ROOT / "examples/recipes/intents-minilm.yaml"),
                      overrides=["train.progress=off", "tracking.run_name=serve-bench",
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


def load_with_hey(url: str, clients: int, seconds: float) -> tuple[int, list[float]]:
    """The same load from `hey` (Go; `apt install hey`): far less CPU per request than a Python client,
    which matters when client and server share two cores. One text per request, keep-alive."""
    import csv
    import io

    body = json.dumps({"inputs": [TEXTS[0]]})
    out = subprocess.run(["hey", "-z", f"{seconds}s", "-c", str(clients), "-m", "POST", "-T", "application/json",
                          "-d", body, "-o", "csv", url + "/v1/predict"], capture_output=True, text=True, check=True)
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    bad = [r for r in rows if r["status-code"] != "200"]
    if bad or not rows:
        raise RuntimeError(f"hey: {len(bad)} of {len(rows)} requests failed: {out.stderr[-500:]}")
    latencies = [float(r["response-time"]) for r in rows]
    span = max(float(r["offset"]) + float(r["response-time"]) for r in rows)
    return int(len(rows) / max(span, 1e-9)), latencies


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
        if HEY:
            throughput, lat = load_with_hey(url, clients, seconds)
        else:
            throughput, lat = asyncio.run(load(url, clients, seconds))
    finally:
        server.terminate()
        server.wait(30)
    lat.sort()
    return {"throughput": throughput, "p50": 1000 * statistics.median(lat), "p99": 1000 * lat[int(0.99 * (len(lat) - 1))]}


def _outside_one(path: str, backend: str, precision: str) -> None:
    """Child process: one predictor's times at batch 1 and 16 (and its test accuracy), as JSON."""
    import csv

    import fmkit

    pred = fmkit.load(path, backend=backend, precision=precision)
    out = {}
    for size, reps in ((1, 100), (16, 15)):
        texts = [TEXTS[i % len(TEXTS)] for i in range(size)]
        pred.predict(texts)
        blocks = []
        for _ in range(5):  # the best of 5 blocks: a neighbour's burst on the shared machine only adds time
            t = time.perf_counter()
            for _ in range(reps):
                pred.predict(texts, batch_size=size)
            blocks.append((time.perf_counter() - t) / reps)
        out[f"b{size}"] = min(blocks)
    with open(ROOT / "examples/data/support_intents/test.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    got = [p["label"] for p in pred.predict([r["text"] for r in rows])]
    out["accuracy"] = sum(a == r["intent"] for a, r in zip(got, rows)) / len(rows)
    out["n"] = len(rows)
    print(json.dumps(out))


def outside_server(path: Path) -> None:
    """The same export through ``fmkit.load(...).predict`` (tokenisation included), no HTTP: what the
    backends and int8 give before any server overhead, and int8's accuracy. Each predictor runs in
    a process of its own, as a server would: two runtimes' thread pools in one process (torch's
    and ONNX Runtime's) spin on each other's cores."""
    per = {}
    for name, backend, precision in (("torch", "torch", "float"), ("onnx", "onnx", "float"),
                                     ("onnx int8", "onnx", "int8")):
        out = subprocess.run([sys.executable, __file__, "--outside-one", str(path), backend, precision],
                             capture_output=True, text=True, check=True)
        per[name] = json.loads(out.stdout.strip().splitlines()[-1])
    for size in (1, 16):
        t = {k: v[f"b{size}"] for k, v in per.items()}
        print(f"outside the server, batch {size:2d}: torch {1000 * t['torch']:.2f} ms, onnx {1000 * t['onnx']:.2f} ms "
              f"({t['torch'] / t['onnx']:.2f}x), onnx int8 {1000 * t['onnx int8']:.2f} ms "
              f"({t['onnx'] / t['onnx int8']:.2f}x float onnx)", flush=True)
    for name in ("onnx", "onnx int8"):
        print(f"{name} accuracy on the main job's test set ({per[name]['n']} messages): {per[name]['accuracy']:.4f}",
              flush=True)


def cpu_summary() -> str:
    """The CPU model, its core count and the int8 dot-product instructions it has: ONNX Runtime's int8
    speed-up depends on them (VNNI/AMX roughly double it over plain AVX2), so figures from two
    machines only compare with this line next to them."""
    flags, model = set(), "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            elif line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    return f"{model}, {os.cpu_count()} cores, {' '.join(isa) or 'no AVX2'}"


def main() -> None:
    if "--outside-one" in sys.argv:
        i = sys.argv.index("--outside-one")
        return _outside_one(*sys.argv[i + 1:i + 4])
    seconds = float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 8.0
    path = export_dir(sys.argv[1:])
    meta = json.loads((path / "export.json").read_text())
    print(f"export: {path}")
    print(f"cpu: {cpu_summary()}")
    print(f"load generator: {'hey' if HEY else 'httpx (Python, asyncio)'}, on the same cores as the server")
    outside_server(path)
    configs = [("torch", "float", True, 1), ("onnx", "float", True, 1), ("onnx", "int8", True, 1),
               ("torch", "float", False, 16), ("torch", "float", True, 16),
               ("onnx", "float", False, 16), ("onnx", "float", True, 16), ("onnx", "int8", True, 16)]
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 3
    tried: dict[tuple, list[dict]] = {c: [] for c in configs}
    for _ in range(rounds):  # interleaved rounds: a burst of load from a neighbour hits one run, not one row
        for c in configs:
            tried[c].append(measure(path, *c, seconds))
    print(f"served: best of {rounds} interleaved runs of {seconds:g} s each (p50/p99 from that run)")
    rows = {}
    for c in configs:
        backend, precision, batching, clients = c
        r = rows[c] = max(tried[c], key=lambda x: x["throughput"])
        spread = ", ".join(str(x["throughput"]) for x in tried[c])
        print(f"{backend:5s} {precision:5s} batching {'on ' if batching else 'off'} {clients:2d} clients: "
              f"{r['throughput']:5d} req/s  p50 {r['p50']:7.1f} ms  p99 {r['p99']:7.1f} ms   (runs: {spread})", flush=True)

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
