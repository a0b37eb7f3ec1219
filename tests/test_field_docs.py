"""Parameters are documented in plain words: a field's ``#:`` comment becomes its description, and
starters, ``fmkit components show`` and ``fmkit schema`` show it with the type in words."""
from __future__ import annotations

from typing import Literal

from conftest import run_cli
from pydantic import Field

from fmkit import Params
from fmkit.fielddocs import describe_type


class _Documented(Params):
    #: how many widgets to make
    widgets: int = 3
    #: first line of the note,
    #: and its second line
    mode: Literal["fast", "slow"] | None = None
    bare: float = 1.0


def test_comments_become_descriptions_in_the_model_and_its_json_schema():
    fields = _Documented.model_fields
    assert fields["widgets"].description == "how many widgets to make"
    assert fields["mode"].description == "first line of the note, and its second line"
    assert fields["bare"].description is None
    props = _Documented.model_json_schema()["properties"]
    assert props["widgets"]["description"] == "how many widgets to make"


def test_types_read_as_words():
    assert describe_type(int) == "whole number"
    assert describe_type(Literal["fast", "slow"] | None) == "one of: fast, slow or null"
    assert describe_type(list[str]) == "list of text"
    assert describe_type(dict[str, float]) == "mapping (text to number)"

    class Aliased(Params):  # a model's keys as a recipe spells them: the alias, not the Python name
        float_: float = Field(0.0, alias="float")
        step: int = 1

    assert describe_type(Aliased) == "mapping (float, step)"


def test_starters_and_components_show_speak_plain_words():
    r = run_cli("new", "recipe", "text-classification")
    assert r.returncode == 0, r.stderr
    for python_ism in ("Literal[", "<class", "typing.", "Union["):
        assert python_ism not in r.stdout, python_ism
    assert "epochs: 3    # passes over the training data (whole number)" in r.stdout
    r = run_cli("components", "show", "adamw")
    assert "lr  (number; default: 0.001)" in r.stdout and "learning rate of the task head" in r.stdout
    assert "<class" not in r.stdout


class _Inner(Params):
    #: how big the inner part is
    size: int = 4


class _Outer(Params):
    #: the inner part
    inner: _Inner = _Inner()
    #: an optional inner part
    maybe: _Inner | None = None


def test_components_show_lists_nested_fields_with_defaults_as_a_recipe_writes_them():
    from fmkit.cli.commands_core import _parameters

    rows = {r["name"]: r for r in _parameters(_Outer)}
    assert list(rows) == ["inner", "inner.size", "maybe", "maybe.size"]
    assert rows["inner"]["default"] == {"size": 4}  # not the model's repr, "size=4"
    assert rows["inner.size"]["description"] == "how big the inner part is" and rows["maybe.size"]["default"] == 4


def test_an_unknown_component_points_at_a_listing_that_exists():
    r = run_cli("components", "show", "adamx")
    assert r.returncode == 2 and "'adamw'" in r.stderr and "did you mean" in r.stderr
    assert "`fmkit components list`" in r.stderr and "--kind component" not in r.stderr
    r = run_cli("components", "list", "--kind", "optimizer")
    assert r.returncode == 0 and "adamw" in r.stdout


def test_every_command_line_option_has_help_that_says_its_default():
    import argparse

    from fmkit.cli.main import build_parser

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, f"{path} {name}")
            elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                yield path, action

    missing = []
    for path, action in walk(build_parser(), "fmkit"):
        name = "/".join(action.option_strings) or action.dest
        text = action.help or ""
        if text == argparse.SUPPRESS:
            continue
        if not text.strip():
            missing.append(f"{path} {name}: no help")
        elif action.option_strings and action.default not in (None, False, True, [], argparse.SUPPRESS) \
                and "default" not in text and "%(default)" not in text:
            missing.append(f"{path} {name}: its default {action.default!r} is not said")
    assert not missing, "\n".join(missing)


def _models_in(annotation):
    """The pydantic models an annotation holds: itself, or inside lists, mappings, unions, Annotated."""
    import typing

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def _undocumented(model, path: str, seen: set) -> list[str]:
    """``path.field`` for each field of ``model`` (and of the models its fields hold) without a description."""
    if model in seen:
        return []
    seen.add(model)
    out = []
    for name, field in model.model_fields.items():
        shown = field.alias or name
        if not (field.description or "").strip():
            out.append(f"{path}.{shown}  ({model.__module__}.{model.__qualname__})")
        for inner in _models_in(field.annotation):
            out += _undocumented(inner, f"{path}.{shown}", seen)
    return out


def test_every_parameter_of_every_component_and_plugin_section_is_described():
    """Each field of every registered component (the core's and every installed plugin's), of the
    models nested in them, and of the recipe sections plugins declare, says in words what it does:
    starters, ``fmkit components show`` and ``fmkit schema`` print that text."""
    from fmkit.plugins import get_plugin_manager

    manager = get_plugin_manager()
    broken = {n: i.error for n, i in manager.infos.items() if i.status in ("failed", "refused")}
    assert not broken, broken  # a plugin that failed to load would go unchecked
    missing: list[str] = []
    for component in manager.registry:
        missing += _undocumented(component.params_model(), f"{component.kind} {component.name}", set())
    for name, section in manager.recipe_sections.items():
        missing += _undocumented(section.model, f"section {name}:", set())
    kinds = {c.kind for c in manager.registry}
    assert {"task", "model", "dataset", "optimizer", "loss", "metric"} <= kinds, kinds
    assert "tune" in manager.recipe_sections or not _installed("fmkit-tune")
    assert not missing, f"{len(missing)} parameter(s) without a description (write a #: comment above the " \
        "field, in plain words: what it does, its units, what null means):\n" + "\n".join(missing)


def _installed(distribution: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(distribution)
    except PackageNotFoundError:
        return False
    return True


def test_the_cache_dir_default_is_described_as_the_engine_uses_it(tmp_path):
    """data.cache_dir unset: the engine caches under <tracking.runs_dir>/.cache, and the field's text
    (in starters, components show, the schema) says so, not "a folder in the user's cache"."""
    import fmkit
    from conftest import tiny_recipe
    from fmkit.recipe.schema import DataSection

    assert DataSection.model_fields["cache_dir"].description == \
        "where the preprocessing cache lives (default: `<tracking.runs_dir>/.cache`)"
    recipe = tiny_recipe(tmp_path, epochs=1)
    del recipe["data"]["cache_dir"]
    recipe["tracking"]["report"] = False
    fmkit.train(recipe, run_dir=str(tmp_path / "run"))
    assert list((tmp_path / "runs" / ".cache").glob("*.pt"))
