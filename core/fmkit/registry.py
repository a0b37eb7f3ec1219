"""The component registry: every component of every loaded plugin, by kind and id.

Short ids resolve when exactly one plugin provides them; qualified ids ``plugin:name`` always
resolve. A plugin whose registration hook raises, or that registers the same id twice, is
reported (like a plugin that failed to import) and its components are left out.
"""
from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any, Iterator

from .components import KINDS, Component
from .errors import AmbiguousComponentError, ComponentNotFoundError, DuplicateComponentError

if TYPE_CHECKING:  # pragma: no cover
    from .plugins import PluginManager

REGISTRATION_HOOKS = {
    "task": "fmkit_register_tasks",
    "model": "fmkit_register_models",
    "dataset": "fmkit_register_datasets",
    "transform": "fmkit_register_transforms",
    "loss": "fmkit_register_losses",
    "optimizer": "fmkit_register_optimizers",
    "scheduler": "fmkit_register_schedulers",
    "metric": "fmkit_register_metrics",
    "exporter": "fmkit_register_exporters",
}


class Registry:
    """Components by kind, then short id, then providing plugin."""

    def __init__(self) -> None:
        self._by_kind: dict[str, dict[str, dict[str, Component]]] = {k: {} for k in KINDS}

    @classmethod
    def from_plugins(cls, manager: PluginManager) -> Registry:
        reg = cls()
        per_plugin: dict[str, list[Component]] = {}
        # a plugin already marked failed (its recipe sections were refused) brings no components
        broken: set[str] = {n for n, i in manager.infos.items() if i.status == "failed"}
        for kind, hook_name in REGISTRATION_HOOKS.items():
            for plugin, fn in manager.impls(hook_name):
                if plugin in broken:
                    continue
                try:
                    comps = list(fn() or [])
                    for c in comps:
                        if not isinstance(c, Component) or c.kind != kind:
                            raise TypeError(f"{hook_name} must return Components of kind {kind!r}, got {c!r}")
                except Exception as e:
                    broken.add(plugin)
                    manager._fail(manager.infos[plugin], e)
                    continue
                per_plugin.setdefault(plugin, []).extend(comps)
        for plugin, comps in per_plugin.items():
            if plugin in broken:
                continue
            seen: set[tuple[str, str]] = set()
            try:
                for c in comps:
                    if (c.kind, c.name) in seen:
                        raise DuplicateComponentError(
                            f"plugin {plugin!r} registers {c.kind} {c.name!r} twice; ids must be unique per plugin"
                        )
                    seen.add((c.kind, c.name))
            except DuplicateComponentError as e:
                manager._fail(manager.infos[plugin], e)
                continue
            for c in comps:
                c.plugin = plugin
                reg._by_kind[c.kind].setdefault(c.name, {})[plugin] = c
        return reg

    def add(self, component: Component) -> None:
        """Add one component directly (tests and embedding applications)."""
        providers = self._by_kind[component.kind].setdefault(component.name, {})
        if component.plugin in providers:
            raise DuplicateComponentError(f"{component.kind} {component.qualified_id} is registered twice")
        providers[component.plugin] = component

    def __iter__(self) -> Iterator[Component]:
        for kind in KINDS:
            for name in sorted(self._by_kind[kind]):
                yield from self._by_kind[kind][name].values()

    def names(self, kind: str) -> list[str]:
        return sorted(self._by_kind[kind])

    def components(self, kind: str | None = None) -> list[Component]:
        return [c for c in self if kind is None or c.kind == kind]

    def suggest(self, kind: str, name: str) -> list[str]:
        candidates = self.names(kind) + [c.qualified_id for c in self.components(kind)]
        return difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)

    def get(self, kind: str, name: str) -> Component:
        """Resolve a short or qualified id to its component."""
        if kind not in KINDS:
            raise ComponentNotFoundError("component kind", kind, difflib.get_close_matches(kind, list(KINDS)))
        plugin, sep, short = name.rpartition(":")
        providers = self._by_kind[kind].get(short if sep else name, {})
        if sep:
            if plugin in providers:
                return providers[plugin]
        elif len(providers) == 1:
            return next(iter(providers.values()))
        elif len(providers) > 1:
            raise AmbiguousComponentError(kind, name, sorted(providers))
        raise ComponentNotFoundError(kind, name, self.suggest(kind, name))

    def find(self, name: str) -> list[Component]:
        """Every component of any kind matching a short or qualified id."""
        found = []
        for kind in KINDS:
            try:
                found.append(self.get(kind, name))
            except ComponentNotFoundError:
                pass
        return found

    def build(self, kind: str, section: Any, context: dict | None = None) -> Any:
        """Build a component from a recipe section (``{"name": ..., **params}`` or just a name)."""
        if isinstance(section, str):
            section = {"name": section}
        section = dict(section)
        comp = self.get(kind, section.pop("name"))
        return comp.build(section, context)
