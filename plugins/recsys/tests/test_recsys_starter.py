"""`fmkit new recipe sequential-recommendation` writes a starter that validates and trains as written
(real subprocesses for the CLI; the run on a tiny generated log in the starter's own data paths)."""
from __future__ import annotations

import json
import subprocess
import sys

import yaml


def _fmkit(*args, cwd):
    return subprocess.run([sys.executable, "-m", "fmkit", *args], cwd=cwd, capture_output=True, text=True)


def test_the_starter_recipe_validates_and_trains_as_written(tmp_path):
    made = _fmkit("new", "recipe", "sequential-recommendation", "-o", "starter.yaml", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    text = (tmp_path / "starter.yaml").read_text()
    recipe = yaml.safe_load(text)
    assert recipe["task"]["name"] == "sequential-recommendation" and recipe["data"]["name"] == "interactions"
    assert recipe["model"] == {"name": "sasrec", "hidden_size": 64, "num_layers": 2, "num_heads": 2, "dropout": 0.2}
    assert "text-sasrec" in text and "give `pretrained:`" not in text  # sasrec has no pretrained field
    checked = _fmkit("validate", "starter.yaml", cwd=tmp_path)
    assert checked.returncode == 0 and "valid" in checked.stdout, checked.stdout + checked.stderr

    # a tiny log where the paths the starter names expect it: users walk items 1 -> 2 -> ... (cyclic)
    (tmp_path / "data").mkdir()
    rows = [f"u{u},{(u + t) % 12 + 1},{100 * u + t},4" for u in range(24) for t in range(4 + u % 5)]
    (tmp_path / "data" / recipe["data"]["path"].split("/")[-1]).write_text(
        "user,item,timestamp,rating\n" + "\n".join(rows) + "\n")
    (tmp_path / "data" / recipe["data"]["items"].split("/")[-1]).write_text(
        "item,title\n" + "".join(f"{i},Film {i}\n" for i in range(1, 13)))
    import os

    import fmkit

    here = os.getcwd()
    os.chdir(tmp_path)  # the starter's paths are relative to where it is run
    try:
        run = fmkit.train(str(tmp_path / "starter.yaml"), overrides=["train.progress=off", "tracking.report=false",
                                                                       "tracking.tensorboard=false"],
                          run_dir=str(tmp_path / "run"))
    finally:
        os.chdir(here)
    results = json.loads((run.run_dir / "eval.json").read_text())
    assert {"hr@10", "ndcg@10", "mrr"} <= set(results) and 0.0 <= results["ndcg@10"] <= 1.0
    assert (run.run_dir / "exports" / "safetensors").is_dir()
    answer = fmkit.predict(str(run.run_dir), [{"history": ["1", "2"], "k": 3}])[0]
    assert len(answer["items"]) == 3 and {"1", "2"}.isdisjoint(x["item"] for x in answer["items"])
    assert answer["items"][0]["title"].startswith("Film ")
