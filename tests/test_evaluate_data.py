"""`fmkit evaluate --data FILE`: labels it was never trained on, or no labels at all, are clear
errors; a good file is scored and the command says what it scored."""
from __future__ import annotations

from helpers.serving import tiny_run
from conftest import run_cli


def test_evaluate_data_checks_labels_and_says_what_it_scored(tmp_path_factory, tmp_path):
    run = tiny_run(tmp_path_factory)
    good = tmp_path / "good.csv"
    good.write_text("text,label\ngreat fun film,pos\nawful dull film,neg\nlovely,pos\n")
    r = run_cli("evaluate", str(run), "--data", str(good), "--json")
    assert r.returncode == 0, r.stderr
    assert f"scored 3 examples ({good})" in r.stderr
    unseen = tmp_path / "unseen.csv"
    unseen.write_text("text,label\ngreat fun film,pos\nmeh,neutral\nso so,neutral\nwhat,other\n")
    r = run_cli("evaluate", str(run), "--data", str(unseen))
    assert r.returncode != 0 and "never trained on" in r.stderr and "'neutral' (2)" in r.stderr and "'other' (1)" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli("evaluate", str(run))
    assert r.returncode == 0 and "examples (test)" in r.stderr


def test_evaluate_data_without_a_label_column_is_a_clear_error(tmp_path_factory, tmp_path):
    run = tiny_run(tmp_path_factory)
    bare = tmp_path / "bare.csv"
    bare.write_text("text\ngreat fun film\nawful\n")
    r = run_cli("evaluate", str(run), "--data", str(bare))
    assert r.returncode == 2 and "no 'label' value" in r.stderr and "Traceback" not in r.stderr


def test_a_tie_of_the_monitored_metric_keeps_the_lower_validation_loss(tmp_path):
    """Every evaluation ties on the monitor; the best checkpoint must be the one with the lowest
    validation loss, not the first evaluation's."""
    import json

    import fmkit
    from conftest import tiny_recipe

    recipe = tiny_recipe(tmp_path, epochs=3, eval_every=3)
    recipe["plugins"] = ["helpers.constant_metric"]
    recipe["evaluate"] = {"metrics": [{"name": "constant"}, {"name": "accuracy"}], "monitor": "constant",
                          "monitor_mode": "max"}
    recipe["tracking"]["report"] = False
    run = fmkit.train(recipe, run_dir=str(tmp_path / "run"))
    rows = [json.loads(x) for x in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = {r["step"]: r["loss"] for r in rows if r["split"] == "validation"}
    assert len(losses) >= 3 and len(set(losses.values())) > 1
    best = json.loads((run.run_dir / "checkpoints" / "best" / "meta.json").read_text())
    assert best["step"] == min(losses, key=losses.get), (best["step"], losses)
