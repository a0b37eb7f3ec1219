"""``fmkit new plugin`` and ``fmkit new recipe``: scaffolds from ``templates/`` and the registry."""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from .errors import UsageError
from .fielddocs import describe_type

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates" / "plugin"


def _template_dir() -> Path:
    if TEMPLATE_DIR.is_dir():
        return TEMPLATE_DIR
    repo = Path(__file__).resolve().parents[2] / "templates" / "plugin"  # editable install
    if repo.is_dir():
        return repo
    raise UsageError("the plugin template is missing from this fmkit installation; reinstall fmkit")


def scaffold_plugin(name: str, parent: Path) -> Path:
    """Copy the plugin template, renaming ``fmkit_example``/``fmkit-example`` to ``name``."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name):
        raise UsageError(f"plugin name {name!r} must start with a letter and hold only letters, digits, - and _")
    dist = name.lower().replace("_", "-")
    package = dist.replace("-", "_")
    dest = Path(parent) / dist
    if dest.exists():
        raise UsageError(f"{dest} already exists; choose another name or folder (-o)")
    src = _template_dir()
    tmp = dest.with_name(f".tmp-{dist}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for path in src.rglob("*"):
            if "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            rel = str(path.relative_to(src)).replace("fmkit_example", package)
            target = tmp / rel
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            text = path.read_text(encoding="utf-8")
            text = text.replace("fmkit_example", package).replace("fmkit-example", dist)
            target.write_text(text, encoding="utf-8")
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _commented(params_model, indent: str, values: dict[str, Any]) -> list[str]:
    lines = []
    for fname, field in params_model.model_fields.items():
        value = values.get(fname, None if field.is_required() else field.get_default(call_default_factory=True))
        if hasattr(value, "model_dump"):
            value = value.model_dump(mode="json")
        kind = describe_type(field.annotation)
        note = f"{field.description} ({kind})" if field.description else kind
        if field.is_required():
            note += "; required"
        dumped = yaml.safe_dump({fname: value}, default_flow_style=True, sort_keys=False, width=10**6).strip()[1:-1]
        prefix = "" if field.is_required() or fname in values else "# "
        lines.append(f"{indent}{prefix}{dumped}    # {note}")
    return lines


def _suggested_data(ds, data: str) -> tuple[dict[str, Any], list[str]]:
    """The dataset's suggested parameters for the file ``data`` (its optional ``suggest_params``,
    see :class:`fmkit.Dataset`) and the notes explaining them; ``{"train": data}`` without one."""
    from .errors import DataError

    if not Path(data).exists():
        raise UsageError(f"--data {data}: no such file or folder (relative paths are read from the current "
                         f"folder, {Path.cwd()})")
    from .engine.data import special_data_paths

    special = special_data_paths(data, "--data")  # a FIFO would block the read forever, /dev/zero never end
    if special:
        raise UsageError(f"--data: {special[0][1]}")
    suggest = getattr(ds.load_factory(), "suggest_params", None) if ds else None
    if not callable(suggest):
        return {"train": data}, [f"# data.train is {data}; check the other data fields by hand"]
    try:
        values, notes = suggest(data)
    except DataError as e:
        raise UsageError(f"--data {data}: {e}") from None
    return dict(values), [f"# {n}" for n in notes]


def starter_recipe(task_name: str, registry, sections: dict | None = None, data: str | None = None) -> str:
    """A commented recipe for ``task_name`` with the task's default components filled in, and each
    installed plugin's own section (``sections``: name -> :class:`fmkit.RecipeSection`) written
    commented out, so a starter turns on no plugin's workflow by itself; with
    ``data`` (a training file), the dataset's parameters suggested from that file's columns."""
    from .recipe.schema import DataSection, EvaluateSection, ExportSection, TrainSection

    task = registry.get("task", task_name)
    d = task.tags.get("defaults", {})
    out = [f"# fmkit recipe for {task.name}: {task.summary}",
           ("# Check the data section, then: fmkit validate THIS_FILE && fmkit train THIS_FILE" if data else
            "# Fill in the data paths, then: fmkit validate THIS_FILE && fmkit train THIS_FILE"),
           "# Commented lines show optional fields with their defaults.", "",
           "task:", f"  name: {task.name}    # provided by plugin {task.plugin}"]
    out += _commented(task.params_model(), "  ", dict(d.get("task_example", {})))
    model_name = d.get("model")
    pretrained = bool((d.get("model_example") or {}).get("pretrained"))
    if model_name:
        m = registry.get("model", model_name)
        out += ["", "model:", f"  name: {m.name}    # {m.summary}"]
        if d.get("model_note"):  # the task's own word on its starter model
            out.append(f"  # {d['model_note']}")
        elif pretrained:
            out.append("  # fine-tunes a pretrained backbone installed with a pip package")
        elif "pretrained" in m.params_model().model_fields:
            out.append("  # a small model from scratch: give `pretrained:` to fine-tune one (learns far more from little data)")
        else:
            out.append("  # a small model trained from scratch")
        out += _commented(m.params_model(), "  ", dict(d.get("model_example", m.example)))
    ds = registry.get("dataset", d["dataset"]) if d.get("dataset") else None
    out += ["", "data:"]
    if ds:
        out.append(f"  name: {ds.name}    # {ds.summary}")
        values = dict(ds.example)
        if data:
            suggested, notes = _suggested_data(ds, data)
            values = {k: v for k, v in values.items() if k not in ("train", "validation", "test")}
            values.update(suggested)
            out += ["  " + n for n in notes]
        out += _commented(ds.params_model(), "  ", values)
    out += [line for line in _commented(DataSection, "  ", {}) if not line.strip().startswith(("name", "# name"))]
    if d.get("loss"):
        out += ["", f"# loss: {d['loss'] if isinstance(d['loss'], str) else d['loss']['name']}    # the task's default"]
    out += ["", "optimizer:", "  name: adamw    # see `fmkit components list --kind optimizer`",
            f"  lr: {'0.0001' if pretrained else '0.0003'}    # learning rate"
            + ("; small, for fine-tuning a pretrained model" if pretrained else ""), "", "scheduler:", "  name: linear    # warmup, then linear decay",
            "  warmup_ratio: 0.1    # share of steps spent warming up", "", "train:"]
    out += _commented(TrainSection, "  ", {"epochs": 3, "batch_size": 32})
    out += ["", "evaluate:"] + _commented(EvaluateSection, "  ", {})
    out += ["", "export:"] + _commented(ExportSection, "  ", {"formats": ["safetensors"]})
    for name, section in sorted((sections or {}).items()):  # commented out: each turns on a plugin's workflow
        summary = f"{section.summary} " if section.summary else ""
        out += ["", f"# {name}: {summary}(provided by plugin {section.plugin}); off in this starter.",
                "# To use it, uncomment the lines below (remove one leading '# ').", f"# {name}:"]
        out += [f"# {line}" for line in _commented(section.model, "  ", dict(section.example))]
    return "\n".join(out) + "\n"
