"""A Hugging Face data set (a save_to_disk folder) trains like a CSV: ClassLabel names kept,
unlabelled test rows skipped, missing columns named."""
from __future__ import annotations

import pytest

datasets = pytest.importorskip("datasets")

from fmkit.errors import DataError  # noqa: E402
from fmkit_nlp.hf_datasets import HFDataset, HFDatasetParams  # noqa: E402


def _saved(tmp_path):
    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    good, bad = "a great warm funny film", "a dull boring slow film"
    train = datasets.Dataset.from_dict({"sentence": [good, bad] * 20, "label": [1, 0] * 20}, features=features)
    test = datasets.Dataset.from_dict({"sentence": [good, bad, "hidden"], "label": [1, 0, -1]}, features=features)
    folder = tmp_path / "sst"
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(folder))
    return folder


def test_a_saved_dataset_gives_examples_with_class_names(tmp_path):
    folder = _saved(tmp_path)
    ds = HFDataset(HFDatasetParams(path=str(folder), text_column="sentence"))
    splits = ds.load()
    assert set(splits) == {"train", "test"}  # no validation split: the engine holds one out
    assert splits["train"][0] == {"text": "a great warm funny film", "label": "positive"}
    assert len(splits["test"]) == 2  # the row with the hidden label (-1) cannot be scored
    with pytest.raises(DataError, match=r"no column 'text'; its columns are \['sentence', 'label'\]"):
        HFDataset(HFDatasetParams(path=str(folder))).load()


def test_training_from_a_saved_dataset_end_to_end(tmp_path):
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3] / "tests"))
    from conftest import tiny_recipe

    import fmkit

    recipe = tiny_recipe(tmp_path, epochs=1)
    recipe["data"] = {"name": "hf-dataset", "path": str(_saved(tmp_path)), "text_column": "sentence",
                      "validation_split": 0.2, "cache_dir": str(tmp_path / "cache")}
    run = fmkit.train(recipe, run_dir=str(tmp_path / "run"))
    assert "accuracy" in run.results and (tmp_path / "run" / "eval.json").is_file()
    predictions = fmkit.predict(str(run.run_dir), ["a great warm funny film"])
    assert predictions[0]["label"] in {"negative", "positive"}  # class names, not ClassLabel ids


def test_a_text_column_of_numbers_is_named_not_a_traceback(tmp_path):
    """A saved data set whose text column holds integers crashed in tokenizer training."""
    folder = tmp_path / "numtext"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": [1, 2, 3], "label": [0, 1, 0]})}) \
        .save_to_disk(str(folder))
    with pytest.raises(DataError, match=r"split 'train', row 1\): the 'text' value must be a string; got a number"):
        HFDataset(HFDatasetParams(path=str(folder))).load()
