"""Plugin discovery and the plugin manager.

Plugins come from three places, in this order: the core's own built-in plugin, the entry-point
group ``fmkit.plugins`` (loaded with stevedore; a plugin that fails is recorded and skipped), and
explicit registration (:func:`fmkit.register_plugin`, or a recipe's ``plugins:`` list of module
paths). Controls, the same as pytest's: ``FMKIT_DISABLE_PLUGIN_AUTOLOAD=1`` loads nothing from
entry points, ``FMKIT_DISABLE_PLUGINS=a,b`` (``--disable-plugin``) switches plugins off, and
``FMKIT_STRICT_PLUGINS=1`` (``--strict-plugins``) turns every load failure into an error.
"""
from __future__ import annotations

import importlib
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginHookError, PluginLoadError, PluginVersionError

ENTRY_POINT_GROUP = "fmkit.plugins"
BUILTIN_PLUGIN = "fmkit"


@dataclass
class PluginInfo:
    """What ``fmkit plugins list`` shows about one plugin."""

    name: str
    source: str  # builtin | entry-point | python | recipe
    status: str = "loaded"  # loaded | failed | disabled | refused
    distribution: str | None = None
    version: str | None = None
    location: str | None = None
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    api: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _core_version() -> str:
    from . import __version__

    return __version__


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str) -> set[str]:
    return {x.strip() for x in os.environ.get(name, "").split(",") if x.strip()}


def check_api_compat(plugin_name: str, obj: Any) -> str | None:
    """Return the plugin's declared hook-API range; raise if the installed core is outside it."""
    spec = getattr(obj, "fmkit_api", None)
    if spec is None:
        return None
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        ok = SpecifierSet(str(spec)).contains(hookspecs.HOOK_API_VERSION, prereleases=True)
    except InvalidSpecifier as e:
        raise PluginVersionError(f"plugin {plugin_name!r} declares an invalid fmkit_api {spec!r}: {e}") from e
    if not ok:
        raise PluginVersionError(
            f"plugin {plugin_name!r} needs fmkit hook API {spec}, but the installed fmkit provides "
            f"hook API {hookspecs.HOOK_API_VERSION}; upgrade or downgrade the plugin or fmkit"
        )
    return str(spec)


class PluginManager:
    """fmkit's pluggy manager plus the bookkeeping that ``fmkit plugins list`` reports."""

    def __init__(self, autoload: bool | None = None, disabled: set[str] | None = None, strict: bool | None = None):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.strict = _env_flag("FMKIT_STRICT_PLUGINS") if strict is None else strict
        self.disabled = _env_list("FMKIT_DISABLE_PLUGINS") | set(disabled or ())
        self.autoload = (not _env_flag("FMKIT_DISABLE_PLUGIN_AUTOLOAD")) if autoload is None else autoload
        self.infos: dict[str, PluginInfo] = {}
        self._registry = None
        self._sections = None
        self._workflows = None
        #: seconds spent per hook, over every call (pluggy's call monitoring)
        self.hook_timings: dict[str, float] = {}
        self._call_starts = threading.local()
        self.pm.add_hookcall_monitoring(self._before_call, self._after_call)
        from .builtin import plugin as builtin_plugin

        self._add(builtin_plugin, BUILTIN_PLUGIN, PluginInfo(BUILTIN_PLUGIN, "builtin", distribution="fmkit", version=_core_version()))
        if self.autoload:
            self.load_entry_points()

    # ------------------------------------------------------------------ loading
    def _fail(self, info: PluginInfo, error: BaseException, status: str = "failed") -> None:
        info.status = status
        info.error = f"{type(error).__name__}: {error}"
        self.infos[info.name] = info
        if self.strict:
            if isinstance(error, PluginLoadError):
                raise error
            raise PluginLoadError(
                f"plugin {info.name!r} ({info.distribution or 'no distribution'} {info.version or ''}) "
                f"failed to load: {info.error}"
            ) from error

    def _add(self, obj: Any, name: str, info: PluginInfo) -> bool:
        if name in self.disabled:
            info.status = "disabled"
            self.infos[name] = info
            return False
        try:
            info.api = check_api_compat(name, obj)
            if self.pm.has_plugin(name):
                raise PluginLoadError(f"a plugin named {name!r} is already registered")
            self.pm.register(obj, name=name)
        except PluginVersionError as e:
            self._fail(info, e, status="refused")
            return False
        except Exception as e:  # a broken plugin never takes the core down
            self._fail(info, e)
            return False
        info.location = info.location or getattr(obj, "__file__", None) or type(obj).__module__
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(obj) or [])
        self.infos[name] = info
        self._registry = self._sections = self._workflows = None
        return True

    def load_entry_points(self) -> None:
        """Load every plugin of the ``fmkit.plugins`` entry-point group (stevedore, :mod:`fmkit.discovery`)."""
        from .discovery import discover, distributions

        owners = distributions()

        def info(name: str, ep: Any) -> PluginInfo:
            dist, version = owners.get((ep.name, ep.value), (None, None))
            return PluginInfo(name, "entry-point", distribution=dist, version=version, location=ep.value)

        found = discover(self.disabled)
        for name, ep in found.disabled:
            self.infos[name] = PluginInfo(**{**info(name, ep).__dict__, "status": "disabled"})
        for name, ep, error in found.failed:
            self._fail(info(name, ep), error)
        for name, plugin, ep in found.loaded:
            self._add(plugin, name, info(name, ep))

    def register(self, obj: Any, name: str | None = None, source: str = "python") -> bool:
        """Register a plugin object or module; returns whether it was accepted."""
        name = name or getattr(obj, "fmkit_plugin_name", None) or getattr(obj, "__name__", None) or type(obj).__name__
        if self.pm.has_plugin(name) and self.pm.get_plugin(name) is obj:
            return True
        return self._add(obj, name, PluginInfo(name, source, location=getattr(obj, "__file__", None)))

    def unregister(self, name: str) -> None:
        """Remove a plugin (and its components) from this manager."""
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        self.infos.pop(name, None)
        self._registry = self._sections = self._workflows = None

    def load_modules(self, paths: list[str], source: str = "recipe") -> None:
        """Import and register modules by dotted path (a recipe's ``plugins:`` list)."""
        for path in paths:
            if self.pm.has_plugin(path):
                continue
            info = PluginInfo(path, source, location=path)
            if path in self.disabled:
                info.status = "disabled"
                self.infos[path] = info
                continue
            try:
                module = importlib.import_module(path)
            except Exception as e:
                self._fail(info, e)
                continue
            info.location = getattr(module, "__file__", path)
            self._add(module, path, info)

    def resolve_distributions(self) -> None:
        """Fill in the distribution and version of plugins registered from Python or a recipe
        (entry-point plugins know theirs), from the installed package that holds their module."""
        todo = [i for i in self.infos.values() if i.distribution is None and i.status == "loaded"]
        if not todo:
            return
        from importlib import metadata

        owners = metadata.packages_distributions()  # scans every installed distribution: only when asked
        for info in todo:
            obj = self.pm.get_plugin(info.name)
            module = getattr(obj, "__name__", None) if isinstance(obj, type(os)) else type(obj).__module__
            dists = owners.get((module or "").split(".")[0]) or []
            if dists:
                info.distribution = dists[0]
                try:
                    info.version = metadata.version(dists[0])
                except metadata.PackageNotFoundError:
                    pass

    # ------------------------------------------------------------------ using
    @property
    def hook(self) -> Any:
        return self.pm.hook

    @property
    def registry(self):
        """The component registry, rebuilt whenever the set of plugins changes."""
        if self._registry is None:
            from .registry import Registry

            self._registry = Registry.from_plugins(self)
        return self._registry

    @property
    def recipe_sections(self) -> dict:
        """Top-level recipe sections declared by plugins (``fmkit_register_recipe_sections``), by
        name: :class:`fmkit.RecipeSection` objects, rebuilt whenever the set of plugins changes."""
        if self._sections is None:
            from .recipe.sections import collect_sections

            self._sections = collect_sections(self)
        return self._sections

    def workflows(self, reserved: set[str] = frozenset()) -> dict[str, tuple[str, str]]:
        """Python functions plugins add to the ``fmkit`` namespace (``fmkit_register_workflows``):
        ``{name: (plugin, "module:function")}``, rebuilt whenever the set of plugins changes."""
        if self._workflows is None:
            from .workflows import collect_workflows

            self._workflows = collect_workflows(self, set(reserved))
        return self._workflows

    def impls(self, hook_name: str) -> list[tuple[str, Any]]:
        """``(plugin name, function)`` for every implementation of a hook, in call order."""
        caller = getattr(self.pm.hook, hook_name)
        return [(impl.plugin_name, impl.function) for impl in reversed(caller.get_hookimpls())]

    def dispatch(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call a hook through pluggy (``pm.hook.<name>(**kwargs)``) and return its non-None results.

        Everything pluggy documents holds: ``tryfirst``/``trylast`` ordering, hook wrappers
        (``wrapper=True`` and old-style ``hookwrapper=True``) around the other implementations,
        ``firstresult``, and implementations that take fewer arguments than the spec. The call
        monitor (:meth:`_before_call`/:meth:`_after_call`) times every call in
        :attr:`hook_timings` and turns an exception into :class:`PluginHookError` naming the plugin
        whose implementation raised.
        """
        return getattr(self.pm.hook, hook_name)(**kwargs)

    def collect(self, hook_name: str, **kwargs: Any) -> dict[str, Any]:
        """Call a hook on each plugin on its own (through pluggy) and return ``{plugin: result}``
        for non-None results: for hooks whose answers are kept per plugin (checkpoint state)."""
        results: dict[str, Any] = {}
        for plugin in self._implementers(hook_name):
            out = self.call_one(plugin, hook_name, **kwargs)
            if out:
                results[plugin] = out[0]
        return results

    def call_one(self, plugin: str, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call one plugin's implementation of a hook (with that plugin's own wrappers)."""
        others = [self.pm.get_plugin(p) for p in self._implementers(hook_name) if p != plugin]
        return self.pm.subset_hook_caller(hook_name, remove_plugins=others)(**kwargs)

    def _implementers(self, hook_name: str) -> list[str]:
        names = [impl.plugin_name for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls())]
        return list(dict.fromkeys(names))

    # ------------------------------------------------------------------ call monitoring
    def _before_call(self, hook_name: str, hook_impls: list, kwargs: dict) -> None:
        stack = self._call_starts.__dict__.setdefault("stack", [])
        stack.append(time.perf_counter())

    def _after_call(self, outcome: Any, hook_name: str, hook_impls: list, kwargs: dict) -> None:
        elapsed = time.perf_counter() - self._call_starts.stack.pop()
        self.hook_timings[hook_name] = self.hook_timings.get(hook_name, 0.0) + elapsed
        error = outcome.exception
        if isinstance(error, Exception) and not isinstance(error, PluginHookError):
            outcome.force_exception(PluginHookError(_culprit(error, hook_impls), hook_name, error))


def _culprit(error: BaseException, hook_impls: list) -> str:
    """The plugin whose implementation raised: the innermost traceback frame running one of them."""
    codes = {getattr(impl.function, "__code__", None): impl.plugin_name for impl in hook_impls}
    found, tb = None, error.__traceback__
    while tb is not None:
        found = codes.get(tb.tb_frame.f_code, found)
        tb = tb.tb_next
    if found is None:
        names = sorted({impl.plugin_name for impl in hook_impls})
        found = names[0] if len(names) == 1 else "one of " + ", ".join(names)
    return found


_default: PluginManager | None = None
_pending: list[tuple[Any, str | None]] = []


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, created on first use."""
    global _default
    if _default is None:
        _default = PluginManager()
        for obj, name in _pending:
            _default.register(obj, name)
    return _default


def configure(strict: bool | None = None, disabled: set[str] | None = None, autoload: bool | None = None) -> PluginManager:
    """Replace the process-wide manager with one built from these settings (used by the CLI)."""
    global _default
    _default = PluginManager(autoload=autoload, disabled=disabled, strict=strict)
    for obj, name in _pending:
        _default.register(obj, name)
    return _default


def unregister_plugin(name: str) -> None:
    """Undo :func:`register_plugin`."""
    _pending[:] = [p for p in _pending if p[1] != name]
    if _default is not None:
        _default.unregister(name)


def register_plugin(obj: Any, name: str | None = None) -> bool:
    """Register a plugin from Python code: a module or an object with ``@fmkit.hookimpl`` methods."""
    _pending.append((obj, name))
    if _default is None:
        return True
    return _default.register(obj, name)
