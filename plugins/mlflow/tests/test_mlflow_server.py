"""fmkit-mlflow against a real ``mlflow server`` (SQLite backend, started by the test on 127.0.0.1):
one fmkit run with an export, its MLflow run, its pyfunc model, its registration, and ``--resume``."""
from __future__ import annotations

import json

import pytest

from mlflow_helpers import cli, cli_env, mlflow_server, write_recipe


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as url:
        yield url


@pytest.fixture(scope="module")
def trained(server, tmp_path_factory):
    """One fmkit run (a real ``fmkit train`` process) logging to the server, with a safetensors
    export registered as ``tiny-text``."""
    tmp = tmp_path_factory.mktemp("run")
    recipe = write_recipe(tmp, {"tracking_uri": server, "experiment": "fmkit-tests", "run_name": "tiny",
                                "register_model": "tiny-text", "tags": {"team": "nlp"}},
                          export={"formats": ["safetensors"]})
    r = cli("train", str(recipe), "--run-dir", str(tmp / "run"), cwd=tmp)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "fmkit-mlflow: could not log" not in r.stderr, r.stderr[-3000:]
    state = json.loads((tmp / "run" / "mlflow.json").read_text())
    return {"dir": tmp / "run", "recipe": recipe, "run_id": state["run_id"], "state": state, "stderr": r.stderr}


@pytest.fixture(scope="module")
def client(server):
    import mlflow

    return mlflow.MlflowClient(server)


def test_mlflow_run_records_params_metrics_tags_and_artifacts(trained, client):
    run = client.get_run(trained["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "tiny"
    assert client.get_experiment(run.info.experiment_id).name == "fmkit-tests"
    params = run.data.params  # the flattened resolved recipe: defaults included
    assert params["optimizer.lr"] == "0.003" and params["train.batch_size"] == "8"
    assert params["task.name"] == "text-classification" and params["mlflow.register_model"] == "tiny-text"
    assert "train.grad_clip" in params or len(params) > 60  # defaults, not only what the file says
    tags = run.data.tags
    assert tags["fmkit.task"] == "text-classification" and tags["fmkit.model"] == "hf-classifier"
    assert tags["fmkit.version"] and tags["fmkit_mlflow.version"] and tags["team"] == "nlp"
    assert "mlflow" in tags["fmkit.plugins"] and tags["fmkit.final_split"] == "test"
    # metrics at every logging step (log_every 2) and every evaluation, with their steps
    lines = [json.loads(x) for x in (trained["dir"] / "metrics.jsonl").read_text().splitlines()]
    logged = [x["step"] for x in lines if x.get("split") == "train"]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == logged
    val = [x for x in lines if x.get("split") == "validation"]
    hist = client.get_metric_history(run.info.run_id, "validation/accuracy")
    assert [(m.step, m.value) for m in hist] == [(x["step"], x["accuracy"]) for x in val]
    final = json.loads((trained["dir"] / "eval.json").read_text())
    assert run.data.metrics["final/accuracy"] == pytest.approx(final["accuracy"])
    files = {a.path for a in client.list_artifacts(run.info.run_id, "fmkit")}
    assert {"fmkit/recipe.yaml", "fmkit/eval.json", "fmkit/report.html", "fmkit/metrics.jsonl", "fmkit/plots"} <= files
    assert any(a.path.endswith(".png") for a in client.list_artifacts(run.info.run_id, "fmkit/plots"))


def test_mlflow_pyfunc_model_predicts_what_fmkit_load_predicts(trained, server):
    import mlflow
    import pandas as pd

    import fmkit

    texts = ["good great wonderful movie", "awful boring dreadful film", "the plot was quite", "superb actors"]
    mlflow.set_tracking_uri(server)
    model = mlflow.pyfunc.load_model(f"runs:/{trained['run_id']}/model")
    ours = fmkit.load(str(trained["dir"] / "exports" / "safetensors")).predict(texts)
    assert model.predict(pd.DataFrame({"text": texts})).to_dict("records") == ours
    # a frame with more columns goes through the task's record reader (its text column)
    wide = pd.DataFrame({"id": [1, 2, 3, 4], "text": texts})
    assert model.predict(wide).to_dict("records") == ours


def test_mlflow_registers_the_model(trained, client):
    versions = client.search_model_versions("name='tiny-text'")
    assert [v.run_id for v in versions] == [trained["run_id"]]
    assert client.get_run(trained["run_id"]).data.tags["fmkit.registered_model"] == f"models:/tiny-text/{versions[0].version}"


def test_mlflow_resumed_run_continues_its_mlflow_run(trained, client):
    """``fmkit train --resume`` (one more epoch) logs into the same MLflow run: no second run,
    the metrics go on past the first run's last step."""
    run_dir, run_id = trained["dir"], trained["run_id"]
    before = max(m.step for m in client.get_metric_history(run_id, "train/loss"))
    r = cli("train", str(run_dir / "recipe.yaml"), "--resume", str(run_dir), "--set", "train.epochs=2", "--set", "export.formats=[]",
            cwd=run_dir.parent, env=cli_env())
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((run_dir / "mlflow.json").read_text())["run_id"] == run_id
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags.get("fmkit.resumed") == "true"
    assert max(m.step for m in client.get_metric_history(run_id, "train/loss")) > before
    assert run.data.tags.get("fmkit.resume.train.epochs") == "2"  # MLflow keeps a parameter's first value
    runs = client.search_runs([run.info.experiment_id])
    assert [x.info.run_id for x in runs] == [run_id]


def test_mlflow_models_serve_answers_what_fmkit_load_predicts(trained, server, tmp_path):
    """``mlflow models serve`` (a real process, the local environment) gives fmkit's answers."""
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    import fmkit
    from mlflow_helpers import free_port

    texts = ["good great wonderful movie", "awful boring dreadful film"]
    port = free_port()
    env = cli_env(MLFLOW_TRACKING_URI=server)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # uvicorn of this environment
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", f"runs:/{trained['run_id']}/model",
                             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-3000:]
                time.sleep(0.5)
        body = json.dumps({"dataframe_split": {"columns": ["text"], "data": [[t] for t in texts]}}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            served = json.loads(r.read())["predictions"]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
    assert served == fmkit.load(str(trained["dir"] / "exports" / "safetensors")).predict(texts)
