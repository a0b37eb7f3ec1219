"""fmkit-tune across processes: a study whose process was killed continues with the same command, with
no trial lost or run twice (the killed trial resumes from its checkpoint), and two worker processes
share one SQLite storage."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import yaml
from optuna.trial import TrialState
from tune_helpers import ROOT, cli, cli_env, study_recipe, trials

TUNE = {"sampler": "random", "pruner": "none", "space": {"optimizer.lr": {"float": [1e-3, 2e-2], "log": True}}}


def test_a_killed_study_continues_without_losing_or_repeating_trials(tmp_path):
    path = study_recipe(tmp_path, TUNE, epochs=4, checkpoint_every=3)
    recipe = yaml.safe_load(path.read_text())
    recipe["plugins"] = ["helpers.slow_steps"]  # 0.15 s a step: on an idle machine a trial is over between polls
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    env = cli_env()
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests"), env["PYTHONPATH"]])
    study = tmp_path / "runs" / "tune" / "r"
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "fmkit", "tune", str(path), "--trials", "3"], cwd=tmp_path,
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 400
        try:
            while time.time() < deadline:  # kill it once trial 0 is done and trial 1 has a checkpoint
                time.sleep(0.5)
                assert proc.poll() is None, (tmp_path / "first.log").read_text()
                if not (study / "study.db").is_file():
                    continue
                try:
                    ts = trials(study)
                except KeyError:  # the database exists but the study's record is not written yet
                    continue
                if len(ts) >= 2 and ts[0].state == TrialState.COMPLETE and ts[1].state == TrialState.RUNNING and \
                        list((study / "trials" / "trial-0001" / "checkpoints").glob("step-*/meta.json")):
                    break
            else:
                raise AssertionError("the study never reached trial 1")
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole process group, as a crash would
            proc.wait()
    done_at = (study / "trials" / "trial-0000" / "eval.json").stat().st_mtime_ns
    killed = trials(study)[1]
    assert killed.state == TrialState.RUNNING  # nobody could mark it
    r = cli("tune", str(path), "--trials", "3", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "trial(s) 1 run again" in r.stderr
    ts = trials(study)
    finished = [t for t in ts if t.state == TrialState.COMPLETE]
    assert len(finished) == 3 and ts[1].state == TrialState.FAIL
    assert (study / "trials" / "trial-0000" / "eval.json").stat().st_mtime_ns == done_at  # not run again
    retry = [t for t in ts if t.user_attrs.get("retry_of") == 1]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE and retry[0].params == killed.params
    assert retry[0].user_attrs["run_dir"] == killed.user_attrs["run_dir"]  # the same run, resumed
    steps = [json.loads(x)["step"] for x in open(f"{killed.user_attrs['run_dir']}/metrics.jsonl")
             if json.loads(x)["split"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == 48  # resumed from its checkpoint: no step twice
    assert len({t.number for t in ts if t.state == TrialState.COMPLETE}) == 3
    again = cli("tune", str(path), "--trials", "3", cwd=tmp_path, env=env)  # complete: nothing more runs
    assert again.returncode == 0 and len(trials(study)) == len(ts)


def test_two_worker_processes_share_one_sqlite_storage(tmp_path):
    path = study_recipe(tmp_path, TUNE, epochs=1)
    r = cli("tune", str(path), "--trials", "4", "--workers", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    study = tmp_path / "runs" / "tune" / "r"
    ts = trials(study)
    assert sum(t.state == TrialState.COMPLETE for t in ts) >= 4
    assert len({t.user_attrs["pid"] for t in ts}) == 2  # two processes ran them
    threads = max(1, (os.cpu_count() or 1) // 2)
    for t in ts:
        recipe = yaml.safe_load(open(f"{t.user_attrs['run_dir']}/recipe.yaml"))
        assert recipe["train"]["threads"] == threads
    assert (study / "logs" / "worker-0.log").is_file() and (study / "logs" / "worker-1.log").is_file()
    assert (study / "best.yaml").is_file() and "best: trial" in r.stdout
