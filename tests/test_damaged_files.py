"""Damaged or missing files of a finished run directory or of an export (a hostile review's list).

Each case damages one file (or, once, two) of a fresh copy of a tiny run or export, runs the CLI
command that reads it, and expects exit 2 with one line naming the file, no traceback, and nothing
written: the copy is byte-for-byte as the damage left it, no ``exports/`` folder, no predictions
file. The run is trained once per module."""
from __future__ import annotations

import json
import logging
import os
import shutil
import stat
from pathlib import Path

import pytest

from fmkit.cli.main import main

STEP = "checkpoints/step-*"  # the run's one step checkpoint, found by glob


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A finished tiny run (without its exports) and its ONNX export (with model.safetensors), apart."""
    import fmkit
    from conftest import tiny_recipe

    tmp = tmp_path_factory.mktemp("damaged")
    recipe = tiny_recipe(tmp, epochs=1)
    recipe["export"] = {"formats": ["onnx"]}
    run = fmkit.train(recipe, run_dir=str(tmp / "run"))
    run_dir = Path(run.run_dir)
    export = tmp / "export"
    shutil.move(run.exports["onnx"], export)
    shutil.rmtree(run_dir / "exports")
    inputs = tmp / "in.txt"
    inputs.write_text("good movie\nbad film\n")
    return run_dir, export, inputs


# -- damage ----------------------------------------------------------------------------------------
def truncate(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(100)


def remove(path: Path) -> None:
    path.unlink()


def text(content: str):
    return lambda path: path.write_text(content)


def edit_json(**changes):
    """Set (a value) or remove (None) top-level keys of a JSON file."""
    def damage(path: Path) -> None:
        data = json.loads(path.read_text())
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        path.write_text(json.dumps(data))
    return damage


def cut_last_line(path: Path) -> None:
    """metrics.jsonl as a run killed while writing a line leaves it."""
    path.write_text(path.read_text() + '{"split": "train", "step": 9')


def _glob(root: Path, rel: str) -> Path:
    found = sorted(root.glob(rel))
    assert len(found) == 1, (rel, found)
    return found[0]


# -- the cases: (id, damaged file, damage, command, what the message must say) ------------------------
RESUME, EVALUATE, PREDICT, EXPORT = "resume", "evaluate", "predict", "export"
RUN_CASES = [
    ("state-removed", f"{STEP}/state.pt", remove, RESUME, "is missing"),
    ("state-truncated", f"{STEP}/state.pt", truncate, RESUME, "is damaged"),
    ("step-weights-truncated", f"{STEP}/model.safetensors", truncate, RESUME, "is damaged"),
    ("step-weights-removed", f"{STEP}/model.safetensors", remove, RESUME, "is missing"),
    ("task-json-garbage", "artifacts/task.json", text("{"), RESUME, "is damaged"),
    ("task-json-removed", "artifacts/task.json", remove, RESUME, "is missing: the run"),
    ("task-json-labels-not-a-list", "artifacts/task.json", edit_json(labels="neg"), RESUME, "is damaged"),
    ("metrics-garbage", "metrics.jsonl", text("garbage\n"), RESUME, "is damaged (line 1"),
    ("recipe-garbage-resume", "recipe.yaml", text("task: ["), RESUME, "is damaged"),
    ("amendments-garbage", "recipe.amendments.yaml", text("garbage: ["), RESUME, "is damaged"),
    ("amendments-not-amendments", "recipe.amendments.yaml", text("- 3\n"), RESUME, "is damaged"),
    ("recipe-garbage-evaluate", "recipe.yaml", text("task: ["), EVALUATE, "is damaged"),
    ("recipe-empty-evaluate", "recipe.yaml", text(""), EVALUATE, "is damaged (it is empty)"),
    ("recipe-binary-evaluate", "recipe.yaml", lambda p: p.write_bytes(b"\x00\x01"), EVALUATE, "is damaged"),
    ("recipe-garbage-predict", "recipe.yaml", text("task: ["), PREDICT, "is damaged"),
    ("recipe-garbage-export", "recipe.yaml", text("task: ["), EXPORT, "is damaged"),
    ("best-truncated-evaluate", "checkpoints/best/model.safetensors", truncate, EVALUATE, "is damaged"),
    ("best-truncated-predict", "checkpoints/best/model.safetensors", truncate, PREDICT, "is damaged"),
    ("best-truncated-export", "checkpoints/best/model.safetensors", truncate, EXPORT, "is damaged"),
    ("best-removed-evaluate", "checkpoints/best/model.safetensors", remove, EVALUATE, "is missing"),
    ("best-a-file-predict", "checkpoints/best", lambda p: (shutil.rmtree(p), p.write_text("x")), PREDICT,
     "is damaged (it is not a folder"),
    ("best-a-link-loop-evaluate", "checkpoints/best", lambda p: (shutil.rmtree(p), p.symlink_to("best")), EVALUATE,
     "is damaged (it is not a folder"),
    ("tokenizer-garbage-evaluate", "artifacts/assets/tokenizer/tokenizer.json", text("{"), EVALUATE, "is damaged"),
    ("tokenizer-garbage-predict", "artifacts/assets/tokenizer/tokenizer.json", text("{"), PREDICT, "is damaged"),
    ("tokenizer-garbage-export", "artifacts/assets/tokenizer/tokenizer.json", text("{"), EXPORT, "is damaged"),
    ("task-json-removed-evaluate", "artifacts/task.json", remove, EVALUATE, "is missing: the run"),
    ("task-json-removed-predict", "artifacts/task.json", remove, PREDICT, "is missing: the run"),
    ("task-json-no-labels-predict", "artifacts/task.json", edit_json(labels=None), PREDICT, "labels entry is missing"),
    ("task-json-no-labels-resume", "artifacts/task.json", edit_json(labels=None), RESUME, "labels entry is missing"),
    ("task-json-3-labels-evaluate", "artifacts/task.json", edit_json(labels=["neg", "pos", "x"]), EVALUATE,
     "does not fit"),
]

EXPORT_CASES = [
    ("onnx-truncated", "model.onnx", truncate, "onnx", "is damaged"),
    ("weights-truncated", "model.safetensors", truncate, "torch", "is damaged"),
    ("weights-removed", "model.safetensors", remove, "torch", "is missing"),
    ("export-json-garbage-torch", "export.json", text("{"), "torch", "is damaged"),
    ("export-json-garbage-onnx", "export.json", text("{"), "onnx", "is damaged"),
    ("export-json-no-model", "export.json", edit_json(model=None), "torch", "is damaged"),
    ("hf-config-garbage", "hf_config/config.json", text("{"), "torch", "is damaged"),
    ("hf-config-hidden-size", "hf_config/config.json", edit_json(hidden_size=32), "torch", "does not fit"),
    ("one-label-onnx", "task/task.json", edit_json(labels=["neg"]), "onnx", "damaged or was edited"),
    ("one-label-torch", "task/task.json", edit_json(labels=["neg"]), "torch", "damaged or was edited"),
    ("three-labels-onnx", "task/task.json", edit_json(labels=["neg", "pos", "x"]), "onnx", "damaged or was edited"),
    ("three-labels-torch", "task/task.json", edit_json(labels=["neg", "pos", "x"]), "torch", "damaged or was edited"),
    ("no-labels-onnx", "task/task.json", edit_json(labels=None), "onnx", "labels entry is missing"),
    ("no-labels-torch", "task/task.json", edit_json(labels=None), "torch", "labels entry is missing"),
    ("task-json-garbage", "task/task.json", text("{"), "torch", "is damaged"),
    ("tokenizer-garbage", "task/assets/tokenizer/tokenizer.json", text("{"), "onnx", "is damaged"),
    ("export-json-removed", "export.json", remove, "onnx", "looks like an export without its export.json"),
]


def manifest(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root`` with its size and modification time: what a command wrote."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()  # a link as it is (a link loop cannot be followed)
            out[str(p.relative_to(root))] = (st.st_size if stat.S_ISREG(st.st_mode) else 0, st.st_mtime_ns)
    return out


def run_cli(capsys, argv: list[str]) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out + err


def check_refused(rc: int, output: str, named: Path | str, says: str) -> None:
    assert "Traceback" not in output, output
    assert rc == 2, output
    errors = [ln for ln in output.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, output
    assert str(named) in errors[0], output
    assert says in errors[0], output


@pytest.mark.parametrize("case", RUN_CASES, ids=[c[0] for c in RUN_CASES])
def test_damaged_run_file(tiny, tmp_path, capsys, case):
    _, rel, damage, command, says = case
    run_dir, _, inputs = tiny
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    if rel == "recipe.amendments.yaml":
        (copy / rel).write_text("")  # the file a resume with changed settings writes
    target = _glob(copy, rel)
    damage(target)
    before = manifest(copy)
    out = tmp_path / "predictions.jsonl"
    argv = {RESUME: ["train", str(copy / "recipe.yaml"), "--resume", str(copy)],
            EVALUATE: ["evaluate", str(copy)],
            PREDICT: ["predict", str(copy), str(inputs), "-o", str(out)],
            EXPORT: ["export", str(copy), "--format", "onnx"]}[command]
    rc, output = run_cli(capsys, argv)
    check_refused(rc, output, target, says)
    assert manifest(copy) == before, "the command wrote into the run directory"
    assert not out.exists() and not (copy / "exports").exists()
    if command == RESUME:
        assert "does not fit the model" not in output  # a damaged file, not a model of another shape


@pytest.mark.parametrize("case", EXPORT_CASES, ids=[c[0] for c in EXPORT_CASES])
def test_damaged_export_file(tiny, tmp_path, capsys, case):
    _, rel, damage, backend, says = case
    _, export, inputs = tiny
    copy = tmp_path / "export"
    shutil.copytree(export, copy)
    target = copy / rel
    damage(target)
    before = manifest(copy)
    out = tmp_path / "predictions.jsonl"
    rc, output = run_cli(capsys, ["predict", str(copy), str(inputs), "--backend", backend, "-o", str(out)])
    named = copy / "hf_config" if rel.startswith("hf_config") and says == "does not fit" else target
    check_refused(rc, output, named, says)
    assert manifest(copy) == before and not out.exists()


def test_labels_checked_against_the_onnx_output_width(tiny, tmp_path, capsys):
    """export.json and task/task.json edited alike (3 labels): the ONNX model still gives 2 scores."""
    _, export, inputs = tiny
    copy = tmp_path / "export"
    shutil.copytree(export, copy)
    three = ["neg", "pos", "x"]
    edit_json(labels=three)(copy / "export.json")
    edit_json(labels=three)(copy / "task" / "task.json")
    rc, output = run_cli(capsys, ["predict", str(copy), str(inputs), "--backend", "onnx"])
    check_refused(rc, output, copy / "model.onnx", "gives 2 scores per input")
    assert str(copy / "task" / "task.json") in output and "3 labels" in output


def test_damaged_eval_json_does_not_stop_an_export(tiny, tmp_path, capsys, caplog):
    run_dir, _, _ = tiny
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "eval.json").write_text("{")
    with caplog.at_level(logging.WARNING, logger="fmkit"):
        rc, output = run_cli(capsys, ["export", str(copy), "--format", "onnx"])
    assert rc == 0 and "Traceback" not in output, output
    meta = json.loads((copy / "exports" / "onnx" / "export.json").read_text())
    assert meta["metrics"] == {}
    assert any(str(copy / "eval.json") in r.getMessage() and "is damaged" in r.getMessage()
               for r in caplog.records), caplog.text


def test_a_metrics_line_cut_short_by_a_kill_is_dropped_on_resume(tiny, tmp_path, capsys):
    """A run killed while writing its log leaves a cut last line: resuming drops it and goes on."""
    run_dir, _, _ = tiny
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    cut_last_line(copy / "metrics.jsonl")
    rc, output = run_cli(capsys, ["train", str(copy / "recipe.yaml"), "--resume", str(copy),
                                  "--set", "train.epochs=2"])
    assert rc == 0 and "Traceback" not in output, output
    lines = (copy / "metrics.jsonl").read_text().splitlines()
    assert all(json.loads(line) for line in lines) and '"step": 9' not in "".join(lines)


def test_listing_and_comparing_runs_with_damaged_files(tiny, tmp_path, capsys):
    """``fmkit runs`` and ``fmkit compare`` show what they can of a run whose log or recipe is damaged
    (compare was a JSONDecodeError or a yaml error)."""
    run_dir, _, _ = tiny
    runs = tmp_path / "runs"
    for name in ("a", "b"):
        shutil.copytree(run_dir, runs / name)
    (runs / "a" / "metrics.jsonl").write_text((runs / "a" / "metrics.jsonl").read_text() + "garbage\n")
    (runs / "b" / "recipe.yaml").write_text("task: [")
    (runs / "b" / "eval.json").write_text("[1, 2]")  # JSON, but not a mapping
    rc, output = run_cli(capsys, ["runs", str(runs)])
    assert rc == 0 and "Traceback" not in output, output
    rc, output = run_cli(capsys, ["compare", str(runs / "a"), str(runs / "b"), "-o", str(tmp_path / "c.html")])
    assert rc == 0 and "Traceback" not in output and (tmp_path / "c.html").is_file(), output


def test_a_damaged_teacher_export_is_named(tiny, tmp_path, capsys):
    """``distill.teacher`` pointing at an export whose export.json is damaged (a JSONDecodeError)."""
    import yaml
    from conftest import tiny_recipe

    _, export, _ = tiny
    teacher = tmp_path / "teacher"
    shutil.copytree(export, teacher)
    (teacher / "export.json").write_text("{")
    recipe = tiny_recipe(tmp_path, epochs=1)
    recipe["distill"] = {"teacher": str(teacher)}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    rc, output = run_cli(capsys, ["train", str(tmp_path / "r.yaml"), "--run-dir", str(tmp_path / "student")])
    check_refused(rc, output, teacher / "export.json", "is damaged")
    assert not (tmp_path / "student").exists()
