"""Packaging: the core and every plugin build as wheels holding exactly their modules and the package
data the code reads (no tests, no stale files), and each version lives in its pyproject.toml only."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import fmkit
from fmkit.utils import version as versions

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file())
#: (distribution, project folder, package folder, the package folder inside the project)
DISTRIBUTIONS = [("fmkit", ROOT, "fmkit", Path("core/fmkit"))] + [
    (f"fmkit-{p.name}", p, f"fmkit_{p.name}", Path(f"fmkit_{p.name}")) for p in PLUGINS] + [
    ("fmkit-tabular", ROOT / "docs/examples/tabular", "fmkit_tabular", Path("fmkit_tabular"))]
BUILD_STATE = shutil.ignore_patterns("build", "dist", "*.egg-info", ".pytest_cache", "runs", "site")


def _source_copy(project: Path, dest: Path) -> Path:
    """What a clean checkout holds for ``project`` (the core: pyproject, README, core/ and templates/),
    without build state a previous build left in the tree; ``__pycache__`` folders are kept."""
    if project != ROOT:
        shutil.copytree(project, dest, ignore=BUILD_STATE)
        return dest
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    for name in ("core", "templates"):  # core/fmkit/templates is a link to ../../templates
        shutil.copytree(ROOT / name, dest / name, symlinks=True, ignore=BUILD_STATE)
    return dest


def _walk(source_package: Path) -> list[tuple[Path, list[str]]]:
    """Each folder of the package (links followed: the core's templates) with its files."""
    return [(Path(d), files) for d, dirs, files in os.walk(source_package, followlinks=True)
            if "__pycache__" not in Path(d).parts]


def _expected(source_package: Path, package: str) -> set[str]:
    """Every file of the package (package data included) but compiled files."""
    return {f"{package}/{(d / f).relative_to(source_package).as_posix()}"
            for d, files in _walk(source_package) for f in files if not f.endswith(".pyc")}


@pytest.mark.parametrize("dist, project, package, inside", DISTRIBUTIONS, ids=[d[0] for d in DISTRIBUTIONS])
def test_the_wheel_holds_the_package_and_nothing_stale(tmp_path, dist, project, package, inside):
    src = _source_copy(project, tmp_path / "src")
    pkg_dir = src / inside
    # stale files a working tree picks up: byte code, in the package and in its package data
    for folder, _ in _walk(pkg_dir)[::3]:
        (folder / "__pycache__").mkdir(exist_ok=True)
        (folder / "__pycache__" / "stale.cpython-311.pyc").write_bytes(b"\0" * 16)
    out = tmp_path / "wheels"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "-w", str(out), str(src)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    version = versions.pyproject_version(src / "pyproject.toml", dist)
    assert wheel.name.startswith(f"{dist.replace('-', '_')}-{version}-py3-none-any")
    names = zipfile.ZipFile(wheel).namelist()
    info = f"{dist.replace('-', '_')}-{version}.dist-info"
    files = {n for n in names if not n.startswith(info + "/")}
    expected = _expected(pkg_dir, package)
    assert f"{package}/__init__.py" in expected and len(expected) > 3
    assert files == expected, f"missing: {sorted(expected - files)}; unexpected: {sorted(files - expected)}"
    assert not any(n.startswith("tests/") or n.endswith(".pyc") for n in names)
    meta = zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode()
    assert f"\nVersion: {version}\n" in meta
    entry_points = zipfile.ZipFile(wheel).read(f"{info}/entry_points.txt").decode()
    if dist == "fmkit":
        assert "fmkit/templates/plugin/pyproject.toml" in files  # `fmkit new plugin` reads it
        assert "fmkit = fmkit.cli.main:main" in entry_points
    else:
        assert "[fmkit.plugins]" in entry_points and f"{package}.plugin" in entry_points


def test_each_version_is_written_in_its_pyproject_only():
    """``__version__`` and ``fmkit --version`` come from the installed metadata, never a second literal."""
    for dist, project, package, inside in DISTRIBUTIONS:
        number = versions.pyproject_version(project / "pyproject.toml", dist)
        assert number, f"{project / 'pyproject.toml'} names no version for {dist}"
        for path in (project / inside).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"__version__\s*=\s*['\"]", text), f"{path}: a second copy of the version"
            assert f'"{package.split("_")[0]} {number}"' not in text, f"{path}: a hard-coded version string"
    assert fmkit.__version__ == versions.pyproject_version(ROOT / "pyproject.toml", "fmkit")
    for plugin in PLUGINS:
        module = __import__(f"fmkit_{plugin.name}")
        assert module.__version__ == versions.pyproject_version(plugin / "pyproject.toml", f"fmkit-{plugin.name}")
    r = subprocess.run([sys.executable, "-m", "fmkit", "--version"], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == f"fmkit {fmkit.__version__}", r.stdout + r.stderr


def test_a_source_tree_that_is_not_installed_reads_its_pyproject(tmp_path, monkeypatch):
    def not_installed(name):
        raise versions.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(versions.metadata, "version", not_installed)
    # the repository's own layouts: core/fmkit under the root, plugins/<name>/fmkit_<name>
    assert versions.distribution_version("fmkit", fmkit.__file__) == \
        versions.pyproject_version(ROOT / "pyproject.toml", "fmkit")
    flat = tmp_path / "acme"
    (flat / "acme_thing").mkdir(parents=True)
    (flat / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\n\n'
                                         '[project]\nname = "Acme_Thing"\nversion = "3.2.1"\n\n[tool.x]\nversion = "9"\n')
    assert versions.distribution_version("acme-thing", str(flat / "acme_thing" / "__init__.py")) == "3.2.1"
    # a pyproject that names another distribution is not this package's
    assert versions.distribution_version("other", str(flat / "acme_thing" / "__init__.py")) == versions.UNKNOWN


def test_test_modules_have_unique_basenames():
    """`make test` collects every plugin's tests in one pytest run with rootdir-relative imports:
    two test files with the same basename stop collection ("import file mismatch") on a fresh clone."""
    folders = [ROOT / "tests"] + [p / "tests" for p in PLUGINS] + [ROOT / "docs/examples/tabular/tests"]
    seen: dict[str, Path] = {}
    clashes = []
    for folder in folders:
        for path in sorted(folder.rglob("test_*.py")):
            if path.name in seen:
                clashes.append(f"{path.relative_to(ROOT)} and {seen[path.name].relative_to(ROOT)}")
            seen.setdefault(path.name, path)
    assert not clashes, "test files sharing a basename: " + "; ".join(clashes)
