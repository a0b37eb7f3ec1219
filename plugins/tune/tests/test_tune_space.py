"""fmkit-tune: a search space that cannot work is reported before any trial runs, with the rest of
the recipe's problems (path, line, did-you-mean), by fmkit validate and fmkit tune alike."""
from __future__ import annotations

import pytest
import yaml
from tune_helpers import cli, study_recipe

import fmkit
from fmkit.errors import RecipeError

LR = {"float": [1e-4, 1e-2], "log": True}


def _issues(tmp_path, tune, **train):
    path = study_recipe(tmp_path, tune, **train)
    with pytest.raises(RecipeError) as e:
        fmkit.load_recipe(str(path))
    return {i.path: i for i in e.value.issues}, path.read_text().splitlines()


def test_a_good_section_loads_with_its_defaults(tmp_path):
    recipe = fmkit.load_recipe(str(study_recipe(tmp_path, {"space": {"optimizer.lr": LR}})))
    tune = recipe.section("tune")
    assert tune.sampler == "tpe" and tune.pruner == "median" and tune.space["optimizer.lr"].log
    assert recipe.to_dict()["tune"]["space"]["optimizer.lr"]["float"] == [1e-4, 1e-2]


def test_bad_dimensions_are_each_reported_with_their_line(tmp_path):
    issues, lines = _issues(tmp_path, {"sampler": "tpe", "spce": {}, "space": {
        "optimizer.lr": {"float": [0.0, 1e-2], "log": True},             # log from 0
        "train.batch_size": {"int": [32, 8]},                             # empty range
        "model.config.hidden_size": {"choice": [16, 16]},                 # a value twice
        "train.epochs": {"int": [1, 3], "choice": [1, 2]}}})              # two kinds
    assert "did you mean 'space'" in issues["tune.spce"].message
    assert "log: true needs a range above 0" in issues["tune.space.optimizer.lr"].message
    assert "is empty" in issues["tune.space.train.batch_size"].message
    assert "lists a value twice" in issues["tune.space.model.config.hidden_size"].message
    assert "exactly one of" in issues["tune.space.train.epochs"].message
    assert "batch_size" in lines[issues["tune.space.train.batch_size"].line - 1]


def test_values_that_make_an_invalid_recipe_are_reported_up_front(tmp_path):
    issues, _ = _issues(tmp_path, {"space": {
        "optimizer.lrr": LR,                              # no such optimizer setting
        "train.batch_size": {"int": [0, 8]},              # batch size 0
        "train.precision": {"choice": ["fp32", "fp8"]},   # not a precision
        "tracking.run_name": {"choice": ["a", "b"]}}})
    assert "0.0001 gives an invalid recipe" in issues["tune.space.optimizer.lrr"].message
    assert "'lr'" in issues["tune.space.optimizer.lrr"].message  # the optimizer's own did-you-mean
    assert "the value 0 gives an invalid recipe" in issues["tune.space.train.batch_size"].message
    assert "'fp8' gives an invalid recipe" in issues["tune.space.train.precision"].message
    assert "does not change training" in issues["tune.space.tracking.run_name"].message


def test_objective_sampler_and_baseline_mismatches(tmp_path):
    issues, _ = _issues(tmp_path, {"metric": "acuracy", "sampler": "grid", "baseline": True,
                                   "space": {"optimizer.lr": LR, "train.batch_size": {"choice": [16, 32]}}})
    assert "did you mean 'accuracy'" in issues["tune.metric"].message
    assert "a grid search needs values" in issues["tune.space.optimizer.lr"].message
    assert "outside the space" in issues["tune.baseline"].message  # the recipe's batch size is 8
    issues, _ = _issues(tmp_path / "b", {"metric": "f1_macro", "space": {}})
    assert "search space is empty" in issues["tune.space"].message
    assert "set tune.direction" in issues["tune.direction"].message  # not the task's monitor: no way to tell


def test_fmkit_tune_refuses_a_bad_space_before_any_trial(tmp_path):
    path = study_recipe(tmp_path, {"space": {"train.batch_size": {"int": [0, 8]}}})
    r = cli("tune", str(path), "--trials", "2", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "tune.space.train.batch_size" in r.stderr and "the value 0 gives an invalid recipe" in r.stderr
    assert not (tmp_path / "runs" / "tune").exists()
    plain = yaml.safe_load(path.read_text())
    del plain["tune"]
    path.write_text(yaml.safe_dump(plain))
    r = cli("tune", str(path), cwd=tmp_path)
    assert r.returncode == 2 and "no tune: section" in r.stderr


def test_a_storage_that_cannot_be_opened_is_a_clear_error(tmp_path):
    path = study_recipe(tmp_path, {"space": {"optimizer.lr": LR}})
    r = cli("tune", str(path), "--storage", "postgresql://fmkit:secret@127.0.0.1:1/none", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "--storage postgresql://fmkit:***@127.0.0.1:1/none: cannot open the study storage" in r.stderr
    assert "secret" not in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "runs" / "tune").exists()  # nothing half-written
