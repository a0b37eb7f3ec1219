"""``fmkit export -o`` replaced whatever was at the path (the current folder, the run being
exported, a folder of the user's files, a file): only a new path, an empty folder or an earlier
export may be written now; everything else is refused before any work, untouched."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers.serving import tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("export-target") / "run"
    shutil.copytree(tiny_run(tmp_path_factory), copy)
    return copy


def _export(capsys, run: Path, out: str) -> tuple[int, str]:
    from fmkit.cli.main import main

    code = main(["export", str(run), "--format", "safetensors", "-o", out])
    return code, capsys.readouterr().err


def test_export_refuses_to_replace_what_is_not_an_export(run, tmp_path, capsys, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    afile = tmp_path / "afile"
    afile.write_text("keep")
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in run.rglob("*"))
    for out, words in ((str(mine), "is a folder that is not an fmkit export (it holds notes.txt)"),
                       (str(afile), "exists and is not a folder"),
                       (".", "is the current folder"),
                       (str(tmp_path.parent), "is a folder holding the "),
                       (str(run), "is the run directory being exported"),
                       (str(run.parent), "a folder holding the run directory"),
                       ("/", "the file system's root")):
        code, err = _export(capsys, run, out)
        assert code == 2 and words in err and "Traceback" not in err, (out, err)
    assert (mine / "notes.txt").read_text() == "keep" and afile.read_text() == "keep"
    assert sorted(p.name for p in run.rglob("*")) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".old-", ".tmp-"))]


def test_export_writes_a_new_path_an_empty_folder_an_earlier_export_and_a_long_name(run, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    long_name = "y" * 245  # valid, but the temporary folder's prefix once pushed it past 255 bytes
    for out in ("new", "empty", "new", long_name):  # "new" twice: exporting again replaces the export
        code, err = _export(capsys, run, str(tmp_path / out))
        assert code == 0, (out, err)
        assert (tmp_path / out / "export.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"new", "empty", long_name})


def test_an_earlier_export_is_replaced_only_with_what_it_wrote(run, tmp_path, capsys):
    """A folder holding a file named export.json, or an export the user added files to, was
    replaced whole, their files with it."""
    fake = tmp_path / "proj"
    fake.mkdir()
    (fake / "export.json").write_text("{}")
    (fake / "thesis.tex").write_text("keep")
    code, err = _export(capsys, run, str(fake))
    assert code == 2 and "is a folder that is not an fmkit export" in err, err
    assert (fake / "thesis.tex").read_text() == "keep"
    earlier = tmp_path / "exp1"
    assert _export(capsys, run, str(earlier))[0] == 0
    (earlier / "NOTES.md").write_text("mine")
    code, err = _export(capsys, run, str(earlier))
    assert code == 2 and "now also holds NOTES.md" in err, err
    assert (earlier / "NOTES.md").read_text() == "mine"
    code, err = _export(capsys, run, "")
    assert code == 2 and "empty path" in err, err


def test_a_recipe_export_output_that_would_be_refused_is_refused_before_training(tmp_path, capsys):
    """It was found only after the whole training had run."""
    import yaml
    from conftest import tiny_recipe

    from fmkit.cli.main import main

    taken = tmp_path / "eo" / "safetensors"
    taken.mkdir(parents=True)
    (taken / "notes.txt").write_text("mine")
    recipe = tiny_recipe(tmp_path, epochs=1)
    recipe["export"] = {"formats": ["safetensors"], "output": str(tmp_path / "eo")}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    code = main(["train", str(tmp_path / "r.yaml"), "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "export.output" in err and "not an fmkit export" in err, err
    assert not (tmp_path / "run").exists() and (taken / "notes.txt").read_text() == "mine"
