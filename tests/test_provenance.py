"""Provenance: environment.json names every loaded plugin with its distribution; export.json names
the distribution behind the task and model; an export whose plugin is missing says what to install."""
from __future__ import annotations

import json

import pytest
from conftest import run_cli

pytest.importorskip("torch")
pytest.importorskip("fmkit_nlp")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import fmkit
    from conftest import tiny_recipe

    tmp = tmp_path_factory.mktemp("provenance")
    recipe = tiny_recipe(tmp, epochs=1)
    run = fmkit.train(recipe, run_dir=str(tmp / "run"))
    return run.run_dir, fmkit.export(str(run.run_dir), "safetensors")


def test_environment_lists_every_loaded_plugin_with_its_distribution(exported):
    run_dir, _ = exported
    env = json.loads((run_dir / "environment.json").read_text())
    by_name = {p["name"]: p for p in env["plugins"]}
    assert by_name["fmkit"]["distribution"] == "fmkit" and by_name["fmkit"]["source"] == "builtin"
    assert by_name["nlp"]["distribution"] == "fmkit-nlp" and by_name["nlp"]["version"]
    # versions of what those distributions require come from their metadata, not a list in the core
    assert {"fmkit-nlp", "torch", "transformers"} <= set(env["packages"])


def test_a_plugin_registered_from_python_gets_its_distribution():
    import types

    from fmkit.engine.run import loaded_plugins
    from fmkit.plugins import PluginManager

    pm = PluginManager(autoload=False)
    pm.register(types.ModuleType("pydantic_extras_plugin"), name="from-python")  # no distribution
    import _pytest.python as owned_by_pytest  # a module that an installed distribution owns

    pm.register(owned_by_pytest, name="owned")
    by_name = {p["name"]: p for p in loaded_plugins(pm)}
    assert by_name["owned"]["distribution"] == "pytest" and by_name["owned"]["version"]
    assert by_name["from-python"]["distribution"] is None


def test_export_records_the_distributions_of_task_and_model(exported):
    _, export_dir = exported
    prov = json.loads((export_dir / "export.json").read_text())["provenance"]
    assert prov["task"] == {"id": "nlp:text-classification", "plugin": "nlp", "distribution": "fmkit-nlp",
                            "version": prov["task"]["version"]}
    assert prov["model"]["id"] == "nlp:hf-classifier" and prov["model"]["distribution"] == "fmkit-nlp"
    assert prov["exporter"]["distribution"] == "fmkit"


def test_loading_an_export_whose_plugin_is_missing_says_what_to_install(exported, tmp_path):
    _, export_dir = exported
    inputs = tmp_path / "in.txt"
    inputs.write_text("good great film\n")
    r = run_cli("predict", str(export_dir), str(inputs), env={"FMKIT_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert r.returncode == 2, r.stderr[-2000:]
    assert "needs task 'text-classification' from plugin 'nlp' (distribution fmkit-nlp" in r.stderr
    assert "pip install 'fmkit-nlp==" in r.stderr and "did you mean" not in r.stderr
    r = run_cli("predict", str(export_dir), str(inputs), env={"FMKIT_DISABLE_PLUGINS": "nlp"})
    assert r.returncode == 2 and "which is disabled" in r.stderr, r.stderr[-2000:]
    r = run_cli("predict", str(export_dir), str(inputs))
    assert r.returncode == 0 and '"label": ' in r.stdout, r.stderr[-2000:]
