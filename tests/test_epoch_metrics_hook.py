"""``fmkit_on_epoch_metrics``: one call per epoch, after that epoch's validation, with the epoch's
training loss and validation metrics, equal to what ``metrics.jsonl`` and ``run.history`` record."""
from __future__ import annotations

import json
import statistics

import pytest

import fmkit

STAMP = ("split", "step", "epoch")


class EpochRecorder:
    """A plugin registered from Python that records the lifecycle calls in order."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.epoch_metrics: list[dict] = []

    @fmkit.hookimpl
    def fmkit_on_epoch_end(self, epoch):
        self.calls.append(("epoch_end", epoch))

    @fmkit.hookimpl
    def fmkit_on_evaluate_end(self, run, split):
        self.calls.append(("evaluate_end", split, run.global_step))

    @fmkit.hookimpl
    def fmkit_on_checkpoint_saved(self, path, step):
        self.calls.append(("checkpoint_saved", path.rsplit("/", 1)[-1], step))

    @fmkit.hookimpl
    def fmkit_on_epoch_metrics(self, run, epoch, train, validation):
        self.calls.append(("epoch_metrics", epoch))
        latest = run.history[-1] if run.history else None
        self.epoch_metrics.append({"epoch": epoch, "train": dict(train),
                                   "validation": None if validation is None else dict(validation),
                                   "latest_history": dict(latest) if latest else None, "step": run.global_step})


def _train(recipe_factory, tmp_path, **train):
    recorder = EpochRecorder()
    fmkit.register_plugin(recorder, name="epoch-recorder")  # removed after the test (conftest)
    run = fmkit.train(recipe_factory(log_every=1, **train), run_dir=str(tmp_path / "run"))
    records = [json.loads(x) for x in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    return recorder, records


def _train_loss(records, epoch):
    return statistics.fmean(r["loss"] for r in records if r["split"] == "train" and r["epoch"] == epoch)


def test_called_once_per_epoch_after_its_validation_with_the_logged_values(tmp_path, recipe_factory):
    recorder, records = _train(recipe_factory, tmp_path, epochs=2)
    assert [m["epoch"] for m in recorder.epoch_metrics] == [0, 1]
    validations = [r for r in records if r["split"] == "validation"]
    assert [v["epoch"] for v in validations] == [0, 1]
    for m, logged in zip(recorder.epoch_metrics, validations):
        e = m["epoch"]
        # the epoch's own validation was made (and recorded) before the hook ran
        assert m["latest_history"] == logged
        assert m["validation"] == {k: v for k, v in logged.items() if k not in STAMP}
        assert set(m["train"]) == {"loss"}
        assert m["train"]["loss"] == pytest.approx(_train_loss(records, e), rel=1e-9)
        # the order at an epoch's end: epoch_end -> the validation's evaluate_end -> epoch_metrics -> checkpoint
        i = recorder.calls.index(("epoch_metrics", e))
        assert recorder.calls[i - 2:i] == [("epoch_end", e), ("evaluate_end", "validation", m["step"])]
        assert ("checkpoint_saved", f"step-{m['step']:08d}", m["step"]) in recorder.calls[i + 1:]
    # the final scoring of the best checkpoint is not an epoch's validation
    assert recorder.calls[-1][:2] == ("evaluate_end", "test")


@pytest.mark.parametrize("eval_every, steps", [(7, [7, 21]), (100, [None, None])])
def test_with_step_evaluation_it_gets_the_latest_evaluation_of_the_epoch(tmp_path, recipe_factory, eval_every, steps):
    """96 training examples, batches of 8: 12 steps an epoch; every 7 steps validates at 7 (epoch 0),
    14 and 21 (epoch 1); every 100 steps never within an epoch (only the final one at step 24)."""
    recorder, records = _train(recipe_factory, tmp_path, epochs=2, eval_every=eval_every)
    assert [m["epoch"] for m in recorder.epoch_metrics] == [0, 1]
    by_step = {r["step"]: r for r in records if r["split"] == "validation"}
    for m, step in zip(recorder.epoch_metrics, steps):
        if step is None:
            assert m["validation"] is None
        else:
            assert m["validation"] == {k: v for k, v in by_step[step].items() if k not in STAMP}
            assert by_step[step]["epoch"] == m["epoch"]
        assert m["train"]["loss"] == pytest.approx(_train_loss(records, m["epoch"]), rel=1e-9)


def test_a_run_resumed_mid_epoch_reports_the_whole_epochs_loss(tmp_path, recipe_factory):
    """Stopped at step 6 of epoch 0's 12 (train.max_steps), then resumed: the epoch's loss is the mean
    over all 12 logged steps, before and after the resume, as metrics.jsonl has them."""
    recorder = EpochRecorder()
    fmkit.register_plugin(recorder, name="epoch-recorder")  # removed after the test (conftest)
    first = fmkit.train(recipe_factory(log_every=1, epochs=1, max_steps=6), run_dir=str(tmp_path / "run"))
    assert recorder.epoch_metrics == []  # an epoch cut short by max_steps reports nothing
    fmkit.train(str(first.run_dir / "recipe.yaml"), overrides=["train.max_steps=null"], resume=str(first.run_dir))
    records = [json.loads(x) for x in (first.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == list(range(1, 13))
    (m,) = recorder.epoch_metrics
    assert m["epoch"] == 0 and m["train"]["loss"] == pytest.approx(_train_loss(records, 0), rel=1e-9)


def test_the_epoch_loss_counts_every_step_even_with_fewer_steps_than_log_every(tmp_path, recipe_factory):
    """12 steps an epoch with log_every 10: the epoch-end training loss is the mean over all 12
    steps' losses (not NaN, not only the logged window)."""
    recorder = EpochRecorder()
    fmkit.register_plugin(recorder, name="epoch-recorder")
    fmkit.train(recipe_factory(log_every=10, epochs=2), run_dir=str(tmp_path / "sparse"))
    sparse = [m["train"]["loss"] for m in recorder.epoch_metrics]
    assert all(loss == loss for loss in sparse), sparse  # finite, not NaN
    fmkit.unregister_plugin("epoch-recorder")
    dense_recorder, _ = _train(recipe_factory, tmp_path / "dense", epochs=2)  # log_every 1: every step logged
    assert sparse == pytest.approx([m["train"]["loss"] for m in dense_recorder.epoch_metrics], rel=1e-6)
