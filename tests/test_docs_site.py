"""The documentation site builds from the code in strict mode: a broken link, a cross-reference to
an object that does not exist, or an included source file that is missing fails the build."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]'; make install does)")
pytest.importorskip("mkdocstrings", reason="the docs extra is not installed (pip install -e '.[docs]'; make install does)")
pytest.importorskip("material", reason="the docs extra is not installed (pip install -e '.[docs]'; make install does)")


def _build(config: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_site_builds_in_strict_mode(tmp_path):
    done = _build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stdout + done.stderr
    hooks = (tmp_path / "site" / "reference" / "hooks" / "index.html").read_text()
    assert "fmkit_on_epoch_end" in hooks and "PluginHookError" in hooks  # rendered from hookspecs.py
    guide = (tmp_path / "site" / "plugin-guide" / "index.html").read_text()
    assert "TableFeatures" in guide and "--8&lt;--" not in guide  # the example's source, included


@pytest.mark.parametrize("page, builds", [
    ("See [`fmkit.Task`][fmkit.Task] and [`fmkit.Dataset.load`][fmkit.Dataset.load].\n\n"
     '```python\n--8<-- "docs/examples/tabular/fmkit_tabular/__init__.py"\n```', True),  # the control
    ("See [`fmkit.Task`][fmkit.NoSuchTask].", False),          # a cross-reference to nothing
    ("See [the hooks](reference/no-such-page.md).", False),    # a link to a page that does not exist
    ('```python\n--8<-- "docs/examples/tabular/fmkit_tabular/missing.py"\n```', False),  # an included file gone
])
def test_a_broken_reference_fails_the_build(tmp_path, page, builds):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text(f"# A page\n\n::: fmkit.Task\n\n::: fmkit.Dataset\n\n::: fmkit.errors\n\n{page}\n")
    config = (ROOT / "mkdocs.yml").read_text().split("\nnav:")[0]  # the same settings, one page
    config = config.replace("docs_dir: docs", f"docs_dir: {docs}").replace("paths: [core]", f"paths: [{ROOT / 'core'}]")
    (tmp_path / "mkdocs.yml").write_text(config.replace("docs/_ext/", str(ROOT / "docs" / "_ext") + "/"))
    done = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert (done.returncode == 0) == builds, done.stdout + done.stderr


def test_make_docs_builds_the_site_strictly_into_an_ignored_folder(tmp_path):
    """`make docs` (named in README and docs/index.md) runs the strict build into site/, which git ignores."""
    import shutil

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / ".installed").write_text("")  # installed already: make -n shows only the docs commands
    for target in ("docs", "docs-serve"):
        done = subprocess.run(["make", "-n", "-o", f"{venv}/.installed", target, f"VENV={venv}"], cwd=ROOT,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        expected = f"{venv}/bin/mkdocs build --strict -d site" if target == "docs" else f"{venv}/bin/mkdocs serve"
        assert expected in done.stdout, done.stdout
    ignored = subprocess.run(["git", "check-ignore", "-q", "site/index.html"], cwd=ROOT)
    assert ignored.returncode == 0, "site/ must be git-ignored"
    assert "make docs" in (ROOT / "README.md").read_text() and "make docs" in (ROOT / "docs" / "index.md").read_text()
