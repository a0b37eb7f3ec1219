"""``run.request_stop(reason)`` (hook API 1.4): a hook ends training without raising; the loop stops
at the next step boundary, the run finishes normally and records why."""
from __future__ import annotations

import json

import fmkit


class Stopper:
    """Asks the run to stop from the hook and at the step/evaluation given."""

    def __init__(self, at_step=None, after_evals=None, at_start=False):
        self.at_step, self.after_evals, self.at_start = at_step, after_evals, at_start
        self.steps, self.evals, self.ended = [], 0, None

    @fmkit.hookimpl
    def fmkit_on_run_start(self, run):
        if self.at_start:
            run.request_stop("nothing to do")

    @fmkit.hookimpl
    def fmkit_on_step_end(self, run, step):
        self.steps.append(step)
        if step == self.at_step:
            run.request_stop(f"asked at step {step}")
            run.request_stop("a second request is ignored")

    @fmkit.hookimpl
    def fmkit_on_evaluate_end(self, run, split):
        if split == "validation":
            self.evals += 1
            if self.evals == self.after_evals:
                run.request_stop("hopeless")

    @fmkit.hookimpl
    def fmkit_on_run_end(self, run, results):
        self.ended = results


def _train(recipe_factory, tmp_path, stopper, **train):
    fmkit.unregister_plugin("stopper")  # one stopper at a time
    fmkit.register_plugin(stopper, name="stopper")  # removed after the test (conftest)
    run = fmkit.train(recipe_factory(**train), run_dir=str(tmp_path / "run"))
    records = [json.loads(x) for x in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    details = json.loads((run.run_dir / "eval_details.json").read_text())
    return run, records, details


def test_stop_from_a_step_hook_ends_at_that_step(recipe_factory, tmp_path):
    # 96 training examples / batch 8 = 12 steps per epoch, 3 epochs = 36 steps without the stop
    stopper = Stopper(at_step=5)
    run, records, details = _train(recipe_factory, tmp_path, stopper, epochs=3, log_every=1)
    assert stopper.steps == [1, 2, 3, 4, 5]
    assert run.stopped == {"reason": "asked at step 5", "step": 5, "epoch": 0}
    assert details["stopped"] == run.stopped
    assert [r for r in records if r.get("event") == "stop"] == [
        {"split": "event", "event": "stop", "step": 5, "epoch": 0, "reason": "asked at step 5"}]
    assert max(r["step"] for r in records if r["split"] == "train") == 5
    # the run finished as early stopping finishes one: a last validation, eval.json, run end
    assert [r["step"] for r in records if r["split"] == "validation"] == [5]
    assert (run.run_dir / "eval.json").is_file() and stopper.ended == run.results


def test_stop_from_an_evaluation_hook_ends_before_the_next_epoch(recipe_factory, tmp_path):
    stopper = Stopper(after_evals=1)
    run, records, details = _train(recipe_factory, tmp_path, stopper, epochs=3)
    assert stopper.steps == list(range(1, 13))  # epoch 0 only
    assert details["stopped"]["reason"] == "hopeless" and details["stopped"]["step"] == 12
    assert [r["step"] for r in records if r["split"] == "validation"] == [12]


def test_stop_with_step_evaluations_and_before_the_first_step(recipe_factory, tmp_path):
    stopper = Stopper(after_evals=2)
    run, records, _ = _train(recipe_factory, tmp_path, stopper, epochs=3, eval_every=4)
    assert stopper.steps == list(range(1, 9)) and run.stopped["step"] == 8
    stopper = Stopper(at_start=True)
    run, records, _ = _train(recipe_factory, tmp_path / "again", stopper, epochs=3)
    assert stopper.steps == [] and run.stopped == {"reason": "nothing to do", "step": 0, "epoch": 0}


def test_without_a_request_the_run_is_not_stopped(recipe_factory, tmp_path):
    run, records, details = _train(recipe_factory, tmp_path, Stopper(), epochs=1)
    assert run.stopped is None and details["stopped"] is None
    assert not [r for r in records if r.get("event") == "stop"]


def test_ranks_stop_together_when_one_asks(tmp_path):
    """Under torchrun a request on rank 1 alone stops both ranks at the next optimizer step."""
    import os
    import socket
    import subprocess
    import sys

    import yaml
    from conftest import ROOT, tiny_recipe

    recipe = tiny_recipe(tmp_path, epochs=2, batch_size=4, log_every=1)
    recipe["plugins"] = ["helpers.stop_on_one_rank"]
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                             f"--master_port={port}", "-m", "fmkit", "train", str(path), "--run-dir",
                             str(tmp_path / "run")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=400)
    except subprocess.TimeoutExpired:
        import signal

        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("the ranks did not stop together (deadlock?)")
    assert proc.returncode == 0, err[-3000:]
    details = json.loads((tmp_path / "run" / "eval_details.json").read_text())
    assert details["stopped"]["step"] == 3  # the window after the request was not applied
    assert details["stopped"]["reason"] == "rank 1 asked at step 3 (rank 1)"  # rank 0 records rank 1's reason
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in records if r["split"] == "train") == 3


def test_started_at_is_taken_before_the_data_is_read(recipe_factory, tmp_path, monkeypatch):
    import time

    from fmkit.engine import data

    seen, read = {}, {}
    real = data.load_splits

    def timed(*a, **k):
        read["at"] = time.time()
        return real(*a, **k)

    monkeypatch.setattr(data, "load_splits", timed)

    class Clock:
        @fmkit.hookimpl
        def fmkit_on_run_start(self, run):
            seen["started_at"] = run.started_at

    before = time.time()
    _train(recipe_factory, tmp_path, Clock(), epochs=1)
    assert before <= seen["started_at"] <= read["at"]


def test_a_stopped_run_says_so_in_train_runs_and_the_report(tmp_path):
    """``fmkit train`` prints why, ``fmkit runs`` does not call it a plain finished run, report.html
    names the reason (a hook spending a time budget measured from ``run.started_at``)."""
    import yaml
    from conftest import run_cli, tiny_recipe

    recipe = tiny_recipe(tmp_path, epochs=2)
    recipe["plugins"] = ["helpers.time_budget"]
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    done = run_cli("train", str(path), "--run-dir", str(tmp_path / "runs" / "budget"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "stopped: time budget of 0 s spent (" in done.stdout and "(at step 1, epoch 1)" in done.stdout
    recipe.pop("plugins")  # the same recipe, not stopped: a plain finished run beside it
    path.write_text(yaml.safe_dump(recipe))
    assert run_cli("train", str(path), "--run-dir", str(tmp_path / "runs" / "full")).returncode == 0
    rows = {r["name"]: r["status"] for r in json.loads(run_cli("runs", str(tmp_path / "runs"), "--json").stdout)}
    assert rows["budget"].startswith("finished (stopped early: time budget of 0 s spent")
    assert rows["full"] == "finished"
    report = (tmp_path / "runs" / "budget" / "report.html").read_text()
    assert "Stopped early</b> by a plugin at step 1 (epoch 1): time budget of 0 s spent" in report
    assert "Stopped early" not in (tmp_path / "runs" / "full" / "report.html").read_text()
