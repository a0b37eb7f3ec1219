"""fmkit-nlp tasks end to end on tiny models: token classification, causal LM, LoRA."""
from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import pytest
import torch

import fmkit
from fmkit.errors import DataError
from fmkit_nlp.metrics import EntityScores, EntityParams, entity_spans

FIRST = "alice bob carol dave erin frank grace heidi ivan judy".split()
CITY = "paris berlin rome madrid vienna oslo lisbon prague".split()
VERB = "visited left loves flew to".split()
FILL = "yesterday today then again quickly".split()
TINY_BERT = {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
             "intermediate_size": 64, "max_position_embeddings": 64}


def _sentence(rng):
    words, tags = [], []
    for w, t in ((rng.choice(FIRST), "B-PER"), (rng.choice(FIRST) + "son", "I-PER")) if rng.random() < 0.5 else \
            ((rng.choice(FIRST), "B-PER"),):
        words.append(w)
        tags.append(t)
    words += [rng.choice(VERB)]
    tags += ["O"]
    if rng.random() < 0.5:
        words.append(rng.choice(FILL))
        tags.append("O")
    words.append(rng.choice(CITY))
    tags.append("B-LOC")
    return words, tags


def write_conll(path: Path, n: int, seed: int):
    rng = random.Random(seed)
    lines = ["-DOCSTART- -X- O O", ""]
    for _ in range(n):
        words, tags = _sentence(rng)
        lines += [f"{w} NN O {t}" for w, t in zip(words, tags)] + [""]
    path.write_text("\n".join(lines))
    return str(path)


def write_city_or_name(path: Path, n: int, seed: int) -> None:
    """Texts labelled 1 when they end in a city, 0 when they end in a first name."""
    rng = random.Random(seed)
    rows = ["text,label"] + [f"{' '.join(rng.sample(FILL, 3))} {rng.choice(CITY if i % 2 else FIRST)},{i % 2}"
                             for i in range(n)]
    path.write_text("\n".join(rows))


def test_entity_spans_follow_conlleval():
    assert entity_spans(["B-PER", "I-PER", "O", "B-LOC"]) == {("PER", 0, 2), ("LOC", 3, 4)}
    assert entity_spans(["I-PER", "I-PER", "B-PER"]) == {("PER", 0, 2), ("PER", 2, 3)}  # I- opens an entity
    assert entity_spans(["B-PER", "I-LOC"]) == {("PER", 0, 1), ("LOC", 1, 2)}  # a type change splits
    assert entity_spans(["S-PER", "B-LOC", "E-LOC", "O"]) == {("PER", 0, 1), ("LOC", 1, 3)}  # BIOES
    assert entity_spans(["O", "O"]) == set()


@pytest.mark.skipif(importlib.util.find_spec("seqeval") is None, reason="seqeval not installed (comparison only)")
def test_entity_scores_match_seqeval():
    from seqeval.metrics import f1_score

    rng = random.Random(3)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    gold = [[rng.choice(tags) for _ in range(12)] for _ in range(40)]
    pred = [[t if rng.random() < 0.7 else rng.choice(tags) for t in row] for row in gold]
    m = EntityScores(EntityParams(), {"labels": tags})
    onehot = torch.nn.functional.one_hot(torch.tensor([[tags.index(t) for t in r] for r in pred]), 5).float()
    m.update(onehot, torch.tensor([[tags.index(t) for t in r] for r in gold]))
    assert m.compute()["entity_f1"] == pytest.approx(f1_score(gold, pred), abs=1e-9)


def test_entity_scores_count_exact_spans_and_skip_ignored_positions():
    labels = ["O", "B-PER", "I-PER", "B-LOC"]
    m = EntityScores(EntityParams(), {"labels": labels})
    gold = torch.tensor([[1, 2, -100, 0, 3], [3, 0, 0, -100, -100]])
    pred_ids = torch.tensor([[1, 0, 3, 0, 3], [3, 0, 3, 0, 0]])  # PER cut short; an extra LOC; masked slot ignored
    m.update(torch.nn.functional.one_hot(pred_ids, 4).float(), gold)
    out = m.compute()  # gold: PER(0,2) LOC(3,4) | LOC(0,1); pred: PER(0,1) LOC(3,4) | LOC(0,1) LOC(2,3)
    assert out["entity_precision"] == pytest.approx(2 / 4) and out["entity_recall"] == pytest.approx(2 / 3)
    assert out["entity_f1_LOC"] == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1)) and out["entity_f1_PER"] == 0.0


def test_conll_errors_name_file_and_line(tmp_path):
    from fmkit_nlp.token_datasets import TokenFiles, TokenFilesParams

    bad = tmp_path / "bad.conll"
    bad.write_text("John B-PER\nlives\n")
    with pytest.raises(DataError, match=r"bad.conll:2"):
        TokenFiles(TokenFilesParams(train=str(bad))).load()


def _tiny_run(tmp_path, task, model, data, epochs=6, lr=0.005, **extra):
    recipe = {"task": task, "model": model, "data": {"cache_dir": str(tmp_path / "cache"), **data},
              "optimizer": {"name": "adamw", "lr": lr}, "train": {"epochs": epochs, "batch_size": 16, "seed": 1,
                                                                     "progress": "off", "log_every": 5},
              "tracking": {"runs_dir": str(tmp_path / "runs"), "tensorboard": False}, **extra}
    return fmkit.train(recipe, run_dir=str(tmp_path / "run"))


def test_token_classification_trains_exports_and_predicts_entities(tmp_path):
    train, test = write_conll(tmp_path / "train.conll", 300, 0), write_conll(tmp_path / "test.conll", 60, 1)
    run = _tiny_run(tmp_path, {"name": "token-classification", "max_length": 32, "tokenizer": {"vocab_size": 300}},
                    {"name": "hf-token-classifier", "config": TINY_BERT},
                    {"name": "token-files", "train": train, "test": test, "validation_split": 0.2},
                    export={"formats": ["onnx"], "tolerance": 1e-3})
    assert run.results["entity_f1"] > 0.9, run.results
    assert {"entity_precision", "entity_recall", "entity_f1_PER", "entity_f1_LOC", "accuracy"} <= set(run.results)
    predictor = fmkit.load(run.exports["onnx"], backend="onnx")
    [answer] = predictor.predict(["grace visited oslo"])
    assert [t["word"] for t in answer["tokens"]] == ["grace", "visited", "oslo"]
    assert {(e["type"], e["text"]) for e in answer["entities"]} == {("PER", "grace"), ("LOC", "oslo")}


def test_causal_lm_lowers_perplexity_and_scores_text(tmp_path):
    rng = random.Random(0)
    lines = [f"the {rng.choice(['cat', 'dog'])} sat on the {rng.choice(['mat', 'rug'])} and slept" for _ in range(200)]
    (tmp_path / "train.txt").write_text("\n".join(lines))
    (tmp_path / "test.txt").write_text("\n".join(lines[:30]))
    model = {"name": "hf-causal-lm", "config": {"model_type": "gpt2", "n_embd": 32, "n_layer": 1, "n_head": 2,
                                                "n_positions": 64}}
    run = _tiny_run(tmp_path, {"name": "causal-lm", "max_length": 32, "tokenizer": {"vocab_size": 100}}, model,
                    {"name": "text-files", "train": str(tmp_path / "train.txt"), "test": str(tmp_path / "test.txt"),
                     "validation_split": 0.1}, epochs=4, export={"formats": ["onnx"]})
    assert run.results["perplexity"] < 3.0, run.results  # a uniform guess over the vocabulary would be ~100
    first = json.loads((run.run_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert first["loss"] > run.results["token_nll"]
    [good, odd] = fmkit.load(run.exports["onnx"], backend="onnx").predict(
        ["the cat sat on the mat", "mat the on slept dog the"])
    assert good["perplexity"] < odd["perplexity"]
    assert good["next_tokens"][0]["token"].strip() == "and"


@pytest.mark.skipif(importlib.util.find_spec("peft") is None, reason="peft not installed (pip install 'fmkit-nlp[peft]')")
def test_lora_trains_adapters_only_and_exports_merged_weights(tmp_path):
    write_city_or_name(tmp_path / "train.csv", 240, seed=0)
    model = {"name": "hf-classifier", "config": TINY_BERT,
             "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["query", "value"]}}
    run = _tiny_run(tmp_path, {"name": "text-classification", "max_length": 16, "tokenizer": {"vocab_size": 200}},
                    model, {"train": str(tmp_path / "train.csv"), "validation_split": 0.2}, epochs=8, lr=0.05,
                    export={"formats": ["hf", "onnx"]})
    trained = fmkit.engine.artifacts.load_trained(run.run_dir)
    names = [n for n, p in trained.model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n or "classifier" in n for n in names)
    assert run.results["accuracy"] >= 0.75, run.results
    from transformers import AutoModelForSequenceClassification

    hf = AutoModelForSequenceClassification.from_pretrained(Path(run.exports["hf"]) / "hf")
    assert not any("lora" in n for n, _ in hf.named_parameters())  # merged: a plain transformers model
    meta = json.loads((Path(run.exports["onnx"]) / "export.json").read_text())
    assert meta["verification"]["prediction_agreement"] == 1.0


def test_mean_pooling_trains_and_exports_to_onnx_not_hf(tmp_path):
    write_city_or_name(tmp_path / "train.csv", 160, seed=1)
    run = _tiny_run(tmp_path, {"name": "text-classification", "max_length": 16, "tokenizer": {"vocab_size": 200}},
                    {"name": "hf-classifier", "config": TINY_BERT, "pooling": "mean"},
                    {"train": str(tmp_path / "train.csv"), "validation_split": 0.2}, epochs=4,
                    export={"formats": ["onnx"]})
    assert run.results["accuracy"] >= 0.9, run.results
    predictor = fmkit.load(run.exports["onnx"], backend="onnx")
    # texts shaped like the training ones (three filler words, then a city or a name)
    assert [p["label"] for p in predictor.predict(["yesterday then again paris", "today quickly then alice"])] == ["1", "0"]
    from fmkit.errors import FmkitError

    with pytest.raises(FmkitError, match="pooling: mean"):
        fmkit.export(run.run_dir, "hf")


def test_bare_encoder_linear_probe_trains_only_the_head_and_gives_features(tmp_path):
    write_city_or_name(tmp_path / "train.csv", 160, seed=2)
    run = _tiny_run(tmp_path, {"name": "text-classification", "max_length": 16, "tokenizer": {"vocab_size": 200}},
                    {"name": "hf-encoder", "config": TINY_BERT, "freeze_encoder": True},
                    {"train": str(tmp_path / "train.csv"), "validation_split": 0.2}, epochs=2,
                    export={"formats": ["onnx"]})
    trained = fmkit.engine.artifacts.load_trained(run.run_dir)
    assert [n for n, p in trained.model.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]
    batch = trained.task.encode_raw(["then paris", "alice"])
    assert trained.model.features(batch["input_ids"], batch["attention_mask"]).shape == (2, 32)
    assert fmkit.load(run.exports["onnx"], backend="onnx").predict(["then paris"])[0]["label"] in ("0", "1")

