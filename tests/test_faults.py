"""Fault handling of the training engine, each fault injected for real: out-of-memory errors in a
forward, a half-done backward and an evaluation; SIGINT and SIGTERM sent to a training process at
chosen points; folders left by a killed checkpoint write; the device-dependent paths (bf16
autocast, background checkpoints, pinned memory) through their CPU code."""
from __future__ import annotations

import json
import random
import shutil
import signal

import pytest
import yaml
from conftest import run_cli, tiny_recipe

torch = pytest.importorskip("torch")
pytest.importorskip("fmkit_nlp")

PLUGIN = "helpers.fault_injection"


def injected_recipe(tmp_path, **model) -> dict:
    recipe = tiny_recipe(tmp_path, epochs=1, grad_accum_steps=2)
    recipe["plugins"] = [PLUGIN]
    recipe["model"] = {"name": "test-injected", **model}
    recipe["tracking"]["report"] = False
    return recipe


def last_weights(run_dir) -> dict:
    from safetensors.torch import load_file

    return load_file(str(sorted((run_dir / "checkpoints").glob("step-*"))[-1] / "model.safetensors"))


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def test_out_of_memory_with_accumulation_keeps_the_whole_window(tmp_path):
    """Accumulation 2: an OOM in the second micro-batch's forward must keep the first micro-batch's
    gradient; an OOM in the middle of a backward (some gradients already added) must not count
    them twice. Both end where a run without the fault ends, with the same effective batch."""
    import fmkit

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    ref = fmkit.train(injected_recipe(tmp_path), run_dir=str(tmp_path / "ref"))
    # training forward calls (retries count): batches 1, 2 form window 1 and batch 2's forward fails
    # (call 2); it is retried in two parts (calls 3, 4); batches 3, 4: calls 5-8; window 3: batch 5
    # (calls 9, 10), then batch 6, whose second part fails in its backward (call 12) after the
    # head's gradients were added: the window is replayed from zero in four parts per batch
    faulty = injected_recipe(tmp_path, oom_forward_calls=[2], oom_backward_calls=[12])
    run = fmkit.train(faulty, run_dir=str(tmp_path / "oom"))
    events = json.loads((run.run_dir / "eval_details.json").read_text())["oom_events"]
    assert [e["micro_batches"] for e in events] == [2, 4], events
    worst = max_diff(last_weights(ref.run_dir), last_weights(run.run_dir))
    assert worst < 1e-6, f"weights after the OOM retries differ from the run without them by {worst}"
    assert abs(ref.results["loss"] - run.results["loss"]) < 1e-6
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before, "handlers not restored"


def test_out_of_memory_in_evaluation_counts_every_example_once():
    """The first OOM splits the batch in two; the second strikes the second half after the first
    half was counted: the evaluation goes on with the rows not yet counted."""
    from fmkit.builtin.metrics import F1, Accuracy, AveragedParams, ClassParams
    from fmkit.engine.data import EpochBatchPlan, PreparedDataset, make_loader
    from fmkit.engine.evaluation import evaluate_loader

    class Task:
        def forward(self, model, part):
            return model(part["x"])

        def loss(self, out, part, loss_fn):
            return loss_fn(out, part["targets"])

        def metric_inputs(self, out, part):
            return out, part["targets"]

    class Model(torch.nn.Module):
        def __init__(self, fail_at=()):
            super().__init__()
            torch.manual_seed(0)
            self.lin = torch.nn.Linear(4, 3)
            self.fail_at, self.calls = set(fail_at), 0

        def forward(self, x):
            self.calls += 1
            if self.calls in self.fail_at:
                raise torch.OutOfMemoryError("CUDA out of memory (injected)")
            return self.lin(x)

    g = torch.Generator().manual_seed(1)
    feats = [{"x": torch.randn(4, generator=g), "targets": torch.tensor(i % 3)} for i in range(25)]

    def collate(items):
        return {k: torch.stack([f[k] for f in items]) for k in items[0]}

    def evaluate(model):
        loader = make_loader(PreparedDataset(feats), EpochBatchPlan(len(feats), 10, False), collate, 0, False)
        metrics = [Accuracy(ClassParams(), {"num_labels": 3}), F1(AveragedParams(), {"num_labels": 3})]
        results, artifacts = evaluate_loader(model, Task(), loader, torch.nn.CrossEntropyLoss(), metrics,
                                             torch.device("cpu"))
        return results, artifacts

    clean, clean_art = evaluate(Model())
    model = Model(fail_at=(1, 3))
    faulty, faulty_art = evaluate(model)
    assert model.calls > 4  # both faults happened and the batches were split
    assert faulty_art["per_class"] == clean_art["per_class"]
    assert sum(r["support"] for r in faulty_art["per_class"]) == 25, "an example was counted twice or lost"
    assert faulty.keys() == clean.keys()
    for k in clean:
        assert abs(faulty[k] - clean[k]) < 1e-6, (k, faulty[k], clean[k])  # float32 losses summed in other parts


def test_stale_checkpoint_folders_are_cleaned_and_an_interrupted_replacement_is_restored(tmp_path):
    from fmkit.engine.checkpoint import latest_checkpoint, remove_stale

    ck = tmp_path / "checkpoints"
    for name in ("step-00000003", ".tmp-step-00000006-x1y2", ".old-step-00000003-77", ".old-best-78"):
        (ck / name).mkdir(parents=True)
        (ck / name / "meta.json").write_text(json.dumps({"name": name}))
    (ck / ".tmp-eval.json-abc").write_text("half")
    removed = remove_stale(ck)
    # best was being replaced when the process died: its previous version comes back
    assert json.loads((ck / "best" / "meta.json").read_text()) == {"name": ".old-best-78"}
    assert json.loads((ck / "step-00000003" / "meta.json").read_text()) == {"name": "step-00000003"}
    assert sorted(p.name for p in ck.iterdir()) == ["best", "step-00000003"]
    assert set(removed) == {".tmp-step-00000006-x1y2", ".old-step-00000003-77", ".tmp-eval.json-abc"}
    assert latest_checkpoint(ck) == ck / "step-00000003"


def test_bf16_background_checkpoints_and_pinned_memory_resume_exactly_on_cpu(tmp_path):
    """The paths a GPU run takes (autocast, background writer with snapshots, pinned batches),
    through their CPU code: a run resumed from a mid-run checkpoint ends where the whole run ends."""
    import fmkit

    recipe = injected_recipe(tmp_path)
    recipe["train"].update(precision="bf16", async_checkpoint=True, checkpoint_every=2, epochs=2, keep_last=10)
    recipe["data"]["pin_memory"] = True
    whole = fmkit.train(recipe, run_dir=str(tmp_path / "whole"))
    steps = sorted((whole.run_dir / "checkpoints").glob("step-*"))
    assert len(steps) >= 4 and all((s / "state.pt").is_file() for s in steps)
    assert all(torch.isfinite(v.float()).all() for v in last_weights(whole.run_dir).values())
    part = tmp_path / "part"
    shutil.copytree(whole.run_dir, part)
    mid = steps[len(steps) // 2 - 1]
    for later in sorted((part / "checkpoints").glob("step-*")):
        if later.name > mid.name:
            shutil.rmtree(later)
    for name in ("eval.json", "eval_details.json"):
        (part / name).unlink()
    resumed = fmkit.train(None, resume=str(part))
    a, b = last_weights(whole.run_dir), last_weights(part)
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed bf16 run differs from the whole run"
    assert resumed.results == whole.results


# ---------------------------------------------------------------------------------------- signals
def _meta(ckpt_dir) -> dict:
    return json.loads((ckpt_dir / "meta.json").read_text())


def test_sigint_and_sigterm_stop_at_a_step_boundary_and_resume_exactly(tmp_path):
    """One run interrupted five times by real signals sent from inside a forward (mid-step: between
    micro-batches of a window, or during an evaluation), resumed each time: it must end with the
    weights and eval.json of the uninterrupted run. SIGTERM stops like Ctrl-C (exit 143); a double
    Ctrl-C exits at once (130) without saving; folders a killed write left are removed on resume."""
    recipe = injected_recipe(tmp_path)
    recipe["train"].update(epochs=3, checkpoint_every=3, eval_every=4, threads=1)  # one thread: bit-exact on CPU
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    ref = run_cli("train", str(path), "--run-dir", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr[-2000:]

    d = tmp_path / "run"
    rng = random.Random(15)
    # forward calls are counted from 1 in each process (training and evaluation); 36 + 8 in the whole run
    plan = [("SIGINT", 130), ("SIGTERM", 143), ("SIGINT+SIGINT", 130), ("SIGINT", 130), ("SIGINT", 130)]
    for i, (sigs, code) in enumerate(plan):
        call = rng.randint(1, 7)
        spec = "+".join(f"{s}@{call}" for s in sigs.split("+"))
        args = ("train", str(path), "--run-dir", str(d)) if i == 0 else ("train", str(d / "recipe.yaml"),
                                                                          "--resume", str(d))
        before = sorted(p.name for p in (d / "checkpoints").glob("step-*")) if i else []
        if i == 3:  # what a write killed half-way leaves behind
            (d / "checkpoints" / ".tmp-step-00000099-abcd").mkdir()
            (d / "checkpoints" / ".tmp-step-00000099-abcd" / "model.safetensors").write_bytes(b"half")
        out = run_cli(*args, env={"FMKIT_TEST_SIGNALS": spec})
        where = f"run {i} ({spec}): stdout {out.stdout[-800:]} stderr {out.stderr[-1500:]}"
        assert out.returncode == code, where
        steps = sorted(p.name for p in (d / "checkpoints").glob("step-*"))
        if "+" in sigs:
            assert "again: exiting now without saving" in out.stderr, where
            added = [_meta(d / "checkpoints" / s)["reason"] for s in steps if s not in before]
            assert "interrupted" not in added, "a double Ctrl-C must not save"
            continue
        assert "interrupted at step" in out.stdout and "--resume" in out.stdout, where
        latest = d / "checkpoints" / steps[-1]
        meta = _meta(latest)
        assert meta["reason"] == "interrupted", where
        # a step boundary: the end of an accumulation window (2 batches) or of the epoch (12 batches)
        assert meta["batch_in_epoch"] % 2 == 0, meta
        if i == 3:
            assert not list((d / "checkpoints").glob(".tmp-*")), "the half-written folder was not removed"
    final = run_cli("train", str(d / "recipe.yaml"), "--resume", str(d))
    assert final.returncode == 0, final.stderr[-2000:]
    a, b = last_weights(tmp_path / "ref"), last_weights(d)
    assert all(torch.equal(a[k], b[k]) for k in a), "the interrupted and resumed run ends with other weights"
    assert json.loads((tmp_path / "ref" / "eval.json").read_text()) == json.loads((d / "eval.json").read_text())
    ref_evals = [r["step"] for r in map(json.loads, (tmp_path / "ref" / "metrics.jsonl").read_text().splitlines())
                 if r["split"] == "validation"]
    evals = [r["step"] for r in map(json.loads, (d / "metrics.jsonl").read_text().splitlines())
             if r["split"] == "validation"]
    assert evals == ref_evals
