"""Two CPU processes under torchrun (DDP over gloo) train like one process with the same global batch."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import yaml
from conftest import ROOT, tiny_recipe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _final_weights(run_dir):
    from safetensors.torch import load_file

    return load_file(str(run_dir / "checkpoints" / "best" / "model.safetensors"))


def test_two_processes_ddp_and_fsdp_match_one_process_with_the_same_global_batch(tmp_path):
    """DDP and FSDP (fully_shard over gloo: it runs on CPU) end where one process ends."""
    import torch

    recipe = tiny_recipe(tmp_path, epochs=2, batch_size=8, eval_batch_size=7)
    # no dropout: the two runs must draw no different random numbers
    recipe["model"]["config"].update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "tests")}
    single = subprocess.run([sys.executable, "-m", "fmkit", "train", str(path), "--set", "tracking.run_name=single"],
                            capture_output=True, text=True, env=env, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    runs = tmp_path / "runs"
    one = next(runs.glob("single-*"))
    for strategy in ("ddp", "fsdp"):
        extra = ["--set", "export.formats=[onnx]"] if strategy == "fsdp" else []
        multi = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                                f"--master_port={_free_port()}", "-m", "fmkit", "train", str(path),
                                "--set", "train.batch_size=4", "--set", f"train.strategy={strategy}",
                                "--set", f"tracking.run_name={strategy}", *extra],
                               capture_output=True, text=True, env=env, timeout=600)
        assert multi.returncode == 0, multi.stderr[-3000:]
        assert len(list(runs.glob(f"{strategy}-*"))) == 1  # ranks share rank 0's run directory
        two = next(runs.glob(f"{strategy}-*"))
        w1, w2 = _final_weights(one), _final_weights(two)
        assert w1.keys() == w2.keys()
        worst = max(float((w1[k].float() - w2[k].float()).abs().max()) for k in w1)
        assert worst < 1e-4, f"{strategy} weights differ from the single-process run by {worst}"
        e1, e2 = json.loads((one / "eval.json").read_text()), json.loads((two / "eval.json").read_text())
        assert abs(e1["loss"] - e2["loss"]) < 1e-4 and e1["accuracy"] == e2["accuracy"], strategy
        steps = [json.loads(x)["step"] for x in (two / "metrics.jsonl").read_text().splitlines()]
        assert max(steps) == max(json.loads(x)["step"] for x in (one / "metrics.jsonl").read_text().splitlines())
    # the FSDP run exported a plain (unsharded) model from its best weights
    fsdp_dir = next(runs.glob("fsdp-*"))
    assert (fsdp_dir / "exports" / "onnx" / "export.json").is_file()
    # and its gathered checkpoint (weights and optimizer state by parameter name) resumes sharded
    before = _final_weights(fsdp_dir)
    resumed = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                              f"--master_port={_free_port()}", "-m", "fmkit", "train", str(path),
                              "--set", "train.batch_size=4", "--set", "train.strategy=fsdp",
                              "--resume", str(fsdp_dir)], capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = _final_weights(fsdp_dir)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.distributed.is_available()


def _torchrun(args: list[str], env: dict, timeout: int) -> subprocess.CompletedProcess:
    """torchrun with 2 CPU ranks; a run still going after ``timeout`` s (a deadlock) is killed and fails."""
    import signal

    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "fmkit", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"torchrun {' '.join(args)} still running after {timeout} s (deadlock?)\n{err[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_uneven_and_empty_validation_shards_and_an_oom_on_one_rank(tmp_path):
    """24 validation examples in one evaluation batch of 32: rank 1 has no validation batch (and the
    40 test examples give the ranks 32 and 8). DDP and FSDP must neither hang nor miscount; under
    DDP rank 1 alone also runs out of memory, in the forward of a window's last micro-batch and
    of the next window's first, and retries: the run ends with the weights and metrics of one process with the
    same global batch and no fault. The summary is printed once."""
    import fmkit
    import torch

    recipe = tiny_recipe(tmp_path, epochs=1, batch_size=8, grad_accum_steps=2, eval_batch_size=32, eval_every=2)
    recipe["plugins"] = ["helpers.fault_injection"]
    recipe["model"] = {"name": "test-injected"}
    recipe["tracking"]["report"] = False
    ref = fmkit.train(recipe, run_dir=str(tmp_path / "single"))
    recipe["train"]["batch_size"] = 4  # per rank: the same global batch
    # rank 1's training forward calls (retries count): call 2 is window 1's last micro-batch (its backward
    # all-reduces), retried in two parts; call 3 is then the first part of window 2's first micro-batch
    recipe["model"].update(oom_rank=1, oom_forward_calls=[2, 3])
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    for strategy in ("ddp", "fsdp"):
        d = tmp_path / strategy
        extra = ["--set", "model.oom_forward_calls=[]"] if strategy == "fsdp" else []  # FSDP cannot retry alone
        run = _torchrun(["train", str(path), "--run-dir", str(d), "--set", f"train.strategy={strategy}", *extra],
                        env, timeout=240)
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.stdout.count("run directory:") == 1, run.stdout  # rank 0 alone prints the summary
        if strategy == "ddp":
            assert run.stderr.count("out of memory at step") == 2, run.stderr[-3000:]
        worst = max(float((a.float() - b.float()).abs().max())
                    for a, b in zip(_final_weights(ref.run_dir).values(), _final_weights(d).values()))
        assert worst < 1e-5, f"{strategy}: weights differ from the single-process run by {worst}"
        e1, e2 = ref.results, json.loads((d / "eval.json").read_text())
        assert abs(e1["loss"] - e2["loss"]) < 1e-5 and e1["accuracy"] == e2["accuracy"], (strategy, e1, e2)
        evals = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
        evals = [r for r in evals if r["split"] == "validation"]
        assert [r["step"] for r in evals] == [2, 4, 6]
        ref_evals = [r for r in ref.run_dir.joinpath("metrics.jsonl").read_text().splitlines() if '"validation"' in r]
        assert all(abs(json.loads(a)["loss"] - b["loss"]) < 1e-5 for a, b in zip(ref_evals, evals))
    assert torch.distributed.is_available()


def test_fsdp_run_killed_mid_epoch_resumes_to_the_same_weights(tmp_path):
    """A real torchrun FSDP run, SIGKILLed (whole process group) right after a mid-epoch step
    checkpoint, resumes from it sharded and ends with the weights and eval.json of the run that was
    never interrupted."""
    import signal
    import time

    import torch
    from safetensors.torch import load_file

    recipe = tiny_recipe(tmp_path, epochs=2, batch_size=8, eval_batch_size=7)
    recipe["model"]["config"].update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "tests")}
    args = ["train", str(path), "--set", "train.batch_size=4", "--set", "train.strategy=fsdp",
            "--set", "train.checkpoint_every=3"]
    reference = _torchrun([*args, "--run-dir", str(tmp_path / "reference")], env, timeout=600)
    assert reference.returncode == 0, reference.stderr[-3000:]

    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "fmkit", *args, "--run-dir", str(killed)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.monotonic() + 600
    mid_epoch = killed / "checkpoints" / "step-00000009"  # 12 steps per epoch: step 9 is inside epoch 1
    while not (mid_epoch / "meta.json").is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed mid-epoch"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "eval.json").exists()

    resumed = _torchrun([*args, "--resume", str(killed)], env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = "checkpoints/step-00000024/model.safetensors"
    a, b = load_file(str(tmp_path / "reference" / final)), load_file(str(killed / final))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((killed / "eval.json").read_text()) == json.loads((tmp_path / "reference" / "eval.json").read_text())
