"""Background checkpoint writes and the micro-batcher's scheduling, without training or HTTP."""
from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
import torch

from fmkit.engine import checkpoint as ckpt
from fmkit.serve.batching import MicroBatcher


def test_background_checkpoint_holds_the_state_of_its_step(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    release = threading.Event()
    writer = ckpt.CheckpointWriter(asynchronous=True)
    writer.submit(lambda: release.wait(10))  # keep the writer busy so the next write is queued
    weights = ckpt.snapshot(ckpt.model_state(model))
    state = ckpt.snapshot({"optimizer": opt.state_dict()})
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    expected_avg = opt.state_dict()["state"][0]["exp_avg"].clone()
    writer.submit(lambda: ckpt.save_checkpoint(tmp_path / "step-1", weights, state, {"step": 1}))
    with torch.no_grad():  # training goes on and changes everything in place
        model.weight.add_(1.0)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    release.set()
    writer.close()
    again = torch.nn.Linear(3, 2)
    ckpt.load_weights(again, tmp_path / "step-1" / "model.safetensors")
    for k, v in again.state_dict().items():
        assert torch.equal(v, expected[k])
    saved = ckpt.load_state(tmp_path / "step-1")
    assert torch.equal(saved["optimizer"]["state"][0]["exp_avg"], expected_avg)
    assert ckpt.latest_checkpoint(tmp_path) == tmp_path / "step-1"


def test_a_failed_background_write_is_raised_and_leaves_nothing(tmp_path):
    writer = ckpt.CheckpointWriter(asynchronous=True)

    def broken():
        with ckpt.atomic_directory(tmp_path / "step-2") as tmp:
            (tmp / "meta.json").write_text("{}")
            raise OSError("disk full")

    writer.submit(broken)
    with pytest.raises(OSError, match="disk full"):
        writer.wait()
    assert not (tmp_path / "step-2").exists() and ckpt.latest_checkpoint(tmp_path) is None


def test_a_lone_request_does_not_wait_for_a_batch_but_concurrent_ones_are_batched():
    sizes: list[int] = []

    def predict(items):
        sizes.append(len(items))
        time.sleep(0.05)
        return [x * 2 for x in items]

    async def scenario():
        batcher = MicroBatcher(predict, max_batch_size=8, max_wait_ms=2000)
        await batcher.start()
        t = time.perf_counter()
        assert await batcher.submit([1]) == [2]
        lone = time.perf_counter() - t
        results = await asyncio.gather(*(batcher.submit([i]) for i in range(8)))
        await batcher.stop()
        return lone, results

    lone, results = asyncio.run(scenario())
    assert lone < 1.0, f"a lone request waited {lone:.2f} s (max_wait_ms is 2 s: it must not wait when idle)"
    assert [r[0] for r in results] == [2 * i for i in range(8)]
    assert sizes[0] == 1 and max(sizes[1:]) > 1


def test_predict_each_isolates_the_inputs_that_fail_and_answers_the_rest():
    from fmkit.errors import DataError
    from fmkit.serve.app import UndecodableInput, predict_each

    class Task:
        decoded: list = []

        def raw_to_example(self, raw):
            self.decoded.append(raw)
            if not isinstance(raw, (int, str)):
                raise TypeError(f"not an input: {raw!r}")
            return raw

        def encodes_examples(self):
            return True

    class Predictor:
        task = Task()
        calls: list[list] = []

        def predict(self, items, batch_size=32):
            raise AssertionError("the server passes decoded examples (predict_examples)")

        def predict_examples(self, items, batch_size=32):
            self.calls.append(list(items))
            if any(i == "short" for i in items):  # decodes, but the task cannot prepare it
                if len(items) == 1:
                    raise DataError("context too short")
                raise RuntimeError("batch failed")
            if any(i == "boom" for i in items):
                raise RuntimeError("model failure")
            return [{"y": 2 * i} for i in items]

    pred = Predictor()
    out = predict_each(pred, [1, {"bad": 1}, 3], batch_size=8)
    assert out[0] == {"y": 2} and out[2] == {"y": 6} and isinstance(out[1], UndecodableInput)
    assert pred.calls == [[1, 3]], "the undecodable input must not reach the model"
    assert pred.task.decoded == [1, {"bad": 1}, 3], "each input is decoded once"
    out = predict_each(pred, [1, "short", 2], batch_size=8)
    assert out[0] == {"y": 2} and out[2] == {"y": 4}
    assert isinstance(out[1], UndecodableInput) and "too short" in str(out[1])
    out = predict_each(pred, [1, "boom"], batch_size=8)
    assert out[0] == {"y": 2} and isinstance(out[1], RuntimeError) and not isinstance(out[1], UndecodableInput)


def test_a_full_queue_refuses_new_requests_at_once_and_serves_the_waiting_ones():
    from fmkit.serve.batching import Overloaded

    release = threading.Event()

    def predict(items):
        release.wait(10)
        return [x + 1 for x in items]

    async def scenario():
        batcher = MicroBatcher(predict, max_batch_size=2, max_wait_ms=0, max_queue=4)
        await batcher.start()
        first = asyncio.ensure_future(batcher.submit([0]))  # taken by the worker, which then blocks
        await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(batcher.submit([1, 2, 3, 4]))  # fills the queue
        await asyncio.sleep(0.05)
        t = time.perf_counter()
        with pytest.raises(Overloaded, match="limit is 4"):
            await batcher.submit([5])
        refused_in = time.perf_counter() - t
        release.set()
        results = await first, await waiting
        await batcher.stop()
        return refused_in, results

    refused_in, (first, waiting) = asyncio.run(scenario())
    assert refused_in < 0.5
    assert first == [1] and waiting == [2, 3, 4, 5]


def test_a_task_that_only_overrides_encode_raw_keeps_its_path():
    """A task written against API 1.1 overrides encode_raw alone: the server must keep calling it."""
    from fmkit import Task
    from fmkit.serve.app import predict_each

    class Old(Task):
        def encode_raw(self, inputs):
            return {"x": [f"old:{i}" for i in inputs]}

    class New(Task):
        def encode_examples(self, examples):
            return {"x": examples}

    assert not Old.__new__(Old).encodes_examples()
    assert New.__new__(New).encodes_examples() and Task.__new__(Task).encodes_examples()

    class Predictor:
        task = Old.__new__(Old)
        task.raw_to_example = lambda raw: {"decoded": raw}

        def predict(self, items, batch_size=32):
            return self.task.encode_raw(items)["x"]

    assert predict_each(Predictor(), ["a", "b"], batch_size=4) == ["old:a", "old:b"]


def test_large_inputs_go_to_the_heavy_lanes_own_predict():
    """Inputs over ``heavy_size`` go to ``heavy_predict``, one at a time; short ones to ``predict``."""
    seen: dict[str, list] = {"light": [], "heavy": []}

    def predict(items):
        seen["light"].append(list(items))
        return [len(x) for x in items]

    def heavy_predict(items):
        seen["heavy"].append(list(items))
        return [-len(x) for x in items]

    async def scenario():
        batcher = MicroBatcher(predict, max_batch_size=4, max_wait_ms=0, size=len, heavy_size=10,
                               heavy_predict=heavy_predict)
        await batcher.start()
        out = await batcher.submit(["short", "x" * 50, "tiny", "y" * 20])
        await batcher.stop()
        return out

    assert asyncio.run(scenario()) == [5, -50, 4, -20]
    assert seen["heavy"] == [["x" * 50], ["y" * 20]]
    assert sorted(x for items in seen["light"] for x in items) == ["short", "tiny"]


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_a_background_runner_runs_the_model_call_on_an_idle_thread():
    """The runner's thread is in the SCHED_IDLE class (the cores go to any ordinary thread first);
    the caller's thread keeps its own scheduling."""
    from fmkit.serve.priority import BackgroundRunner

    before = os.sched_getscheduler(0)
    calls = []

    def run(batch):
        calls.append((os.sched_getscheduler(0), threading.current_thread().name))
        return batch["x"] * 2

    runner = BackgroundRunner(run)
    try:
        assert runner.lowered == "idle"
        assert runner({"x": 21}) == 42 and runner({"x": 1}) == 2
    finally:
        runner.close()
    assert calls == [(os.SCHED_IDLE, calls[0][1])] * 2 and calls[0][1].startswith("fmkit-background")
    assert os.sched_getscheduler(0) == before != os.SCHED_IDLE


def test_the_heavy_lane_setting_is_checked(monkeypatch):
    from fmkit.errors import UsageError
    from fmkit.serve.priority import heavy_lane_mode

    monkeypatch.delenv("FMKIT_HEAVY_LANE", raising=False)
    assert heavy_lane_mode() == "background"
    monkeypatch.setenv("FMKIT_HEAVY_LANE", " Shared ")
    assert heavy_lane_mode() == "shared"
    monkeypatch.setenv("FMKIT_HEAVY_LANE", " ")
    assert heavy_lane_mode() == "background"
    for bad in ("low", "10", "idle"):
        monkeypatch.setenv("FMKIT_HEAVY_LANE", bad)
        with pytest.raises(UsageError, match="FMKIT_HEAVY_LANE=.*background, shared"):
            heavy_lane_mode()


def test_a_failed_directory_write_leaves_no_folder_it_made(tmp_path):
    """A failed export left an empty ``exports/`` behind: the folders the write created go too,
    and a folder that was there before stays."""
    from fmkit.utils.atomic import atomic_directory

    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "run" / "exports" / "onnx") as tmp:
            (tmp / "model.onnx").write_bytes(b"x")
            raise RuntimeError("verification failed")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "kept" / "onnx"):
            raise RuntimeError("verification failed")
    assert [p.name for p in tmp_path.iterdir()] == ["kept"] and list((tmp_path / "kept").iterdir()) == []
