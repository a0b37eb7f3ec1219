"""Structured pruning through the core (``fmkit prune``, ``prune:``): end to end in a subprocess, and
bad input refused with nothing written. The plugins' own tests cover each modality's structures."""
from __future__ import annotations

import json

import pytest
import yaml
from conftest import run_cli, tiny_recipe

torch = pytest.importorskip("torch")
pytest.importorskip("fmkit_nlp")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny 2-layer text classifier (4 heads, 32 FFN neurons a layer) with an ONNX export."""
    import fmkit

    tmp = tmp_path_factory.mktemp("prune-source")
    recipe = tiny_recipe(tmp, epochs=4)
    recipe["model"]["config"].update(hidden_size=16, num_hidden_layers=2, num_attention_heads=4)
    recipe["export"] = {"formats": ["onnx"]}
    run = fmkit.train(recipe, run_dir=str(tmp / "source"))
    assert run.results["accuracy"] > 0.9
    return tmp, run.run_dir


def test_fmkit_prune_with_distillation_writes_an_ordinary_run_directory(source):
    tmp, src = source
    out = tmp / "pruned"
    p = run_cli("prune", str(src), "--heads", "0.5", "--ffn", "0.5", "--distill", "--recover-epochs", "1",
                "--importance-batches", "4", "-o", str(out), "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.loads(p.stdout)
    results = summary["results"]
    assert results["parameters_after"] < results["parameters_before"]
    assert "teacher_accuracy" in results and "agreement" in results  # recovered on the source's outputs
    assert summary["run_dir"] == str(out) and (out / "exports" / "onnx" / "model.onnx").is_file()
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recipe["prune"]["source"] == str(src.resolve()) and recipe["prune"]["heads"] == 0.5
    assert recipe["distill"]["teacher"] == str(src.resolve()) and recipe["train"]["epochs"] == 1
    record = json.loads((out / "prune.json").read_text())
    assert record["importance_batches"] == 4 and record["parameters_after"] == results["parameters_after"]
    assert "parameters_after" in (out / "report.html").read_text()
    e = run_cli("evaluate", str(out), "--json")
    assert e.returncode == 0, e.stderr[-2000:]
    assert json.loads(e.stdout)["loss"] == pytest.approx(results["loss"], rel=1e-4)
    # the source is untouched and the pruned run prunes again (its recorded shape rebuilt first)
    assert not (src / "prune.json").exists()
    p2 = run_cli("prune", str(out), "--ffn", "0.5", "-o", str(tmp / "again"), "--json")
    assert p2.returncode == 0, p2.stderr[-3000:]
    again = json.loads(p2.stdout)["results"]
    assert again["parameters_before"] == results["parameters_after"] > again["parameters_after"]


def test_bad_prune_input_is_refused_and_nothing_is_written(source, tmp_path):
    tmp, src = source
    out = tmp_path / "out"
    p = run_cli("prune", str(src), "--heads", "1.5", "-o", str(out))
    assert p.returncode == 2 and "--heads: 1.5 is not below 1" in p.stderr
    p = run_cli("prune", str(src), "--ffn", "0", "-o", str(out))
    assert p.returncode == 2 and "nothing to remove" in p.stderr
    p = run_cli("prune", str(tmp_path), "--heads", "0.3", "-o", str(out))
    assert p.returncode == 2 and "not an fmkit run directory" in p.stderr
    p = run_cli("prune", str(src), "--channels", "0.3", "-o", str(out))
    assert p.returncode == 2 and "fmkit-nlp removes heads and ffn from transformers encoders, not channels" in p.stderr
    assert not out.exists()


def test_a_model_no_plugin_can_prune_is_refused_before_anything_is_written(tmp_path):
    import fmkit

    recipe = tiny_recipe(tmp_path, epochs=1)
    recipe["model"]["config"] = {"model_type": "distilbert", "dim": 16, "n_layers": 1, "n_heads": 2,
                                 "hidden_dim": 32, "max_position_embeddings": 32}
    run = fmkit.train(recipe, run_dir=str(tmp_path / "distilbert"))
    out = tmp_path / "out"
    with pytest.raises(fmkit.errors.UsageError, match="no installed plugin can prune the model .hf-classifier."):
        fmkit.prune(str(run.run_dir), heads=0.5, output=str(out))
    assert not out.exists()


def test_the_prune_section_is_validated(tmp_path):
    import fmkit

    recipe = tiny_recipe(tmp_path)
    recipe["prune"] = {"source": str(tmp_path), "heads": 1.0, "ffn": -0.1}
    with pytest.raises(fmkit.errors.RecipeError) as e:
        fmkit.load_recipe(recipe)
    assert "prune.heads" in str(e.value) and "prune.ffn" in str(e.value)
