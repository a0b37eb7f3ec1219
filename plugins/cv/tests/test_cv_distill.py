"""fmkit-cv distillation: a timm student trained on a timm teacher's outputs, on tiny generated images."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")


def _images(root, flip: bool = False, n_per_class: int = 12, seed: int = 0):
    """Bright and dark images; ``flip`` files each under the other label (labels that contradict a teacher)."""
    rng = np.random.default_rng(seed)
    for label, base in (("bright", 200), ("dark", 50)):
        folder = root / ({"bright": "dark", "dark": "bright"}[label] if flip else label)
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            arr = np.clip(base + rng.normal(0, 25, (36, 40, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(folder / f"{i}.png")


def _recipe(tmp, data: str, epochs: int, **extra) -> dict:
    task = {"name": "image-classification", "input_size": 32, "crop_pct": 1.0, **extra.pop("task", {})}
    return {"task": task, "model": {"name": "timm", "architecture": "test_resnet"},
            "data": {"name": "image-folder", "train": str(tmp / data / "train"), "test": str(tmp / data / "test"),
                     "validation_split": 0.25, "cache_dir": str(tmp / "cache")},
            "optimizer": {"name": "adamw", "lr": 0.01},
            "train": {"epochs": epochs, "batch_size": 6, "progress": "off", "log_every": 2, "seed": 3},
            "tracking": {"runs_dir": str(tmp / "runs"), "tensorboard": False}, **extra}


def test_a_timm_student_follows_its_teacher_with_cached_and_per_batch_outputs(tmp_path, caplog):
    import fmkit

    for data, flip in (("data", False), ("flipped", True)):
        _images(tmp_path / data / "train", flip)
        _images(tmp_path / data / "test", flip, 4, seed=1)
    teacher = fmkit.train(_recipe(tmp_path, "data", 3), run_dir=str(tmp_path / "teacher"))
    assert teacher.results["accuracy"] >= 0.75
    agreement = {}
    caplog.set_level(logging.INFO, logger="fmkit")
    # alpha=0: the flipped labels alone; alpha=1 with mixup: teacher outputs computed on every (mixed) batch
    for alpha, task in ((0.0, {}), (1.0, {"mixup": {"mixup_alpha": 0.2, "cutmix_alpha": 0.0, "prob": 1.0}})):
        caplog.clear()
        recipe = _recipe(tmp_path, "flipped", 4, task=task,
                         distill={"teacher": str(teacher.run_dir), "alpha": alpha, "temperature": 1.0})
        recipe["train"]["eval_every"] = 10_000  # one evaluation, at the end
        run = fmkit.train(recipe, run_dir=str(tmp_path / f"alpha{alpha}"))
        agreement[alpha] = run.results["agreement"]
        assert run.results["teacher_accuracy"] <= 0.25  # the teacher scored on the flipped test labels
        expected = "computed for every batch" if task else "teacher outputs cached"
        assert expected in caplog.text
    assert agreement[1.0] >= 0.85 and agreement[0.0] <= 0.25, agreement
