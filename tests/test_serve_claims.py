"""Serving claims: ``fmkit serve`` as a real process with its flags and an API key, int8
serving, and micro-batched answers equal to unbatched ones, request by request."""
from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import FILL, NEG, POS, ROOT
from helpers.waiting import free_port, running, wait_until

pytest.importorskip("fmkit_nlp")
httpx = pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def int8_export(tmp_path_factory):
    """A tiny text classifier exported as ONNX with an int8 model next to the float one."""
    import fmkit
    from conftest import tiny_recipe

    tmp = tmp_path_factory.mktemp("serve-claims")
    recipe = tiny_recipe(tmp, epochs=2)
    recipe["optimizer"]["lr"] = 0.02  # inputs mixing positive and negative words get scores spread between the classes
    recipe["export"] = {"formats": ["onnx"], "quantize": "int8", "keep_float": True}  # both, to compare them
    run = fmkit.train(recipe, run_dir=str(tmp / "run"))
    return run.exports["onnx"]


def _texts(n: int, seed: int) -> list[str]:
    """Distinct short reviews mixing filler, positive and negative words in varying numbers."""
    rng = random.Random(seed)
    return [" ".join(rng.sample(FILL, rng.randint(1, 5)) + rng.sample(POS, rng.randint(0, 3)) + rng.sample(NEG, rng.randint(0, 3)))
            for _ in range(n)]


def _scores(answer: dict) -> list[float]:
    return [answer["scores"][k] for k in sorted(answer["scores"])]


def _close(a: dict, b: dict, tol: float) -> bool:
    return a["label"] == b["label"] and max(abs(x - y) for x, y in zip(_scores(a), _scores(b))) <= tol


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} is not in /metrics")


def test_fmkit_serve_process_honours_its_flags_and_the_api_key(int8_export, tmp_path):
    """A real `fmkit serve` process: the API key from --api-key-env guards predictions, health
    stays public; --port, --backend, --precision, --max-batch-size and --max-wait-ms take effect;
    the int8 model it serves answers as the int8 model does offline."""
    import fmkit

    port = free_port()
    env = {**os.environ, "FMKIT_TEST_KEY": "k-123", "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]))}
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "fmkit", "serve", int8_export, "--port", str(port),
                             "--backend", "onnx", "--precision", "int8", "--max-batch-size", "3",
                             "--max-wait-ms", "7", "--max-queue", "50", "--api-key-env", "FMKIT_TEST_KEY"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    texts = _texts(6, seed=1)
    try:
        def up():
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                return httpx.get(f"{url}/v1/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, timeout=90, what="fmkit serve to answer /v1/health")
        with httpx.Client(base_url=url, timeout=30) as c:
            assert c.get("/v1/health").json() == {"status": "ok"}  # public: no key
            assert c.post("/v1/predict", json={"inputs": texts}).status_code == 401
            assert c.post("/v1/predict", json={"inputs": texts}, headers={"X-API-Key": "wrong"}).status_code == 401
            key = {"X-API-Key": "k-123"}
            r = c.post("/v1/predict", json={"inputs": texts}, headers=key)
            assert r.status_code == 200, r.text
            served = r.json()["predictions"]
            meta = c.get("/v1/metadata", headers=key).json()  # the key is sent where a server may ask for it
            metrics = c.get("/metrics", headers=key).text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()
    assert meta["backend"] == "onnx"
    assert meta["batching"] == {"enabled": True, "max_batch_size": 3, "max_wait_ms": 7.0}
    assert 'precision="int8"' in metrics and 'backend="onnx"' in metrics
    # six inputs with --max-batch-size 3: at least two micro-batches, none larger than 3
    assert _metric(metrics, "fmkit_batches_total") >= 2 and _metric(metrics, 'fmkit_batch_size_bucket{le="4.0"}') \
        == _metric(metrics, "fmkit_batch_size_count")
    # int8 serving: the answers are the int8 model's (offline), not the float model's. Dynamic
    # quantization scales activations per batch, so offline batches match the server's: six
    # inputs queued at once are taken three at a time
    int8 = fmkit.load(int8_export, backend="onnx", precision="int8").predict(texts, batch_size=3)
    flt = fmkit.load(int8_export, backend="onnx", precision="float").predict(texts, batch_size=3)
    assert all(_close(s, q, 1e-6) for s, q in zip(served, int8)), (served, int8)
    assert max(abs(x - y) for s, f in zip(served, flt) for x, y in zip(_scores(s), _scores(f))) > 1e-6, \
        "the int8 model answers exactly as the float one: it is not what is served"


def test_fmkit_serve_refuses_an_empty_api_key_variable(int8_export):
    """An API key variable that is set but empty is refused (exit 2, naming it): the server never
    starts unguarded by mistake."""
    from conftest import run_cli

    r = run_cli("serve", int8_export, "--port", str(free_port()), "--api-key-env", "FMKIT_TEST_UNSET_KEY",
                env={"FMKIT_TEST_UNSET_KEY": ""}, timeout=120)
    assert r.returncode == 2 and "FMKIT_TEST_UNSET_KEY" in r.stderr and "empty" in r.stderr, r.stderr


def test_batched_answers_equal_unbatched_answers_request_by_request(int8_export):
    """Concurrent clients with distinct inputs (one to three per request) are micro-batched
    together; every answer equals the one its inputs get alone, in order. The first batch is held
    until every request is queued, so the rest are full, mixed batches."""
    import fmkit
    from fmkit.serve.app import create_app

    predictor = fmkit.load(int8_export, backend="onnx", precision="float")
    candidates = _texts(200, seed=2)
    alone = {t: predictor.predict([t])[0] for t in candidates}  # unbatched: one input per call
    # keep inputs whose answers are far apart, so an answer given to the wrong input cannot pass
    tol, texts = 1e-5, []
    for t in candidates:
        if all(max(abs(x - y) for x, y in zip(_scores(alone[t]), _scores(alone[u]))) > 10 * tol for u in texts):
            texts.append(t)
    texts = texts[:24]
    assert len(texts) >= 12, "too few distinguishable inputs for the test to mean anything"
    sizes = itertools.cycle([1, 2, 3])
    requests, i = [], 0
    while i < len(texts):
        n = next(sizes)
        requests.append(texts[i:i + n])
        i += n

    app = create_app(int8_export, backend="onnx", precision="float", max_batch_size=8, max_wait_ms=50)
    batcher = app.state.batcher
    predict, release, first, seen = batcher.predict, threading.Event(), [], []

    def gated(items):
        if not first:  # the first batch waits until every request is queued
            first.append(len(items))
            release.wait(60)
        seen.append(len(items))
        return predict(items)

    batcher.predict = gated
    with running(app) as url:
        def post(inputs):
            with httpx.Client(base_url=url, timeout=60) as c:
                return c.post("/v1/predict", json={"inputs": inputs})

        with ThreadPoolExecutor(len(requests)) as pool:
            futures = [pool.submit(post, r) for r in requests]
            total = sum(map(len, requests))
            # the first batch holds some items; all the others wait in the queue
            wait_until(lambda: batcher.inflight == len(requests) and first and batcher.queue.qsize() + first[0] == total,
                       what="every request to reach the batcher")
            release.set()
            answers = [f.result(timeout=60) for f in futures]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert max(seen) > 3 and len(seen) < len(requests), f"the requests were not batched together: {seen}"
    for inputs, answer in zip(requests, answers):
        got = answer.json()["predictions"]
        assert len(got) == len(inputs)
        for text, g in zip(inputs, got):
            assert _close(g, alone[text], tol), f"{text!r}: batched {g} != alone {alone[text]}"


def test_the_large_input_lane_runs_the_same_model_on_one_thread(int8_export):
    """The ONNX backend's background predictor (the server's large-input lane) is a second,
    single-threaded session, built once, answering exactly as the main one."""
    from fmkit.exporting.loading import load_predictor

    main = load_predictor(int8_export, backend="onnx")
    background = main.background()
    assert background is not main and main.background() is background
    assert background.run_batch.session.get_session_options().intra_op_num_threads == 1
    assert main.run_batch.session.get_session_options().intra_op_num_threads != 1
    texts = ["good film", "a dull and boring plot", "great"]
    assert background.predict(texts) == main.predict(texts)
    # the server's large-input lane: only the model call runs on the background thread
    import os
    import threading

    from fmkit.serve.priority import background_predictor

    lane = background_predictor(main, "background")
    assert lane is not None and lane.predict(texts) == main.predict(texts)
    assert background_predictor(main, "shared") is None
    if hasattr(os, "SCHED_IDLE"):
        assert lane.run_batch.pool.submit(os.sched_getscheduler, 0).result() == os.SCHED_IDLE
    assert lane.run_batch.run is background.run_batch
    lane.run_batch.close()


def test_the_servers_large_inputs_are_predicted_on_the_background_thread(int8_export, monkeypatch):
    """Through HTTP: a long input's model call runs on the background thread, a short one's does not;
    with FMKIT_HEAVY_LANE=shared the lane has no background predictor."""
    import threading

    from fastapi.testclient import TestClient
    from fmkit.serve.app import HEAVY_INPUT_CHARS, create_app

    monkeypatch.delenv("FMKIT_HEAVY_LANE", raising=False)
    app = create_app(int8_export, backend="onnx")
    runner = app.state.background.run_batch
    threads = []
    real = runner.run

    def spy(batch):
        threads.append(threading.current_thread().name)
        return real(batch)

    runner.run = spy
    long_text = "good film " * (HEAVY_INPUT_CHARS // 10 + 1)
    with TestClient(app) as c:
        assert c.post("/v1/predict", json={"inputs": ["good film"]}).status_code == 200
        assert threads == []
        r = c.post("/v1/predict", json={"inputs": [long_text, "good film"]})
        assert r.status_code == 200 and len(r.json()["predictions"]) == 2
    assert len(threads) == 1 and threads[0].startswith("fmkit-background")
    runner.close()
    monkeypatch.setenv("FMKIT_HEAVY_LANE", "shared")
    assert create_app(int8_export, backend="onnx").state.background is None
