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
