"""fmkit-audio distillation: a narrower audio CNN trained on a wider one's outputs, on generated tones."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")

PATTERN = r"(?P<label>\d)_(?P<group>[a-z]+)_(?P<index>\d+)\."
FRONTEND = {"n_mels": 32, "n_fft": 256, "hop_length": 80}


def _tones(root, flip: bool = False, per: int = 8):
    """Low (label 0) and high (label 1) tones; ``flip`` swaps the labels (they contradict a teacher)."""
    root.mkdir(parents=True, exist_ok=True)
    for label, freq in (("0", 300), ("1", 1500)):
        for s, spk in enumerate(("ann", "bob")):
            for i in range(per):
                t = np.arange(3200) / 8000
                rng = np.random.default_rng(i + 10 * s)
                wav = 0.5 * np.sin(2 * np.pi * (freq * (1 + 0.05 * s) + 10 * i) * t) + rng.normal(0, 0.02, t.size)
                name = {"0": "1", "1": "0"}[label] if flip else label
                sf.write(root / f"{name}_{spk}_{i}.wav", wav.astype(np.float32), 8000)


def _recipe(tmp, data: str, channels: list[int], epochs: int, **extra) -> dict:
    return {"task": {"name": "audio-classification", "sample_rate": 8000, "duration": 0.4},
            "model": {"name": "audio-cnn", "channels": channels, "frontend": FRONTEND},
            "data": {"train": str(tmp / data), "label_from": "pattern", "label_pattern": PATTERN,
                     "test_index": [0, 1], "validation_split": 0.0, "cache_dir": str(tmp / "cache")},
            "optimizer": {"name": "adamw", "lr": 0.01},
            "train": {"epochs": epochs, "batch_size": 8, "progress": "off", "log_every": 2, "seed": 2},
            "tracking": {"runs_dir": str(tmp / "runs"), "tensorboard": False}, **extra}


def test_a_narrower_audio_student_follows_its_teacher(tmp_path):
    import fmkit

    _tones(tmp_path / "tones")
    _tones(tmp_path / "flipped", flip=True)
    teacher = fmkit.train(_recipe(tmp_path, "tones", [8, 16], 10), run_dir=str(tmp_path / "teacher"))
    assert teacher.results["accuracy"] >= 0.9
    agreement = {}
    for alpha in (0.0, 1.0):
        recipe = _recipe(tmp_path, "flipped", [4, 8], 10,
                         distill={"teacher": str(teacher.run_dir), "alpha": alpha, "temperature": 1.0})
        recipe["train"]["eval_every"] = 10_000  # one evaluation, at the end
        run = fmkit.train(recipe, run_dir=str(tmp_path / f"alpha{alpha}"))
        agreement[alpha] = run.results["agreement"]
    assert agreement[1.0] >= 0.9 and agreement[0.0] <= 0.25, agreement
