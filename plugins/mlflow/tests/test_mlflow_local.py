"""fmkit-mlflow without a server: a local SQLite store named only by MLFLOW_TRACKING_URI, an
unreachable server (training goes on, one warning), and fmkit-tune trials as nested runs."""
from __future__ import annotations

import json

from mlflow_helpers import ROOT, cli, cli_env, free_port, write_recipe


def test_mlflow_env_uri_alone_tracks_to_a_local_store(tmp_path):
    """No ``mlflow:`` section: MLFLOW_TRACKING_URI (a local SQLite file) is enough."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'local.db'}"
    recipe = write_recipe(tmp_path)
    r = cli("train", str(recipe), "--run-dir", str(tmp_path / "run"), cwd=tmp_path,
            env=cli_env(MLFLOW_TRACKING_URI=uri, MLFLOW_EXPERIMENT_NAME="local"))
    assert r.returncode == 0, r.stderr[-3000:]
    state = json.loads((tmp_path / "run" / "mlflow.json").read_text())
    assert state["tracking_uri"] == uri and state["experiment"] == "local"
    client = mlflow.MlflowClient(uri)
    run = client.get_run(state["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.params["optimizer.name"] == "adamw" and "final/accuracy" in run.data.metrics
    assert "model" not in {a.path for a in client.list_artifacts(run.info.run_id)}  # no export, no model


def test_mlflow_unreachable_server_training_completes_with_one_warning(tmp_path):
    port = free_port()  # nothing listens there
    recipe = write_recipe(tmp_path, {"tracking_uri": f"http://127.0.0.1:{port}", "retry_after": 0.5})
    r = cli("train", str(recipe), "--run-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.count("fmkit-mlflow: could not log") == 1, r.stderr[-3000:]
    assert f"127.0.0.1:{port}" in r.stderr and "metrics.jsonl" in r.stderr
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(x.get("split") == "train" for x in lines) and any(x.get("final") for x in lines)
    assert (tmp_path / "run" / "eval.json").is_file() and not (tmp_path / "run" / "mlflow.json").exists()


def test_mlflow_tune_trials_are_nested_under_one_study_run(tmp_path):
    """``fmkit tune`` with MLflow on: one parent run for the study, each trial a child run."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'tune.db'}"
    recipe = write_recipe(tmp_path, tune={"sampler": "random", "pruner": "none", "trials": 2,
                                          "space": {"optimizer.lr": {"float": [1e-3, 1e-2], "log": True}}})
    env = cli_env(MLFLOW_TRACKING_URI=uri)
    env["PYTHONPATH"] = f"{ROOT / 'plugins' / 'tune'}:{env['PYTHONPATH']}"
    r = cli("tune", str(recipe), "--dir", str(tmp_path / "study"), cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("fmkit")
    runs = client.search_runs([exp.experiment_id])
    parents = [x for x in runs if x.data.tags.get("fmkit.study_parent") == "true"]
    assert len(parents) == 1 and parents[0].data.tags["fmkit.study"] == "r"  # the recipe file's name
    children = [x for x in runs if x.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert sorted(x.data.tags["fmkit.trial"] for x in children) == ["0", "1"] and len(runs) == 3
    lrs = {x.data.params["optimizer.lr"] for x in children}
    assert len(lrs) == 2  # each child holds its own trial's sampled recipe
    assert json.loads((tmp_path / "study" / "mlflow-parent.json").read_text())["run_id"] == parents[0].info.run_id
