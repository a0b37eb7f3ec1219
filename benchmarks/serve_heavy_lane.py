"""Does one large request hold up other clients? Small requests' p99 latency while a large (allowed)
request is served, against their p99 with no large request, side by side in each round.

`fmkit serve` runs as its own process on the main job's MiniLM intent export; one client sends
one-text requests back to back; in the "loaded" part of a round another process sends requests of
8 inputs of 120,000 characters each back to back (under the default limits, so the server must
answer them). Issue 16's target: loaded p99 within 2x of unloaded p99. The large inputs take the
batcher's heavy lane; this measures whether that keeps the small requests moving.

Each round alternates --segments times between alone (no large request in flight, for
--unloaded-seconds / segments) and loaded (--loaded-seconds / segments, measured from the moment the
first large request is sent until the last one is answered, so every arrival and every end is
measured), and pools each side's latencies into one p99: the machines here are shared, and a
minute when a neighbour is busy then falls on both sides of the ratio, in equal time, instead of on
one. The first SETTLE_SECONDS after a large request are timed on neither side. A round whose
unloaded p99 is far above the run's usual one is flagged at the end (outside load pulls its ratio
towards 1). ``--segments 1 --unloaded-requests N`` is the earlier design (N small requests alone,
then all loaded), kept for comparison with older figures. Each server is warmed up with small
requests and one large one; with several servers, they take turns going first.

--servers picks which servers of the same export take part; each round measures them in turn, so
their ratios (and each one's ratio to the first's, round by round) come from the same minutes:
- ``default``: ``fmkit serve`` as shipped (the large-input lane's model calls on a background
  thread, request bodies parsed with orjson);
- ``shared``: ``FMKIT_HEAVY_LANE=shared``: that lane runs the model as the other does;
- ``before``: ``shared`` with bodies parsed by the standard library's json (how the server ran
  before either change; orjson is switched off in that process only, by this script);
- ``parse-only``: ``--max-input-chars 100000``: it reads and parses each large body, then answers
  413 without predicting; its large requests are paced to the first server's (one each as long as
  a served one took in the same round), so it splits the cost of receiving and parsing 1 MB bodies
  on the event loop from the cost of predicting them. (``--isolate-parse`` adds it.)

Each round also prints the small requests' median and p90, unloaded and loaded.

Usage: python benchmarks/serve_heavy_lane.py [EXPORT_DIR] [--rounds 5] [--backend onnx]
       [--servers default,before] [--isolate-parse] [--loaded-seconds 9] [--unloaded-seconds S]
       [--segments 6] [--unloaded-requests N]
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


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def p99(values: list[float]) -> float:
    return pct(values, 0.99)


def small_latencies(client, until) -> list[float]:
    out = []
    while not until():
        t = time.perf_counter()
        r = client.post("/v1/predict", json=SMALL)
        assert r.status_code == 200, r.text
        out.append(time.perf_counter() - t)
    return out


def _send_large(url: str, go, sending, idle, done, out, expect: int = 200, pace: float = 0.0) -> None:
    """Child process: while ``go`` is set, large requests back to back (one per ``pace`` seconds at
    most); ``sending`` is set just before each is sent, ``idle`` whenever none is in flight, and
    the process ends when ``done`` is set. The requests' times go to ``out``. A process of its own,
    so encoding and sending 1 MB bodies never holds the measuring client's GIL."""
    import httpx

    body = json.dumps(BIG).encode()
    times = []
    with httpx.Client(base_url=url, timeout=300, headers={"content-type": "application/json"}) as c:
        idle.set()
        while not done.is_set():
            if not go.wait(0.05):
                continue
            idle.clear()
            while go.is_set():
                t = time.perf_counter()
                sending.set()
                r = c.post("/v1/predict", content=body)
                times.append(time.perf_counter() - t)
                assert r.status_code == expect, r.text[:300]
                time.sleep(max(0.0, pace - (time.perf_counter() - t)))
            idle.set()
    out.put(times)


#: small requests sent just after a large one is answered, timed but counted on neither side: the
#: server may still be freeing the large request's memory (counting them as "alone" would raise
#: the unloaded p99 and lower the ratio)
SETTLE_SECONDS = 0.05


def one_round(url: str, unloaded_n: int | None, loaded_seconds: float, segments: int = 1, expect: int = 200,
              pace: float = 0.0, unloaded_seconds: float | None = None) -> tuple[float, float, int, float, int]:
    """p99 of small requests alone, against their p99 while another process sends large requests back
    to back (a large request takes well under a second, so one alone would leave too few small
    requests beside it to give a p99).

    The round is cut into ``segments`` alternating pairs, pooled, so a slow change in the machine's
    other load falls on both sides alike. Alone: ``unloaded_seconds / segments`` seconds (or, given
    ``unloaded_n``, that many requests in all, as the earlier design did); small requests count
    only once no large one is in flight and ``SETTLE_SECONDS`` have passed. Loaded: from the moment
    the first large request is sent until the last one sent in the ``loaded_seconds / segments``
    window is answered, so its arrival and its end are both measured."""
    import httpx

    ctx = multiprocessing.get_context("spawn")
    go, sending, idle, done, out = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
    sender = ctx.Process(target=_send_large, args=(url, go, sending, idle, done, out, expect, pace))
    sender.start()
    unloaded, loaded = [], []
    alone_seconds = (unloaded_seconds if unloaded_seconds is not None else loaded_seconds) / segments
    try:
        with httpx.Client(base_url=url, timeout=120) as c:
            assert idle.wait(60), "the large-request sender did not start"
            for _ in range(segments):
                settle = time.perf_counter() + SETTLE_SECONDS
                small_latencies(c, lambda: time.perf_counter() >= settle)  # timed, not counted
                if unloaded_n is not None:
                    count = iter(range(unloaded_n // segments + 1))
                    unloaded += small_latencies(c, lambda: next(count) >= unloaded_n // segments)
                else:
                    stop = time.perf_counter() + alone_seconds
                    unloaded += small_latencies(c, lambda: time.perf_counter() >= stop)
                sending.clear()
                go.set()
                assert sending.wait(60), "no large request was sent"
                stop = time.perf_counter() + loaded_seconds / segments
                loaded += small_latencies(c, lambda: time.perf_counter() >= stop or not sender.is_alive())
                go.clear()
                loaded += small_latencies(c, lambda: idle.is_set() or not sender.is_alive())  # the last one's end
                assert idle.wait(300), "the last large request was not answered"
        done.set()
        big_seconds = out.get(timeout=300)
    finally:
        done.set()
        go.clear()
        sender.join(timeout=60)
    print(f"      (median small request: unloaded {1000 * statistics.median(unloaded):.1f} ms, "
          f"loaded {1000 * statistics.median(loaded):.1f} ms; p90 {1000 * pct(unloaded, 0.9):.1f} / "
          f"{1000 * pct(loaded, 0.9):.1f} ms)", flush=True)
    return p99(unloaded), p99(loaded), len(loaded), statistics.mean(big_seconds), len(big_seconds)


#: name: (environment, Python run before the CLI in the server's process, extra CLI arguments)
SERVERS = {
    "default": ({}, "", []),
    "shared": ({"FMKIT_HEAVY_LANE": "shared"}, "", []),
    "before": ({"FMKIT_HEAVY_LANE": "shared"}, "import fmkit.serve.json_bodies as j; j.orjson = None; ", []),
    "parse-only": ({}, "", ["--max-input-chars", "100000"]),
    # the short requests' ONNX Runtime session on one thread instead of one per core (tried: no gain)
    "fg1": ({}, "import fmkit.exporting.loading as L; _o = L.onnx_session_options; "
                "L.onnx_session_options = lambda threads=None: _o(threads or 1); ", []),
}


WHAT = {"default": "as shipped", "shared": "FMKIT_HEAVY_LANE=shared",
        "before": "FMKIT_HEAVY_LANE=shared, stdlib json", "parse-only": "large bodies parsed and refused, no prediction",
        "fg1": "as shipped, one ONNX Runtime thread for the small lane"}


def start_server(export: Path, backend: str, kind: str) -> tuple[subprocess.Popen, str]:
    """``fmkit serve`` of ``export`` on a free port, set up as ``SERVERS[kind]``, started and warmed
    up: (process, url)."""
    import httpx

    extra_env, preamble, extra = SERVERS[kind]
    port = free_port()
    env = {**os.environ, **extra_env,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "core"), os.environ.get("PYTHONPATH")]))}
    code = preamble + "import sys; from fmkit.cli.main import main; sys.exit(main())"
    proc = subprocess.Popen([sys.executable, "-c", code, "serve", str(export), "--port", str(port),
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
    # and one large request: the first use of the large-input lane (its own ONNX Runtime session)
    # would otherwise fall in the first round's loaded half
    httpx.post(f"{url}/v1/predict", content=json.dumps(BIG).encode(), timeout=300,
               headers={"content-type": "application/json"})
    return proc, url


def _summary(name: str, ratios: list[float]) -> str:
    return (f"{name}loaded/unloaded p99: median {statistics.median(ratios):.2f}x, range {min(ratios):.2f}.."
            f"{max(ratios):.2f} over {len(ratios)} rounds ({spread_verdict(ratios, 2.0, False)} target <= 2x)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("export", nargs="?")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--backend", default="onnx", choices=["onnx", "torch"])
    ap.add_argument("--servers", default="default",
                    help=f"comma-separated, measured in turn in each round, of {', '.join(SERVERS)}")
    ap.add_argument("--loaded-seconds", type=float, default=9.0,
                    help="how long large requests are sent back to back in each round's loaded half (default 9)")
    ap.add_argument("--unloaded-seconds", type=float, default=None,
                    help="how long small requests are timed alone in each round (default: as --loaded-seconds)")
    ap.add_argument("--unloaded-requests", type=int, default=None,
                    help="time this many small requests alone per round instead (the earlier design)")
    ap.add_argument("--segments", type=int, default=6,
                    help="alternating alone/loaded pairs per round, pooled (default 6; 1: all alone, then all loaded)")
    ap.add_argument("--isolate-parse", action="store_true", help="add the parse-only server")
    args = ap.parse_args()
    if args.segments < 1:
        ap.error("--segments must be at least 1")
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    if args.isolate_parse and "parse-only" not in kinds:
        kinds.append("parse-only")
    unknown = [k for k in kinds if k not in SERVERS]
    if unknown or not kinds or kinds[0] == "parse-only":
        ap.error(f"--servers: {', '.join(unknown) or 'give a serving server first'}; choose from {', '.join(SERVERS)}")
    export = Path(args.export) if args.export else export_dir([])
    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    ratios: dict[str, list[float]] = {k: [] for k in kinds}
    alone: dict[str, list[float]] = {k: [] for k in kinds}
    try:
        for kind in kinds:
            servers[kind] = start_server(export, args.backend, kind)
        print(f"export {export} backend {args.backend}; large request: 8 inputs x {len(BIG['inputs'][0]):,} chars; "
              f"{args.segments} alone/loaded segment pair(s) per round")
        print(f"{'round':>5} {'server':>10} {'p99 unloaded ms':>16} {'p99 loaded ms':>14} {'ratio':>6} "
              f"{'small served':>12} {'large n':>7} {'large s':>8}")
        pace = 0.0
        serving = [k for k in kinds if k != "parse-only"]
        for i in range(args.rounds):
            # the serving servers take turns going first (one place further each round); parse-only
            # goes last, paced to the first server's large requests of the same round
            order = serving[i % len(serving):] + serving[:i % len(serving)] + [k for k in kinds if k == "parse-only"]
            for kind in order:
                parse_only = kind == "parse-only"
                a, b, n, big_s, big_n = one_round(servers[kind][1], args.unloaded_requests, args.loaded_seconds,
                                                  args.segments, expect=413 if parse_only else 200,
                                                  pace=pace if parse_only else 0.0,
                                                  unloaded_seconds=args.unloaded_seconds)
                if kind == kinds[0]:
                    pace = big_s
                ratios[kind].append(b / a)
                alone[kind].append(a)
                print(f"{i + 1:>5} {kind:>10} {1000 * a:>16.1f} {1000 * b:>14.1f} {b / a:>6.2f} {n:>12} {big_n:>7} "
                      f"{'(413)' if parse_only else f'{big_s:.2f}':>8}", flush=True)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
    for kind in kinds:
        print(_summary(f"{kind} ({WHAT[kind]}): ", ratios[kind]))
        typical = statistics.median(alone[kind])
        noisy = [i + 1 for i, a in enumerate(alone[kind]) if a > 1.5 * typical]
        if noisy:  # counted above all the same: a busy neighbour raises both sides and pulls the ratio to 1
            print(f"  {kind}: round(s) {noisy} had an unloaded p99 over 1.5x the run's median ({1000 * typical:.1f} ms): "
                  "outside load; their ratios say little either way")
    for kind in kinds[1:]:
        paired = [b / a for a, b in zip(ratios[kinds[0]], ratios[kind])]
        print(f"{kind} / {kinds[0]}, round by round: median {statistics.median(paired):.2f}, "
              f"range {min(paired):.2f}..{max(paired):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
