"""What a person watching `fmkit train` sees when the output is a log file: a header, plain lines
every log_every steps with the epoch and time left, a line per evaluation, a notice for a new best."""
from __future__ import annotations

import re

import yaml

from conftest import run_cli, tiny_recipe


def test_a_logged_run_says_what_it_does(tmp_path):
    recipe = tiny_recipe(tmp_path, epochs=2, log_every=2, progress="auto")
    recipe["tracking"]["report"] = False
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    r = run_cli("train", str(path))  # stderr is a pipe, not a terminal
    assert r.returncode == 0, r.stderr
    err = r.stderr
    assert re.search(r"examples: train \d+, ", err) and re.search(r"validation \d+", err), err
    assert re.search(r"steps: \d+ per epoch x 2 epoch\(s\) = \d+ \(batch 8\)", err), err
    assert "device: cpu" in err and "trainable parameters:" in err
    steps = re.findall(r"^step (\d+)/(\d+) epoch (\d)/2 .*loss [\d.]+.*elapsed \d:\d\d:\d\d  left \d:\d\d:\d\d$", err, re.M)
    assert len(steps) >= 4 and {e for _, _, e in steps} == {"1", "2"}, err
    evals = re.findall(r"^validation at step \d+ \(epoch \d\): loss [\d.]+.*accuracy", err, re.M)
    assert len(evals) == 2 and "new best, kept" in err
    quiet = run_cli("train", str(path), "--set", "train.progress=off")
    assert quiet.returncode == 0 and "validation at step" not in quiet.stderr and "examples: train" not in quiet.stderr


def test_the_report_says_where_its_numbers_come_from(tmp_path):
    import json

    import fmkit

    recipe = tiny_recipe(tmp_path, epochs=2)
    recipe["export"] = {"formats": ["onnx"]}
    run = fmkit.train(recipe, run_dir=str(tmp_path / "run"))
    page = (run.run_dir / "report.html").read_text()
    best = json.loads((run.run_dir / "checkpoints" / "best" / "meta.json").read_text())
    assert f"best checkpoint: step <b>{best['step']}</b>" in page and "Training took" in page
    verification = json.loads((run.run_dir / "exports" / "onnx" / "export.json").read_text())["verification"]
    assert "<h2>Exports</h2>" in page and "<td>onnx</td>" in page and f"{verification['max_abs_diff']:.4f}" in page
