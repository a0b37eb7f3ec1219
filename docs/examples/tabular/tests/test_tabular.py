"""fmkit-tabular, the plugin guide's worked example: fmkit's contract suite and short runs on generated data."""
from __future__ import annotations

import csv
import json
import random
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(EXAMPLE))  # the example is not pip-installed in fmkit's venv

import fmkit  # noqa: E402
from fmkit.testing import contract_tests  # noqa: E402
from fmkit_tabular import plugin  # noqa: E402

fmkit.register_plugin(plugin, name="tabular")  # what the entry point does once `pip install fmkit-tabular`
globals().update(contract_tests("tabular", export_formats=("onnx",)))


def teardown_module():
    fmkit.unregister_plugin("tabular")


def write_table(path: Path, n: int, seed: int) -> Path:
    """Flats: price grows with rooms and is higher in paris; "big" when rooms > 2; some areas missing."""
    rng = random.Random(seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "rooms", "area", "city", "zip", "size", "price"])
        for i in range(n):
            rooms, city = rng.randint(1, 5), rng.choice(["paris", "lyon", "nice"])
            area = "" if i % 7 == 0 else round(rooms * 20 + rng.gauss(0, 4), 1)
            price = 100 * rooms + (80 if city == "paris" else 0) + rng.gauss(0, 10)
            w.writerow([i, rooms, area, city, rng.choice(["75001", "69002"]), "big" if rooms > 2 else "small",
                        round(price, 1)])
    return path




def test_the_guides_recipe_trains_with_the_focal_loss_audits_and_predicts(tmp_path):
    write_table(tmp_path / "flats-train.csv", 240, 0), write_table(tmp_path / "flats-test.csv", 60, 1)
    run = fmkit.train(str(EXAMPLE / "recipe.yaml"), overrides=[
        f"data.train={tmp_path / 'flats-train.csv'}", f"data.test={tmp_path / 'flats-test.csv'}",
        f"tracking.runs_dir={tmp_path / 'runs'}", "tracking.tensorboard=false", "tracking.report=false",
        "train.progress=off"])
    assert run.results["accuracy"] >= 0.85, run.results
    audit = [json.loads(line) for line in (run.run_dir / "audit.jsonl").read_text().splitlines()]
    assert [a["split"] for a in audit] == ["validation"] * 6 + ["test"] and "accuracy" in audit[-1]["metrics"]
    state = json.loads((run.run_dir / "artifacts" / "task.json").read_text())
    assert state["types"] == {"rooms": "numeric", "area": "numeric", "city": "categorical", "zip": "categorical"}
    preds = fmkit.load(str(run.run_dir)).predict([{"rooms": 5, "area": 99, "city": "nice", "zip": 75001},
                                                  {"rooms": 1, "city": "never seen"}])
    assert [p["label"] for p in preds] == ["big", "small"]


def test_regression_reports_in_the_data_units(tmp_path):
    train, test = write_table(tmp_path / "train.csv", 240, 0), write_table(tmp_path / "test.csv", 60, 1)
    run = fmkit.train({
        "task": {"name": "tabular-regression"}, "model": {"name": "tabular-mlp", "hidden": [32]},
        "data": {"name": "csv-table", "train": str(train), "test": str(test), "target": "price",
                 "ignore": ["id", "size"], "validation_split": 0.2},
        "optimizer": {"name": "adamw", "lr": 0.02}, "train": {"epochs": 6, "batch_size": 32, "progress": "off"},
        "tracking": {"runs_dir": str(tmp_path / "runs"), "tensorboard": False, "report": False}})
    assert run.results["mae"] < 60, run.results  # prices span 100..580
    (pred,) = fmkit.load(str(run.run_dir)).predict([{"rooms": 3, "area": 60, "city": "paris", "zip": "75001"}])
    assert 280 < pred["value"] < 480, pred


def test_bad_cells_are_named_with_file_and_line(tmp_path):
    from fmkit_tabular.data import CsvTable, CsvTableParams
    from fmkit_tabular.tasks import TabularClassification

    path = write_table(tmp_path / "t.csv", 5, 0)
    text = path.read_text().splitlines()
    cells = text[3].split(",")  # line 4 of the file
    text[3] = ",".join([cells[0], "many", *cells[2:]])
    path.write_text("\n".join(text) + "\n")
    table = CsvTable(CsvTableParams(train=str(path), target="size", columns={"rooms": "numeric"}))
    rows, task = table.load()["train"], TabularClassification(fmkit.NoParams())
    task.receive_dataset_metadata(table.metadata())  # what fmkit train does: "rooms" is declared numeric
    with pytest.raises(fmkit.DataError, match=r"t\.csv:4: column 'rooms' must be a number; got 'many'"):
        task.setup(rows, {})
    with pytest.raises(fmkit.DataError, match="no column 'label'"):
        CsvTable(CsvTableParams(train=str(path), target="label")).load()


def test_the_plugin_stays_under_200_lines():
    """The plugin guide's promise: the whole plugin package (not its tests) in under 200 non-blank
    lines, its `#:` parameter comments included."""
    lines = sum(1 for p in (EXAMPLE / "fmkit_tabular").glob("*.py") for line in p.read_text().splitlines()
                if line.strip())
    assert lines < 200, f"fmkit_tabular is {lines} non-blank lines"


def test_cli_profile_prints_inferred_types(tmp_path, capsys):
    from fmkit.cli.main import main

    assert main(["tabular-profile", str(write_table(tmp_path / "t.csv", 20, 0))]) == 0
    out = capsys.readouterr().out
    assert "rooms\tnumeric\t0 missing" in out and "city\tcategorical" in out and "area\tnumeric\t3 missing" in out
    assert main(["tabular-profile", str(tmp_path / "missing.csv")]) == 2
