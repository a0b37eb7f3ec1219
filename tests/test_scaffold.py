"""`fmkit new plugin`: the scaffold installs, is listed, validates in a recipe and passes the contract suite.

That the template ships inside fmkit's wheel is checked by tests/test_packaging.py (built from a copy,
so no build/ folder is left in the repository for a later build to pick stale files from)."""
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
    r = run_cli("validate", str(recipe), "--skip-data", env=env)
    assert r.returncode == 0, r.stderr
    t = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(pkg / "tests")],
                       capture_output=True, text=True, env={**__import__("os").environ, **env}, cwd=tmp_path)
    assert t.returncode == 0, t.stdout[-3000:]
    assert "2 skipped" in t.stdout, t.stdout[-3000:]  # export and datasets, as its README says, until turned on
    r = run_cli("new", "plugin", "acme-vision", "-o", str(tmp_path))
    assert r.returncode == 2 and "already exists" in r.stderr



def test_the_scaffold_says_contract_tests_takes_the_entry_point_name_and_what_skips(tmp_path):
    import re
    import tomllib

    assert run_cli("new", "plugin", "fmkit-sensors", "-o", str(tmp_path)).returncode == 0
    pkg = tmp_path / "fmkit-sensors"
    entry_points = tomllib.loads((pkg / "pyproject.toml").read_text())["project"]["entry-points"]["fmkit.plugins"]
    test = (pkg / "tests" / "test_contract.py").read_text()
    called = re.search(r'contract_tests\(\s*"([^"]+)"', test).group(1)
    assert list(entry_points) == [called] == ["fmkit_sensors"]  # the test names the entry point
    assert "ENTRY-POINT name" in test and "# export_formats=(" in test and "# datasets={" in test
    readme = (pkg / "README.md").read_text()
    assert "`contract_tests(\"fmkit_sensors\")`" in readme and "**entry-point name**" in readme
    assert "the export check, until you pass `export_formats=" in readme and "the dataset check, until" in readme
