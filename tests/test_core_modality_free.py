"""The core knows no modality: it names no plugin, no modality library, no plugin task id, and it
guesses no model's head from its parameter names."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import fmkit

CORE = Path(fmkit.__file__).resolve().parent
REPO = CORE.parents[1]

#: libraries that belong to one modality (and so to a plugin's dependencies, never the core's)
MODALITY_LIBRARIES = ["transformers", "tokenizers", "peft", "timm", "torchvision", "torchaudio", "librosa",
                      "soundfile", "PIL", "pillow", "sentencepiece", "seqeval", "statsmodels"]


def _first_party_plugins() -> tuple[list[str], list[str]]:
    """Distribution/package names of the plugins under plugins/, and the task ids they register."""
    dists = []
    for pyproject in sorted((REPO / "plugins").glob("*/pyproject.toml")):
        dist = re.search(r'^name = "([^"]+)"', pyproject.read_text(), re.M).group(1)
        dists += [dist, dist.replace("-", "_")]
    tasks = [c.name for c in fmkit.get_registry().components("task") if c.plugin != "fmkit"]
    return dists, sorted(set(tasks))


def _core_files() -> list[Path]:
    # templates/ (a symlink into the repository) is the scaffold of a third-party plugin, not core code
    return [p for p in CORE.rglob("*") if p.is_file() and "templates" not in p.relative_to(CORE).parts
            and p.suffix in {".py", ".html", ".md", ".txt", ".json", ".yaml", ".toml"}]


def test_the_plugin_inventory_is_found():
    dists, tasks = _first_party_plugins()
    assert {"fmkit-nlp", "fmkit_nlp", "fmkit-timeseries"} <= set(dists)
    assert {"text-classification", "token-classification", "time-series-forecasting"} <= set(tasks)


def test_core_names_no_plugin_modality_library_or_plugin_task():
    dists, tasks = _first_party_plugins()
    words = [re.escape(w) for w in dists + MODALITY_LIBRARIES + tasks]
    pattern = re.compile(r"(?<![\w.-])(" + "|".join(words) + r")(?![\w-])", re.I)
    hits = []
    for path in _core_files():
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for m in pattern.finditer(line):
                hits.append(f"{path.relative_to(REPO)}:{n}: {m.group(0)!r} in {line.strip()[:100]}")
    assert not hits, "the core names modality-specific things:\n" + "\n".join(hits)


def test_the_grep_catches_a_plugin_name(tmp_path, monkeypatch):
    """The scan above is not vacuous: a core file naming a plugin library is found."""
    (tmp_path / "engine.py").write_text("import timm  # oops\n")
    monkeypatch.setattr(f"{__name__}.CORE", tmp_path)
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path.parent)
    with pytest.raises(AssertionError, match="timm"):
        test_core_names_no_plugin_modality_library_or_plugin_task()


torch = pytest.importorskip("torch")


class _Net(torch.nn.Module):
    def __init__(self, heads=None):
        super().__init__()
        self.body = torch.nn.Linear(3, 3)
        self.classifier = torch.nn.Linear(3, 2)  # a conventional head name the core must not guess
        if heads is not None:
            self.fmkit_head_prefixes = heads


def test_head_learning_rate_uses_the_heads_the_model_declares():
    from fmkit.builtin.optimizers import AdamWParams, param_groups

    groups = param_groups(_Net(heads=("body",)), AdamWParams(lr=0.1, head_lr=1.0, weight_decay=0.0))
    by_lr = {g["lr"]: sum(p.numel() for p in g["params"]) for g in groups}
    assert by_lr == {1.0: 12, 0.1: 8}  # body (3x3 + 3) at head_lr; classifier at lr


def test_a_head_learning_rate_without_declared_heads_is_refused():
    from fmkit.builtin.optimizers import AdamWParams, param_groups
    from fmkit.errors import UsageError

    with pytest.raises(UsageError, match="_Net declares no fmkit_head_prefixes"):
        param_groups(_Net(), AdamWParams(head_lr=1.0))
    assert len(param_groups(_Net(), AdamWParams())) == 2  # no head_lr: decay and no-decay groups only


def test_head_prefixes_match_whole_module_names():
    from fmkit.model_parts import head_prefixes, is_head_parameter

    heads = head_prefixes(_Net(heads=("net.head.",)))
    assert is_head_parameter("net.head.weight", heads) and is_head_parameter("net.head", heads)
    assert not is_head_parameter("net.header.weight", heads)
