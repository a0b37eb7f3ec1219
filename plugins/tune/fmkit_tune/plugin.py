"""fmkit-tune's hooks: the ``tune:`` recipe section and the ``fmkit tune`` command."""
from __future__ import annotations

from fmkit import RecipeSection, hookimpl

#: 1.4: plugin recipe sections and run.request_stop (pruning without raising); 1.5: fmkit.tune (workflows)
fmkit_api = ">=1.5,<2"


@hookimpl
def fmkit_register_recipe_sections():
    from .checks import check_section
    from .settings import EXAMPLE, SUMMARY, TuneSettings

    return [RecipeSection("tune", TuneSettings, summary=SUMMARY, example=EXAMPLE, check=check_section)]


@hookimpl
def fmkit_register_workflows():
    """``fmkit.tune(recipe, ...)`` in Python (API 1.5), the same function as ``fmkit_tune.tune``."""
    return {"tune": "fmkit_tune:tune"}


@hookimpl
def fmkit_add_cli_commands(subparsers):
    from .cli import add_command

    add_command(subparsers)
