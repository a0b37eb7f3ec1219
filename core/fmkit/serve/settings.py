"""``fmkit serve``'s settings: the built-in defaults, then the recipe's ``serve:`` section of the run
or export being served, then the command-line flags given (a flag always wins)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import UsageError


def recipe_serve_section(path: str | Path) -> tuple[dict[str, Any], str | None]:
    """The ``serve:`` section stored with an export (``export.json``'s recipe) or a run directory
    (``recipe.yaml``), and the file it came from; ``({}, None)`` when there is none."""
    path = Path(path)
    try:
        if (path / "export.json").is_file():
            recipe = json.loads((path / "export.json").read_text(encoding="utf-8")).get("recipe")
            source = path / "export.json"
        elif (path / "recipe.yaml").is_file():
            import yaml

            recipe = yaml.safe_load((path / "recipe.yaml").read_text(encoding="utf-8"))
            source = path / "recipe.yaml"
        else:
            return {}, None
    except Exception as e:  # unreadable, not UTF-8, not JSON or YAML
        raise UsageError(f"cannot read the recipe stored in {path}: {e}") from None
    section = (recipe or {}).get("serve") if isinstance(recipe, dict) else None
    if section is None:
        return {}, None
    if not isinstance(section, dict):
        raise UsageError(f"{source}: serve: must be a mapping of settings, not {type(section).__name__}")
    return section, str(source)


def serve_settings(path: str | Path, flags: dict[str, Any]) -> dict[str, Any]:
    """Every setting of ``fmkit serve`` for ``path``: the recipe's ``serve:`` section over the
    defaults, and over both the ``flags`` that were given (``None`` means not given)."""
    from pydantic import ValidationError

    from ..recipe.schema import ServeSection

    section, source = recipe_serve_section(path)
    try:
        settings = ServeSection.model_validate(section).model_dump()
    except ValidationError as e:
        problems = "; ".join(f"serve.{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors())
        raise UsageError(f"{source}: {problems} (fix the recipe, or override with the matching flag)") from None
    unknown = sorted(k for k in flags if k not in settings and k not in ("trust_remote_code",))
    if unknown:
        raise ValueError(f"serve_settings: no such setting {unknown}")
    settings.update({k: v for k, v in flags.items() if v is not None})
    if settings.get("backend") == "auto":
        settings["backend"] = resolve_backend(path)
    return settings


def resolve_backend(path: str | Path) -> str:
    """``onnx`` for an export folder with an ONNX model (ONNX Runtime is the faster CPU runtime),
    else ``torch`` (run directories, safetensors and TorchScript exports)."""
    path = Path(path)
    has_onnx = (path / "export.json").is_file() and any((path / n).is_file() for n in ("model.onnx", "model.int8.onnx"))
    return "onnx" if has_onnx else "torch"
