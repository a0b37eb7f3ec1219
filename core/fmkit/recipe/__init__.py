"""Recipes: one YAML file that drives the whole workflow, validated before any work starts."""
from .loader import apply_overrides, load_yaml_with_lines
from .schema import Recipe
from .validate import load_recipe, validate_recipe

__all__ = ["Recipe", "apply_overrides", "load_recipe", "load_yaml_with_lines", "validate_recipe"]
