"""``fmkit schema``: every ``$ref`` resolves, nested component parameters are checked, and every
example recipe validates against it with ``jsonschema`` (a dev dependency)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

jsonschema = pytest.importorskip("jsonschema", reason="pip install -e '.[dev]' (jsonschema checks the recipe schema)")

RECIPES = sorted((Path(__file__).resolve().parents[1] / "examples" / "recipes").glob("*.yaml"))


@pytest.fixture(scope="module")
def schema():
    import fmkit
    from fmkit.recipe.jsonschema import recipe_json_schema

    s = recipe_json_schema(fmkit.get_registry())
    jsonschema.Draft202012Validator.check_schema(s)
    return s


def _variant(schema, section: str, name: str) -> dict:
    return next(v for v in schema["properties"][section]["anyOf"] if name in v.get("properties", {}).get("name", {}).get("enum", []))


def test_every_ref_points_at_a_definition(schema):
    refs = set(re.findall(r'"\$ref": "([^"]+)"', json.dumps(schema)))
    assert refs, "the schema has no references at all"
    dangling = [r for r in refs if not (r.startswith("#/$defs/") and r[len("#/$defs/"):] in schema["$defs"])]
    assert not dangling, f"references that point nowhere: {dangling}"


@pytest.mark.parametrize("section,component,field", [("task", "text-classification", "tokenizer"),
                                                     ("model", "hf-classifier", "lora"),
                                                     ("model", "audio-cnn", "frontend")])
def test_nested_parameters_resolve_to_their_model(schema, section, component, field):
    pytest.importorskip("fmkit_nlp")
    pytest.importorskip("fmkit_audio")
    prop = json.dumps(_variant(schema, section, component)["properties"][field])
    ref = re.search(r'"\$ref": "#/\$defs/([^"]+)"', prop).group(1)
    assert ref.startswith(f"{section}.") and component in ref
    assert schema["$defs"][ref]["properties"], ref


def test_a_wrong_nested_parameter_is_caught(schema):
    pytest.importorskip("fmkit_nlp")
    recipe = {"task": {"name": "text-classification", "tokenizer": {"vocab_size": "many"}},
              "model": {"name": "hf-classifier", "lora": {"r": 8, "not_a_lora_field": 1}}, "data": {"train": "x.csv"}}
    messages = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(recipe)]
    assert messages  # both nested sections are validated, not accepted blindly
    fixed = {**recipe, "task": {"name": "text-classification", "tokenizer": {"vocab_size": 500}},
             "model": {"name": "hf-classifier", "lora": {"r": 8}}}
    assert not list(jsonschema.Draft202012Validator(schema).iter_errors(fixed))


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_example_recipe_validates_against_the_schema(schema, path):
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(yaml.safe_load(path.read_text())),
                    key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors)
