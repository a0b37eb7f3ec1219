"""Discovery of installed plugins: stevedore owns the ``fmkit.plugins`` entry-point group.

stevedore lists the group (from its entry-point cache) and imports each plugin module; an import
that raises goes to the ``on_load_failure_callback``, which records it instead of crashing the host;
two installed entry points with one name go to the conflict resolver, which names both origins.
Plugins switched off (``--disable-plugin``) are never imported. Only the distribution and version
of each entry point come from ``importlib.metadata`` (stevedore's cache does not keep them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stevedore import named

from .plugins import ENTRY_POINT_GROUP


@dataclass
class Discovered:
    """The outcome of one discovery: what loaded, what failed, what was switched off."""

    #: (name, plugin module or object, entry point) of every plugin that imported
    loaded: list[tuple[str, Any, Any]] = field(default_factory=list)
    #: (name, entry point, error) of every plugin whose import raised, or whose name is taken twice
    failed: list[tuple[str, Any, BaseException]] = field(default_factory=list)
    #: (name, entry point) of every plugin switched off, never imported
    disabled: list[tuple[str, Any]] = field(default_factory=list)


class PluginNameConflict(Exception):
    """Two installed distributions register the same ``fmkit.plugins`` entry-point name."""


def distributions() -> dict[tuple[str, str], tuple[str, str]]:
    """``(name, value)`` of each entry point of the group -> ``(distribution, version)`` that installed it."""
    from importlib.metadata import entry_points

    out = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        if dist is not None:
            out[(ep.name, ep.value)] = (dist.metadata["Name"], dist.version)
    return out


def describe(ep: Any, owners: dict | None = None) -> str:
    """An entry point's target and the distribution that installed it."""
    dist, version = (owners if owners is not None else distributions()).get((ep.name, ep.value), (None, None))
    return f"{ep.value} from {dist} {version}" if dist else ep.value


def refuse_conflict(namespace: str, name: str, extensions: list) -> Any:
    """stevedore conflict resolver: a plugin name is one plugin; name every origin and refuse."""
    owners = distributions()
    origins = "; ".join(describe(ext.entry_point, owners) for ext in extensions)
    raise PluginNameConflict(f"{len(extensions)} installed distributions register the {namespace} entry point "
                             f"{name!r} ({origins}); uninstall all but one of them")


class PluginExtensions(named.NamedExtensionManager):
    """stevedore's manager for ``fmkit.plugins``: every listed entry point except the disabled."""

    def __init__(self, disabled: set[str], on_load_failure_callback: Any):
        self.namespace = ENTRY_POINT_GROUP  # what listing needs; nothing is imported before super()
        # stevedore keeps each group's listing for the life of the process; a new plugin manager
        # lists again (its on-disk cache, keyed by sys.path and file times, keeps that cheap)
        self.ENTRY_POINT_CACHE.pop(ENTRY_POINT_GROUP, None)
        self.found = self.list_entry_points()
        names = sorted({ep.name for ep in self.found} - set(disabled))
        super().__init__(ENTRY_POINT_GROUP, names=names, invoke_on_load=False,
                         on_load_failure_callback=on_load_failure_callback, conflict_resolver=refuse_conflict,
                         on_missing_entrypoints_callback=lambda missing: None)


def discover(disabled: set[str]) -> Discovered:
    """Import every enabled plugin of the entry-point group through stevedore."""
    out = Discovered()
    mgr = PluginExtensions(disabled, lambda _mgr, ep, err: out.failed.append((ep.name, ep, err)))
    out.disabled = [(ep.name, ep) for ep in mgr.found if ep.name in disabled]
    groups: dict[str, list] = {}
    for ext in mgr.extensions:
        groups.setdefault(ext.name, []).append(ext)
    for name in sorted(groups):
        exts = groups[name]
        try:
            ext = exts[0] if len(exts) == 1 else refuse_conflict(ENTRY_POINT_GROUP, name, exts)
        except PluginNameConflict as e:
            out.failed.append((name, exts[0].entry_point, e))
            continue
        out.loaded.append((name, ext.plugin, ext.entry_point))
    return out
