"""Help that helps: `fmkit new recipe --help` lists the installed tasks; a wrong --kind lists the kinds."""
from __future__ import annotations

from conftest import run_cli


def test_new_recipe_help_lists_the_installed_tasks():
    r = run_cli("new", "recipe", "--help")
    assert r.returncode == 0
    tail = r.stdout.split("installed tasks:")[1].split()
    assert "text-classification" in tail and "image-classification" in tail


def test_a_wrong_kind_names_the_kinds():
    r = run_cli("components", "list", "--help")
    assert "exporter" in r.stdout  # the kinds are listed in --help
    r = run_cli("components", "list", "--kind", "component")
    assert r.returncode == 2 and "component" in r.stderr and "Traceback" not in r.stderr
