"""Plugin recipe sections (hook API 1.4): a plugin declares a top-level section with its own pydantic
model; it is validated with the rest of the recipe, appears in ``fmkit schema`` and ``fmkit new
recipe``, reaches hooks as ``run.recipe.section(name)``; unknown sections stay errors."""
from __future__ import annotations

import json
from typing import Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

import fmkit
from fmkit.errors import RecipeError
from fmkit.recipe import load_recipe


class Audit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: Literal["low", "high"] = "low"
    #: evaluations between two audit records
    every: int = Field(1, ge=1)
    keys: list[str] = []


def _check(value, recipe):
    return [(("keys", i), f"{k!r} is not a train setting") for i, k in enumerate(value.keys)
            if k not in type(recipe.train).model_fields]


class SectionPlugin:
    def __init__(self):
        self.seen = []

    @fmkit.hookimpl
    def fmkit_register_recipe_sections(self):
        return [fmkit.RecipeSection("audit", Audit, summary="what the audit plugin records",
                                    example={"level": "high"}, check=_check)]

    @fmkit.hookimpl
    def fmkit_on_run_start(self, run):
        self.seen.append(run.recipe.section("audit"))


@pytest.fixture
def plugin():
    p = SectionPlugin()
    fmkit.register_plugin(p, name="audit-sections")  # removed after the test (conftest)
    return p


def _issues(source, overrides=None):
    with pytest.raises(RecipeError) as e:
        load_recipe(source, overrides)
    return e.value.issues


def test_section_is_validated_and_kept_on_the_recipe(plugin, recipe_factory):
    recipe = load_recipe({**recipe_factory(), "audit": {"level": "high", "keys": ["epochs"]}})
    assert recipe.section("audit") == Audit(level="high", keys=["epochs"])
    assert recipe.to_dict()["audit"] == {"level": "high", "every": 1, "keys": ["epochs"]}
    assert "audit" not in recipe.to_dict(sections=False)
    again = load_recipe(recipe)  # a resolved recipe loads back with its section
    assert again.section("audit") == recipe.section("audit")
    assert load_recipe(recipe_factory()).section("audit") is None
    assert load_recipe({**recipe_factory(), "audit": None}).section("audit") == Audit()  # `audit:` alone


def test_every_problem_at_once_with_path_line_and_did_you_mean(plugin, recipe_factory, tmp_path):
    data = {**recipe_factory(), "audit": {"levl": "high", "every": 0}}
    data["train"]["epochz"] = 2  # a core problem in the same file
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    issues = {i.path: i for i in _issues(path)}
    assert set(issues) >= {"audit.levl", "audit.every", "train.epochz"}
    assert "did you mean 'level'" in issues["audit.levl"].message
    text = path.read_text().splitlines()
    assert "levl" in text[issues["audit.levl"].line - 1]
    assert "every" in text[issues["audit.every"].line - 1]


def test_set_reaches_the_section_and_cross_check_runs(plugin, recipe_factory):
    recipe = load_recipe(recipe_factory(), ["audit.level=high"])
    assert recipe.section("audit").level == "high"
    issues = _issues({**recipe_factory(), "audit": {"keys": ["epochs", "epoks"]}})
    assert [(i.path, i.message) for i in issues] == [("audit.keys[1]", "'epoks' is not a train setting")]


def test_unknown_sections_are_still_errors(plugin, recipe_factory):
    issues = _issues({**recipe_factory(), "audti": {"level": "high"}})
    assert len(issues) == 1 and "did you mean 'audit'" in issues[0].message
    fmkit.unregister_plugin("audit-sections")
    issues = _issues({**recipe_factory(), "audit": {"level": "high"}})
    assert issues[0].path == "audit" and "no installed plugin declares it" in issues[0].message


def test_section_reaches_hooks_at_run_time(plugin, recipe_factory, tmp_path):
    fmkit.train({**recipe_factory(epochs=1), "audit": {"every": 3}}, run_dir=str(tmp_path / "run"))
    assert plugin.seen == [Audit(every=3)]
    saved = yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())
    assert saved["audit"]["every"] == 3


def test_schema_and_starter_recipe_include_the_section(plugin, capsys, tmp_path):
    from fmkit.cli.main import main

    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    audit = schema["properties"]["audit"]["anyOf"][0]
    assert audit["properties"]["level"]["enum"] == ["low", "high"] and audit["additionalProperties"] is False
    assert main(["new", "recipe", "text-classification", "-o", str(tmp_path / "new.yaml")]) == 0
    text = (tmp_path / "new.yaml").read_text()
    # the section is written commented out (a starter turns on no plugin's workflow), under a header
    assert "# audit: what the audit plugin records (provided by plugin audit-sections); off in this starter." in text
    assert "audit" not in yaml.safe_load(text)
    lines = text.splitlines()
    start = lines.index("# audit:")
    block = [x[2:] for x in lines[start:] if x.startswith("# ")][:4]
    assert yaml.safe_load("\n".join(block)) == {"audit": {"level": "high"}}  # uncommented once: the example
    # documented by `#:` comments, as Params fields are: the starter and the schema show the text
    assert "every: 1    # evaluations between two audit records (whole number)" in text
    assert audit["properties"]["every"]["description"] == "evaluations between two audit records"


def test_a_plugin_may_not_take_a_core_section_or_another_plugins(recipe_factory):
    class Bad:
        @fmkit.hookimpl
        def fmkit_register_recipe_sections(self):
            return [fmkit.RecipeSection("train", Audit)]

    fmkit.register_plugin(SectionPlugin(), name="audit-sections")
    fmkit.register_plugin(Bad(), name="bad-sections")
    manager = fmkit.get_plugin_manager()
    sections = manager.recipe_sections  # (installed plugins may declare theirs too)
    assert sections["audit"].plugin == "audit-sections" and "train" not in sections
    info = manager.infos["bad-sections"]
    assert info.status == "failed" and "one of the core's own sections" in info.error
    assert load_recipe(recipe_factory()).train.epochs == 2  # the core's section is untouched


def test_a_plugin_section_may_change_on_resume_and_is_recorded(plugin, recipe_factory, tmp_path):
    run_dir = tmp_path / "run"
    fmkit.train({**recipe_factory(epochs=1), "audit": {"every": 3}}, run_dir=str(run_dir))
    changed = {**recipe_factory(epochs=2), "audit": {"every": 5}}
    fmkit.train(changed, resume=str(run_dir))
    assert plugin.seen[-1] == Audit(every=5)
    amendments = yaml.safe_load((run_dir / "recipe.amendments.yaml").read_text())
    assert amendments[-1]["changes"]["audit.every"] == {"from": 3, "to": 5}


def test_plugins_list_names_the_sections_and_components_show_falls_back_to_one(plugin, capsys):
    from fmkit.cli.main import main

    assert main(["plugins", "list"]) == 0
    row = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("audit-sections "))
    assert row.rstrip().endswith("audit")
    assert main(["plugins", "list", "--json"]) == 0
    listed = {p["name"]: p["recipe_sections"] for p in json.loads(capsys.readouterr().out)}
    assert listed["audit-sections"] == ["audit"] and listed["fmkit"] == []
    assert main(["components", "show", "audit"]) == 0  # no component is called audit: the section is shown
    out = capsys.readouterr().out
    assert out.startswith("recipe section audit (a top-level key of the recipe; plugin audit-sections)")
    assert "  every  (whole number; default: 1)\n      evaluations between two audit records" in out
    assert "example:\n  audit:\n    level: high" in out
    assert main(["components", "show", "audit", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)[0]
    assert shown["kind"] == "recipe-section" and [p["name"] for p in shown["parameters"]] == ["level", "every", "keys"]
