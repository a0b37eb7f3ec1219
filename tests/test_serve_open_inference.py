"""The server speaks the Open Inference Protocol (KServe v2): driven here by a real client library
of that protocol (tritonclient's HTTP client), with the answers the /v1 API gives."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import tiny_recipe
from helpers.waiting import running

pytest.importorskip("fmkit_nlp")
httpx = pytest.importorskip("httpx")
triton = pytest.importorskip("tritonclient.http", reason="pip install 'tritonclient[http]' (dev extra)")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    import fmkit
    from fmkit.serve.app import create_app

    tmp = tmp_path_factory.mktemp("v2")
    recipe = tiny_recipe(tmp, epochs=2)
    recipe["export"] = {"formats": ["onnx"]}
    recipe["tracking"]["run_name"] = "sentiment"
    run = fmkit.train(recipe, run_dir=str(tmp / "run"))
    return create_app(run.exports["onnx"], backend="onnx", api_key="k-1")


def test_a_kserve_v2_client_gets_the_same_answers_as_v1(app):
    texts = ["good great film", "awful boring plot", "a good plot"]
    with running(app) as url:
        v1 = httpx.post(f"{url}/v1/predict", json={"inputs": texts}, headers={"X-API-Key": "k-1"}).json()["predictions"]
        client = triton.InferenceServerClient(url.removeprefix("http://"))
        assert client.is_server_live() and client.is_server_ready()  # health is public: no key
        key = {"X-API-Key": "k-1"}
        assert client.is_model_ready("sentiment", headers=key)
        meta = client.get_model_metadata("sentiment", headers=key)
        assert meta["name"] == "sentiment" and meta["inputs"][0]["datatype"] == "BYTES"
        tensor = triton.InferInput("input", [len(texts)], "BYTES")
        tensor.set_data_from_numpy(np.array(texts, dtype=object))
        result = client.infer("sentiment", [tensor], headers=key)
        labels = [x.decode() if isinstance(x, bytes) else x for x in result.as_numpy("label").tolist()]
        assert labels == [p["label"] for p in v1]
        assert np.allclose(result.as_numpy("score"), [p["score"] for p in v1], atol=1e-6)
        scores = result.as_numpy("scores")  # per-label scores in the model's label order
        assert scores.shape == (3, 2) and np.allclose(scores.sum(axis=1), 1.0, atol=1e-4)
        # a copy of the headers: tritonclient adds Content-Encoding to the dict it is given
        packed = client.infer("sentiment", [tensor], headers=dict(key), request_compression_algorithm="gzip")
        assert packed.as_numpy("label").tolist() == result.as_numpy("label").tolist()  # request compression
        only = client.infer("sentiment", [tensor], outputs=[triton.InferRequestedOutput("label")], headers=key)
        assert only.as_numpy("score") is None and only.as_numpy("label") is not None
        with pytest.raises(Exception, match="no model named 'other'"):
            client.infer("other", [tensor], headers=key)
        with pytest.raises(Exception, match="401|API key|Unauthorized"):
            client.infer("sentiment", [tensor])  # the key guards v2 inference as it guards v1


def test_bad_v2_requests_get_the_protocols_error_shape(app):
    with running(app) as url:
        h = {"X-API-Key": "k-1"}
        r = httpx.post(f"{url}/v2/models/sentiment/infer", json={"inputs": [{"name": "input", "shape": [2],
                                                                            "datatype": "BYTES", "data": ["a"]}]},
                       headers=h)
        assert r.status_code == 400 and "1 elements but its shape [2] holds 2" in r.json()["error"]
        r = httpx.post(f"{url}/v2/models/sentiment/infer", json={"wrong": 1}, headers=h)
        assert r.status_code == 422 and "error" in r.json()
        r = httpx.post(f"{url}/v2/models/sentiment/infer", headers=h,
                       json={"inputs": [{"name": "input", "shape": [100], "datatype": "BYTES", "data": ["x"] * 100}]})
        assert r.status_code == 413  # the same limits as /v1 (max_items 64)


def test_malformed_v2_requests_are_4xx_naming_the_field_never_500(app):
    """Each of these was a 500 with a traceback (found by a hostile-client review)."""
    import json
    import struct

    def binary(header: dict, tail: bytes):
        raw = json.dumps(header).encode()
        return raw + tail, {"X-API-Key": "k-1", "Inference-Header-Content-Length": str(len(raw))}

    one = {"name": "input", "shape": [1], "datatype": "BYTES", "data": ["good film"]}
    deep = {"name": "input", "shape": [1], "datatype": "BYTES", "data": json.loads("[" * 600 + '"a"' + "]" * 600)}
    with running(app) as url:
        h = {"X-API-Key": "k-1"}
        post = lambda **kw: httpx.post(f"{url}/v2/models/sentiment/infer", **kw)  # noqa: E731
        cases = [
            (dict(json={"inputs": [one], "outputs": 5}, headers=h), 422, "outputs must be a list"),
            (dict(json={"inputs": [one], "outputs": [{"name": ["label"]}]}, headers=h), 422, "string names"),
            (dict(json={"inputs": [deep]}, headers=h), 200, None),  # 600 levels, one element: flattened without recursion
            (dict(json={"inputs": [{"name": "input", "shape": [1], "datatype": "INT64", "data": ["x"]}]}, headers=h),
             400, "element 0 is 'x'"),
        ]
        for header, tail, status, words in (
                ({"inputs": [{**one, "data": None, "parameters": 5}]}, b"", 422, "parameters must be an object"),
                ({"inputs": [{**one, "parameters": {"binary_data_size": [1]}}]}, b"x", 422, "binary_data_size"),
                ({"inputs": [{**one, "parameters": {"binary_data_size": True}}]}, b"x", 422, "binary_data_size"),
                ({"inputs": 5}, b"", 422, "JSON header"),
                ({"inputs": [{**one, "parameters": {"binary_data_size": 8}}]}, struct.pack("<I", 99) + b"abcd", 400,
                 "says 99 bytes"),
                ({"inputs": [{**one, "parameters": {"binary_data_size": 11}}]}, struct.pack("<I", 4) + b"good" + b"xyz",
                 400, "stray byte"),
                ({"inputs": [{"name": "input", "shape": [1], "datatype": "FP32", "parameters": {"binary_data_size": 7}}]},
                 b"\0" * 7, 400, "whole number of 4-byte values")):
            body, headers = binary(header, tail)
            cases.append((dict(content=body, headers=headers), status, words))
        cases.append((dict(content=b"{}", headers={**h, "Inference-Header-Content-Length": "-1"}), 422, "negative"))
        for kwargs, status, words in cases:
            r = post(**kwargs)
            assert r.status_code == status, (kwargs, r.status_code, r.text)
            assert status == 200 or ("error" in r.json() and words in r.json()["error"]), (kwargs, r.text)
        ok = post(json={"inputs": [one], "outputs": [{"name": "label"}]}, headers=h)
        assert ok.status_code == 200 and [o["name"] for o in ok.json()["outputs"]] == ["label"]
        # the route's requests count under its template in /metrics, not as "other"
        metrics = httpx.get(f"{url}/metrics", headers=h).text
        assert 'path="/v2/models/{model}/infer",status="422"' in metrics
        assert httpx.head(f"{url}/v1/health").status_code == 200
        # errors the request guard answers before any route have the protocol's shape on /v2 too
        r = post(json={"inputs": [one]})  # no key
        assert r.status_code == 401 and "X-API-Key" in r.json()["error"]
        r = httpx.post(f"{url}/v1/predict", json={"inputs": ["x"]})
        assert r.status_code == 401 and "X-API-Key" in r.json()["detail"]


def test_the_infer_route_reads_its_body_whatever_the_content_type_and_refuses_what_is_not_the_protocol(app):
    """As Triton and KServe do (their binary clients send no Content-Type): a JSON body sent as
    text/plain, or as curl -d's form type, is read; a form body that is not JSON is a 400 naming it."""
    body = '{"inputs": [{"name": "input", "shape": [1], "datatype": "BYTES", "data": ["good film"]}]}'
    with running(app) as url:
        for kind in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = {"X-API-Key": "k-1", **({"Content-Type": kind} if kind else {})}
            r = httpx.post(f"{url}/v2/models/sentiment/infer", content=body.encode(), headers=headers)
            assert r.status_code == 200 and r.json()["outputs"][0]["name"], (kind, r.text)
        r = httpx.post(f"{url}/v2/models/sentiment/infer", content=b"text=good+film",
                       headers={"X-API-Key": "k-1", "Content-Type": "application/x-www-form-urlencoded"})
        assert 400 <= r.status_code < 500 and "error" in r.json(), r.text
