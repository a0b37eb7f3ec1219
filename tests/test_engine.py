"""The training engine end to end on a tiny model: run directory, resume, faults, evaluate, predict."""
from __future__ import annotations

import json
import os

import pytest
import yaml
from conftest import run_cli

torch = pytest.importorskip("torch")
pytest.importorskip("fmkit_nlp")


def write(tmp_path, recipe: dict) -> str:
    p = tmp_path / "recipe.yaml"
    p.write_text(yaml.safe_dump(recipe))
    return str(p)


def test_train_writes_a_complete_run_directory(tmp_path, recipe_factory):
    import fmkit

    run = fmkit.train(recipe_factory(epochs=3), run_dir=str(tmp_path / "run"))
    d = run.run_dir
    for name in ("recipe.yaml", "environment.json", "metrics.jsonl", "eval.json", "report.html", "plots/loss.png",
                 "plots/confusion_matrix.png", "checkpoints/best/model.safetensors"):
        assert (d / name).exists(), name
    metrics = json.loads((d / "eval.json").read_text())
    assert {"accuracy", "f1_macro", "loss"} <= set(metrics)
    assert metrics["accuracy"] > 0.7  # the generated words make the task learnable
    assert yaml.safe_load((d / "recipe.yaml").read_text())["train"]["epochs"] == 3
    lines = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    assert any(x["split"] == "validation" for x in lines) and any(x["split"] == "train" for x in lines)
    # evaluate and predict from the run directory
    again = fmkit.evaluate(str(d))
    assert abs(again["accuracy"] - metrics["accuracy"]) < 1e-6
    preds = fmkit.predict(str(d), ["good great film", "awful boring plot"])
    assert [p["label"] for p in preds] == ["pos", "neg"]


def test_preprocessing_cache_is_reused(tmp_path, recipe_factory):
    import fmkit

    recipe = recipe_factory(epochs=1)
    fmkit.train(recipe, run_dir=str(tmp_path / "a"))
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert cached
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()}
    fmkit.train(recipe, run_dir=str(tmp_path / "b"))
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()} == mtimes


def _weights(run_dir):
    from safetensors.torch import load_file

    ckpts = sorted((run_dir / "checkpoints").glob("step-*"))
    return load_file(str(ckpts[-1] / "model.safetensors"))


def test_run_killed_mid_epoch_resumes_bit_identical(tmp_path, recipe_factory):
    recipe = recipe_factory(epochs=2, checkpoint_every=3, deterministic=True, threads=1)
    recipe["train"]["async_checkpoint"] = True  # the background writer (other CPU tests write in place)
    recipe["plugins"] = ["helpers.faults"]
    path = write(tmp_path, recipe)
    ref = run_cli("train", path, "--run-dir", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr[-2000:]
    killed = run_cli("train", path, "--run-dir", str(tmp_path / "killed"), env={"FMKIT_TEST_KILL_AT": "6"})
    assert killed.returncode == -9  # SIGKILL in the middle of the first epoch (12 batches per epoch)
    meta = json.loads((tmp_path / "killed" / "checkpoints" / "step-00000006" / "meta.json").read_text())
    assert meta["batch_in_epoch"] == 6 and meta["epoch"] == 0
    resumed = run_cli("train", "--resume", str(tmp_path / "killed"), str(tmp_path / "killed" / "recipe.yaml"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = _weights(tmp_path / "ref"), _weights(tmp_path / "killed")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    ea = json.loads((tmp_path / "ref" / "eval.json").read_text())
    eb = json.loads((tmp_path / "killed" / "eval.json").read_text())
    assert ea == eb


def test_out_of_memory_halves_the_micro_batch_and_keeps_the_effective_batch(tmp_path, recipe_factory, caplog):
    import fmkit

    recipe = recipe_factory(epochs=1)
    recipe["plugins"] = ["helpers.faults"]
    recipe["model"] = {"name": "test-faulty", "oom_above": 4}
    run = fmkit.train(recipe, run_dir=str(tmp_path / "run"))
    details = json.loads((run.run_dir / "eval_details.json").read_text())
    assert details["oom_events"][0]["micro_batches"] == 2
    assert "out of memory" in caplog.text


def test_non_finite_losses_are_skipped_then_stop_with_a_clear_error(tmp_path, recipe_factory):
    import fmkit
    from fmkit.errors import TrainingError

    recipe = recipe_factory(epochs=1)
    recipe["plugins"] = ["helpers.faults"]
    recipe["model"] = {"name": "test-faulty", "nan_calls": [2, 3]}
    run = fmkit.train(recipe, run_dir=str(tmp_path / "ok"))
    assert json.loads((run.run_dir / "eval_details.json").read_text())["skipped_steps"] == 2
    recipe["model"]["nan_calls"] = list(range(1, 50))
    recipe["train"]["max_bad_steps"] = 3
    with pytest.raises(TrainingError, match="non-finite"):
        fmkit.train(recipe, run_dir=str(tmp_path / "bad"))


def test_hook_errors_name_the_plugin(tmp_path, recipe_factory):
    import fmkit
    from fmkit.errors import PluginHookError

    class Exploding:
        @fmkit.hookimpl
        def fmkit_on_epoch_start(self, run, epoch):
            raise ValueError("tracker offline")

    fmkit.register_plugin(Exploding(), name="exploding-tracker")
    try:
        with pytest.raises(PluginHookError, match="exploding-tracker.*fmkit_on_epoch_start"):
            fmkit.train(recipe_factory(epochs=1), run_dir=str(tmp_path / "run"))
    finally:
        fmkit.unregister_plugin("exploding-tracker")


def test_export_verify_load_and_serve(tmp_path, recipe_factory):
    import fmkit

    # 4 epochs: after 2 the tiny model's margins are near zero and int8 flips 40% of its predictions
    run = fmkit.train(recipe_factory(epochs=4), run_dir=str(tmp_path / "run"))
    for fmt in ("safetensors", "torchscript", "onnx"):
        out = fmkit.export(str(run.run_dir), fmt)
        meta = json.loads((out / "export.json").read_text())
        assert meta["verification"]["max_abs_diff"] < 1e-3
        assert meta["verification"]["prediction_agreement"] == 1.0
    out = fmkit.export(str(run.run_dir), "onnx", quantize="int8", output=str(tmp_path / "int8"))
    meta = json.loads((out / "export.json").read_text())
    assert meta["int8"]["int8_bytes"] > 0 and meta["int8"]["prediction_agreement"] >= 0.9 and "metric_change" in meta["int8"]
    # the int8 folder holds what serving the int8 model needs, not the float copy too
    assert (out / "model.int8.onnx").is_file() and not (out / "model.onnx").exists()
    assert meta["int8"]["float_model_kept"] is False and "model.onnx" not in meta["files"]
    int8 = fmkit.load(str(out), backend="onnx")
    assert int8.precision == "int8" and len(int8.predict(["good great film"])) == 1
    from fmkit.errors import UsageError

    with pytest.raises(UsageError, match="holds the int8 model only.*--keep-float"):
        fmkit.load(str(out), backend="onnx", precision="float")
    both = fmkit.export(str(run.run_dir), "onnx", quantize="int8", output=str(tmp_path / "both"), keep_float=True)
    assert (both / "model.onnx").is_file() and (both / "model.int8.onnx").is_file()
    texts = ["good great film", "awful boring plot"]
    expected = fmkit.predict(str(run.run_dir), texts)
    got = fmkit.load(str(run.run_dir / "exports" / "onnx"), backend="onnx").predict(texts)
    assert [p["label"] for p in got] == [p["label"] for p in expected]

    from fastapi.testclient import TestClient
    from fmkit.serve.app import create_app

    app = create_app(str(run.run_dir / "exports" / "onnx"), backend="onnx", max_items=4)
    with TestClient(app) as client:
        r = client.post("/v1/predict", json={"inputs": texts})
        assert r.status_code == 200 and [p["label"] for p in r.json()["predictions"]] == [p["label"] for p in expected]
        assert client.post("/v1/predict", json={"wrong": 1}).status_code == 422
        assert client.post("/v1/predict", json={"inputs": [1]}).status_code == 400
        assert client.post("/v1/predict", json={"inputs": ["x"] * 5}).status_code == 413
        assert client.get("/v1/health").json() == {"status": "ok"}
        assert client.get("/v1/metadata").json()["labels"] == ["neg", "pos"]
        assert "fmkit_requests_total{" in client.get("/metrics").text


def test_export_past_tolerance_fails_and_leaves_nothing(tmp_path, recipe_factory):
    import fmkit
    from fmkit.errors import ExportError
    from fmkit.exporting.api import export

    run = fmkit.train(recipe_factory(epochs=1), run_dir=str(tmp_path / "run"))
    with pytest.raises(ExportError, match="tolerance"):
        export(run.run_dir, "onnx", output=str(tmp_path / "strict"), tolerance=1e-12)
    assert not (tmp_path / "strict").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_export_from_a_relative_run_directory_is_self_contained(tmp_path, recipe_factory, monkeypatch):
    """Paths the model writes into an export are stored relative to it, also when the run
    directory was given relative to the working directory (the usual `runs/...`)."""
    import shutil

    import fmkit

    recipe = recipe_factory(epochs=1)
    monkeypatch.chdir(tmp_path)
    recipe["tracking"]["runs_dir"] = "runs"
    recipe["export"] = {"formats": ["onnx"]}
    run = fmkit.train(recipe)
    assert not run.run_dir.is_absolute()
    moved = tmp_path / "elsewhere"
    shutil.copytree(run.exports["onnx"], moved)
    shutil.rmtree(tmp_path / "runs")
    pred = fmkit.load(str(moved), backend="torch").predict(["good great film"])
    assert pred[0]["label"] in ("pos", "neg")
