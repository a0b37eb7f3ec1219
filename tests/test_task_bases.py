"""The shared bases and helpers of the public API: label fitting, targets, regression scaling,
raw-input decoding and split carving, and the plugins that use them."""
from __future__ import annotations

import base64

import pytest
import torch

import fmkit
from fmkit import ClassificationTask, DataError, Params, RegressionTask, carve_split, io
from fmkit.tasks import fit_labels, natural_key


class _MultiParams(Params):
    multi_label: bool = False


class _Cls(ClassificationTask):
    name = "toy-classification"

    def preprocess(self, example):
        return self.with_target({"x": [float(example["x"])]}, example)

    def collate(self, features):
        return self.add_targets({"x": torch.tensor([f["x"] for f in features])}, features)


class _Reg(RegressionTask):
    name = "toy-regression"

    def preprocess(self, example):
        return self.with_target({"x": [float(example["x"])]}, example)

    def collate(self, features):
        return self.add_targets({"x": torch.tensor([f["x"] for f in features])}, features)


def test_labels_sort_naturally_and_count():
    labels, counts = fit_labels([{"label": v} for v in (10, 2, 2, "-1", "b", "a10", "a2", None)])
    assert labels == ["-1", "2", "10", "a2", "a10", "b"]
    assert counts == [1, 2, 1, 1, 1, 1]
    assert sorted(["10", "9", "1"], key=natural_key) == ["1", "9", "10"]
    with pytest.raises(DataError, match="no labels"):
        fit_labels([{"label": None}, {"text": "x"}])


def test_classification_task_targets_state_and_answers():
    task = _Cls(_MultiParams())
    task.setup([{"x": 1, "label": "10"}, {"x": 2, "label": "2"}, {"x": 3, "label": "2"}], {})
    assert task.labels == ["2", "10"] and task.class_counts == [2, 1]
    assert task.model_context()["num_labels"] == 2 and task.model_context()["class_counts"] == [2, 1]
    batch = task.collate(task.preprocess_many([{"x": 1, "label": "10"}, {"x": 1, "label": "unseen"}]))
    assert batch["targets"].tolist() == [1, -100] and batch["targets"].dtype == torch.long
    assert "targets" not in task.collate([task.preprocess({"x": 1})])
    assert task.stratify_key({"label": 10}) == "10"
    answers = task.format_predictions(torch.tensor([[0.0, 3.0], [2.0, -2.0]]))
    assert [a["label"] for a in answers] == ["10", "2"] and abs(sum(answers[0]["scores"].values()) - 1) < 1e-9
    again = _Cls(_MultiParams())
    again.load_state_dict(task.state_dict())
    assert again.labels == task.labels and again.class_counts == task.class_counts


def test_multi_label_targets_are_multi_hot():
    task = _Cls(_MultiParams(multi_label=True))
    task.setup([{"x": 1, "label": ["a", "b"]}, {"x": 2, "label": ["c"]}], {})
    batch = task.collate([task.preprocess({"x": 1, "label": ["a", "c"]})])
    assert batch["targets"].tolist() == [[1.0, 0.0, 1.0]] and task.stratify_key({"label": ["a"]}) is None


def test_regression_task_trains_standardised_and_reports_in_data_units():
    task = _Reg(Params())
    task.setup([{"x": i, "target": 10.0 * i} for i in range(5)], {})
    assert task.model_context()["num_targets"] == 1
    batch = task.collate(task.preprocess_many([{"x": 0, "target": 0.0}, {"x": 4, "target": 40.0}]))
    assert abs(float(batch["targets"].mean())) < 1e-6  # standardised
    preds, targets = task.metric_inputs(batch["targets"].clone(), batch)
    assert torch.allclose(targets.flatten(), torch.tensor([0.0, 40.0])) and torch.allclose(preds, targets)
    assert task.format_predictions(batch["targets"])[1]["value"] == pytest.approx(40.0)
    again = _Reg(Params())
    again.load_state_dict(task.state_dict())
    assert again.format_predictions(batch["targets"]) == task.format_predictions(batch["targets"])
    with pytest.raises(DataError, match="finite number"):
        task.preprocess({"x": 1, "target": float("nan")})


def test_regression_task_with_named_targets():
    task = _Reg(Params())
    task.setup([{"x": 1, "target": {"a": 1.0, "b": 5.0}}, {"x": 2, "target": {"a": 3.0, "b": 5.0}}], {})
    assert task.target_names == ["a", "b"] and task.target_std[1] == 1.0  # a constant target keeps scale 1
    out = task.format_predictions(torch.zeros(1, 2))
    assert out == [{"values": {"a": 2.0, "b": 5.0}}]
    with pytest.raises(DataError, match="not 2 number"):
        task.preprocess({"x": 1, "target": {"a": 1.0}})


def test_read_bytes_one_rule_for_every_form(tmp_path):
    data = b"\x89PNG fake bytes"
    path = tmp_path / "x.bin"
    path.write_bytes(data)
    b64 = base64.b64encode(data).decode()
    for raw in (data, bytearray(data), memoryview(data), path, str(path), b64, f"data:image/png;base64,{b64}",
                {"path": str(path)}, {"base64": b64}, {"data_url": io.encode_base64(data, "image/png")}):
        assert io.read_bytes(raw, "image") == data, raw
    with pytest.raises(DataError, match="image file .*missing.png does not exist"):
        io.read_bytes(str(tmp_path / "missing.png"), "image")
    with pytest.raises(DataError, match="neither an existing file path nor valid base64"):
        io.read_bytes("not an image at all!", "image")
    with pytest.raises(DataError, match="data URL"):
        io.read_bytes("data:image/png,plain", "image")
    with pytest.raises(DataError, match="cannot read audio from a int"):
        io.read_bytes(3, "audio")
    assert io.read_text("\ufeffhé".encode()) == "hé"
    with pytest.raises(DataError, match="not UTF-8"):
        io.read_text(b"\xff\xfe\xfa")


def test_carve_split_is_seeded_and_stratifies():
    rows = [{"i": i, "label": "a" if i < 30 else "b"} for i in range(40)]
    first = carve_split({"train": list(rows)}, "test", 0.25, seed=3)
    again = carve_split({"train": list(rows)}, "test", 0.25, seed=3)
    assert [r["i"] for r in first["test"]] == [r["i"] for r in again["test"]] and len(first["test"]) == 10
    assert len(first["train"]) == 30 and not {r["i"] for r in first["test"]} & {r["i"] for r in first["train"]}
    strat = carve_split({"train": list(rows)}, "test", 0.2, seed=0, stratify=lambda r: r["label"])
    assert sorted(r["label"] for r in strat["test"]) == ["a"] * 6 + ["b"] * 2
    kept = {"train": list(rows), "test": [rows[0]]}
    assert carve_split(kept, "test", 0.5, 0)["test"] == [rows[0]]  # the data's own split wins
    with pytest.raises(DataError, match="between 0 and 1"):
        carve_split({"train": list(rows)}, "test", 1.5, 0)


def test_first_party_tasks_use_the_shared_bases():
    """The time-series classifier sorted labels as text ("10" before "2") before it used the bases."""
    from fmkit_audio.tasks import AudioClassification
    from fmkit_cv.tasks import ImageClassification
    from fmkit_nlp.tasks import TextClassification
    from fmkit_timeseries.tasks import SeriesClassification, SeriesClassificationParams

    for cls in (AudioClassification, ImageClassification, TextClassification, SeriesClassification):
        assert issubclass(cls, fmkit.ClassificationTask), cls
    task = SeriesClassification(SeriesClassificationParams())
    task.setup([{"series": [[0.0]] * 4, "label": lab} for lab in ("10", "2", "1")], {})
    assert task.labels == ["1", "2", "10"]


def test_state_attributes_are_saved_restored_and_fingerprinted():
    class Base(fmkit.Task):
        state_attributes = ("scale",)
        scale = 1.0

    class Child(Base):
        state_attributes = ("vocab",)
        vocab: list = []

    task = Child(Params())
    task.labels, task.scale, task.vocab = ["a"], 2.0, ["x", "y"]
    assert task.state_dict() == {"labels": ["a"], "scale": 2.0, "vocab": ["x", "y"]}
    before = task.fingerprint()
    again = Child(Params())
    again.load_state_dict({"labels": ["a"], "vocab": ["x", "y"]})  # an older state without "scale"
    assert (again.labels, again.scale, again.vocab) == (["a"], 1.0, ["x", "y"])
    task.vocab = ["x", "z"]
    assert task.fingerprint() != before  # the preprocessing cache key follows the learnt state


def test_default_dataset_load_reads_each_split_and_carves_test(tmp_path):
    class Params_(Params):
        train: str
        test: str | None = None
        test_fraction: float = 0.0
        seed: int = 0

    class Lines(fmkit.Dataset):
        def load_file(self, path):
            return [{"text": t, "label": t[0]} for t in open(path).read().split()]

    (tmp_path / "train.txt").write_text(" ".join(f"{c}{i}" for c in "ab" for i in range(10)))
    splits = Lines(Params_(train=str(tmp_path / "train.txt"), test_fraction=0.2)).load()
    assert len(splits["train"]) == 16 and len(splits["test"]) == 4 and "validation" not in splits
    rows = fmkit.io.read_csv(str(_csv(tmp_path)))
    assert rows == [(2, {"a": "1", "b": "x"}), (4, {"a": "2", "b": "multi\nline"})]
    with pytest.raises(DataError, match=r"bad\.csv:2: more cells"):
        fmkit.io.read_csv(str(_csv(tmp_path, "a,b\n1,2,3\n", "bad.csv")))


def _csv(tmp_path, text='a,b\n1,x\n2,"multi\nline"\n', name="t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path
