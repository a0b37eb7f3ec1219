"""Which plugin and distribution provide a component: recorded in ``export.json`` and used to
say what to install when an export is loaded where that plugin is missing."""
from __future__ import annotations

from typing import Any

from .errors import ComponentNotFoundError, MissingPluginError


def component_provenance(kind: str, section: Any, manager: Any = None) -> dict[str, Any]:
    """``{"id", "plugin", "distribution", "version"}`` of the component a recipe section names."""
    if manager is None:
        from .plugins import get_plugin_manager

        manager = get_plugin_manager()
    name = section if isinstance(section, str) else section["name"]
    comp = manager.registry.get(kind, name)
    info = manager.infos.get(comp.plugin)
    if info is not None and info.distribution is None:
        manager.resolve_distributions()
    return {"id": comp.qualified_id, "plugin": comp.plugin,
            "distribution": info.distribution if info else None, "version": info.version if info else None}


def missing_plugin_message(kind: str, name: str, provenance: dict[str, Any] | None, where: str,
                           manager: Any = None) -> str | None:
    """What to say when ``where`` needs a component that no loaded plugin provides, from the
    provenance recorded with it; ``None`` when nothing was recorded."""
    if not provenance or not provenance.get("plugin"):
        return None
    if manager is None:
        from .plugins import get_plugin_manager

        manager = get_plugin_manager()
    plugin, dist, version = provenance["plugin"], provenance.get("distribution"), provenance.get("version")
    origin = f"plugin {plugin!r}" + (f" (distribution {dist} {version or ''})".replace(" )", ")") if dist else "")
    info = manager.infos.get(plugin)
    if info is not None and info.status != "loaded":
        state = {"disabled": "is disabled (--disable-plugin / FMKIT_DISABLE_PLUGINS)"}.get(
            info.status, f"did not load: {info.error}")
        return f"{where} needs {kind} {name!r} from {origin}, which {state}"
    if dist:
        pin = f"=={version}" if version else ""
        return (f"{where} needs {kind} {name!r} from {origin}, which is not installed here; "
                f"install it: pip install '{dist}{pin}'")
    return (f"{where} needs {kind} {name!r} from {origin}, which is not loaded here and came from no "
            "installed distribution; register that plugin (a recipe's plugins: list or fmkit.register_plugin)")


def build_recorded(kind: str, section: Any, provenance: dict[str, Any] | None, where: str,
                   context: dict | None = None) -> Any:
    """Build a component from a recorded section; if its plugin is missing, say what to install."""
    from .plugins import get_plugin_manager

    manager = get_plugin_manager()
    try:
        return manager.registry.build(kind, section, context)
    except ComponentNotFoundError as e:
        message = missing_plugin_message(kind, e.name, provenance, where, manager)
        if message is None:
            raise
        raise MissingPluginError(message) from None
