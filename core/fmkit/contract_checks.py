"""Checks of the plugin contract that :mod:`fmkit.testing` runs besides the component checks:
hook names and CLI commands, transforms, streaming metrics, datasets, exact task-state round trips.

Each ``check_*`` function raises ``AssertionError`` naming the plugin, the component and what is
wrong; ``fmkit.testing.contract_tests`` wraps them as pytest tests. A plugin broken on purpose in
any one of these places fails its check (``tests/test_contract_suite_catches.py``).
"""
from __future__ import annotations

import argparse
import contextlib
import io
from typing import Any

from .hookspecs import PROJECT

__all__ = ["check_datasets", "check_hooks_and_commands", "check_metrics_stream", "check_task_batches_round_trip",
           "check_transforms"]


def _plugin_object(manager, plugin: str):
    obj = manager.pm.get_plugin(plugin)
    assert obj is not None, f"plugin {plugin!r} is not registered with the plugin manager"
    return obj


def check_hooks_and_commands(manager, plugin: str) -> None:
    """Every ``fmkit_*`` hook implementation names a hook of the contract (a typo would be ignored
    silently by pluggy), and CLI commands the plugin adds register and print their ``--help``."""
    obj = _plugin_object(manager, plugin)
    marker = f"{PROJECT}_impl"
    specs = {name for name in dir(manager.pm.hook) if name.startswith("fmkit_")}
    for name in dir(obj):
        member = getattr(obj, name, None)
        if callable(member) and (hasattr(member, marker) or name.startswith("fmkit_")):
            if name.startswith(("fmkit_api", "fmkit_version")):
                continue
            assert name in specs, (f"plugin {plugin!r}: {name} is not a hook of fmkit's contract (known: "
                                   f"{sorted(specs)}); pluggy would never call it")
    add = getattr(obj, "fmkit_add_cli_commands", None)
    if add is None:
        return
    parser = argparse.ArgumentParser(prog="fmkit")
    sub = parser.add_subparsers(dest="command")
    before = set(sub.choices)
    add(subparsers=sub)
    added = set(sub.choices) - before
    assert added, f"plugin {plugin!r}: fmkit_add_cli_commands added no command"
    for command in sorted(added):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            parser.parse_args([command, "--help"])
        assert command in out.getvalue() and "usage" in out.getvalue().lower(), \
            f"plugin {plugin!r}: `fmkit {command} --help` printed no usage"
        assert sub.choices[command].get_default("func") is not None, \
            f"plugin {plugin!r}: command {command!r} sets no func (set_defaults(func=...)) to run"


def _sample_task(registry, comps, plugin: str):
    """A set-up task of this plugin (else any installed task) and its sample examples, or None."""
    tasks = [c for c in comps if c.kind == "task"] or [c for c in registry if c.kind == "task"]
    for task_comp in tasks:
        model_name = task_comp.tags.get("defaults", {}).get("model")
        try:
            params = dict(registry.get("model", model_name).example) if model_name else {}
        except Exception:  # noqa: BLE001 - a default model of a plugin that is not installed
            params = {}
        task = task_comp.build(dict(task_comp.example))
        samples = task.sample_examples()
        task.setup(samples, {k: v for k, v in params.items() if k != "name"})
        return task, samples
    return None


def check_transforms(registry, comps, plugin: str) -> int:
    """Cleaning transforms return an example dict or None; augmentations return a features dict,
    the same one for the same seed. Returns how many were checked."""
    import numpy as np

    checked = 0
    for c in (c for c in comps if c.kind == "transform"):
        named = c.tags.get("task")  # the task whose examples or features it takes
        sample = _sample_task(registry, [registry.get("task", named)] if named else comps, plugin)
        if sample is None:
            continue
        task, examples = sample
        t = registry.build("transform", {"name": c.qualified_id, **c.example}, task.metric_context())
        stage = c.tags.get("stage") or getattr(t, "stage", "clean")
        if stage == "clean":
            for ex in examples:
                out = t(dict(ex))
                assert out is None or isinstance(out, dict), \
                    f"transform {c.qualified_id}: a cleaning transform returns an example dict or None, got {type(out).__name__}"
        else:
            for features in task.preprocess_many(examples)[:2]:
                a = t(dict(features), np.random.default_rng(3))
                b = t(dict(features), np.random.default_rng(3))
                assert isinstance(a, dict) and a, \
                    f"transform {c.qualified_id}: an augmentation returns the (augmented) features as a dict"
                assert repr(a) == repr(b), f"transform {c.qualified_id}: the same seed gave different features"
        checked += 1
    return checked


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        try:
            return (a != a and b != b) or abs(float(a) - float(b)) <= 1e-5 * max(1.0, abs(float(a)))
        except (TypeError, ValueError):
            return False
    return a == b


def check_metrics_stream(comps) -> int:
    """A class-score metric streams: updating with a batch in two parts computes what one update
    with the whole batch computes (metrics are summed over evaluation batches)."""
    import torch

    checked = 0
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 3, generator=gen)
    targets = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    for c in comps:
        if c.kind != "metric" or c.tags.get("input", "class-scores") != "class-scores":
            continue
        whole = c.build(c.example, {"num_labels": 3})
        whole.update(logits, targets)
        parts = c.build(c.example, {"num_labels": 3})
        parts.update(logits[:3], targets[:3])
        parts.update(logits[3:], targets[3:])
        a, b = whole.compute(), parts.compute()
        assert _close(a, b), f"metric {c.qualified_id} does not stream: one update gave {a}, two parts gave {b}"
        checked += 1
    return checked


def check_datasets(registry, plugin: str, datasets: dict[str, dict]) -> None:
    """Each dataset named in ``datasets`` (with parameters reading the plugin's own fixture data)
    loads ``{split: [example dict, ...]}`` with a non-empty train, and its examples go through a
    task of the plugin; ``load_file`` (when offered) reads the train file the same way."""
    for name, params in datasets.items():
        comp = registry.get("dataset", name)
        assert comp.plugin == plugin, f"dataset {name!r} is not registered by plugin {plugin!r}"
        task_name = next((c.name for c in registry if c.kind == "task"
                          and c.tags.get("defaults", {}).get("dataset") == name), None)
        task = registry.build("task", {"name": task_name, **registry.get("task", task_name).example}) \
            if task_name else None
        ds = registry.build("dataset", {"name": name, **params}, {"task": task})
        splits = ds.load()
        assert isinstance(splits, dict), f"dataset {name}: load() returns {{split: [examples]}}, got {type(splits).__name__}"
        assert set(splits) <= {"train", "validation", "test"}, f"dataset {name}: unknown splits {sorted(splits)}"
        assert splits.get("train"), f"dataset {name}: load() gave no training examples"
        for split, rows in splits.items():
            assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows), \
                f"dataset {name}: split {split!r} must be a list of example dicts"
        if task is not None:
            task.setup(splits["train"], {})
            assert task.preprocess_many(splits["train"][:4]), f"dataset {name}: its examples do not preprocess"
        load_file = getattr(ds, "load_file", None)
        train_file = params.get("train")
        if callable(load_file) and isinstance(train_file, str):
            try:
                rows = load_file(train_file)
            except NotImplementedError:
                continue
            assert isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows), \
                f"dataset {name}: load_file({train_file!r}) must return a non-empty list of example dicts"


def check_task_batches_round_trip(task, again, what: str) -> None:
    """A task rebuilt from ``state_dict`` and assets encodes the same inputs to the same batch."""
    import torch

    raw = task.example_inputs()
    a, b = task.encode_raw(raw), again.encode_raw(raw)
    assert a.keys() == b.keys(), f"{what}: batch keys {sorted(a)} vs {sorted(b)} after the state round trip"
    for k in a:
        x, y = a[k], b[k]
        same = torch.equal(x, y) if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) else _close(x, y)
        assert same, f"{what}: batch entry {k!r} differs after the state round trip (state_dict/assets lose something)"


def check_distill_outputs(task, outputs, batch, what: str) -> None:
    """A distillable task's ``distill_outputs`` has one row per example, and its ``distill_mask``
    (API 1.7), when given, one boolean per position of those rows."""
    import torch

    from .engine.evaluation import batch_rows

    if task.distill_kind is None:
        return
    rows = task.distill_outputs(outputs, batch)
    assert isinstance(rows, torch.Tensor) and rows.dim() >= 1 and len(rows) == batch_rows(batch), \
        f"{what}: distill_outputs must be a tensor with one row per example ({batch_rows(batch)})"
    mask = task.distill_mask(batch)
    if mask is not None:
        assert isinstance(mask, torch.Tensor) and tuple(mask.shape) == tuple(rows.shape[:2]), \
            f"{what}: distill_mask must be a [B, L] tensor matching distill_outputs' {tuple(rows.shape)}"
        assert mask.dtype == torch.bool or not ((mask != 0) & (mask != 1)).any(), \
            f"{what}: distill_mask must hold booleans (or 0/1)"
