"""The contract suite catches a plugin broken on purpose in each place it promises to check: a hook
name pluggy would ignore, a CLI command without help or func, a cleaning transform returning the
wrong thing, an unseeded augmentation, a metric that does not stream, a dataset returning the wrong
shape, a task whose state loses what its batches need."""
from __future__ import annotations

import pytest
import torch

import fmkit
from fmkit import Component, Params, hookimpl
from fmkit.testing import contract_tests


class _Sum(fmkit.Metric):
    """Counts correct predictions; ``broken``: forgets earlier batches (does not stream)."""

    def __init__(self, params=None, context=None, broken: bool = False):
        self.broken, self.right, self.total = broken, 0, 0

    def update(self, scores, targets):
        right, total = int((scores.argmax(-1) == targets).sum()), len(targets)
        self.right, self.total = (right, total) if self.broken else (self.right + right, self.total + total)

    def compute(self):
        return {"acc": self.right / max(self.total, 1)}


def _run(plugin_obj, name: str, test: str, tmp_path=None, **kwargs):
    fmkit.register_plugin(plugin_obj, name=name)
    try:
        tests = contract_tests(name, **kwargs)
        fn = tests[f"test_{name}_{test}"]
        return fn(tmp_path) if tmp_path is not None else fn()
    finally:
        fmkit.unregister_plugin(name)


def test_a_misspelt_hook_is_caught():
    class Typo:
        @hookimpl
        def fmkit_register_metrics(self):
            return [Component("metric", "typo-acc", lambda p, c: _Sum(), Params, "accuracy", {})]

        def fmkit_on_epoch_ends(self, run, epoch, metrics):  # not a hook: pluggy would never call it
            pass

    with pytest.raises(AssertionError, match="fmkit_on_epoch_ends is not a hook"):
        _run(Typo(), "typo", "hooks_are_known_and_cli_commands_print_help")


def test_a_cli_command_without_func_is_caught():
    class Command:
        @hookimpl
        def fmkit_register_metrics(self):
            return [Component("metric", "cmd-acc", lambda p, c: _Sum(), Params, "accuracy", {})]

        @hookimpl
        def fmkit_add_cli_commands(self, subparsers):
            subparsers.add_parser("audit", help="audit the data")  # forgot set_defaults(func=...)

    with pytest.raises(AssertionError, match="sets no func"):
        _run(Command(), "cmd", "hooks_are_known_and_cli_commands_print_help")


def test_a_metric_that_does_not_stream_is_caught():
    class Metrics:
        @hookimpl
        def fmkit_register_metrics(self):
            return [Component("metric", "last-batch-acc", lambda p, c: _Sum(broken=True), Params, "accuracy", {})]

    with pytest.raises(AssertionError, match="does not stream"):
        _run(Metrics(), "laststream", "metrics_stream_over_batches")

    class Good:
        @hookimpl
        def fmkit_register_metrics(self):
            return [Component("metric", "good-acc", lambda p, c: _Sum(), Params, "accuracy", {})]

    _run(Good(), "goodstream", "metrics_stream_over_batches")  # the same metric, streaming: passes


def test_bad_transforms_are_caught():
    pytest.importorskip("fmkit_nlp")  # a task to take examples from

    class Returns:
        def __init__(self, params, context):
            pass

        def __call__(self, example, rng=None):
            return example["text"]  # a string, not an example

    class Unseeded:
        def __init__(self, params, context):
            pass

        def __call__(self, features, rng):
            return {**features, "noise": torch.rand(1)}  # ignores rng

    def plugin(cls, stage):
        class P:
            @hookimpl
            def fmkit_register_transforms(self):
                return [Component("transform", f"bad-{stage}", cls, Params, "broken", {},
                                  tags={"stage": stage, "task": "text-classification"})]
        return P()

    with pytest.raises(AssertionError, match="returns an example dict or None"):
        _run(plugin(Returns, "clean"), "badclean", "transforms_keep_the_example_shape")
    with pytest.raises(AssertionError, match="the same seed gave different features"):
        _run(plugin(Unseeded, "augment"), "badaugment", "transforms_keep_the_example_shape")


def test_a_dataset_returning_the_wrong_shape_is_caught():
    class Rows:
        def __init__(self, params, context):
            pass

        def load(self):
            return [{"text": "a", "label": "x"}]  # a list, not {split: [...]}

    class P:
        @hookimpl
        def fmkit_register_datasets(self):
            return [Component("dataset", "rows", Rows, Params, "broken", {})]

    with pytest.raises(AssertionError, match=r"load\(\) returns \{split: \[examples\]\}"):
        _run(P(), "rowsplugin", "datasets_load_the_documented_shape", datasets={"rows": {}})


def test_a_task_whose_state_loses_its_vocabulary_is_caught(tmp_path):
    from fmkit import ClassificationTask

    class ForgetfulTask(ClassificationTask):
        """Maps words to ids learnt in setup, but keeps them out of its state."""

        def setup(self, train_examples, model_params):
            super().setup(train_examples, model_params)
            self.vocab = {w: i + 1 for i, w in enumerate(sorted({w for ex in train_examples for w in ex["text"].split()}))}

        def preprocess(self, example):
            return {"ids": [getattr(self, "vocab", {}).get(w, 0) for w in example["text"].split()][:4],
                    **({"label": example["label"]} if "label" in example else {})}

        def collate(self, features):
            ids = torch.zeros(len(features), 4, dtype=torch.long)
            for i, f in enumerate(features):
                ids[i, :len(f["ids"])] = torch.tensor(f["ids"], dtype=torch.long)
            return {"ids": ids}

        def raw_to_example(self, raw):
            return {"text": raw}

        def sample_examples(self):
            return [{"text": "good film", "label": "pos"}, {"text": "bad plot", "label": "neg"}]

        def example_inputs(self):
            return ["good plot", "bad film"]

    class P:
        @hookimpl
        def fmkit_register_tasks(self):
            return [Component("task", "forgetful", ForgetfulTask, Params, "broken", {})]

    with pytest.raises(AssertionError, match="differs after the state round trip"):
        _run(P(), "forgetful", "tasks_round_trip_state", tmp_path=tmp_path)
