"""The plugin contract suite: ``globals().update(contract_tests("my_plugin"))`` in a test module.

It checks every component the plugin registers: parameters validate from the component's example
and produce a JSON Schema; losses and metrics run; each model runs forward and backward on a tiny
batch of each installed task it declares (``tags={"tasks": [...]}``); each task round-trips its
state; each exporter writes and verifies an export of a tiny model.
"""
from __future__ import annotations

from typing import Any, Callable


def _components(plugin: str):
    from .plugins import get_plugin_manager

    pm = get_plugin_manager()
    info = pm.infos.get(plugin)
    assert info is not None, f"plugin {plugin!r} is not installed (known: {sorted(pm.infos)})"
    comps = [c for c in pm.registry if c.plugin == plugin]
    assert info.status == "loaded", f"plugin {plugin!r} did not load: {info.error}"
    return pm.registry, comps


def _task_batch(registry, task_name: str, model_params: dict):
    task_comp = registry.get("task", task_name)
    task = task_comp.build(dict(task_comp.example))
    samples = task.sample_examples()
    task.setup(samples, {k: v for k, v in model_params.items() if k != "name"})
    return task, task.collate(task.preprocess_many(samples))


def contract_tests(plugin: str) -> dict[str, Callable[..., Any]]:
    """Return pytest test functions checking ``plugin`` against fmkit's contract."""

    def test_plugin_loads_and_registers_components():
        _, comps = _components(plugin)
        assert comps, f"plugin {plugin!r} registers no components"

    def test_parameters_validate_and_have_json_schema():
        _, comps = _components(plugin)
        for c in comps:
            model = c.params_model()
            model.model_validate(c.example)
            assert isinstance(model.model_json_schema(), dict)
            assert c.summary, f"{c.qualified_id} has no summary"

    def test_losses_and_metrics_run():
        import torch

        _, comps = _components(plugin)
        logits, targets = torch.randn(6, 3, requires_grad=True), torch.tensor([0, 1, 2, 0, 1, 2])
        for c in comps:
            if c.kind == "loss":
                loss = c.build(c.example, {"num_labels": 3, "class_counts": [2, 2, 2]})
                out = loss(logits, targets if "cross" in c.name or "focal" in c.name else torch.randn(6, 3))
                assert out.dim() == 0 and torch.isfinite(out)
                out.backward()
            elif c.kind == "metric":
                m = c.build(c.example, {"num_labels": 3})
                m.update(logits.detach(), targets if c.tags.get("input") != "values" else torch.randn(6, 3))
                assert isinstance(m.compute(), dict)

    def test_models_forward_and_backward_on_their_tasks():
        import pytest

        registry, comps = _components(plugin)
        ran = 0
        for c in comps:
            if c.kind != "model":
                continue
            for task_name in c.tags.get("tasks", []):
                if task_name not in registry.names("task"):
                    continue
                task, batch = _task_batch(registry, task_name, c.example)
                model = c.build(c.example, task.model_context())
                out = task.forward(model, batch)
                reg_loss = task.loss(out, batch, registry.build("loss", _default_loss(registry, task_name),
                                                                task.metric_context()))
                reg_loss.backward()
                assert any(p.grad is not None for p in model.parameters())
                assert len(task.format_predictions(out.detach())) == len(task.sample_examples())
                ran += 1
        if not ran and any(c.kind == "model" for c in comps):
            pytest.skip("no installed task for this plugin's models")

    def test_tasks_round_trip_state(tmp_path):
        registry, comps = _components(plugin)
        for c in comps:
            if c.kind != "task":
                continue
            model_name = c.tags.get("defaults", {}).get("model")
            params = dict(registry.get("model", model_name).example) if model_name else {}
            task, batch = _task_batch(registry, c.name, params)
            task.save_assets(str(tmp_path))
            again = c.build(dict(c.example))
            again.load_state_dict(task.state_dict())
            again.load_assets(str(tmp_path))
            assert again.labels == task.labels
            again.encode_raw(task.example_inputs())

    return {f"test_{plugin}_{k[5:]}": v for k, v in locals().items() if k.startswith("test_")}


def _default_loss(registry, task_name: str):
    d = registry.get("task", task_name).tags.get("defaults", {})
    return d.get("loss", "cross-entropy")
