"""Training-engine features the README claims, each checked on a tiny model and generated data:
schedulers, gradient accumulation, bf16 on CPU, early stopping, backbone freezing, TensorBoard."""
from __future__ import annotations

import json
import math

import pytest

import fmkit

torch = pytest.importorskip("torch")
pytest.importorskip("fmkit_nlp")

LR = 0.003  # the tiny recipe's learning rate


def _records(run_dir, split: str) -> list[dict]:
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [x for x in lines if x["split"] == split and not x.get("final")]


def _weights(path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def _largest_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


class Recorder:
    """A plugin that keeps copies of the model's weights at the start and at each epoch's end, and
    (``watch_dtypes``) the dtypes of the Linear layers' outputs seen while training."""

    def __init__(self, watch_dtypes: bool = False):
        self.initial, self.epochs, self.dtypes, self.watch = None, {}, set(), watch_dtypes

    def _state(self, run) -> dict:
        return {k: v.detach().clone() for k, v in run.model.state_dict().items()}

    def install(self):
        fmkit.register_plugin(self, name="test-recorder")  # removed after the test (conftest)
        return self

    @fmkit.hookimpl
    def fmkit_on_run_start(self, run):
        self.initial = self._state(run)
        if self.watch:
            def hook(module, inputs, output):
                if module.training and torch.is_grad_enabled():
                    self.dtypes.add(output.dtype)

            for m in run.model.modules():
                if isinstance(m, torch.nn.Linear):
                    m.register_forward_hook(hook)

    @fmkit.hookimpl
    def fmkit_on_epoch_end(self, run, epoch):
        self.epochs[epoch] = self._state(run)


# ---------------------------------------------------------------------------- schedulers
def _schedule(name: str, total: int = 10, per_epoch: int = 5, **params):
    """A built-in scheduler from the registry over an SGD optimizer whose base lr is 1."""
    from fmkit import get_registry

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    handle = get_registry().build("scheduler", {"name": name, **params},
                                  {"optimizer": opt, "total_steps": total, "steps_per_epoch": per_epoch})
    return handle, opt


def _lrs(name: str, steps: int, metrics: list[float] | None = None, **params) -> list[float]:
    """The learning rate before the first step and after each of ``steps`` scheduler steps."""
    handle, opt = _schedule(name, **params)
    out = [opt.param_groups[0]["lr"]]
    for i in range(steps):
        handle.step(metrics[i] if metrics else None)
        out.append(opt.param_groups[0]["lr"])
    return out


@pytest.mark.parametrize("name, params, expected", [
    ("constant", {}, [1.0] * 11),
    ("constant", {"warmup_steps": 4}, [0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
    ("linear", {}, [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]),
    # warmup_ratio 0.2 of 10 steps: 2 warmup steps, then 8 steps down to zero
    ("linear", {"warmup_ratio": 0.2}, [0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0.0]),
    ("cosine", {}, [0.5 * (1 + math.cos(math.pi * s / 10)) for s in range(11)]),
    ("cosine", {"warmup_steps": 2, "min_lr_ratio": 0.1},
     [0.5, 1.0] + [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / 8)) for s in range(9)]),
    ("step", {"step_size": 2, "gamma": 0.5}, [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125, 0.0625, 0.0625, 0.03125]),
])
def test_each_scheduler_gives_the_documented_learning_rate_at_known_steps(name, params, expected):
    got = _lrs(name, 10, **params)
    assert got == pytest.approx(expected, abs=1e-9), f"{name} {params}: {got}"


def test_step_and_plateau_schedulers_say_when_they_are_stepped():
    assert _schedule("linear")[0].interval == "step" and not _schedule("linear")[0].needs_metric
    assert _schedule("step")[0].interval == "epoch" and _schedule("step", interval="step")[0].interval == "step"
    handle, _ = _schedule("plateau")
    assert handle.needs_metric and handle.interval == "epoch"
    # min mode, patience 1: the lr halves after the second evaluation in a row without improvement
    lrs = _lrs("plateau", 7, metrics=[1.0, 0.9, 0.95, 0.92, 0.8, 0.85, 0.9], factor=0.5, patience=1, min_lr=0.3)
    assert lrs == pytest.approx([1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.3])
    # max mode: rising values are improvements
    assert _lrs("plateau", 3, metrics=[0.1, 0.2, 0.3], mode="max", factor=0.5, patience=0)[-1] == 1.0


def test_the_trainer_steps_the_schedule_once_per_optimizer_step(tmp_path, recipe_factory):
    """With accumulation 2 the schedule advances per optimizer step, not per batch; the lr each
    logged step reports is the documented one (linear, 2 warmup steps, 12 steps in all)."""
    import fmkit

    recipe = recipe_factory(epochs=2, grad_accum_steps=2, log_every=1)  # 96 examples: 12 batches, 6 steps/epoch
    recipe["scheduler"] = {"name": "linear", "warmup_steps": 2}
    run = fmkit.train(recipe, run_dir=str(tmp_path / "run"))
    logged = {r["step"]: r["lr"] for r in _records(run.run_dir, "train")}
    assert sorted(logged) == list(range(1, 13))
    expected = {s: LR * (1.0 if s < 2 else 1 - (s - 2) / 10) for s in range(1, 13)}
    assert logged == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------------- accumulation
def test_gradient_accumulation_2x4_ends_with_the_weights_of_batch_8(tmp_path, recipe_factory):
    """SGD without clipping: the update is proportional to the gradient, so a wrong scale (a
    missing 1/accum) or a wrong grouping of micro-batches shows in the weights."""
    import fmkit

    def train(name: str, batch: int, accum: int):
        recipe = recipe_factory(epochs=1, batch_size=batch, grad_accum_steps=accum, grad_clip=None, log_every=100)
        recipe["model"]["config"].update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        recipe["optimizer"] = {"name": "sgd", "lr": 0.5, "momentum": 0.0}
        recipe["train"]["checkpoint_every"] = 6  # halfway through the 12 steps, and at the end
        run = fmkit.train(recipe, run_dir=str(tmp_path / name))
        steps = sorted((run.run_dir / "checkpoints").glob("step-*"))
        return steps, recorder.initial

    recorder = Recorder().install()
    accumulated, initial = train("accum", 2, 4)
    plain, _ = train("plain", 8, 1)
    assert [p.name for p in accumulated] == [p.name for p in plain] == ["step-00000006", "step-00000012"]
    final_a, final_p = _weights(accumulated[-1]), _weights(plain[-1])
    moved = _largest_diff(final_p, initial)
    assert moved > 1e-2, "training did not change the weights: the comparison would prove nothing"
    assert _largest_diff(final_a, final_p) < 1e-5 * max(1.0, moved)
    assert _largest_diff(_weights(accumulated[0]), _weights(plain[0])) < 1e-5 * max(1.0, moved)


# ---------------------------------------------------------------------------- bf16
def test_bf16_on_cpu_trains_under_autocast(tmp_path, recipe_factory):
    import fmkit

    recorder = Recorder(watch_dtypes=True).install()
    recipe = recipe_factory(epochs=1, precision="bf16", device="cpu", log_every=3)
    run = fmkit.train(recipe, run_dir=str(tmp_path / "run"))
    assert torch.bfloat16 in recorder.dtypes, f"training forward passes ran in {recorder.dtypes}, not under bf16 autocast"
    losses = [r["loss"] for r in _records(run.run_dir, "train")]
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)
    assert math.isfinite(run.results["loss"]) and 0.0 <= run.results["accuracy"] <= 1.0
    final = _weights(sorted((run.run_dir / "checkpoints").glob("step-*"))[-1])
    assert all(v.dtype == torch.float32 for v in final.values())  # autocast keeps fp32 master weights
    assert _largest_diff(final, recorder.initial) > 1e-4


# ---------------------------------------------------------------------------- early stopping
def test_early_stopping_stops_at_the_right_evaluation_and_keeps_the_best(tmp_path, recipe_factory):
    """Scripted metric (max mode, patience 2): evaluations at steps 2, 4, 6, 8 read 0.5, 0.8, 0.7,
    0.75: the best is step 4, and the run stops after step 8, its second evaluation without
    improvement, although 3 epochs (36 steps) were asked for."""
    import fmkit
    from helpers import scripted

    scripted.SCRIPT[:] = [0.5, 0.8, 0.7, 0.75, 0.9, 0.95, 0.99]
    scripted.CALLS[0] = 0
    recipe = recipe_factory(epochs=3, eval_every=2, checkpoint_every=2, keep_last=50, log_every=100)
    recipe["plugins"] = ["helpers.scripted"]
    recipe["evaluate"] = {"metrics": ["accuracy", "test-scripted"]}
    recipe["train"]["early_stopping"] = {"monitor": "scripted", "mode": "max", "patience": 2}
    run = fmkit.train(recipe, run_dir=str(tmp_path / "run"))
    evals = _records(run.run_dir, "validation")
    assert [(r["step"], r["scripted"]) for r in evals] == [(2, 0.5), (4, 0.8), (6, 0.7), (8, 0.75)]
    best = json.loads((run.run_dir / "checkpoints" / "best" / "meta.json").read_text())
    assert best["step"] == 4 and best["value"] == 0.8 and best["monitor"] == "scripted"
    ckpts = sorted(p.name for p in (run.run_dir / "checkpoints").glob("step-*"))
    assert ckpts[-1] == "step-00000008"
    best_w, at_4, at_8 = (_weights(run.run_dir / "checkpoints" / n) for n in ("best", "step-00000004", "step-00000008"))
    assert _largest_diff(best_w, at_4) == 0.0 and _largest_diff(best_w, at_8) > 0.0
    details = json.loads((run.run_dir / "eval_details.json").read_text())
    assert details["best"] == 0.8 and details["monitor"] == "scripted"


# ---------------------------------------------------------------------------- freezing
def test_backbone_frozen_for_the_first_epoch_then_trained(tmp_path, recipe_factory):
    import fmkit

    recorder = Recorder().install()
    fmkit.train(recipe_factory(epochs=2, freeze_backbone_epochs=1), run_dir=str(tmp_path / "run"))
    start, first, second = recorder.initial, recorder.epochs[0], recorder.epochs[1]
    head = [k for k in start if k.startswith("hf.classifier.")]  # the model's fmkit_head_prefixes
    backbone = [k for k in start if not k.startswith("hf.classifier.") and start[k].is_floating_point()]
    assert head and len(backbone) > 10
    frozen_changed = [k for k in backbone if not torch.equal(start[k], first[k])]
    assert not frozen_changed, f"frozen backbone weights changed in the first epoch: {frozen_changed[:5]}"
    assert all(not torch.equal(start[k], first[k]) for k in head), "the head did not train while the backbone was frozen"
    trained = [k for k in backbone if not torch.equal(first[k], second[k])]
    assert len(trained) > len(backbone) // 2, "the backbone was not unfrozen in the second epoch"


# ---------------------------------------------------------------------------- TensorBoard
def test_tensorboard_event_files_hold_the_logged_scalars(tmp_path, recipe_factory):
    """Also the epoch-interval ``step`` scheduler: the lr halves at the epoch boundary."""
    import fmkit
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    recipe = recipe_factory(epochs=2, log_every=2)
    recipe["tracking"]["tensorboard"] = True
    recipe["scheduler"] = {"name": "step", "step_size": 1, "gamma": 0.5}
    run = fmkit.train(recipe, run_dir=str(tmp_path / "run"))
    events = list((run.run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert events, "no TensorBoard event file"
    acc = EventAccumulator(str(run.run_dir / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    expected = {"train/loss", "train/lr", "train/samples_per_s", "validation/loss", "validation/accuracy",
                "validation/f1_macro", "test/loss", "test/accuracy"}
    assert expected <= tags, f"missing: {sorted(expected - tags)}"
    train = _records(run.run_dir, "train")
    assert [e.step for e in acc.Scalars("train/loss")] == [r["step"] for r in train] == list(range(2, 25, 2))
    assert [e.value for e in acc.Scalars("train/loss")] == pytest.approx([r["loss"] for r in train], rel=1e-6)
    lrs = {e.step: e.value for e in acc.Scalars("train/lr")}
    assert lrs == pytest.approx({s: LR if s <= 12 else LR / 2 for s in range(2, 25, 2)}, rel=1e-6)
    val = [e.step for e in acc.Scalars("validation/accuracy")]
    assert val == [12, 24]  # one evaluation per epoch
