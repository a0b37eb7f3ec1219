"""A real uvicorn server on 127.0.0.1, called with httpx: good and bad requests, uploads, an API
key, concurrent load (micro-batched), and a graceful shutdown."""
from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import fmkit
    from conftest import tiny_recipe

    tmp = tmp_path_factory.mktemp("serve")
    recipe = tiny_recipe(tmp, epochs=2)
    recipe["export"] = {"formats": ["onnx"]}
    run = fmkit.train(recipe, run_dir=str(tmp / "run"))
    return run.exports["onnx"]


def _metric(text: str, name: str) -> float:
    """One sample's value from the Prometheus text format (``name`` with its labels, as printed)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} is not in /metrics:\n{text}")


class _Server:
    def __init__(self, app):
        import uvicorn

        self.port = _free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    timeout_graceful_shutdown=10))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started and time.time() < deadline:
            time.sleep(0.05)
        assert self.server.started, "uvicorn did not start"
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)


def test_real_server_good_and_bad_requests_uploads_and_api_key(exported):
    import httpx
    from fmkit.serve.app import create_app

    app = create_app(exported, backend="onnx", max_items=4, api_key="s3cret", max_body_bytes=10_000)
    with _Server(app) as url:
        key = {"X-API-Key": "s3cret"}
        with httpx.Client(base_url=url, timeout=30) as c:
            assert c.get("/v1/health").json() == {"status": "ok"}
            assert c.post("/v1/predict", json={"inputs": ["great film"]}).status_code == 401
            r = c.post("/v1/predict", json={"inputs": ["good great film", "awful boring plot"]}, headers=key)
            assert r.status_code == 200 and len(r.json()["predictions"]) == 2
            assert set(r.json()["predictions"][0]) >= {"label", "scores"}
            bad = c.post("/v1/predict", json={"input": ["x"]}, headers=key)
            assert bad.status_code == 422 and "inputs" in bad.text
            item = c.post("/v1/predict", json={"inputs": ["fine", 7]}, headers=key)
            assert item.status_code == 400 and "inputs[1]" in item.json()["detail"]
            assert c.post("/v1/predict", json={"inputs": ["x"] * 5}, headers=key).status_code == 413
            assert c.post("/v1/predict", content=b'{"inputs": ["' + b"x" * 20_000 + b'"]}',
                          headers={**key, "content-type": "application/json"}).status_code == 413

            def chunks():  # no Content-Length: the limit is enforced while the body is read
                yield b'{"inputs": ["'
                for _ in range(20):
                    yield b"x" * 1_000
                yield b'"]}'

            chunked = c.post("/v1/predict", content=chunks(), headers={**key, "content-type": "application/json"})
            assert chunked.status_code == 413 and "exceeds" in chunked.json()["detail"]
            small = c.post("/v1/predict", content=iter([b'{"inputs": ', b'["good film"]}']),
                           headers={**key, "content-type": "application/json"})
            assert small.status_code == 200 and len(small.json()["predictions"]) == 1
            up = c.post("/v1/predict/files", files=[("files", ("a.txt", b"good great film", "text/plain")),
                                                    ("files", ("b.txt", b"\xff\xfe bad bytes", "text/plain"))],
                        headers=key)
            assert up.status_code == 400 and "files[1]" in up.json()["detail"]
            up = c.post("/v1/predict/files", files=[("files", ("a.txt", b"good great film", "text/plain"))], headers=key)
            assert up.status_code == 200 and len(up.json()["predictions"]) == 1
            assert c.get("/v1/health").status_code == 200  # still serving after the bad requests
            assert "/v1/predict" in c.get("/openapi.json", headers=key).text  # the key guards docs and metrics too
            metrics = c.get("/metrics", headers=key)
            c.get("/no/such/path", headers=key)
            again = c.get("/metrics", headers=key).text
        assert metrics.headers["content-type"].startswith("text/plain")
        for status, count in (("200", 2), ("401", 1), ("422", 1), ("400", 1), ("413", 3)):
            assert _metric(metrics.text, f'fmkit_requests_total{{path="/v1/predict",status="{status}"}}') == count
        assert 'fmkit_model_info{' in metrics.text and 'backend="onnx"' in metrics.text
        assert _metric(again, 'fmkit_requests_total{path="other",status="404"}') == 1


def test_concurrent_clients_are_micro_batched(exported):
    import httpx
    from fmkit.serve.app import create_app

    app = create_app(exported, backend="torch", max_batch_size=16, max_wait_ms=20)
    with _Server(app) as url:
        def one(i):
            with httpx.Client(base_url=url, timeout=60) as c:
                return [c.post("/v1/predict", json={"inputs": [f"good film number {i} {j}"]}).status_code
                        for j in range(4)]

        with ThreadPoolExecutor(16) as pool:
            codes = [code for codes in pool.map(one, range(16)) for code in codes]
        assert codes == [200] * 64
        metrics = httpx.get(f"{url}/metrics").text
    batches = _metric(metrics, "fmkit_batches_total")
    assert batches < 64, f"64 concurrent requests ran in {batches} batches: no micro-batching"
    assert _metric(metrics, "fmkit_items_total") == 64
    assert _metric(metrics, 'fmkit_requests_total{path="/v1/predict",status="200"}') == 64
    assert _metric(metrics, 'fmkit_batch_size_bucket{le="1.0"}') < batches, "no batch held more than one input"
    assert _metric(metrics, 'fmkit_request_duration_seconds_count{path="/v1/predict"}') == 64


def test_a_bad_input_fails_its_own_request_not_the_batch_it_shares(exported):
    import httpx
    from fmkit.serve.app import create_app

    app = create_app(exported, backend="torch", max_batch_size=16, max_wait_ms=200)
    batcher = app.state.batcher
    fast, first = batcher.predict, threading.Event()

    def held(items):  # the first batch takes a second, so the other requests queue up behind it
        if not first.is_set():
            first.set()
            time.sleep(1.0)
        return fast(items)

    batcher.predict = held
    with _Server(app) as url:
        def one(i):
            inputs = ["good film", {"no": "text"}] if i == 3 else [f"good film number {i}"]
            with httpx.Client(base_url=url, timeout=60) as c:
                return c.post("/v1/predict", json={"inputs": inputs})

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(one, range(8)))
        metrics = httpx.get(f"{url}/metrics").text
    assert [a.status_code for a in answers] == [200, 200, 200, 400, 200, 200, 200, 200]
    assert "inputs[1]" in answers[3].json()["detail"]
    assert _metric(metrics, "fmkit_batches_total") < 8, "the eight requests were not batched together"
    assert _metric(metrics, 'fmkit_requests_total{path="/v1/predict",status="400"}') == 1


def test_shutdown_finishes_the_requests_in_flight(exported):
    import httpx
    from fmkit.serve.app import create_app

    app = create_app(exported, backend="torch")
    batcher = app.state.batcher
    fast = batcher.predict

    def slow(items):  # a prediction still running when the server is told to stop
        time.sleep(1.0)
        return fast(items)

    batcher.predict = slow
    server = _Server(app)
    with ThreadPoolExecutor(1) as pool:
        with server as url:
            answer = pool.submit(lambda: httpx.post(f"{url}/v1/predict", json={"inputs": ["good film"]}, timeout=30))
            deadline = time.time() + 10
            while not batcher.inflight and time.time() < deadline:
                time.sleep(0.01)
            assert batcher.inflight, "the request never reached the batcher"
        # leaving the block asked uvicorn to stop and joined it: the request in flight was answered
        assert not server.thread.is_alive()
        r = answer.result(timeout=30)
    assert r.status_code == 200 and r.json()["predictions"][0]["label"]


def test_an_overloaded_server_answers_503_with_retry_after(exported):
    import httpx
    from fmkit.serve.app import create_app

    app = create_app(exported, backend="torch", max_queue=1)
    batcher = app.state.batcher
    fast = batcher.predict

    def slow(items):
        time.sleep(1.5)
        return fast(items)

    batcher.predict = slow
    with _Server(app) as url:
        def post(delay):
            time.sleep(delay)
            return httpx.post(f"{url}/v1/predict", json={"inputs": ["good film"]}, timeout=30)

        with ThreadPoolExecutor(3) as pool:  # one running, one waiting, the third past the queue's limit
            answers = list(pool.map(post, (0.0, 0.4, 0.8)))
        metrics = httpx.get(f"{url}/metrics").text
    assert [a.status_code for a in answers] == [200, 200, 503]
    assert answers[2].headers["retry-after"] == "1" and "limit is 1" in answers[2].json()["detail"]
    assert _metric(metrics, 'fmkit_requests_total{path="/v1/predict",status="503"}') == 1


def test_request_bodies_parse_exactly_as_the_standard_library_parses_them():
    """orjson parses the bodies (faster, on the event loop); what it refuses falls back to json, so
    values and errors are json's: lone surrogates (answered 400 by the server), NaN, bad JSON."""
    import json
    import math

    from fmkit.serve.json_bodies import loads

    for body in (b'{"inputs": ["\\ud800", "ok"]}', b'{"a": 1, "a": 2}', '{"inputs": ["caf\u00e9 \U0001f600"]}'.encode(),
                 b'[1.5e300, -0.0, "\\u00e9", 18446744073709551615, -9223372036854775808]'):
        assert repr(loads(body)) == repr(json.loads(body)), body
    nan = loads(b'{"x": NaN, "y": -Infinity}')
    assert math.isnan(nan["x"]) and nan["y"] == -math.inf
    # the one documented difference: an integer past 64 bits arrives as the nearest float
    assert loads(b"[123456789012345678901234567890]") == [1.2345678901234568e29]
    for bad in (b'{"inputs": [', b"", b'{"a": 1,}', b"\xff\xfe"):
        with pytest.raises(json.JSONDecodeError) as mine:
            loads(bad)
        with pytest.raises(json.JSONDecodeError) as theirs:
            json.loads(bad)
        assert (mine.value.msg, mine.value.pos) == (theirs.value.msg, theirs.value.pos), bad
    with pytest.raises(json.JSONDecodeError, match="nested too deeply"):  # json itself raises RecursionError
        loads(b"[" * 100_000 + b"]" * 100_000)


def test_the_predict_routes_parse_their_body_through_the_fast_parser(exported, monkeypatch):
    import json
    from pathlib import Path

    from fastapi.testclient import TestClient
    from fmkit.serve import json_bodies
    from fmkit.serve.app import create_app, model_identity

    seen = []
    real = json_bodies.loads
    monkeypatch.setattr(json_bodies, "loads", lambda body: seen.append(len(body)) or real(body))
    with TestClient(create_app(exported)) as c:
        assert c.post("/v1/predict", json={"inputs": ["good film"]}).status_code == 200
        assert c.post("/v1/predict", content=b'{"inputs": [', headers={"content-type": "application/json"}).status_code == 422
        deep = b'{"inputs": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"  # a 500 before: RecursionError
        r = c.post("/v1/predict", content=deep, headers={"content-type": "application/json"})
        assert r.status_code == 422 and "nested too deeply" in r.text
        name = model_identity(json.loads((Path(exported) / "export.json").read_text()), exported)["name"]
        r = c.post(f"/v2/models/{name}/infer", content=deep)
        assert r.status_code == 422, r.text
    assert len(seen) == 4


def test_inputs_of_the_wrong_type_and_unreadable_bodies_are_named(exported):
    """Text fields that are not strings were predicted (str(5), str(None)); a body that is not UTF-8
    or holds a 5,000-digit number got FastAPI's bare "There was an error parsing the body"."""
    from fastapi.testclient import TestClient
    from fmkit.serve.app import create_app

    with TestClient(create_app(exported)) as c:
        for bad, words in (({"text": 5}, "'text' must be a string; got a number"),
                           ({"text": None}, "'text' must be a string; got null"),
                           ({"text": "ok", "text_pair": [1]}, "'text_pair' must be a string; got a list"),
                           ([1, 2], "pair holds two strings; got [a number, a number]"),
                           ([["a"], ["b"]], "got [a list, a list]")):
            r = c.post("/v1/predict", json={"inputs": ["good film", bad]})
            assert r.status_code == 400 and "inputs[1]" in r.text and words in r.text, (bad, r.text)
        assert c.post("/v1/predict", json={"inputs": ["good film", {"text": "ok"}]}).status_code == 200
        r = c.post("/v1/predict", json={"inputs": [["good film", "a pair"]]})  # its second text was dropped unread
        assert r.status_code == 400 and "trained on single texts" in r.text, r.text
        h = {"content-type": "application/json"}
        for body, words in ((b'{"inputs": ["\xff"]}', "not UTF-8 text (invalid start byte: byte 0xff at offset 13)"),
                            (b'{"inputs": [' + b"1" * 5000 + b"]}", "Exceeds the limit (4300 digits)")):
            r = c.post("/v1/predict", content=body, headers=h)
            assert r.status_code == 422 and words in r.text, r.text
