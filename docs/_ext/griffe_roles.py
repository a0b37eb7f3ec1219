"""A griffe extension for the docs site: turns the Sphinx roles of fmkit's docstrings into Markdown.

``:class:`fmkit.Task``` (a qualified name in fmkit) becomes a cross-reference, which the site
resolves (a reference to something the site does not document fails ``mkdocs build --strict``);
any other role (``:meth:`setup```, ``:class:`pathlib.Path```) becomes a code span.
"""
from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:class|meth|func|data|attr|mod|exc|obj):`~?([^`]+)`")


def convert(text: str) -> str:
    def repl(m: re.Match) -> str:
        target = m.group(1)
        if target.startswith("fmkit."):
            return f"[`{target}`][{target}]"
        return f"`{target}`"

    return _ROLE.sub(repl, text)


class RolesToMarkdown(griffe.Extension):
    """Rewrite every docstring once, when griffe loads its object."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
