"""Every error fmkit raises on purpose, in one place.

Each message says what went wrong, where (file, line, field path, plugin) and how to fix it.
The CLI maps :class:`FmkitError` subclasses to exit codes: ``exit_code`` 2 means bad usage or
invalid input, 1 means the work itself failed.
"""
from __future__ import annotations

from dataclasses import dataclass, field


class FmkitError(Exception):
    """Base class of fmkit's deliberate errors."""

    exit_code = 1


class UsageError(FmkitError):
    """The user asked for something that cannot be done as asked (exit code 2)."""

    exit_code = 2


@dataclass
class RecipeIssue:
    """One problem found in a recipe: a dotted path, an optional file line, and the message."""

    path: str
    message: str
    line: int | None = None
    file: str | None = None

    def __str__(self) -> str:
        where = self.file or "<recipe>"
        if self.line is not None:
            where += f":{self.line}"
        loc = self.path or "<root>"
        return f"{where}: {loc}: {self.message}"


class RecipeError(UsageError):
    """A recipe is invalid. ``issues`` holds every problem found, not just the first."""

    def __init__(self, issues: list[RecipeIssue], source: str | None = None):
        self.issues = issues
        self.source = source
        head = f"invalid recipe{f' {source}' if source else ''}: {len(issues)} problem(s)"
        super().__init__(head + "\n" + "\n".join(f"  - {i}" for i in issues))

    def to_json(self) -> list[dict]:
        return [
            {"path": i.path, "line": i.line, "file": i.file, "message": i.message}
            for i in self.issues
        ]


class ComponentNotFoundError(UsageError):
    """No component of that kind and id is registered."""

    def __init__(self, kind: str, name: str, suggestions: list[str] | None = None):
        self.kind, self.name, self.suggestions = kind, name, suggestions or []
        msg = f"no {kind} named {name!r} is registered"
        if self.suggestions:
            msg += f"; did you mean {', '.join(repr(s) for s in self.suggestions)}?"
        # "component" is no kind: a search across kinds points at the whole listing
        msg += f" (see `fmkit components list{'' if kind == 'component' else f' --kind {kind}'}`)"
        super().__init__(msg)


class AmbiguousComponentError(UsageError):
    """Two plugins provide the same short id for the same kind."""

    def __init__(self, kind: str, name: str, providers: list[str]):
        self.kind, self.name, self.providers = kind, name, providers
        qualified = " or ".join(f"'{p}:{name}'" for p in providers)
        super().__init__(
            f"{kind} {name!r} is provided by several plugins ({', '.join(providers)}); "
            f"use a qualified id: {qualified}"
        )


class DuplicateComponentError(FmkitError):
    """One plugin registered the same kind and id twice."""


class PluginLoadError(FmkitError):
    """A plugin failed to import or register (raised only in strict mode)."""


class PluginVersionError(PluginLoadError):
    """A plugin needs a hook-API version the installed core does not provide."""


class MissingPluginError(UsageError):
    """A recipe's ``required_plugins`` names a plugin that is absent or of the wrong version."""


class PluginHookError(FmkitError):
    """An exception raised inside a plugin's hook implementation; names the plugin and hook."""

    def __init__(self, plugin: str, hook: str, error: BaseException):
        self.plugin, self.hook, self.error = plugin, hook, error
        super().__init__(f"plugin {plugin!r} raised in hook {hook}: {type(error).__name__}: {error}")


class DataError(UsageError):
    """Input data cannot be read or does not match what the recipe says."""


class TrainingError(FmkitError):
    """Training could not go on (for example too many non-finite losses)."""


class ExportError(FmkitError):
    """An export failed or did not pass verification; nothing was left half-written."""


class DiskFullError(FmkitError):
    """The disk filled up while writing; says what could not be written, where, and how much
    space is free. Writes are atomic, so what was there before (the previous checkpoint) is intact."""

    def __init__(self, path, free_bytes: int | None):
        self.path, self.free_bytes = path, free_bytes
        free = "unknown" if free_bytes is None else f"{free_bytes / 2**20:.1f} MiB"
        super().__init__(f"no space left on the device: could not write {path} ({free} free there); nothing was "
                         "half-written and earlier files are intact. Free some space (or point tracking.runs_dir, "
                         "data.cache_dir or export.output at a larger disk) and run again")
