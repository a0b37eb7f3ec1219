"""What a task fits in ``setup`` and cannot fit the same way twice (a tokenizer trained on the data:
the tokenizers library breaks ties in hash order, differently in each process) is fitted once:
reruns share it through ``Task.cache_dir``, and a resumed run continues with its own first one,
so token ids, checkpoints and exports always agree. Real processes, since the difference only shows
between processes."""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import run_cli, tiny_recipe, write_text_data


def _vocab(folder: Path) -> dict:
    return json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"]


def _export_tokenizer(run_dir: Path) -> Path:
    found = [p.parent for p in run_dir.glob("export*/**/tokenizer/tokenizer.json")]
    assert len(found) == 1, sorted(str(p) for p in run_dir.rglob("tokenizer.json"))
    return found[0]


def test_a_resumed_run_keeps_its_first_tokenizer_even_when_fitting_again_would_differ(tmp_path):
    recipe = tiny_recipe(tmp_path, epochs=1)
    recipe["data"]["cache"] = False  # nothing cached: the resumed process would train a tokenizer of its own
    recipe["export"] = {"formats": ["safetensors"]}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    first = run_cli("train", str(path), "--run-dir", str(tmp_path / "run"))
    assert first.returncode == 0, first.stderr[-2000:]
    fitted = _vocab(tmp_path / "run" / "artifacts" / "assets" / "tokenizer")
    write_text_data(tmp_path / "data", seed=7)  # other sentences, same labels: a tokenizer fitted now differs
    resumed = run_cli("train", str(tmp_path / "run" / "recipe.yaml"), "--resume", str(tmp_path / "run"),
                      "--set", "train.epochs=2")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    steps = [json.loads(x)["step"] for x in open(tmp_path / "run" / "metrics.jsonl") if '"train"' in x]
    assert max(steps) == 24  # it trained on: the second epoch
    assert _vocab(_export_tokenizer(tmp_path / "run")) == fitted  # the export's tokenizer is the checkpoint's


def test_reruns_on_the_same_data_share_one_trained_tokenizer_through_the_cache(tmp_path):
    recipe = tiny_recipe(tmp_path, epochs=1)
    recipe["export"] = {"formats": ["safetensors"]}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    vocabs = []
    for name in ("a", "b"):  # two processes, one cache folder
        r = run_cli("train", str(path), "--run-dir", str(tmp_path / name))
        assert r.returncode == 0, r.stderr[-2000:]
        vocabs.append(_vocab(_export_tokenizer(tmp_path / name)))
    assert vocabs[0] == vocabs[1]
    assert len(list((tmp_path / "cache" / "tokenizers").iterdir())) == 1
    write_text_data(tmp_path / "data", seed=7)  # other texts: another tokenizer, and features made with it
    r = run_cli("train", str(path), "--run-dir", str(tmp_path / "c"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(list((tmp_path / "cache" / "tokenizers").iterdir())) == 2
