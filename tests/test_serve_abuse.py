"""The server fed malformed, huge, slow and abandoned requests (a real uvicorn on 127.0.0.1):
each gets a clear 4xx or is closed, and other clients keep being answered."""
from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from helpers.serving import Server, tiny_export


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> str:
    return str(tiny_export(tmp_path_factory))


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def _wait_for(condition, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_lone_surrogates_and_oversized_inputs_are_4xx_naming_the_input(export):
    import httpx
    from fmkit.serve.app import create_app

    app = create_app(export, max_input_chars=1_000, max_request_chars=2_500)
    with Server(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        def post(raw: bytes):
            return c.post("/v1/predict", content=raw, headers={"content-type": "application/json"})

        r = post(b'{"inputs": ["good film", "bad \\ud800 film"]}')
        assert r.status_code == 400, r.text
        assert "inputs[1]" in r.json()["detail"] and "surrogate" in r.json()["detail"]
        r = post(b'{"inputs": [{"text": "ok", "text_pair": "\\udfff"}]}')
        assert r.status_code == 400 and "inputs[0]" in r.json()["detail"]
        r = c.post("/v1/predict", json={"inputs": ["good film", "x" * 1_001]})
        assert r.status_code == 413 and "inputs[1]" in r.json()["detail"] and "1000" in r.json()["detail"]
        r = c.post("/v1/predict", json={"inputs": ["y" * 900] * 3})
        assert r.status_code == 413 and "2500" in r.json()["detail"] and "--max-request-chars" in r.json()["detail"]
        ok = c.post("/v1/predict", json={"inputs": ["z" * 1_000, "good film"]})
        assert ok.status_code == 200 and len(ok.json()["predictions"]) == 2  # at the limits: allowed
        assert c.get("/v1/health").status_code == 200


def test_a_json_route_sent_another_content_type_says_to_send_json(export):
    """``curl -d`` sends application/x-www-form-urlencoded; FastAPI would validate the raw bytes and
    answer "Input should be a valid dictionary". The answer is a 415 that says what to send."""
    import httpx
    from fmkit.serve.app import create_app

    body = b'{"inputs": ["good film"]}'
    with Server(create_app(export)) as url, httpx.Client(base_url=url, timeout=30) as c:
        for kind in ("text/plain", "application/x-www-form-urlencoded", "application/xml", "application/a/b+json",
                     None, "", "x" * 5000):
            r = c.post("/v1/predict", content=body, headers={"content-type": kind} if kind is not None else {})
            assert r.status_code == 415, (kind, r.text)
            detail = r.json()["detail"]
            said = {None: "this request has no Content-Type header", "": "Content-Type header is empty"}.get(
                kind, (kind or "")[:100])
            assert said in detail and "application/json" in detail and len(detail) < 400, detail
        r = c.post("/v1/predict/files", json={"inputs": ["good film"]})  # JSON where a form goes
        assert r.status_code == 415 and "multipart/form-data" in r.json()["detail"], r.text
        for kind in ("application/json; charset=utf-8", "Application/JSON", "application/vnd.fmkit+json"):
            r = c.post("/v1/predict", content=body, headers={"content-type": kind})
            assert r.status_code == 200 and len(r.json()["predictions"]) == 1, (kind, r.text)
        up = c.post("/v1/predict/files", files=[("files", ("a.txt", b"good film", "text/plain"))])
        assert up.status_code == 200, up.text  # multipart routes are not JSON routes


def test_a_large_request_does_not_hold_up_other_clients(export):
    """Small requests keep being answered while a large (allowed) request is served: the large
    inputs run in the batcher's own lane for them. (How much their latency rises is a performance
    figure, for a benchmark, not asserted here.)"""
    import httpx
    from fmkit.serve.app import HEAVY_INPUT_CHARS, MAX_REQUEST_CHARS, create_app

    big = ["good great film " * (120_000 // 16)] * 8  # 8 inputs of 120k characters: allowed by the defaults
    assert len(big[0]) > HEAVY_INPUT_CHARS and sum(map(len, big)) < MAX_REQUEST_CHARS
    app = create_app(export)
    with Server(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        def small() -> float:
            t = time.perf_counter()
            assert c.post("/v1/predict", json={"inputs": ["good film"]}).status_code == 200
            return time.perf_counter() - t

        for _ in range(20):
            small()  # warm-up
        def large_requests_for(seconds: float) -> list[int]:
            """Large requests back to back (one takes a fraction of a second since long texts are
            tokenized only as far as the model reads): the heavy lane stays busy the whole time."""
            codes, stop = [], time.perf_counter() + seconds
            while time.perf_counter() < stop:
                codes.append(httpx.post(f"{url}/v1/predict", json={"inputs": big}, timeout=120).status_code)
            return codes

        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(large_requests_for, 3.0)
            time.sleep(0.3)
            loaded = []
            while not answer.done() and len(loaded) < 2_000:
                loaded.append(small())
            codes = answer.result()
    assert codes and set(codes) == {200}, codes
    assert len(loaded) >= 50, f"only {len(loaded)} small requests were answered while {len(codes)} large ones ran"


def test_the_queued_work_of_a_client_that_disconnects_is_dropped(export):
    import httpx
    from fmkit.serve.app import create_app

    app = create_app(export, max_wait_ms=0)
    batcher = app.state.batcher
    real = batcher.predict
    calls: list[list] = []
    running, release = threading.Event(), threading.Event()

    def counting(items):
        calls.append(list(items))
        running.set()
        release.wait(30)  # the first batch holds the model while the second client gives up
        return real(items)

    batcher.predict = counting
    with Server(app) as url, ThreadPoolExecutor(1) as pool:
        first = pool.submit(lambda: httpx.post(f"{url}/v1/predict", json={"inputs": ["first"]}, timeout=60))
        assert running.wait(30)
        body = json.dumps({"inputs": ["abandoned 1", "abandoned 2", "abandoned 3"]}).encode()
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=10) as s:
            s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            _wait_for(lambda: batcher.light.waiting() == 3, what="the request to be queued")
        _wait_for(lambda: _metric(app.state.metrics.exposition().decode(),
                                  'fmkit_requests_total{path="/v1/predict",status="499"}') == 1,
                  what="the server to see the client leave")
        release.set()
        assert first.result().status_code == 200
        after = httpx.post(f"{url}/v1/predict", json={"inputs": ["after"]}, timeout=60)
        assert after.status_code == 200
    assert calls == [["first"], ["after"]], calls
    assert batcher.dropped == 3


def test_slowloris_and_stalled_bodies_are_closed_and_the_server_keeps_answering(export):
    import httpx
    from fmkit.serve.app import create_app

    app = create_app(export, body_timeout=1.0)
    with Server(app, header_timeout=1.0) as url:
        port = int(url.rsplit(":", 1)[1])
        selector = selectors.DefaultSelector()
        stalled_bodies = set()
        head = b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        for i in range(200):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            if i % 2:  # headers that never end
                s.sendall(head + b"X-Slow: 1\r\n")
            else:  # a body that stops halfway
                s.sendall(head + b"Content-Length: 1000\r\n\r\n{\"inputs\": [\"good")
                stalled_bodies.add(s)
            s.setblocking(False)
            selector.register(s, selectors.EVENT_READ, bytearray())
        t = time.perf_counter()
        r = httpx.post(f"{url}/v1/predict", json={"inputs": ["good film"]}, timeout=30)
        assert r.status_code == 200 and time.perf_counter() - t < 5, "the server stopped answering"
        open_ = {key.fileobj for key in selector.get_map().values()}
        deadline = time.monotonic() + 20
        answers = {}
        while open_ and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                data = key.fileobj.recv(65536)
                if data:
                    key.data.extend(data)
                else:
                    answers[key.fileobj] = bytes(key.data)
                    selector.unregister(key.fileobj)
                    open_.discard(key.fileobj)
                    key.fileobj.close()
        for s in open_:
            s.close()
        assert not open_, f"{len(open_)} of 200 slow connections are still open"
        assert all(answers[s].startswith(b"HTTP/1.1 408") for s in stalled_bodies), \
            {answers[s][:40] for s in stalled_bodies}
        assert httpx.get(f"{url}/v1/health", timeout=10).status_code == 200


ARENA_SCRIPT = r"""
import json, sys
from pathlib import Path
import onnx, psutil, torch
from onnx import TensorProto, helper
from fmkit.exporting.loading import onnx_runner

N = 1024
two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
nodes = [helper.make_node("Mul", ["x", "two"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
         helper.make_node("Add", ["b", "x"], ["c"]), helper.make_node("Mul", ["c", "two"], ["d"]),
         helper.make_node("Sigmoid", ["d"], ["outputs"])]
graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", N])],
                          [helper.make_tensor_value_info("outputs", TensorProto.FLOAT, ["batch", N])], [two])
path = Path(sys.argv[1])
onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
run = onnx_runner(path, None)
rss = lambda: psutil.Process().memory_info().rss
run({"x": torch.zeros(4, N)})
base, rounds = rss(), []
for _ in range(3):  # maximum-size requests (16 MB inputs) of varying shapes, then a small one
    for b in (4096, 3000, 4096, 2500, 4096, 3500):
        run({"x": torch.ones(b, N)})
    run({"x": torch.zeros(4, N)})
    rounds.append(rss() - base)
print(json.dumps({"rounds": rounds, "request_bytes": 4096 * N * 4}))
"""


def test_onnx_memory_stays_bounded_under_repeated_maximum_size_requests(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("psutil")
    # glibc would keep freed 16 MB blocks in its heap (a dynamic mmap threshold); a fixed threshold
    # returns them, so what stays resident is what ONNX Runtime itself holds on to
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run([sys.executable, "-c", ARENA_SCRIPT, str(tmp_path / "big.onnx")], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    held = max(result["rounds"])
    assert held < result["request_bytes"], (
        f"{held / 2**20:.0f} MB stay resident after maximum-size requests of "
        f"{result['request_bytes'] / 2**20:.0f} MB (per round: {[r // 2**20 for r in result['rounds']]} MB)")


def test_predict_batch_size_below_one_is_a_usage_error(export, tmp_path, capsys):
    from fmkit.cli.main import main

    inputs = tmp_path / "in.txt"
    inputs.write_text("good film\nbad film\n")
    for size in ("0", "-1"):
        with pytest.raises(SystemExit) as exit_:
            main(["predict", export, str(inputs), "--batch-size", size, "-o", str(tmp_path / "out.jsonl")])
        assert exit_.value.code == 2
        assert "--batch-size" in capsys.readouterr().err and not (tmp_path / "out.jsonl").exists()
    from fmkit.engine.predict_file import predict_file
    from fmkit.errors import UsageError

    with pytest.raises(UsageError, match="at least 1"):
        predict_file(export, str(inputs), str(tmp_path / "out.jsonl"), batch_size=0)
    assert not (tmp_path / "out.jsonl").exists()


def test_serve_reads_the_recipes_serve_section_and_flags_override_it(export, tmp_path, monkeypatch, capsys):
    import shutil

    import fmkit.serve.app as serve_app
    from fmkit.cli.main import main

    served: list[dict] = []
    monkeypatch.setattr(serve_app, "serve", lambda path, **kw: served.append({"path": path, **kw}))
    folder = tmp_path / "export"
    shutil.copytree(export, folder)
    meta = json.loads((folder / "export.json").read_text())
    meta["recipe"]["serve"] = {"port": 8123, "max_items": 3, "max_wait_ms": 7.5, "public_metrics": True,
                               "max_input_chars": 5000, "batching": False}
    (folder / "export.json").write_text(json.dumps(meta))

    assert main(["serve", str(folder), "--max-items", "5", "--max-input-chars", "6000"]) == 0
    got = served.pop()
    assert got["port"] == 8123 and got["max_wait_ms"] == 7.5 and got["public_metrics"] is True
    assert got["batching"] is False
    assert got["max_items"] == 5 and got["max_input_chars"] == 6000  # flags win
    assert got["host"] == "127.0.0.1" and got["header_timeout"] == 10.0  # defaults where neither says
    assert got["trust_remote_code"] is False

    meta["recipe"]["serve"] = {"max_items": 0}
    (folder / "export.json").write_text(json.dumps(meta))
    assert main(["serve", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "serve.max_items" in err and "export.json" in err and not served

    run = Path(export).parents[1]  # the run directory: its recipe.yaml's serve: section
    import yaml

    run_copy = tmp_path / "run"
    shutil.copytree(run, run_copy, ignore=shutil.ignore_patterns("exports", "cache"))
    recipe = yaml.safe_load((run_copy / "recipe.yaml").read_text())
    recipe["serve"]["max_batch_size"] = 4
    (run_copy / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["serve", str(run_copy), "--port", "9000"]) == 0
    got = served.pop()
    assert got["max_batch_size"] == 4 and got["port"] == 9000


def _read_until_closed(sock: socket.socket, timeout: float = 20.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    return data


def test_oversized_headers_and_pipelined_floods_are_cut_off(export):
    """httptools kept every header line (one connection's 300 MiB of headers took 3.8 GB) and parsed
    pipelined requests far ahead of their answers (RSS +469 MiB for a client that never reads):
    now a head past 64 KiB or 256 lines gets a 431 and the connection closes after it; more than
    64 requests queued ahead of their answers close the connection; ordinary pipelining is answered."""
    import httpx
    from fmkit.serve.app import create_app
    from fmkit.serve.protocol import MAX_HEADER_BYTES, MAX_HEADERS, MAX_PIPELINED

    with Server(create_app(export)) as url:
        port = int(url.rsplit(":", 1)[1])
        heads = {"many lines": b"X-a: b\r\n" * (MAX_HEADERS + 1),
                 "one long line": b"Cookie: " + b"a" * (MAX_HEADER_BYTES + 1) + b"\r\n",
                 "a long URL": None}
        for case, extra in heads.items():
            s = socket.create_connection(("127.0.0.1", port), timeout=20)
            line = (b"GET /v1/health?" + b"q" * (MAX_HEADER_BYTES + 1) if extra is None else b"GET /v1/health")
            sent = 0
            try:  # the rest of a 64 MiB flood is refused once the limit is past
                s.sendall(line + b" HTTP/1.1\r\nHost: x\r\n" + (extra or b""))
                for _ in range(64):
                    s.sendall(b"X-b: c\r\n" * (1 << 17))
                    sent += 1
                s.sendall(b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            answer = _read_until_closed(s)
            s.close()
            assert answer.startswith(b"HTTP/1.1 431") and b"connection: close" in answer, (case, answer[:200])
            assert sent < 64, f"{case}: the server read all 64 MiB of headers"
        s = socket.create_connection(("127.0.0.1", port), timeout=20)  # a header line that never ends
        sent = 0
        try:
            s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ")
            for _ in range(64):
                s.sendall(b"a" * (1 << 20))
                sent += 1
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _read_until_closed(s)
        s.close()
        assert answer.startswith(b"HTTP/1.1 431") and sent < 8, (sent, answer[:100])  # it read ~90 MiB, then reset
        s = socket.create_connection(("127.0.0.1", port), timeout=20)  # a normal 8 KB cookie is fine
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nCookie: " + b"a" * 8000 + b"\r\nConnection: close\r\n\r\n")
        assert _read_until_closed(s).startswith(b"HTTP/1.1 200")
        s.close()
        s = socket.create_connection(("127.0.0.1", port), timeout=20)  # ordinary pipelining: every answer
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n" * 9 + b"GET /v1/health HTTP/1.1\r\nHost: x\r\n"
                  b"Connection: close\r\n\r\n")
        assert _read_until_closed(s).count(b"HTTP/1.1 200") == 10
        s.close()
        s = socket.create_connection(("127.0.0.1", port), timeout=20)  # 20,000 ahead of their answers: closed
        try:
            s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n" * 20000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answered = _read_until_closed(s).count(b"HTTP/1.1 200")
        s.close()
        assert answered <= MAX_PIPELINED + 1, answered
        assert httpx.get(f"{url}/v1/health", timeout=10).status_code == 200
