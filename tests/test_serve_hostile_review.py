"""What a third hostile review of the server found (a real uvicorn with ``fmkit serve``'s
configuration, an API key): each case fed as the reviewer fed it, with the answer it now gets.
A case that froze the server is checked by a health request answered while it is served."""
from __future__ import annotations

import gzip
import json
import threading
import time

import pytest

from helpers.serving import Server, tiny_export

httpx = pytest.importorskip("httpx")
KEY = {"X-API-Key": "k-1"}


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    from fmkit.serve.app import create_app

    with Server(create_app(str(tiny_export(tmp_path_factory)), api_key="k-1")) as base:
        yield base


def _name(url: str) -> str:
    """The served model's name, as the protocol's 404 gives it."""
    return httpx.get(f"{url}/v2/models/nope", headers=KEY).json()["error"].rsplit("serves ", 1)[1].strip("'")


class _HealthWhile:
    """Health requests sent every 0.1 s while a request is served: the slowest must stay short."""

    def __init__(self, url: str):
        self.url, self.times, self.stop = url, [], threading.Event()

    def __enter__(self):
        def probe():
            while not self.stop.is_set():
                t = time.perf_counter()
                httpx.get(f"{self.url}/v1/health", timeout=60)
                self.times.append(time.perf_counter() - t)
                time.sleep(0.1)

        self.thread = threading.Thread(target=probe, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=60)


def _infer(url: str, body, headers=None, **kw):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{url}/v2/models/{_name(url)}/infer", content=content, headers={**KEY, **(headers or {})},
                      timeout=60, **kw)


def test_open_inference_shapes_ids_and_trailing_bytes_are_refused_before_any_work(url):
    with _HealthWhile(url) as health:  # shape [10000000, 0] built ten million lists for 8.9 s
        r = _infer(url, {"inputs": [{"name": "i", "shape": [10_000_000, 0], "datatype": "FP32", "data": []}]})
    assert r.status_code == 413 and "10000000 inputs" in r.json()["error"] and "--max-items" in r.json()["error"]
    assert max(health.times, default=0) < 2.0, health.times
    with _HealthWhile(url) as health:  # [64, 1000000, 0] built 64 million empty rows: 108 s, 5.7 GB
        r = _infer(url, {"inputs": [{"name": "i", "shape": [64, 1_000_000, 0], "datatype": "FP32", "data": []}]})
    assert r.status_code == 413 and "spans more than" in r.json()["error"], r.text
    assert max(health.times, default=0) < 2.0, health.times
    n = 16 * 2**20 - 4096  # 16 MiB of BOOL sent binary: decoded value by value on the event loop for 16 s
    header = json.dumps({"inputs": [{"name": "x", "shape": [64, n // 64], "datatype": "BOOL",
                                     "parameters": {"binary_data_size": n}}]}).encode()
    with _HealthWhile(url) as health:
        r = _infer(url, header + b"\1" * n, {"Inference-Header-Content-Length": str(len(header))})
    assert r.status_code == 413, r.text
    assert max(health.times, default=0) < 2.0, health.times
    two = {"inputs": [{"name": "input", "shape": [1], "datatype": "BYTES", "data": ["good film"]}] * 2}
    r = _infer(url, two)  # the second tensor was decoded, then ignored
    assert r.status_code == 400 and "takes one input tensor; the request has 2" in r.json()["error"], r.text
    r = _infer(url, b"{}", {"Inference-Header-Content-Length": "+0"})
    assert r.status_code == 422 and "digits only" in r.json()["error"], r.text
    r = _infer(url, {"inputs": [{"name": "i", "shape": [1] * 1000, "datatype": "FP32", "data": [1.0]}]})
    assert r.status_code == 422 and "1000 dimensions" in r.json()["error"], r.text  # a RecursionError's 500
    r = _infer(url, {"inputs": [{"name": "i", "shape": [True], "datatype": "BYTES", "data": ["good film"]}]})
    assert r.status_code == 422 and "shape" in r.json()["error"], r.text
    one = {"inputs": [{"name": "input", "shape": [1], "datatype": "BYTES", "data": ["good film"]}]}
    r = _infer(url, json.dumps({**one, "id": "x"}).encode()[:-1] + b', "id": "\\ud800"}')
    assert r.status_code == 400 and r.json()["error"].startswith("id is not valid Unicode"), r.text  # a 500
    r = _infer(url, {**one, "id": "req-7"})
    assert r.status_code == 200 and r.json()["id"] == "req-7"
    r = _infer(url, {**one, "outputs": [{"name": "nope"}]})
    assert r.status_code == 400 and "'label'" in r.json()["error"], r.text  # it said "this model answers []"
    header = json.dumps({"inputs": [{"name": "input", "shape": [1], "datatype": "BYTES",
                                     "parameters": {"binary_data_size": 13}}]}).encode()
    body = header + (9).to_bytes(4, "little") + b"good film" + b"JUNK"
    r = _infer(url, body, {"Inference-Header-Content-Length": str(len(header))})
    assert r.status_code == 400 and "4 byte(s) after the last input's binary data" in r.json()["error"], r.text
    assert _infer(url, body[:-4], {"Inference-Header-Content-Length": str(len(header))}).status_code == 200


def test_open_inference_routing_errors_use_its_shape_and_nothing_redirects(url):
    r = httpx.post(f"{url}/v2/models/x/foo", headers=KEY)
    assert r.status_code == 404 and "error" in r.json(), r.text
    r = httpx.get(f"{url}/v2/models/{_name(url)}/infer", headers=KEY)
    assert r.status_code == 405 and "error" in r.json(), r.text
    r = httpx.get(f"{url}/v2")
    assert r.status_code == 401 and "error" in r.json(), r.text
    assert httpx.head(f"{url}/v2/health/ready").status_code == 200
    r = httpx.post(f"{url}/v1/predict/", json={"inputs": ["a"]}, headers={**KEY, "Host": "evil.example"})
    assert r.status_code == 404 and "location" not in r.headers, r.headers  # a 307 to http://evil.example/...


def test_record_uploads_are_parsed_off_the_loop_and_only_up_to_the_limit(url):
    files = lambda name, data: {"files": (name, data)}  # noqa: E731
    wide = b",".join(b"c%d" % i for i in range(100_000)) + b"\n" + b"x," * 99_999 + b"x\n"
    with _HealthWhile(url) as health:  # 100,000 columns: every client timed out for 90 s (quadratic check)
        r = httpx.post(f"{url}/v1/predict/files?records=true", files=files("w.csv", wide), headers=KEY, timeout=60)
        tall = httpx.post(f"{url}/v1/predict/files?records=true", files=files("t.csv", b"text\n" + b"h\n" * 2_000_000),
                          headers=KEY, timeout=60)
    assert r.status_code == 200, r.text[:300]
    assert tall.status_code == 413 and "more than 64 records" in tall.json()["detail"], tall.text[:300]
    assert max(health.times, default=0) < 5.0, health.times
    r = httpx.post(f"{url}/v1/predict/files?records=true", headers=KEY,
                   files=files("n.jsonl", b'{"input": {"text": "good film", "z": NaN}}\n'))
    assert r.status_code == 200 and r.json()["predictions"][0]["input"] == {"text": "good film", "z": None}, r.text


def test_a_large_refused_body_is_not_echoed_and_holds_no_one_up(url):
    body = b'{"inputs": {"a": [' + b",".join([b"[]"] * 1_000_000) + b"]}}"
    with _HealthWhile(url) as health:
        r = httpx.post(f"{url}/v1/predict", content=body, headers={**KEY, "content-type": "application/json"},
                       timeout=60)
    assert r.status_code == 422 and len(r.content) < 2_000, (r.status_code, len(r.content))
    assert "too large to echo" in r.text
    assert max(health.times, default=0) < 5.0, health.times
    r = httpx.post(f"{url}/v1/predict", json={"inputs": {"a": 1}}, headers=KEY)  # a small one is echoed
    assert r.status_code == 422 and r.json()["detail"][0]["input"] == {"a": 1}
    r = httpx.post(f"{url}/v1/predict", json={"inputs": {"k" * 2_000_000: 1}}, headers=KEY)  # a key was echoed whole
    assert r.status_code == 422 and len(r.content) < 2_000 and "too large to echo" in r.text, len(r.content)
    deep = b'{"inputs": ' + b'{"a": ' * 980 + b"1" + b"}" * 980 + b"}"  # FastAPI's encoder overflowed: a 500
    r = httpx.post(f"{url}/v1/predict", content=deep, headers={**KEY, "content-type": "application/json"})
    assert r.status_code == 422 and "too large to echo" in r.text, (r.status_code, r.text[:200])


def test_api_keys_compressed_bodies_pairs_and_documentation_files(url, tmp_path_factory, monkeypatch):
    """gzip and deflate bodies are decompressed (never past the body limit); other codings are a 415."""
    r = httpx.post(f"{url}/v1/predict", json={"inputs": ["a"]},
                   headers=[("X-API-Key", "wrong"), ("X-API-Key", "k-1")])
    assert r.status_code == 401 and "more than once" in r.json()["detail"]  # the last one won before
    import zlib

    plain = httpx.post(f"{url}/v1/predict", json={"inputs": ["good film"]}, headers=KEY).json()
    body = b'{"inputs": ["good film"]}'
    for coding, packed in (("gzip", gzip.compress(body)), ("deflate", zlib.compress(body))):
        r = httpx.post(f"{url}/v1/predict", content=packed,
                       headers={**KEY, "content-type": "application/json", "content-encoding": coding})
        assert r.status_code == 200 and r.json() == plain, (coding, r.text)  # a 422 about byte 0x8b before
    r = httpx.post(f"{url}/v1/predict", content=gzip.compress(body),  # every header counts, not the last
                   headers=[*KEY.items(), ("content-type", "application/json"), ("content-encoding", "gzip"),
                            ("content-encoding", "gzip")])
    assert r.status_code == 415 and "'gzip, gzip'" in r.text, r.text
    r = httpx.post(f"{url}/v1/predict", content=b"x", headers={**KEY, "content-encoding": "br"})
    assert r.status_code == 415 and "'br' is not supported" in r.text, r.text
    bomb = gzip.compress(b'{"inputs": ["' + b"a" * (40 * 2**20) + b'"]}')  # 40 KB that inflate to 40 MB
    r = httpx.post(f"{url}/v1/predict", content=bomb,
                   headers={**KEY, "content-type": "application/json", "content-encoding": "gzip"})
    assert r.status_code == 413 and "decompresses past the limit" in r.text, r.text
    r = httpx.post(f"{url}/v1/predict", content=gzip.compress(body)[:-8],
                   headers={**KEY, "content-type": "application/json", "content-encoding": "gzip"})
    assert r.status_code == 400 and "cut short" in r.text, r.text
    for pair in (["good film", "bad film"], {"text": "good film", "text_pair": "bad film"}):
        r = httpx.post(f"{url}/v1/predict", json={"inputs": [pair]}, headers=KEY)
        assert r.status_code == 400 and "trained on single texts" in r.json()["detail"], r.text  # dropped unread
    assert httpx.get(f"{url}/docs-assets/index.html").status_code == 401  # Swagger's stock page
    assert httpx.get(f"{url}/docs-assets/swagger-ui-bundle.js").status_code == 200
    from fmkit.errors import UsageError
    from fmkit.serve.app import serve

    monkeypatch.setenv("FMKIT_TEST_KEY", "secret\n")
    with pytest.raises(UsageError, match="white space at an end"):
        serve(str(tiny_export(tmp_path_factory)), api_key_env="FMKIT_TEST_KEY")


def test_a_transfer_coding_other_than_chunked_is_refused(url):
    """``Transfer-Encoding: gzip, chunked`` reached the JSON parser as gzip bytes (a 422)."""
    import socket

    port = int(url.rsplit(":", 1)[1])
    body = gzip.compress(b'{"inputs": ["a"]}')
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nX-API-Key: k-1\r\nContent-Type: application/json\r\n"
              b"Transfer-Encoding: gzip, chunked\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    answer = s.recv(4096)
    s.close()
    assert answer.startswith(b"HTTP/1.1 501") and b"Transfer-Encoding 'gzip'" in answer, answer[:300]
