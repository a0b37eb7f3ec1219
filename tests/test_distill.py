"""Knowledge distillation (recipe ``distill:``, ``fmkit distill``) on tiny text models."""
from __future__ import annotations

import csv
import json

import pytest
import yaml
from conftest import run_cli, tiny_recipe

torch = pytest.importorskip("torch")
pytest.importorskip("fmkit_nlp")


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A tiny text classifier that learns the generated words (accuracy 1 on its test split)."""
    import fmkit

    tmp = tmp_path_factory.mktemp("teacher")
    run = fmkit.train(tiny_recipe(tmp, epochs=6), run_dir=str(tmp / "run"))
    assert run.results["accuracy"] > 0.9
    return run.run_dir


def _student(tmp, teacher, **distill) -> dict:
    """The tiny recipe with the teacher's tokenizer (a fitted one may number ties differently in each
    process), distilling from ``teacher`` unless ``distill`` is ``None``."""
    recipe = tiny_recipe(tmp, epochs=2)
    recipe["task"]["tokenizer"] = {"path": str(teacher / "artifacts" / "assets" / "tokenizer")}
    if distill.get("distill", True) is not None:
        recipe["distill"] = {"teacher": str(teacher), **distill}
    return recipe


def _train_losses(run_dir) -> list[float]:
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [x["loss"] for x in lines if x["split"] == "train"]


def _weights(run_dir):
    from safetensors.torch import load_file

    return load_file(str(run_dir / "checkpoints" / "best" / "model.safetensors"))


def test_cached_and_on_the_fly_teacher_outputs_give_the_same_loss(tmp_path, teacher):
    import fmkit

    on = fmkit.train(_student(tmp_path, teacher, alpha=0.7, cache="on"), run_dir=str(tmp_path / "on"))
    cached = list((tmp_path / "cache").glob("distill-*.pt"))
    assert len(cached) == 1  # the teacher's outputs, computed once
    off = fmkit.train(_student(tmp_path, teacher, alpha=0.7, cache="off"), run_dir=str(tmp_path / "off"))
    a, b = _train_losses(on.run_dir), _train_losses(off.run_dir)
    assert len(a) == len(b) > 3
    assert a == pytest.approx(b, rel=1e-5, abs=1e-6)
    # the logged loss is the combined one: it is not the plain run's
    plain = fmkit.train(_student(tmp_path, teacher, distill=None), run_dir=str(tmp_path / "plain"))
    assert abs(_train_losses(plain.run_dir)[0] - a[0]) > 1e-3
    results = json.loads((on.run_dir / "eval.json").read_text())
    assert results["teacher_accuracy"] > 0.9 and 0.0 <= results["agreement"] <= 1.0


def test_alpha_zero_is_plain_training(tmp_path, teacher):
    import fmkit

    plain = fmkit.train(_student(tmp_path, teacher, distill=None), run_dir=str(tmp_path / "plain"))
    zero = fmkit.train(_student(tmp_path, teacher, alpha=0.0), run_dir=str(tmp_path / "zero"))
    assert _train_losses(plain.run_dir) == _train_losses(zero.run_dir)
    w0, w1 = _weights(plain.run_dir), _weights(zero.run_dir)
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)
    assert {k: v for k, v in zero.results.items() if not k.startswith("teacher_") and k != "agreement"} \
        == plain.results


def _flip_labels(recipe: dict, tmp_path) -> dict:
    """The same texts with every label swapped (pos <-> neg): the labels disagree with the teacher."""
    for split in ("train", "test"):
        rows = list(csv.DictReader(open(recipe["data"][split])))
        path = tmp_path / f"flipped-{split}.csv"
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, ["text", "label"])
            w.writeheader()
            w.writerows({"text": r["text"], "label": {"pos": "neg", "neg": "pos"}[r["label"]]} for r in rows)
        recipe["data"][split] = str(path)
    return recipe


def test_the_student_follows_the_teacher_not_the_labels(tmp_path, teacher):
    """With labels that contradict the teacher, alpha=1 gives the teacher's answers and alpha=0 the labels':
    this fails if the teacher term is missing from the loss."""
    import fmkit

    agreement = {}
    for alpha in (0.0, 1.0):
        recipe = _flip_labels(_student(tmp_path, teacher, alpha=alpha, temperature=1.0), tmp_path)
        # one evaluation, at the end: the best checkpoint by the flipped validation labels would otherwise be
        # the alpha=1 student's least trained one
        recipe["train"].update(epochs=5, eval_every=10_000)
        run = fmkit.train(recipe, run_dir=str(tmp_path / f"a{alpha}"))
        agreement[alpha] = run.results["agreement"]
    assert agreement[1.0] > 0.9 and agreement[0.0] < 0.2, agreement


def test_a_teacher_with_other_labels_is_refused_before_any_run_directory(tmp_path, teacher):
    import fmkit
    from fmkit.errors import DataError

    recipe = _student(tmp_path, teacher)
    for split in ("train", "test"):  # the same data with the labels renamed
        text = open(recipe["data"][split]).read().replace(",pos", ",good").replace(",neg", ",bad")
        (tmp_path / f"{split}-renamed.csv").write_text(text)
        recipe["data"][split] = str(tmp_path / f"{split}-renamed.csv")
    with pytest.raises(DataError, match=r"distill\.teacher: .* labels .*'neg'.*task\.labels"):
        fmkit.train(recipe, run_dir=str(tmp_path / "student"))
    assert not (tmp_path / "student").exists()


def test_a_teacher_of_another_task_is_refused(teacher):
    from fmkit.engine.distill import check_teacher, load_teacher
    from fmkit.errors import UsageError

    loaded = load_teacher(teacher)

    class OtherTask(type(loaded.task)):
        name = "other-task"

    other = OtherTask(loaded.task.params)
    other.labels = loaded.task.labels
    with pytest.raises(UsageError, match=r"distill\.teacher: .*'text-classification'.*'other-task' \(task\.name\)"):
        check_teacher(loaded, other)
    assert check_teacher(loaded, loaded.task) == "classes"


def test_distill_losses_are_zero_when_the_student_is_the_teacher():
    from fmkit.engine.distill import distill_loss

    g = torch.Generator().manual_seed(0)
    t = torch.randn(5, 3, generator=g)
    s = torch.randn(5, 3, generator=g)
    for kind in ("classes", "labels", "values"):
        assert float(distill_loss(kind, t, t, 2.0)) == pytest.approx(0.0, abs=1e-6)
        assert float(distill_loss(kind, s, t, 2.0)) > 1e-3
    # T^2 scaling: the KL of softened scores, times T^2
    p = torch.log_softmax(t / 2, -1)
    q = torch.log_softmax(s / 2, -1)
    expected = float((p.exp() * (p - q)).sum(-1).mean() * 4)
    assert float(distill_loss("classes", s, t, 2.0)) == pytest.approx(expected, rel=1e-5)


def test_fmkit_distill_cli_end_to_end(tmp_path, teacher):
    recipe = tiny_recipe(tmp_path, epochs=1)
    path = tmp_path / "student.yaml"
    path.write_text(yaml.safe_dump(recipe))
    r = run_cli("distill", str(teacher), str(path), "--alpha", "0.8", "--set", "train.epochs=2", "--json",
                "--run-dir", str(tmp_path / "student"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {"teacher_accuracy", "agreement", "accuracy"} <= set(out["results"])
    saved = yaml.safe_load((tmp_path / "student" / "recipe.yaml").read_text())
    assert saved["distill"]["alpha"] == 0.8 and saved["train"]["epochs"] == 2
    assert saved["distill"]["teacher"] == str(teacher.resolve())
    bad = run_cli("distill", str(tmp_path / "nowhere"), str(path), "--run-dir", str(tmp_path / "bad"))
    assert bad.returncode == 2 and "no such folder" in bad.stderr and not (tmp_path / "bad").exists()


def test_validate_reports_a_missing_teacher_with_its_field_line_and_folder(tmp_path):
    """`fmkit validate` checks distill.teacher with the data (not only `fmkit train`), naming the
    field, its line and the folder a relative path is read from; --skip-data skips it."""
    recipe = tiny_recipe(tmp_path, epochs=1)
    recipe["distill"] = {"teacher": "runs/no-such-teacher"}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    line = next(i for i, x in enumerate(path.read_text().splitlines(), 1) if "no-such-teacher" in x)
    r = run_cli("validate", str(path), cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"r.yaml:{line}: distill.teacher: " in r.stderr, r.stderr
    assert f"runs/no-such-teacher does not exist (relative paths are read from the current folder, {tmp_path})" \
        in r.stderr
    assert "`fmkit export` wrote" in r.stderr
    assert run_cli("validate", str(path), "--skip-data", cwd=tmp_path).returncode == 0
    (tmp_path / "runs" / "no-such-teacher").mkdir(parents=True)  # there, but neither a run nor an export
    r = run_cli("validate", str(path), cwd=tmp_path)
    assert r.returncode == 2 and "is neither a run directory (no recipe.yaml) nor an export folder" in r.stderr
    r = run_cli("train", str(path), cwd=tmp_path)  # train says the same, and writes nothing
    assert r.returncode == 2 and "distill.teacher: runs/no-such-teacher is neither" in r.stderr
    assert not (tmp_path / "runs" / "latest").exists()
