"""fmkit-tune and interruptions: Ctrl-C stops the running trial at a step with a checkpoint, writes the
study's outputs and exits 130; the same command continues the study, the interrupted trial resuming
from its checkpoint. Which trials are run again is decided once per trial."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
import yaml
from tune_helpers import ROOT, cli_env, study_recipe, trials

from fmkit_tune.storage import recover
from fmkit_tune.trial import HOST

TUNE = {"sampler": "random", "pruner": "none", "space": {"optimizer.lr": {"float": [1e-3, 2e-2], "log": True}}}


def test_ctrl_c_saves_the_study_and_the_same_command_continues_it(tmp_path):
    path = study_recipe(tmp_path, TUNE, epochs=3, checkpoint_every=2)
    recipe = yaml.safe_load(path.read_text())
    recipe["plugins"] = ["helpers.slow_steps"]  # 0.15 s a step: the signal lands in training, however loaded
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    env = cli_env()
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests"), env["PYTHONPATH"]])
    study = tmp_path / "runs" / "tune" / "r"
    proc = subprocess.Popen([sys.executable, "-m", "fmkit", "tune", str(path), "--trials", "2"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            time.sleep(0.5)
            assert proc.poll() is None
            if list((study / "trials" / "trial-0000" / "checkpoints").glob("step-*/meta.json")):
                break
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends to the foreground group
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out + err
    assert "run the same command again to continue it" in err
    (first,) = trials(study)
    assert first.state == TrialState.FAIL and first.user_attrs["interrupted"]
    saved = [d.name for d in (study / "trials" / "trial-0000" / "checkpoints").glob("step-*")]
    assert saved and (study / "trials.csv").is_file()
    r = subprocess.run([sys.executable, "-m", "fmkit", "tune", str(path), "--trials", "2"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    ts = trials(study)
    retry = [t for t in ts if t.user_attrs.get("retry_of") == 0]
    assert len(retry) == 1 and retry[0].params == first.params
    assert retry[0].user_attrs["run_dir"] == first.user_attrs["run_dir"]
    assert sum(t.state == TrialState.COMPLETE for t in ts) == 2


def _trial(study, state, **attrs):
    study.add_trial(create_trial(state=state, params={"lr": 0.01}, distributions={"lr": FloatDistribution(1e-3, 1.0)},
                                 user_attrs=attrs, value=0.5 if state == TrialState.COMPLETE else None))


def test_recover_queues_each_interrupted_or_dead_trial_once(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(storage=storage, study_name="s")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    _trial(study, TrialState.COMPLETE, run_dir="a")
    _trial(study, TrialState.FAIL, run_dir="b", interrupted=True)       # Ctrl-C: run again
    _trial(study, TrialState.FAIL, run_dir="c", error="diverged")       # its own failure: not again
    _trial(study, TrialState.RUNNING, run_dir="d", host=HOST, pid=int(dead))       # killed: run again
    _trial(study, TrialState.RUNNING, run_dir="e", host=HOST, pid=os.getpid())     # alive: left alone
    _trial(study, TrialState.RUNNING, run_dir="f", host="another-machine", pid=1)  # not ours to judge
    assert recover(study, storage) == [1, 3]
    ts = study.get_trials()
    assert ts[3].state == TrialState.FAIL and ts[4].state == TrialState.RUNNING
    queued = [t for t in ts if t.state == TrialState.WAITING]
    assert [(t.user_attrs["retry_of"], t.user_attrs["run_dir"]) for t in queued] == [(1, "b"), (3, "d")]
    assert recover(study, storage) == []  # once each
