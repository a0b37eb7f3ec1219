"""Nothing read from an export or a run directory runs code unless the caller says so; a recipe's
plugins are imported by `validate` only when asked; the server's key guards metrics and docs, and
its metrics name the model without giving away paths."""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import run_cli
from helpers.serving import Server, tiny_export, tiny_run

TRAP = """\
from pathlib import Path
Path({marker!r}).write_text("code from the {where} ran")
"""


def _booby_trap(folder: Path, marker: Path) -> None:
    """Make a transformers config folder name code to run (``auto_map``) that leaves ``marker``."""
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil_config.EvilConfig",
                          "AutoModelForSequenceClassification": "evil_config.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "evil_config.py").write_text(TRAP.format(marker=str(marker), where="export"))


@pytest.fixture
def trapped_export(tmp_path_factory, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(tiny_export(tmp_path_factory), export)
    meta = json.loads((export / "export.json").read_text())
    meta["model"]["trust_remote_code"] = True  # the export "decides" to run its code
    (export / "export.json").write_text(json.dumps(meta))
    marker = tmp_path / "PWNED"
    _booby_trap(export / meta["model"]["pretrained"], marker)
    return export, marker


def test_an_export_cannot_turn_on_remote_code(trapped_export, tmp_path, capsys):
    import fmkit
    from fmkit.cli.main import main
    from fmkit.errors import UsageError
    from fmkit.serve.app import create_app

    export, marker = trapped_export
    with pytest.raises(UsageError, match="--trust-remote-code") as err:
        fmkit.load(str(export))
    assert "auto_map" in str(err.value) and not marker.exists()
    with pytest.raises(UsageError, match="--trust-remote-code"):
        create_app(str(export), backend="torch")  # fmkit serve --backend torch
    assert not marker.exists()

    inputs = tmp_path / "in.txt"
    inputs.write_text("good film\n")
    assert main(["predict", str(export), str(inputs), "-o", str(tmp_path / "out.jsonl")]) == 2
    assert "--trust-remote-code" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "out.jsonl").exists()

    # the trap is real: the caller who allows it gets the code run, and a warning saying so
    env = {"HF_MODULES_CACHE": str(tmp_path / "hf-modules")}
    r = run_cli("predict", str(export), str(inputs), "--trust-remote-code", env=env)
    assert marker.exists(), r.stderr
    assert "trust_remote_code is on" in r.stderr


def test_a_run_directory_cannot_turn_on_remote_code_or_import_its_plugins(tmp_path_factory, tmp_path, monkeypatch,
                                                                          caplog):
    import fmkit
    from fmkit.errors import UsageError

    run = tmp_path / "run"
    shutil.copytree(tiny_run(tmp_path_factory), run)
    marker = tmp_path / "PWNED"
    # a plugins: module the run names, importable from sys.path
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "trap_plugin_mod.py").write_text(TRAP.format(marker=str(marker), where="run's plugins"))
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    recipe["plugins"] = ["trap_plugin_mod"]
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    preds = fmkit.load(str(run)).predict(["good great film"])  # still loads: its components are installed
    assert preds[0]["label"] in ("pos", "neg")
    assert not marker.exists() and "trap_plugin_mod" not in sys.modules

    # a model section that asks for code from a folder with an auto_map
    folder = tmp_path / "hf"
    shutil.copytree(tiny_export(tmp_path_factory) / "hf_config", folder)
    _booby_trap(folder, marker)
    recipe["plugins"] = []
    recipe["model"].update({"pretrained": str(folder), "config_only": True, "config": None, "trust_remote_code": True})
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    with pytest.raises(UsageError, match="--trust-remote-code"):
        fmkit.load(str(run))
    with pytest.raises(UsageError, match="--trust-remote-code"):
        fmkit.evaluate(str(run))
    assert not marker.exists()


def test_validate_imports_plugins_only_when_asked_and_a_missing_one_is_an_error(tmp_path, capsys):
    import fmkit
    from fmkit.cli.main import main
    from conftest import tiny_recipe
    from fmkit.errors import RecipeError

    marker = tmp_path / "PWNED"
    (tmp_path / "trap_validate_mod.py").write_text(TRAP.format(marker=str(marker), where="recipe's plugins"))
    recipe = tmp_path / "r.yaml"
    recipe.write_text("plugins: [trap_validate_mod]\ntask: text-classification\nmodel: hf-classifier\n"
                      "data: {train: x.csv}\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    r = run_cli("validate", str(recipe), "--skip-data", env=env)
    assert r.returncode == 0 and "not imported" in r.stderr and not marker.exists(), r.stderr
    r = run_cli("validate", str(recipe), "--import-plugins", "--skip-data", env=env)
    assert marker.exists()  # imported (and refused: it registers nothing a plugin must)

    missing = tmp_path / "m.yaml"
    missing.write_text("task: text-classification\nmodel: hf-classifier\ndata: {train: x.csv}\n"
                       "plugins:\n  - no_such_module_xyz\n")
    capsys.readouterr()
    assert main(["validate", str(missing), "--import-plugins"]) == 2
    err = capsys.readouterr().err
    assert "plugins[0]" in err and "m.yaml:5" in err and "no_such_module_xyz" in err, err
    with pytest.raises(SystemExit):
        main(["validate", "--help"])
    assert "--import-plugins" in capsys.readouterr().out

    bad = tiny_recipe(tmp_path / "t")
    bad["plugins"] = ["no_such_module_xyz"]
    with pytest.raises(RecipeError, match=r"plugins\[0\].*no_such_module_xyz"):
        fmkit.train(bad, run_dir=str(tmp_path / "never"))
    assert not (tmp_path / "never").exists()


def test_trusting_remote_code_is_logged(tmp_path_factory, caplog):
    import fmkit

    with caplog.at_level(logging.WARNING, logger="fmkit"):
        fmkit.load(str(tiny_export(tmp_path_factory)), trust_remote_code=True)
    assert any("trust_remote_code is on" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fmkit"):
        fmkit.load(str(tiny_export(tmp_path_factory)))
    assert not any("trust_remote_code" in r.getMessage() for r in caplog.records)


def test_metrics_name_the_model_without_paths_and_the_key_guards_metrics_and_docs(tmp_path_factory):
    import httpx
    from fmkit.serve.app import create_app

    export = tiny_export(tmp_path_factory)
    guarded = ("/metrics", "/docs", "/openapi.json", "/v1/metadata")
    with Server(create_app(str(export), api_key="s3cret")) as url:
        with httpx.Client(base_url=url, timeout=30) as c:
            assert c.get("/v1/health").status_code == 200  # probes need no key
            for path in guarded:
                assert c.get(path).status_code == 401, path
                assert c.get(path, headers={"X-API-Key": "wrong"}).status_code == 401, path
                assert c.get(path, headers={"X-API-Key": "s3cret"}).status_code == 200, path
            text = c.get("/metrics", headers={"X-API-Key": "s3cret"}).text
    info = next(line for line in text.splitlines() if line.startswith("fmkit_model_info{"))
    meta = json.loads((export / "export.json").read_text())
    assert f'name="{Path(meta["source_run"]).name}"' in info and f'version="{meta["created"]}"' in info
    assert not any("/" in value for value in re.findall(r'="([^"]*)"', info)), info
    assert str(export) not in text and str(export.parent) not in text

    with Server(create_app(str(export), api_key="s3cret", public_metrics=True, public_docs=True)) as url:
        with httpx.Client(base_url=url, timeout=30) as c:
            for path in ("/metrics", "/docs", "/openapi.json"):
                assert c.get(path).status_code == 200, path
            assert c.get("/v1/metadata").status_code == 401
            assert c.post("/v1/predict", json={"inputs": ["good film"]}).status_code == 401
