"""Plugin discovery: broken, conflicting, disabled, version-mismatched and required plugins."""
from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from conftest import run_cli


def _with_site(site: Path) -> str:
    """PYTHONPATH with the fake site first, keeping the caller's (a checkout under test)."""
    return os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")]))


def make_dist(site: Path, dist: str, module: str, body: str, ep_name: str | None = None, version: str = "0.3.0") -> None:
    """A fake installed distribution with an fmkit.plugins entry point (as pip would leave it)."""
    (site / f"{module}.py").write_text(textwrap.dedent(body))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[fmkit.plugins]\n{ep_name or module} = {module}\n")


GOOD = """
from fmkit import Component, hookimpl
fmkit_api = ">=1.0,<2"
@hookimpl
def fmkit_register_losses():
    return [Component("loss", "{name}", "fmkit.builtin.losses:mse", "fmkit.builtin.losses:NoLossParams", "A test loss")]
"""


def plugins_json(site: Path, *args: str, env: dict | None = None) -> tuple[int, list[dict], str]:
    r = run_cli(*args, "plugins", "list", "--json", env={"PYTHONPATH": _with_site(site), **(env or {})})
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else [], r.stderr


def test_plugin_that_fails_to_import_is_reported_and_skipped(tmp_path):
    make_dist(tmp_path, "broken-plug", "broken_plug", "raise ImportError('no module named torchvision_x')")
    make_dist(tmp_path, "good-plug", "good_plug", GOOD.format(name="good-loss"))
    code, infos, _ = plugins_json(tmp_path)
    assert code == 0
    by = {i["name"]: i for i in infos}
    assert by["broken_plug"]["status"] == "failed"
    assert "torchvision_x" in by["broken_plug"]["error"]
    assert by["broken_plug"]["distribution"] == "broken-plug" and by["broken_plug"]["version"] == "0.3.0"
    assert by["good_plug"]["status"] == "loaded"
    r = run_cli("components", "list", "--kind", "loss", env={"PYTHONPATH": _with_site(tmp_path)})
    assert "good-loss" in r.stdout


def test_strict_plugins_turns_a_load_failure_into_an_error(tmp_path):
    make_dist(tmp_path, "broken-plug", "broken_plug", "raise RuntimeError('boom')")
    r = run_cli("--strict-plugins", "plugins", "list", env={"PYTHONPATH": _with_site(tmp_path)})
    assert r.returncode == 1 and "broken_plug" in r.stderr and "boom" in r.stderr
    r = run_cli("plugins", "list", env={"PYTHONPATH": _with_site(tmp_path), "FMKIT_STRICT_PLUGINS": "1"})
    assert r.returncode == 1


def test_conflicting_ids_need_qualified_names(tmp_path):
    make_dist(tmp_path, "plug-a", "plug_a", GOOD.format(name="shared-loss"))
    make_dist(tmp_path, "plug-b", "plug_b", GOOD.format(name="shared-loss"))
    r = run_cli("components", "show", "shared-loss", "--kind", "loss", env={"PYTHONPATH": _with_site(tmp_path)})
    assert r.returncode == 2
    assert "plug_a" in r.stderr and "plug_b" in r.stderr and "'plug_a:shared-loss'" in r.stderr
    r = run_cli("components", "show", "plug_b:shared-loss", "--kind", "loss", env={"PYTHONPATH": _with_site(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "plug_b:shared-loss" in r.stdout


def test_same_plugin_registering_an_id_twice_is_reported(tmp_path):
    body = GOOD.format(name="twice").replace("return [", "return 2 * [")
    make_dist(tmp_path, "dup-plug", "dup_plug", body)
    code, infos, _ = plugins_json(tmp_path)
    by = {i["name"]: i for i in infos}
    assert by["dup_plug"]["status"] == "failed" and "twice" in by["dup_plug"]["error"]


def test_disabled_plugin_is_not_imported(tmp_path):
    make_dist(tmp_path, "noisy-plug", "noisy_plug", "raise SystemExit('must not be imported')")
    code, infos, _ = plugins_json(tmp_path, "--disable-plugin", "noisy_plug")
    assert code == 0 and {i["name"]: i for i in infos}["noisy_plug"]["status"] == "disabled"
    code, infos, _ = plugins_json(tmp_path, env={"FMKIT_DISABLE_PLUGINS": "noisy_plug,other"})
    assert {i["name"]: i for i in infos}["noisy_plug"]["status"] == "disabled"
    code, infos, _ = plugins_json(tmp_path, env={"FMKIT_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert [i["name"] for i in infos] == ["fmkit"]


def test_hook_api_version_mismatch_is_refused_with_both_versions(tmp_path):
    make_dist(tmp_path, "future-plug", "future_plug", GOOD.format(name="future").replace(">=1.0,<2", ">=2.0"))
    code, infos, _ = plugins_json(tmp_path)
    info = {i["name"]: i for i in infos}["future_plug"]
    assert info["status"] == "refused"
    from fmkit import HOOK_API_VERSION

    assert ">=2.0" in info["error"] and HOOK_API_VERSION in info["error"]


def test_missing_required_plugin_fails_validation_early(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("task: text-classification\nmodel: hf-classifier\ndata: {train: x.csv}\n"
                      "required_plugins: ['fmkit-nlp>=0.1', 'fmkit-quantum>=1.0']\n")
    r = run_cli("validate", str(recipe))
    assert r.returncode == 2
    assert "fmkit-quantum" in r.stderr and "r.yaml:4" in r.stderr
    assert "fmkit-nlp" not in r.stderr.split("problem(s)")[1]


def test_plugin_registered_from_a_recipe_module_path(tmp_path):
    (tmp_path / "org_losses.py").write_text(textwrap.dedent(GOOD.format(name="org-loss")))
    recipe = tmp_path / "r.yaml"
    recipe.write_text("plugins: [org_losses]\ntask: text-classification\nmodel: hf-classifier\n"
                      "data: {train: x.csv}\nloss: org-loss\n")
    r = run_cli("validate", str(recipe), "--import-plugins", "--skip-data", env={"PYTHONPATH": _with_site(tmp_path)})
    assert r.returncode == 0, r.stderr


def test_register_plugin_from_python():
    import fmkit
    from fmkit.components import Component

    class MyPlugin:
        @fmkit.hookimpl
        def fmkit_register_metrics(self):
            return [Component("metric", "my-metric", "fmkit.builtin.metrics:MAE", "fmkit.builtin.metrics:NoMetricParams",
                              "mine")]

    from fmkit import plugins
    from fmkit.errors import ComponentNotFoundError

    fmkit.register_plugin(MyPlugin(), name="mine")
    try:
        assert fmkit.get_registry().get("metric", "my-metric").plugin == "mine"
    finally:
        fmkit.unregister_plugin("mine")
    # gone from this manager and from the ones configured later (the CLI builds a fresh one)
    with pytest.raises(ComponentNotFoundError):
        fmkit.get_registry().get("metric", "my-metric")
    assert "mine" not in plugins.get_plugin_manager().infos
    assert all(name != "mine" for _, name in plugins._pending)
    with pytest.raises(ComponentNotFoundError):
        plugins.configure().registry.get("metric", "my-metric")


def test_two_distributions_with_one_plugin_name_are_refused_naming_both(tmp_path):
    make_dist(tmp_path, "dup-one", "dup_one", GOOD.format(name="one-loss"), ep_name="dup", version="1.0")
    make_dist(tmp_path, "dup-two", "dup_two", GOOD.format(name="two-loss"), ep_name="dup", version="2.0")
    code, infos, _ = plugins_json(tmp_path)
    assert code == 0
    dup = {i["name"]: i for i in infos}["dup"]
    assert dup["status"] == "failed"
    assert "dup_one from dup-one 1.0" in dup["error"] and "dup_two from dup-two 2.0" in dup["error"]
    assert "uninstall all but one" in dup["error"]
    r = run_cli("--strict-plugins", "plugins", "list", env={"PYTHONPATH": _with_site(tmp_path)})
    assert r.returncode == 1 and "dup-one" in r.stderr and "dup-two" in r.stderr


def test_discovery_is_stevedores(tmp_path, monkeypatch):
    """stevedore lists the group and imports the plugins; its failure callback records the error."""
    import sys

    from fmkit import discovery

    make_dist(tmp_path, "good-plug", "good_plug", GOOD.format(name="good-loss"))
    make_dist(tmp_path, "broken-plug", "broken_plug", "raise ImportError('missing dependency')")
    make_dist(tmp_path, "off-plug", "off_plug", "raise AssertionError('a disabled plugin is imported')")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen = []
    real = discovery.PluginExtensions.__init__

    def spy(self, disabled, callback):
        seen.append(type(self).__mro__)
        real(self, disabled, callback)

    monkeypatch.setattr(discovery.PluginExtensions, "__init__", spy)
    found = discovery.discover({"off_plug"})
    from stevedore import ExtensionManager

    assert seen and ExtensionManager in seen[0]
    assert "good_plug" in [name for name, _, _ in found.loaded]
    assert [(n, str(e)) for n, _, e in found.failed if n == "broken_plug"] == [("broken_plug", "missing dependency")]
    assert [n for n, _ in found.disabled] == ["off_plug"] and "off_plug" not in sys.modules
