"""What a dataset knows (``Dataset.metadata()``) reaches the task before ``Task.setup``, on a real run,
and stays with the task when the task keeps it in its state; older datasets and tasks keep working."""
from __future__ import annotations

import json

import pytest

import fmkit
from fmkit import Component
from fmkit.engine.data import dataset_metadata
from fmkit.errors import FmkitError
from fmkit_nlp.datasets import TextFiles, TextFilesParams
from fmkit_nlp.tasks import TextClassification, TextClassificationParams

METADATA = {"column_types": {"text": "text", "label": "categorical"}, "language": "en"}


class DescribedTextFiles(TextFiles, fmkit.Dataset):
    """The nlp plugin's text files, reporting what they know, and what loading counted, as metadata."""

    def load(self):
        splits = super().load()
        self.rows = len(splits["train"])
        return splits

    def metadata(self):
        return {**METADATA, "train_rows": self.rows}


class MetadataAwareTask(TextClassification):
    """Keeps the dataset's metadata in its state and checks it arrived before setup."""

    state_attributes = ("dataset_metadata",)
    seen_in_setup: list = []

    def setup(self, train_examples, model_params):  # the 2-argument signature, unchanged
        type(self).seen_in_setup.append(dict(self.dataset_metadata))
        super().setup(train_examples, model_params)


class MetadataPlugin:
    @fmkit.hookimpl
    def fmkit_register_datasets(self):
        return [Component("dataset", "described-text", DescribedTextFiles, TextFilesParams, "text files + metadata")]

    @fmkit.hookimpl
    def fmkit_register_tasks(self):
        return [Component("task", "metadata-text-classification", MetadataAwareTask, TextClassificationParams,
                          "text classification keeping the dataset's metadata",
                          tags={"defaults": {"dataset": "described-text", "loss": "cross-entropy",
                                             "model": "hf-classifier", "metrics": ["accuracy"]}})]


def test_the_datasets_metadata_reaches_task_setup_and_its_state(tmp_path, recipe_factory):
    fmkit.register_plugin(MetadataPlugin(), name="metadata-test")  # removed after the test (conftest)
    MetadataAwareTask.seen_in_setup = []
    recipe = recipe_factory(epochs=1)
    recipe["task"]["name"] = "metadata-text-classification"
    recipe["data"]["name"] = "described-text"
    run = fmkit.train(recipe, run_dir=str(tmp_path / "run"))
    # reported after load() (the 120 rows it read, before 20% are held out) and received before setup, once
    assert MetadataAwareTask.seen_in_setup == [{**METADATA, "train_rows": 120}]
    state = json.loads((run.run_dir / "artifacts" / "task.json").read_text())
    assert state["dataset_metadata"] == {**METADATA, "train_rows": 120}
    trained = fmkit.load(str(run.run_dir))
    assert trained.task.dataset_metadata == {**METADATA, "train_rows": 120}


def test_a_dataset_without_metadata_gives_an_empty_dict_and_a_bad_answer_is_named():
    class Plain:  # a dataset object that does not subclass fmkit.Dataset
        def load(self):
            return {"train": [{"x": 1}]}

    class Wrong(fmkit.Dataset):
        def metadata(self):
            return [("column_types", {})]

    class AsAttribute:
        metadata = {"rate": 16000}

    assert dataset_metadata(Plain(), "plain") == {}
    assert dataset_metadata(fmkit.Dataset(None), "base") == {}
    assert dataset_metadata(AsAttribute(), "attr") == {"rate": 16000}
    with pytest.raises(FmkitError, match=r"dataset 'wrong': metadata\(\) must return a dict.*got list"):
        dataset_metadata(Wrong(None), "wrong")


def test_the_default_task_keeps_a_copy_and_is_empty_before():
    class OldTask(fmkit.Task):  # a task written before API 1.3: nothing to override
        def setup(self, train_examples, model_params):
            self.labels = sorted({e["label"] for e in train_examples})

    task, given = OldTask(fmkit.NoParams()), {"column_types": {"a": "numeric"}}
    assert dict(task.dataset_metadata) == {}
    task.receive_dataset_metadata(given)
    given["column_types"] = {}
    assert task.dataset_metadata == {"column_types": {"a": "numeric"}}
    assert "dataset_metadata" not in task.state_dict()  # kept only when the task lists it
    task.setup([{"label": "b"}, {"label": "a"}], {})
    assert task.labels == ["a", "b"]
    assert dict(OldTask(fmkit.NoParams()).dataset_metadata) == {}  # not shared between instances
