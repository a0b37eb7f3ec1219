"""Recipe validation errors, schema, starter recipes, and start-up without heavy imports."""
from __future__ import annotations

import json
import subprocess
import sys

import yaml
from conftest import ROOT, run_cli

VALID = """task:
  name: text-classification
model:
  name: hf-classifier
  pretrained: some/folder
data:
  train: data.csv
train:
  epochs: 2
"""


def validate(tmp_path, text: str, *extra: str):
    p = tmp_path / "recipe.yaml"
    p.write_text(text)
    return run_cli("validate", str(p), "--json", "--skip-data", *extra)


def test_valid_recipe(tmp_path):
    r = validate(tmp_path, VALID)
    assert r.returncode == 0 and json.loads(r.stdout)["valid"]


def test_bad_yaml_reports_its_line(tmp_path):
    r = validate(tmp_path, VALID + "optimizer: [adamw\n")
    assert r.returncode == 2
    err = json.loads(r.stdout)["errors"][0]
    assert err["line"] in (10, 11) and "YAML" in err["message"]


def test_every_error_at_once_with_paths_lines_and_suggestions(tmp_path):
    text = VALID.replace("epochs: 2", "epochs: many\n  batch_sise: 8").replace("name: hf-classifier", "name: hf-clasifier")
    text += "loss:\n  name: cross-entropy\n  label_smothing: 0.1\n"
    r = validate(tmp_path, text)
    assert r.returncode == 2
    errors = {e["path"]: e for e in json.loads(r.stdout)["errors"]}
    assert errors["train.epochs"]["line"] == 9 and "integer" in errors["train.epochs"]["message"]
    assert "did you mean 'batch_size'" in errors["train.batch_sise"]["message"]
    assert errors["train.batch_sise"]["line"] == 10
    assert "did you mean 'hf-classifier'" in errors["model.name"]["message"] and errors["model.name"]["line"] == 4
    assert "label_smoothing" in errors["loss.label_smothing"]["message"] and errors["loss.label_smothing"]["line"] == 13


def test_unknown_section_and_set_overrides(tmp_path):
    r = validate(tmp_path, VALID + "trian: {}\n")
    assert "did you mean 'train'" in r.stdout
    r = validate(tmp_path, VALID, "--set", "train.epochs=0")
    assert r.returncode == 2 and "train.epochs" in r.stdout
    r = validate(tmp_path, VALID, "--set", "train.epochs=5", "--set", "optimizer.lr=1e-5")
    assert r.returncode == 0, r.stdout


def test_schema_includes_component_parameters(tmp_path):
    r = run_cli("schema", "-o", str(tmp_path / "s.json"))
    assert r.returncode == 0
    schema = json.loads((tmp_path / "s.json").read_text())
    text = json.dumps(schema)
    assert "label_smoothing" in text and "hf-classifier" in text and "warmup_ratio" in text


def test_new_recipe_for_an_installed_task_validates_once_paths_are_set(tmp_path):
    out = tmp_path / "starter.yaml"
    r = run_cli("new", "recipe", "text-classification", "-o", str(out))
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert all(line.strip().startswith("#") or "#" in line or not line.strip() or line.rstrip().endswith(":")
               for line in text.splitlines()), "every field is commented"
    r = run_cli("validate", str(out), "--skip-data", "--set", "data.train=x.csv", "--set", "model.pretrained=some/folder")
    assert r.returncode == 0, r.stderr + r.stdout
    assert yaml.safe_load(text)["task"]["name"] == "text-classification"
    out.write_text(text + "# my edits\n")
    r = run_cli("new", "recipe", "text-classification", "-o", str(out))  # would lose the edits
    assert r.returncode == 2 and "--force" in r.stderr and out.read_text().endswith("# my edits\n"), r.stderr
    assert run_cli("new", "recipe", "text-classification", "-o", str(out), "--force").returncode == 0
    assert out.read_text() == text
    r = run_cli("new", "recipe", "text-clasification")
    assert r.returncode == 2 and "did you mean" in r.stderr


def test_listing_imports_no_heavy_library():
    code = ("import sys; from fmkit.cli.main import main; "
            "[main(a) for a in (['plugins','list'], ['components','list'])]; "
            "heavy = [m for m in ('torch','transformers','timm','torchaudio','torchvision','numpy') if m in sys.modules]; "
            "print('HEAVY', heavy)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "HEAVY []" in r.stdout, r.stdout + r.stderr


def test_components_show_and_bad_usage():
    r = run_cli("components", "show", "adamw")
    assert r.returncode == 0 and "head_lr" in r.stdout and "example" in r.stdout
    r = run_cli("components", "list", "--kind", "losss")
    assert r.returncode == 2 and "did you mean 'loss'" in r.stderr
    r = run_cli("components", "list", "--json")
    assert {"kind", "id", "plugin", "summary"} <= set(json.loads(r.stdout)[0])
    r = run_cli("frobnicate")
    assert r.returncode == 2


def test_set_errors_point_at_the_set_argument_and_leave_nothing_half_applied(tmp_path):
    r = validate(tmp_path, VALID, "--set", "train.epochs=abc", "--set", "data.clean.0.name=x")
    assert r.returncode == 2
    issues = {i["path"]: i for i in json.loads(r.stdout)["errors"]}
    # the bad value came from the command line: the issue names the argument, not line 9 of the file
    assert issues["train.epochs"]["file"] == "--set train.epochs=abc" and issues["train.epochs"]["line"] is None
    # the failed list-item override created no empty data.clean mapping that validation then reports
    assert "data.clean" not in issues and any("data.clean is not a list" in i["message"] for i in issues.values())
    r = validate(tmp_path, VALID.replace("epochs: 2", "epochs: abc"))
    assert json.loads(r.stdout)["errors"][0]["line"] == 9  # a bad value in the file still points at its line


def test_validate_checks_the_data_files_and_columns_without_loading_them(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(VALID)
    r = run_cli("validate", str(recipe), "--json", cwd=tmp_path)
    assert r.returncode == 2
    (issue,) = json.loads(r.stdout)["errors"]
    assert issue["path"] == "data.train" and issue["line"] == 7
    assert "data.csv does not exist" in issue["message"] and str(tmp_path) in issue["message"]  # relative to what
    (tmp_path / "data.csv").write_text("sentence,category\nhello there,greet\n")
    r = run_cli("validate", str(recipe), "--json", cwd=tmp_path)
    problems = {i["path"]: i["message"] for i in json.loads(r.stdout)["errors"]}
    assert r.returncode == 2 and set(problems) == {"data.text_column", "data.label_column"}
    assert "['sentence', 'category']" in problems["data.text_column"]  # the columns that are there
    r = run_cli("validate", str(recipe), "--set", "data.text_column=sentence", "--set", "data.label_column=category",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert run_cli("validate", str(tmp_path / "recipe.yaml"), "--skip-data").returncode == 0  # from elsewhere
