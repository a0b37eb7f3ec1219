"""fmkit-cv channel pruning (torch-pruning) of a tiny timm network, on tiny generated images:
really fewer channels, a run directory that reloads, evaluates and exports (ONNX, verified)."""
from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch_pruning", reason="channel pruning needs torch-pruning: pip install 'fmkit-cv[prune]'")

from test_cv_distill import _images, _recipe  # noqa: E402


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    import fmkit

    tmp = tmp_path_factory.mktemp("cv-prune")
    _images(tmp / "data" / "train")
    _images(tmp / "data" / "test", n_per_class=4, seed=1)
    recipe = _recipe(tmp, "data", 3)
    recipe["export"] = {"formats": ["onnx"]}
    run = fmkit.train(recipe, run_dir=str(tmp / "source"))
    assert run.results["accuracy"] >= 0.75
    return tmp, run


def _convs(model) -> dict:
    return {n: m.out_channels for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}


def test_channel_pruning_makes_a_smaller_network_that_reloads_evaluates_and_exports(source):
    import fmkit

    tmp, src = source
    run = fmkit.prune(str(src.run_dir), channels=0.5, recover_epochs=1, output=str(tmp / "pruned"))
    before, after = run.results["parameters_before"], run.results["parameters_after"]
    assert after < 0.6 * before, (before, after)
    record = json.loads((run.run_dir / "prune.json").read_text())
    assert record["fractions"] == {"channels": 0.5} and record["structure"]["kind"] == "fmkit-cv/module-shapes"
    old, new = _convs(fmkit.load(str(src.run_dir)).model), _convs(fmkit.load(str(run.run_dir)).model)
    assert old.keys() == new.keys() and sum(new.values()) < 0.7 * sum(old.values())
    assert any(new[k] < old[k] for k in old)
    # the reloaded model is the trained one: evaluate gives eval.json's numbers
    scores = fmkit.evaluate(str(run.run_dir))
    assert scores["accuracy"] == pytest.approx(run.results["accuracy"])
    assert scores["loss"] == pytest.approx(run.results["loss"], rel=1e-4)
    # the ONNX export was verified against eager, records the shape and serves through fmkit.load
    meta = json.loads((run.run_dir / "exports" / "onnx" / "export.json").read_text())
    assert meta["structure"]["modules"] and meta["verification"]["max_abs_diff"] <= meta["verification"]["tolerance"]
    onnx = fmkit.load(str(run.run_dir / "exports" / "onnx"), backend="onnx")
    torch_export = fmkit.load(str(run.run_dir / "exports" / "onnx"))
    images = sorted((tmp / "data" / "test").rglob("*.png"))[:4]
    a, b = onnx.predict([str(p) for p in images]), torch_export.predict([str(p) for p in images])
    assert [x["label"] for x in a] == [x["label"] for x in b]
    assert max(abs(x["score"] - y["score"]) for x, y in zip(a, b)) < 1e-4


def test_heads_on_a_convolutional_network_are_refused_and_nothing_is_written(source):
    import fmkit

    tmp, src = source
    with pytest.raises(fmkit.errors.UsageError, match="fmkit-cv removes channels .* not heads"):
        fmkit.prune(str(src.run_dir), heads=0.3, output=str(tmp / "refused"))
    assert not (tmp / "refused").exists()
