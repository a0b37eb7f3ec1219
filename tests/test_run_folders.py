"""Run folders are safe: a non-empty --run-dir is refused unless --resume or --overwrite, runs/latest
points at the newest run, a run folder given as the recipe says how to resume; --config and
--print-recipe; a listing piped into `head` ends quietly."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from pathlib import Path

from conftest import ROOT, run_cli, tiny_recipe


@pytest.fixture
def recipe(tmp_path):
    r = tiny_recipe(tmp_path, epochs=1)
    r["tracking"]["report"] = False
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(r))
    return path


def test_a_non_empty_run_dir_is_refused_unless_overwrite(recipe, tmp_path):
    import fmkit
    from fmkit.errors import UsageError

    first = fmkit.train(str(recipe), run_dir=str(tmp_path / "run"))
    marker = first.run_dir / "metrics.jsonl"
    before = marker.read_text()
    with pytest.raises(UsageError, match=r"--resume .*--overwrite"):
        fmkit.train(str(recipe), run_dir=str(tmp_path / "run"))
    assert marker.read_text() == before  # nothing of the refused run was written
    r = run_cli("train", str(recipe), "--run-dir", str(tmp_path / "run"))
    assert r.returncode == 2 and "already holds files" in r.stderr, r.stderr
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not an fmkit run directory"):
        fmkit.train(str(recipe), run_dir=str(tmp_path / "other"), overwrite=True)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"  # --overwrite replaces runs only
    second = fmkit.train(str(recipe), run_dir=str(tmp_path / "run"), overwrite=True)
    steps = [yaml.safe_load(x)["step"] for x in (second.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and len(steps) == len(before.splitlines())  # one run's records, not two


def test_runs_latest_points_at_the_newest_run(recipe, tmp_path):
    import fmkit

    a = fmkit.train(str(recipe))
    b = fmkit.train(str(recipe))
    latest = tmp_path / "runs" / "latest"
    assert a.run_dir != b.run_dir and latest.is_symlink()
    assert latest.resolve() == b.run_dir.resolve() and os.readlink(latest) == b.run_dir.name  # relative
    r = run_cli("evaluate", str(latest), "--json")
    assert r.returncode == 0, r.stderr


def test_a_run_folder_as_recipe_suggests_resume_and_config_alias(recipe, tmp_path):
    import fmkit

    run = fmkit.train(str(recipe), run_dir=str(tmp_path / "run"))
    r = run_cli("train", str(run.run_dir))
    assert r.returncode == 2 and f"--resume {run.run_dir}" in r.stderr, r.stderr
    r = run_cli("train", "--config", str(recipe), "--print-recipe", "--set", "train.epochs=3")
    assert r.returncode == 0, r.stderr
    printed = yaml.safe_load(r.stdout)
    assert printed["train"]["epochs"] == 3 and printed["train"]["batch_size"] == 8 and "scheduler" in printed
    assert not (tmp_path / "runs").exists()  # printing the recipe trains nothing
    r = run_cli("validate", "--config", str(recipe))
    assert r.returncode == 0 and "valid" in r.stdout
    r = run_cli("validate", str(recipe), "--config", str(recipe))
    assert r.returncode == 2 and "give the recipe once" in r.stderr
    r = run_cli("train")
    assert r.returncode == 2 and "recipe YAML file is required" in r.stderr


def test_a_listing_piped_into_head_ends_quietly():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))}
    cmd = f"{sys.executable} -m fmkit schema | head -n 1"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, env=env, timeout=120)
    assert "BrokenPipeError" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr


def test_records_and_exports_get_the_users_umask(recipe, tmp_path):
    """Atomic writes go through private temporaries; what they leave must not stay 0600/0700."""
    import stat

    import fmkit

    mask = os.umask(0o022)
    os.umask(mask)
    r = yaml.safe_load(recipe.read_text())
    r["tracking"]["report"] = True
    r["export"] = {"formats": ["safetensors"]}
    run = fmkit.train(r, run_dir=str(tmp_path / "run"))
    export = Path(run.exports["safetensors"])
    files = [run.run_dir / "recipe.yaml", run.run_dir / "environment.json", Path(run.report_path),
             export / "export.json", run.run_dir / "checkpoints" / "best" / "model.safetensors"]
    for f in files:
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o666 & ~mask, f
    for d in (export, run.run_dir / "checkpoints" / "best", run.run_dir / "artifacts"):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o777 & ~mask, d


def test_train_json_prints_one_object_and_nothing_else(recipe, tmp_path):
    import json

    r = run_cli("train", str(recipe), "--json", "--set", "train.progress=on", "--set", "train.log_every=1")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)  # the whole of stdout is one JSON document
    assert set(out) == {"results", "run_dir", "report", "exports", "stopped"} and "accuracy" in out["results"]
    assert out["stopped"] is None  # no hook stopped it (else {"reason", "step", "epoch"})
    assert Path(out["run_dir"]).is_dir()


def test_runs_lists_and_compare_puts_runs_side_by_side(recipe, tmp_path):
    import json

    import fmkit

    a = fmkit.train(str(recipe))
    b = fmkit.train(str(recipe), overrides=["train.epochs=2", "optimizer.lr=0.001"])
    runs_dir = tmp_path / "runs"
    r = run_cli("runs", str(runs_dir))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["name", "task", "model"] and len(lines) == 3  # latest and .cache are not runs
    assert a.run_dir.name in lines[1] and b.run_dir.name in lines[2] and "finished" in lines[1]
    rows = json.loads(run_cli("runs", str(runs_dir), "--json").stdout)
    assert [x["name"] for x in rows] == [a.run_dir.name, b.run_dir.name] and rows[0]["monitor"] == "accuracy"
    page = tmp_path / "cmp.html"
    r = run_cli("compare", str(a.run_dir), str(b.run_dir), "-o", str(page))
    assert r.returncode == 0, r.stderr
    text = page.read_text()
    assert a.run_dir.name in text and b.run_dir.name in text and "<td>accuracy</td>" in text
    assert "<td>train.epochs</td>" in text and "<td>optimizer.lr</td>" in text and "<td>task.name</td>" not in text
    assert text.count("data:image/png;base64,") >= 2  # train loss and validation curves, overlaid
    one = run_cli("compare", str(a.run_dir), "-o", str(tmp_path / "x.html"))
    assert one.returncode == 2 and "at least two runs" in one.stderr and not (tmp_path / "x.html").exists()


def test_resume_with_a_run_dir_is_refused_not_ignored(recipe, tmp_path, capsys):
    from fmkit.cli.main import main

    code = main(["train", str(recipe), "--resume", str(tmp_path / "a"), "--run-dir", str(tmp_path / "b")])
    assert code == 2 and "would be ignored" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
