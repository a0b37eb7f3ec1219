"""`fmkit new plugin`: the scaffold installs, is listed, validates in a recipe and passes the contract suite."""
from __future__ import annotations

import subprocess
import sys

from conftest import run_cli


def test_scaffolded_plugin_installs_lists_and_validates(tmp_path):
    r = run_cli("new", "plugin", "acme-vision", "-o", str(tmp_path))
    assert r.returncode == 0, r.stderr
    pkg = tmp_path / "acme-vision"
    assert (pkg / "acme_vision" / "plugin.py").is_file() and (pkg / "tests" / "test_contract.py").is_file()
    site = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                          "--target", str(site), str(pkg)], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    env = {"PYTHONPATH": str(site)}
    r = run_cli("plugins", "list", env=env)
    assert "acme_vision" in r.stdout and "loaded" in r.stdout, r.stdout + r.stderr
    recipe = tmp_path / "r.yaml"
    recipe.write_text("task: text-classification\nmodel: {name: acme_vision-bag-of-embeddings, dim: 8}\n"
                      "loss: {name: acme_vision-focal, gamma: 1.5}\ndata: {train: x.csv}\n")
    r = run_cli("validate", str(recipe), env=env)
    assert r.returncode == 0, r.stderr
    t = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(pkg / "tests")],
                       capture_output=True, text=True, env={**__import__("os").environ, **env}, cwd=tmp_path)
    assert t.returncode == 0, t.stdout[-3000:]
    r = run_cli("new", "plugin", "acme-vision", "-o", str(tmp_path))
    assert r.returncode == 2 and "already exists" in r.stderr


def test_wheel_carries_the_plugin_template(tmp_path):
    """A non-editable install has no repository around it: the template must be inside the wheel."""
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(root),
                        "-w", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    names = zipfile.ZipFile(next(tmp_path.glob("fmkit-*.whl"))).namelist()
    assert "fmkit/templates/plugin/pyproject.toml" in names
    assert "fmkit/templates/plugin/fmkit_example/plugin.py" in names
