"""fmkit-cv: data formats, the foreign-checkpoint loader, and a tiny end-to-end run."""
from __future__ import annotations

import base64
import gzip
import io
import struct

import numpy as np
import pytest
import torch
from fmkit.errors import DataError, UsageError
from PIL import Image


def _write_images(root, n_per_class=12, size=36, seed=0):
    rng = np.random.default_rng(seed)
    for label, base in (("bright", 200), ("dark", 50)):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            arr = np.clip(base + rng.normal(0, 25, (size, size + 4, 3)), 0, 255).astype(np.uint8)
            mode = "L" if i % 3 == 0 else "RGB"  # grey images get converted for a 3-channel model
            Image.fromarray(arr).convert(mode).save(root / label / f"{i}.png")


def test_end_to_end_train_export_predict_with_augment_mixup_and_a_corrupt_file(tmp_path):
    import fmkit

    _write_images(tmp_path / "train")
    _write_images(tmp_path / "test", 4, seed=1)
    (tmp_path / "train" / "dark" / "broken.jpg").write_bytes(b"\xff\xd8not really a jpeg")
    recipe = {
        "task": {"name": "image-classification", "input_size": 32, "crop_pct": 1.0,
                 "mixup": {"mixup_alpha": 0.2, "cutmix_alpha": 1.0, "prob": 0.5}},
        "model": {"name": "timm", "architecture": "test_resnet"},
        "data": {"name": "image-folder", "train": str(tmp_path / "train"), "test": str(tmp_path / "test"),
                 "validation_split": 0.25, "cache_dir": str(tmp_path / "cache"),
                 "augment": [{"name": "image-augment", "auto_augment": "rand-m5", "scale": [0.6, 1.0]}]},
        "optimizer": {"name": "adamw", "lr": 0.01},
        "train": {"epochs": 3, "batch_size": 6, "progress": "off", "log_every": 2},
        "export": {"formats": ["onnx"]},
        "tracking": {"runs_dir": str(tmp_path / "runs"), "tensorboard": False},
    }
    run = fmkit.train(recipe)
    assert run.results["accuracy"] >= 0.75
    details = (run.run_dir / "eval_details.json").read_text()
    assert '"train/unreadable-image": 1' in details
    meta = (run.exports["onnx"] and (run.run_dir / "exports" / "onnx" / "export.json").read_text())
    assert '"max_abs_diff"' in meta
    bright = np.full((50, 40, 3), 210, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(bright).save(buf, format="PNG")
    for backend in ("torch", "onnx"):
        pred = fmkit.load(run.exports["onnx"], backend=backend).predict(
            [base64.b64encode(buf.getvalue()).decode(), np.full((30, 30), 40, np.uint8)])
        assert [p["label"] for p in pred] == ["bright", "dark"]


def test_foreign_checkpoint_loads_by_order_and_reports(tmp_path):
    import timm
    from fmkit_cv.models import TimmModelParams, timm_classifier

    source = timm.create_model("test_resnet", num_classes=1000)
    foreign = {f"_blocks.{i}.t": v.clone() for i, v in enumerate(source.state_dict().values())}
    torch.save(foreign, tmp_path / "foreign.pth")
    model = timm_classifier(TimmModelParams(architecture="test_resnet", pretrained=str(tmp_path / "foreign.pth")),
                            {"labels": ["a", "b", "c"]})
    report = model.load_report
    assert report["by_order"] > 10 and report["missing"] == []
    assert sorted(report["head_reinitialised"]) == ["fc.bias", "fc.weight"]
    name = next(k for k in source.state_dict() if "conv" in k)
    assert torch.equal(model.net.state_dict()[name], source.state_dict()[name])
    # same checkpoint under timm's own names loads by name
    torch.save(source.state_dict(), tmp_path / "native.pth")
    model = timm_classifier(TimmModelParams(architecture="test_resnet", pretrained=str(tmp_path / "native.pth")),
                            {"labels": ["a", "b"]})
    assert model.load_report["by_order"] == 0 and model.load_report["by_name"] > 10
    # another architecture: a shape mismatch is a clear error, nothing silently half-loaded
    with pytest.raises(UsageError, match="does not fit"):
        timm_classifier(TimmModelParams(architecture="test_efficientnet", pretrained=str(tmp_path / "foreign.pth")),
                        {"labels": ["a", "b"]})


def test_pickled_code_is_refused(tmp_path):
    import os

    from fmkit_cv.checkpoints import read_state_dict

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(UsageError, match="weights_only"):
        read_state_dict(tmp_path / "evil.pth")


def test_timm_cache_without_weights_explains(monkeypatch, tmp_path):
    from fmkit_cv.models import TimmModelParams, timm_classifier

    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(UsageError, match="not in the local cache"):
        timm_classifier(TimmModelParams(architecture="test_resnet", pretrained="timm-cache"), {"labels": ["a", "b"]})
    with pytest.raises(UsageError, match="not a timm model"):
        timm_classifier(TimmModelParams(architecture="resnet_does_not_exist"), {"labels": ["a", "b"]})


def _idx(path, arr: np.ndarray):
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_idx_manifest_numpy_and_digits(tmp_path):
    from fmkit_cv.datasets import (DigitsParams, IdxImages, IdxParams, ImageManifest, ManifestParams, NumpyImages,
                                   NumpyParams, SklearnDigits, read_idx)

    x = np.arange(5 * 4 * 4).reshape(5, 4, 4) % 255
    _idx(tmp_path / "img.gz", x)
    _idx(tmp_path / "lab.gz", np.array([0, 1, 2, 1, 0]))
    assert np.array_equal(read_idx(tmp_path / "img.gz"), x)
    rows = IdxImages(IdxParams(images=str(tmp_path / "img.gz"), labels=str(tmp_path / "lab.gz"))).load()["train"]
    assert [r["label"] for r in rows] == ["0", "1", "2", "1", "0"]
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03" + struct.pack(">3I", 9, 4, 4) + b"x"))
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "bad.gz")

    _write_images(tmp_path / "imgs", 2)
    (tmp_path / "m.csv").write_text("path,label\nimgs/bright/0.png,bright\nimgs/dark/1.png,dark\nmissing.png,dark\n")
    ds = ImageManifest(ManifestParams(train=str(tmp_path / "m.csv")))
    rows = ds.load()["train"]
    assert len(rows) == 2 and ds.dropped == {"train/unreadable-image": 1}
    (tmp_path / "m2.csv").write_text("file,label\nx.png,a\n")
    with pytest.raises(DataError, match="m2.csv:2: no column 'path'"):
        ImageManifest(ManifestParams(train=str(tmp_path / "m2.csv"))).load()

    np.savez(tmp_path / "d.npz", x=np.zeros((4, 8, 8), np.uint8), y=np.array([0, 1, 0, 1]))
    assert len(NumpyImages(NumpyParams(path=str(tmp_path / "d.npz"))).load()["train"]) == 4
    digits = SklearnDigits(DigitsParams()).load()
    assert len(digits["train"]) + len(digits["test"]) == 1797 and len(digits["test"]) == 359


def test_grey_to_rgb_and_deterministic_eval_transform():
    from fmkit_cv.tasks import ImageClassification, ImageClassificationParams

    task = ImageClassification(ImageClassificationParams(input_size=32))
    task.setup([{"image": None, "label": "a"}, {"image": None, "label": "b"}], {"architecture": "test_resnet"})
    grey = np.full((40, 60), 128, np.uint8)
    f = task.preprocess({"image": grey, "label": "a"})
    assert f["image"].shape[0] == 3 and min(f["image"].shape[1:]) == task.data_config["resize"]
    b1, b2 = task.collate([f]), task.collate([f])
    assert b1["pixel_values"].shape == (1, 3, 32, 32) and torch.equal(b1["pixel_values"], b2["pixel_values"])
    with pytest.raises(DataError, match="neither an existing file path nor valid base64"):
        task.raw_to_example("not an image at all!")


def test_multi_label_from_a_manifest(tmp_path):
    import fmkit

    rng = np.random.default_rng(0)
    lines = ["path,label"]
    for i in range(40):
        red, blue = i % 2 == 0, (i // 2) % 2 == 0
        arr = np.zeros((32, 32, 3), np.uint8) + rng.integers(0, 30, (32, 32, 3), dtype=np.uint8)
        arr[..., 0] += 200 if red else 0
        arr[..., 2] += 200 if blue else 0
        Image.fromarray(arr).save(tmp_path / f"{i}.png")
        lines.append(f"{i}.png,{'|'.join([x for x, on in (('red', red), ('blue', blue)) if on] or ['none'])}")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    run = fmkit.train({
        "task": {"name": "image-classification", "input_size": 32, "crop_pct": 1.0, "multi_label": True},
        "model": {"name": "timm", "architecture": "test_resnet"},
        "data": {"name": "image-manifest", "train": str(tmp_path / "m.csv"), "label_separator": "|",
                 "validation_split": 0.25, "stratify": False},
        "loss": {"name": "bce-with-logits"},
        "optimizer": {"name": "adamw", "lr": 0.01},
        "train": {"epochs": 6, "batch_size": 8, "progress": "off"},
        "tracking": {"runs_dir": str(tmp_path / "runs"), "tensorboard": False},
    })
    assert run.results["accuracy"] >= 0.6  # exact-match accuracy over all labels
    pred = fmkit.load(run.run_dir).predict([np.full((32, 32, 3), [230, 10, 230], np.uint8)])[0]
    assert set(pred["labels"]) == {"red", "blue"}


def test_image_folder_check_finds_what_loading_would_refuse(tmp_path):
    """``fmkit validate`` (the dataset's check) names an empty folder, a folder whose class
    sub-folders hold no image, and a file where a folder goes, before any training."""
    from fmkit_cv.datasets import ImageFolder, ImageFolderParams

    empty = tmp_path / "empty"
    (empty / "ants").mkdir(parents=True)
    (empty / "ants" / "notes.txt").write_text("not an image")
    good = tmp_path / "good"
    (good / "bees" / "deep").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(good / "bees" / "deep" / "b.png")
    a_file = tmp_path / "list.csv"
    a_file.write_text("x")
    problems = ImageFolder(ImageFolderParams(train=str(good), validation=str(empty), test=str(a_file))).check()
    assert [field for field, _ in problems] == ["validation", "test"]
    assert "no images in class sub-folders" in problems[0][1] and "is a file" in problems[1][1]
    assert ImageFolder(ImageFolderParams(train=str(good))).check() == []
    gone = ImageFolder(ImageFolderParams(train=str(tmp_path / "gone"))).check()
    assert [field for field, _ in gone] == ["train"] and "does not exist" in gone[0][1]
