"""Python functions plugins add to the ``fmkit`` namespace (``fmkit_register_workflows``, API 1.5).

``fmkit.search(...)`` when a plugin registered ``search``: the core's module ``__getattr__`` asks
:func:`workflow` for a name it does not define itself, and the plugin's function is imported then,
not at ``import fmkit``.
"""
from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    from .plugins import PluginManager

log = logging.getLogger("fmkit.plugins")
_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def collect_workflows(manager: PluginManager, reserved: set[str]) -> dict[str, tuple[str, str]]:
    """``{name: (plugin, "module:function")}`` over the loaded plugins, in call order. A name in
    ``reserved`` (the core's own), one an earlier plugin took, or a value that is not an import
    string is skipped with a warning; a hook that raises marks its plugin failed."""
    out: dict[str, tuple[str, str]] = {}
    for plugin, fn in manager.impls("fmkit_register_workflows"):
        try:
            found = fn() or {}
            if not isinstance(found, dict):
                raise TypeError(f"fmkit_register_workflows must return a dict of name -> 'module:function', got {found!r}")
        except Exception as e:
            manager._fail(manager.infos[plugin], e)
            manager._registry = None
            continue
        for name, target in found.items():
            if not (isinstance(name, str) and name.isidentifier() and not name.startswith("_")):
                log.warning("plugin %r: workflow name %r is not a public Python name; skipped", plugin, name)
            elif name in reserved:
                log.warning("plugin %r: workflow %r is one of fmkit's own names; skipped", plugin, name)
            elif name in out:
                log.warning("plugin %r: workflow %r is already added by plugin %r; skipped", plugin, name, out[name][0])
            elif not (isinstance(target, str) and _TARGET.fullmatch(target)):
                log.warning("plugin %r: workflow %r must be an import string 'package.module:function', "
                            "got %r; skipped", plugin, name, target)
            else:
                out[name] = (plugin, target)
    return out


def workflow(name: str) -> Callable[..., Any] | None:
    """The function a plugin registered as ``fmkit.<name>``, imported now; ``None`` when none did."""
    import fmkit

    from .components import load_object
    from .plugins import get_plugin_manager

    found = get_plugin_manager().workflows(set(fmkit.__all__)).get(name)
    return load_object(found[1]) if found else None
