"""The plugin contract suite: ``globals().update(contract_tests("my_plugin"))`` in a test module.

It checks every component and recipe section the plugin registers (a section's example and its
defaults validate, and it gives a JSON Schema): parameters validate from the component's example
and produce a JSON Schema; losses and metrics run; each model runs forward and backward on a tiny
batch of each installed task it declares (``tags={"tasks": [...]}``); each task round-trips its
state; each exporter the plugin registers writes an export of each of the plugin's models whose
outputs match the eager model's. ``export_formats=("onnx", "torchscript")`` also round-trips the
plugin's models through those (core) exporters, which is what ``fmkit export`` and serving need.
"""
from __future__ import annotations

from typing import Any, Callable

from .contract_checks import (check_datasets, check_distill_outputs, check_hooks_and_commands,
                              check_metrics_stream, check_task_batches_round_trip, check_transforms)


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


def _model_task_pairs(registry, comps):
    for c in comps:
        if c.kind != "model":
            continue
        for task_name in c.tags.get("tasks", []):
            if task_name in registry.names("task"):
                yield c, task_name


def _export_round_trip(registry, exporter_comp, model_comp, task_name: str, directory) -> float:
    """Export a freshly built tiny model, run the export, return the largest output difference."""
    import torch

    from .engine.artifacts import TrainedModel

    task, batch = _task_batch(registry, task_name, model_comp.example)
    model = model_comp.build(model_comp.example, task.model_context()).eval()
    exporter = exporter_comp.build({}, task.model_context())
    trained = TrainedModel(recipe=None, task=task, model=model, source=directory)
    directory.mkdir(parents=True, exist_ok=True)
    exporter.export(trained, str(directory), batch)
    run = exporter.runner(str(directory), trained)
    with torch.inference_mode():
        eager, exported = task.forward(model, batch).float(), run(batch).float()
    assert eager.shape == exported.shape, f"{exporter_comp.name} export of {model_comp.name}: shape {exported.shape} != {eager.shape}"
    return float((eager - exported).abs().max())


def contract_tests(plugin: str, export_formats: tuple[str, ...] = (),
                   tolerance: float = 1e-3, datasets: dict[str, dict] | None = None) -> dict[str, Callable[..., Any]]:
    """Return pytest test functions checking ``plugin`` against fmkit's contract.

    ``export_formats``: core exporters (``onnx``, ``torchscript``) the plugin's models must also
    round-trip through; ``tolerance``: the largest output difference an export may show;
    ``datasets``: ``{dataset name: parameters}`` reading the plugin's small fixture files, so the
    suite checks what ``load()`` and ``load_file()`` return. Besides the components, the suite
    checks that every ``fmkit_*`` hook the plugin implements is a hook of the contract, that CLI
    commands it adds print their help, that transforms and metrics keep their contracts
    (augmentations seeded, metrics streaming) and that a task's state round trip gives the same
    batches (the checks live in ``fmkit.contract_checks``).
    """

    def test_plugin_loads_and_registers_components():
        from .plugins import get_plugin_manager

        _, comps = _components(plugin)
        sections = [s for s in get_plugin_manager().recipe_sections.values() if s.plugin == plugin]
        # a workflow plugin (a search, a tracker) may bring a recipe section instead of components
        assert comps or sections, f"plugin {plugin!r} registers no components and no recipe section"

    def test_recipe_sections_validate_and_have_json_schema():
        from .plugins import get_plugin_manager
        from .recipe.sections import CORE_SECTIONS

        _components(plugin)
        for s in get_plugin_manager().recipe_sections.values():
            if s.plugin != plugin:
                continue
            assert s.name not in CORE_SECTIONS and s.summary, f"recipe section {s.name!r}: a summary is required"
            s.model.model_validate(s.example)  # what `fmkit new recipe` writes must be valid
            s.model.model_validate({})  # `name:` alone (an empty section) means the defaults
            assert isinstance(s.model.model_json_schema(), dict)

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
            elif c.kind == "metric" and c.tags.get("input", "class-scores") in ("class-scores", "values"):
                # metrics of other inputs (token NLL, entity tags) run on their tasks' real outputs below
                m = c.build(c.example, {"num_labels": 3})
                m.update(logits.detach(), targets if c.tags.get("input") != "values" else torch.randn(6, 3))
                assert isinstance(m.compute(), dict)

    def test_models_forward_and_backward_on_their_tasks():
        import pytest
        import torch

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
                check_distill_outputs(task, out.detach(), batch, f"task {task_name}")
                for ref in registry.get("task", task_name).tags.get("defaults", {}).get("metrics", []):
                    ref = {"name": ref} if isinstance(ref, str) else dict(ref)
                    name = ref.pop("name")
                    metric = registry.build("metric", {"name": name, **ref}, task.metric_context())
                    metric.update(*task.metric_inputs(out.detach(), batch))
                    assert isinstance(metric.compute(), dict), f"metric {name} on task {task_name}"
                raw = task.example_inputs()
                with torch.no_grad():
                    batch = task.encode_raw(raw)
                    answers = task.format_batch_predictions(task.forward(model.eval(), batch), batch)
                assert len(answers) == len(raw) and all(isinstance(a, dict) for a in answers)
                if task.encodes_examples():  # the server decodes once, then encodes the examples
                    _assert_same_batch(batch, task.encode_examples([task.raw_to_example(x) for x in raw]),
                                       f"task {task_name}: encode_examples(raw_to_example(x)) != encode_raw(x)")
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
            check_task_batches_round_trip(task, again, f"task {c.name}")

    def test_exporters_round_trip_the_plugins_models(tmp_path):
        import pytest

        registry, comps = _components(plugin)
        exporters = [c for c in comps if c.kind == "exporter"] + [registry.get("exporter", f) for f in export_formats]
        pairs = list(_model_task_pairs(registry, comps))
        if not exporters or not pairs:
            pytest.skip("no exporter to check against this plugin's models")
        for exp in exporters:
            for model_comp, task_name in pairs:
                if exp.plugin == plugin and exp.tags.get("models") and model_comp.name not in exp.tags["models"]:
                    continue
                if "exports" in model_comp.tags and exp.name not in model_comp.tags["exports"]:
                    continue  # the model declares the formats it supports
                diff = _export_round_trip(registry, exp, model_comp, task_name,
                                          tmp_path / f"{exp.name}-{model_comp.name}-{task_name}")
                assert diff <= tolerance, f"{exp.name} export of {model_comp.name} ({task_name}) differs by {diff:.3g}"

    def test_hooks_are_known_and_cli_commands_print_help():
        from .plugins import get_plugin_manager

        check_hooks_and_commands(get_plugin_manager(), plugin)

    def test_transforms_keep_the_example_shape():
        registry, comps = _components(plugin)
        check_transforms(registry, comps, plugin)

    def test_metrics_stream_over_batches():
        _, comps = _components(plugin)
        check_metrics_stream(comps)

    def test_datasets_load_the_documented_shape():
        import pytest

        if not datasets:
            pytest.skip("pass contract_tests(..., datasets={name: params reading small fixture files}) to check "
                        "the plugin's datasets")
        registry, _ = _components(plugin)
        check_datasets(registry, plugin, datasets)

    return {f"test_{plugin}_{k[5:]}": v for k, v in locals().items() if k.startswith("test_")}


def _assert_same_batch(a: dict, b: dict, what: str) -> None:
    import torch

    assert a.keys() == b.keys(), f"{what}: keys {sorted(a)} vs {sorted(b)}"
    for k in a:
        same = torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k]
        assert same, f"{what}: {k!r} differs"


def _default_loss(registry, task_name: str):
    d = registry.get("task", task_name).tags.get("defaults", {})
    return d.get("loss", "cross-entropy")
