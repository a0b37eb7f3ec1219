"""The export check: the recipe's tolerance (and ``--tolerance``) are honoured, and NaN weights,
NaN outputs and changed predictions are refused, leaving nothing behind."""
from __future__ import annotations

import json

import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("fmkit_nlp")


def _leftovers(folder) -> list:
    return [p.name for p in folder.rglob("*") if p.name.startswith((".tmp-", ".old-"))]


def _exports(run_dir) -> list:
    """Export folders in a run directory (``exports/`` itself may exist, empty)."""
    return sorted(p.name for p in (run_dir / "exports").iterdir()) if (run_dir / "exports").exists() else []


@pytest.fixture(scope="module")
def hf_run(tmp_path_factory):
    """A tiny transformer run whose recipe asks for an impossibly tight export tolerance."""
    import fmkit
    from conftest import tiny_recipe

    tmp = tmp_path_factory.mktemp("tolerance")
    recipe = tiny_recipe(tmp, epochs=1)
    recipe["export"] = {"tolerance": 1e-12}
    return fmkit.train(recipe, run_dir=str(tmp / "run")).run_dir


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A tiny embedding-bag run that may be exported with the faulty test exporters."""
    import fmkit
    from conftest import tiny_recipe

    tmp = tmp_path_factory.mktemp("faults")
    recipe = tiny_recipe(tmp, epochs=1)
    recipe["plugins"] = ["helpers.faults", "helpers.export_faults"]
    recipe["model"] = {"name": "test-faulty"}
    return fmkit.train(recipe, run_dir=str(tmp / "run")).run_dir


def test_the_recipes_tolerance_is_honoured_and_the_flag_overrides_it(hf_run, capsys):
    import fmkit
    from fmkit.cli.main import main
    from fmkit.errors import ExportError

    # the recipe's export.tolerance (1e-12) is the default of `fmkit export` and of fmkit.export
    assert main(["export", str(hf_run), "--format", "onnx"]) == 1
    err = capsys.readouterr().err
    assert "tolerance 1e-12" in err and "export.tolerance" in err and "nothing was written" in err
    with pytest.raises(ExportError, match="tolerance 1e-12"):
        fmkit.export(str(hf_run), "onnx")
    assert _exports(hf_run) == [] and not _leftovers(hf_run)
    # the flag overrides the recipe
    assert main(["export", str(hf_run), "--format", "onnx", "--tolerance", "1e-3"]) == 0, capsys.readouterr().err
    meta = json.loads((hf_run / "exports" / "onnx" / "export.json").read_text())
    assert meta["verification"]["tolerance"] == 1e-3
    # the test means something: ONNX Runtime's outputs do differ from eager torch by more than 1e-12
    assert 1e-12 < meta["verification"]["max_abs_diff"] < 1e-3
    assert meta["verification"]["prediction_agreement"] >= meta["verification"]["min_agreement"] == 0.99
    out = fmkit.export(str(hf_run), "torchscript", output=str(hf_run / "ts"), tolerance=1e-3)
    assert json.loads((out / "export.json").read_text())["verification"]["tolerance"] == 1e-3


def test_bad_limits_are_usage_errors(hf_run, capsys):
    from fmkit.cli.main import main
    from fmkit.errors import RecipeError, UsageError
    from fmkit.exporting.api import export
    from fmkit.recipe import load_recipe

    for flag, value in (("--tolerance", "-1"), ("--tolerance", "nan"), ("--min-agreement", "1.5")):
        with pytest.raises(SystemExit) as e:
            main(["export", str(hf_run), "--format", "onnx", flag, value])
        assert e.value.code == 2
        assert flag in capsys.readouterr().err
    with pytest.raises(UsageError, match="tolerance"):
        export(hf_run, "onnx", output=str(hf_run / "x"), tolerance=-1.0)
    recipe = yaml.safe_load((hf_run / "recipe.yaml").read_text())
    for field, value in (("tolerance", -1e-3), ("min_agreement", 2), ("int8_min_agreement", -0.1)):
        with pytest.raises(RecipeError, match=f"export.{field}"):
            load_recipe({**recipe, "export": {field: value}})
    assert not (hf_run / "x").exists()


def test_nan_weights_are_refused_before_anything_is_written(small_run, capsys):
    from safetensors.torch import load_file, save_file

    from fmkit.cli.main import main

    best = small_run / "checkpoints" / "best" / "model.safetensors"
    good = best.read_bytes()
    weights = load_file(str(best))
    weights["head.weight"][0, 0] = float("nan")
    save_file(weights, str(best))
    try:
        # the run lists the test's own plugin modules: loading it to export imports them only when trusted
        assert main(["export", str(small_run), "--format", "safetensors", "--tolerance", "inf",
                     "--trust-remote-code"]) == 1
    finally:
        best.write_bytes(good)
    err = capsys.readouterr().err
    assert "not finite" in err and "head.weight" in err and "optimizer.lr" in err, err
    assert _exports(small_run) == [] and not _leftovers(small_run)


def test_nan_outputs_and_changed_predictions_fail_any_tolerance(small_run):
    """max(0, NaN) is 0: a NaN difference must fail the check, not pass it as 0; a float export
    that changes predictions fails on agreement even when the tolerance lets every difference through."""
    from fmkit.errors import ExportError
    from fmkit.exporting.api import export

    with pytest.raises(ExportError, match="non-finite outputs"):
        export(small_run, "test-nan", tolerance=float("inf"), trust_remote_code=True)
    with pytest.raises(ExportError, match=r"changes .*% of predictions.*min_agreement"):
        export(small_run, "test-swapped", tolerance=float("inf"), trust_remote_code=True)
    assert _exports(small_run) == [] and not _leftovers(small_run)
    # the agreement threshold is the caller's: 0 accepts the swapped classes
    out = export(small_run, "test-swapped", tolerance=float("inf"), min_agreement=0.0, trust_remote_code=True)
    assert json.loads((out / "export.json").read_text())["verification"]["prediction_agreement"] < 0.5


def test_the_check_itself():
    """verify.check on hand-made results: each limit, and non-finite values on either side."""
    from fmkit.errors import ExportError
    from fmkit.exporting import verify

    class Cls:
        classification = True

    class Reg:
        classification = False

    batch = [{"x": torch.zeros(3)}]
    ref = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]])
    same = verify.compare(Cls, lambda b: ref, lambda b: ref + 1e-4, batch)
    assert same["prediction_agreement"] == 1.0 and "non_finite" not in same
    verify.check(same, "x", tolerance=1e-3, min_agreement=1.0)
    with pytest.raises(ExportError, match="tolerance"):
        verify.check(same, "x", tolerance=1e-5)
    nan = ref.clone()
    nan[1, 1] = float("nan")
    for r, e, who in ((ref, nan, "exported model"), (nan, ref, "model itself"), (nan, nan, "model itself")):
        result = verify.compare(Cls, lambda b, r=r: r, lambda b, e=e: e, batch)
        with pytest.raises(ExportError, match=who):
            verify.check(result, "x", tolerance=float("inf"), min_agreement=0.0)
    inf = ref.clone()
    inf[0, 0] = float("inf")
    with pytest.raises(ExportError, match="non-finite"):
        verify.check(verify.compare(Reg, lambda b: ref, lambda b: inf, batch), "x", tolerance=float("inf"))
    # int8 of a task without predictions: the difference relative to the largest output
    off = verify.compare(Reg, lambda b: ref, lambda b: ref * 1.2, batch)
    verify.check(off, "x", max_relative_diff=0.25)
    with pytest.raises(ExportError, match="int8_max_relative_diff"):
        verify.check(off, "x", max_relative_diff=0.1)
