"""Serving defaults: an ONNX export is served with ONNX Runtime, /v1/metadata says backend and
precision, one text is accepted as a single input, the start-up line names the model and the docs,
and `fmkit predict --backend` exists."""
from __future__ import annotations

import shutil

import pytest

from helpers.serving import tiny_run


@pytest.fixture(scope="module")
def onnx_export(tmp_path_factory):
    import fmkit

    run = tmp_path_factory.mktemp("onnx") / "run"
    shutil.copytree(tiny_run(tmp_path_factory), run)
    return fmkit.export(str(run), "onnx")


def test_an_onnx_export_is_served_with_onnx_runtime(onnx_export, tmp_path_factory):
    from fmkit.serve.settings import resolve_backend, serve_settings

    assert resolve_backend(onnx_export) == "onnx"
    assert serve_settings(onnx_export, {"backend": None})["backend"] == "onnx"
    assert serve_settings(onnx_export, {"backend": "torch"})["backend"] == "torch"  # a flag wins
    assert resolve_backend(tiny_run(tmp_path_factory)) == "torch"  # a run directory has no ONNX model


def test_metadata_single_input_and_start_line(onnx_export):
    from fastapi.testclient import TestClient

    from fmkit.serve.app import create_app

    app = create_app(str(onnx_export), backend="onnx")
    with TestClient(app) as c:
        meta = c.get("/v1/metadata").json()
        assert meta["backend"] == "onnx" and meta["precision"] == "float"
        one = c.post("/v1/predict", json={"inputs": "good film"})
        many = c.post("/v1/predict", json={"inputs": ["good film"]})
        assert one.status_code == 200 and one.json() == many.json()
    assert "backend onnx" in app.state.summary and "precision float" in app.state.summary
    assert "/" not in app.state.summary.split(" ")[0]  # a name, not a path


def test_predict_backend_flag(onnx_export, tmp_path):
    from conftest import run_cli

    (tmp_path / "in.txt").write_text("good film\nbad film\n")
    a = run_cli("predict", str(onnx_export), str(tmp_path / "in.txt"), "--backend", "onnx")
    b = run_cli("predict", str(onnx_export), str(tmp_path / "in.txt"), "--backend", "torch")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    import json

    la = [json.loads(x)["label"] for x in a.stdout.splitlines()]
    lb = [json.loads(x)["label"] for x in b.stdout.splitlines()]
    assert la == lb and len(la) == 2


def test_docs_work_offline_from_the_servers_own_files(onnx_export):
    from fastapi.testclient import TestClient

    from fmkit.serve.app import create_app

    with TestClient(create_app(str(onnx_export), backend="onnx", api_key="k")) as c:
        page = c.get("/docs", headers={"X-API-Key": "k"})
        assert page.status_code == 200
        assert "/docs-assets/swagger-ui-bundle.js" in page.text and "cdn" not in page.text.lower()
        js = c.get("/docs-assets/swagger-ui-bundle.js")  # the page's own files need no key
        css = c.get("/docs-assets/swagger-ui.css")
        assert js.status_code == 200 and len(js.content) > 100_000 and css.status_code == 200
        assert c.get("/docs").status_code == 401 and c.get("/openapi.json").status_code == 401
        assert c.get("/openapi.json", headers={"X-API-Key": "k"}).json()["paths"]["/v1/predict"]


def test_the_api_description_has_examples_and_every_status(onnx_export):
    import json

    from fastapi.testclient import TestClient

    from fmkit.serve.app import create_app

    shipped = json.loads((onnx_export / "export.json").read_text())["signature"]["example_inputs"]
    with TestClient(create_app(str(onnx_export), backend="onnx")) as c:
        spec = c.get("/openapi.json").json()
        op = spec["paths"]["/v1/predict"]["post"]
        assert {"200", "400", "401", "413", "422", "503"} <= set(op["responses"])
        example = op["requestBody"]["content"]["application/json"]["examples"]["from the model"]["value"]
        assert example == {"inputs": shipped[:2]} and shipped
        r = c.post("/v1/predict", json=example)  # the documented example works as sent
        assert r.status_code == 200 and len(r.json()["predictions"]) == len(example["inputs"])
