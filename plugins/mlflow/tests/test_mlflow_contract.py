"""fmkit's plugin contract suite run against fmkit-mlflow, its listing, and its recipe section."""
import pytest

from fmkit.testing import contract_tests

globals().update(contract_tests("mlflow"))


def test_mlflow_is_listed(tmp_path):
    from mlflow_helpers import cli

    r = cli("plugins", "list", cwd=tmp_path)
    assert r.returncode == 0 and any(line.split()[:3] == ["mlflow", "loaded", "fmkit-mlflow"]
                                     for line in r.stdout.splitlines()), r.stdout


def test_mlflow_section_is_validated_with_the_recipe(tmp_path):
    import fmkit
    from fmkit.errors import FmkitError
    from mlflow_helpers import tiny_recipe

    recipe = tiny_recipe(tmp_path)
    recipe["mlflow"] = {"tracking_uri": "sqlite:///m.db", "experimnet": "x", "register_model": "a/b"}
    with pytest.raises(FmkitError) as e:
        fmkit.load_recipe(recipe)
    text = str(e.value)
    assert "mlflow.experimnet" in text and "experiment" in text  # did-you-mean
    assert "register_model" in text and "'/'" in text
    recipe["mlflow"] = {"experiment": "x"}
    assert fmkit.load_recipe(recipe).section("mlflow").experiment == "x"


def test_mlflow_disabled_section_wins_over_the_environment(tmp_path, monkeypatch):
    """``mlflow: {enabled: false}`` turns tracking off even with MLFLOW_TRACKING_URI set; with
    neither a tracking_uri nor the variable the plugin does nothing (a starter recipe's empty
    ``mlflow:`` section included)."""
    import fmkit
    from fmkit_mlflow import plugin
    from mlflow_helpers import tiny_recipe

    recipe = tiny_recipe(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'm.db'}")
    recipe["mlflow"] = {"enabled": False}
    run = fmkit.RunContext(recipe=fmkit.load_recipe(recipe), run_dir=tmp_path)
    plugin.fmkit_on_run_start(run)
    assert id(run) not in plugin._trackers
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    for section in (None, {}, {"experiment": "x"}):  # no section, or one that names no store: off
        if section is None:
            del recipe["mlflow"]
        else:
            recipe["mlflow"] = section
        run = fmkit.RunContext(recipe=fmkit.load_recipe(recipe), run_dir=tmp_path)
        plugin.fmkit_on_run_start(run)
        assert id(run) not in plugin._trackers and not (tmp_path / "mlflow.json").exists()
