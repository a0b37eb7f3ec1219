"""fmkit-tune end to end on the tiny text model: a 3-trial study, its outputs, selection on validation
with the test split scored once, and pruning that really stops a hopeless trial early."""
from __future__ import annotations

import csv
import json

import pytest
import yaml
from tune_helpers import study_recipe

import fmkit
import fmkit_tune

SPACE = {"optimizer.lr": {"float": [1e-3, 2e-2], "log": True}, "train.batch_size": {"choice": [8, 16]}}


def test_three_trial_study_end_to_end(tmp_path, monkeypatch):
    path = study_recipe(tmp_path, {"sampler": "random", "pruner": "none", "space": SPACE})
    result = fmkit_tune.tune(str(path), trials=3, progress=False)
    study = tmp_path / "runs" / "tune" / "r"
    assert result.directory == study and result.metric == "accuracy" and result.direction == "maximize"
    rows = list(csv.DictReader((study / "trials.csv").open()))
    assert [r["state"] for r in rows] == ["complete"] * 3
    assert len({(r["optimizer.lr"], r["train.batch_size"]) for r in rows}) == 3
    for r in rows:  # each trial an ordinary run, selected on validation: no test split touched
        run = tmp_path / r["run_dir"] if not r["run_dir"].startswith("/") else r["run_dir"]
        details = json.loads(open(f"{run}/eval_details.json").read())
        assert details["split"] == "validation"
        assert float(r["value"]) == pytest.approx(json.loads(open(f"{run}/eval.json").read())["accuracy"])
    best = max(rows, key=lambda r: float(r["value"]))
    assert result.best_value == pytest.approx(float(best["value"]))
    # best.yaml: the complete recipe with the best values, the user's own evaluation settings, no tune:
    best_recipe = yaml.safe_load((study / "best.yaml").read_text())
    assert "tune" not in best_recipe and best_recipe["evaluate"]["split"] == "auto"
    assert best_recipe["optimizer"]["lr"] == pytest.approx(float(best["optimizer.lr"]))
    assert best_recipe["train"]["batch_size"] == int(best["train.batch_size"])
    fmkit.load_recipe(str(study / "best.yaml"))  # ready for fmkit train
    info = json.loads((study / "best.json").read_text())
    assert info["trial"] == int(best["trial"]) and set(info["test"]) >= {"accuracy", "loss"}
    assert result.test == info["test"]
    html = (study / "study.html").read_text()
    for title in ("optimisation history", "parameter importances", "parallel coordinates", "intermediate values"):
        assert f"<h2>{title}</h2>" in html
    assert "Plotly.newPlot" in html
    # the same call again: the study is complete, nothing runs and the test split is not scored again
    monkeypatch.setattr(fmkit, "evaluate", lambda *a, **k: pytest.fail("test scored twice"))
    again = fmkit_tune.tune(str(path), trials=3, progress=False)
    assert len(again.trials) == 3 and again.test == info["test"]


def test_pruning_stops_a_hopeless_trial_early(tmp_path):
    path = study_recipe(tmp_path, {"metric": "loss", "sampler": "random", "pruner": "median", "startup_trials": 1,
                                   "warmup_evaluations": 0, "space": {"optimizer.lr": {"choice": [0.01, 1e-7]}}},
                        epochs=4)
    result = fmkit_tune.tune(str(path), trials=2, progress=False, enqueue=[{"optimizer.lr": 0.01},
                                                                            {"optimizer.lr": 1e-7}])
    first, second = result.trials
    assert first["state"] == "complete" and second["state"] == "pruned", result.trials
    assert int(second["steps"]) < int(first["steps"]) == 48  # 12 steps per epoch, 4 epochs
    assert second["note"].startswith("pruned at evaluation ")
    assert json.loads(second["last_metrics"])["loss"] == pytest.approx(second["value"])
    records = [json.loads(x) for x in open(f"{second['run_dir']}/metrics.jsonl")]
    stop = [r for r in records if r.get("event") == "stop"]
    assert len(stop) == 1 and "fmkit-tune: trial 1 pruned" in stop[0]["reason"]
    assert max(r["step"] for r in records) == int(second["steps"])
    assert result.best_trial == 0
