"""fmkit-nlp distillation: a shallower student initialised from a teacher's layers (model.init_from),
trained on the teacher's outputs (distill:), on tiny generated text data."""
from __future__ import annotations

import csv
import json
import random

import pytest

torch = pytest.importorskip("torch")

POS = "good great wonderful lovely excellent superb enjoyable brilliant".split()
NEG = "bad awful terrible boring dreadful poor dull horrible".split()
FILL = "the movie film plot story actors was is and a very quite really".split()


def _data(folder, flip: bool = False) -> dict:
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, size in (("train", 120), ("test", 40)):
        with open(folder / f"{split}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["text", "label"])
            for i in range(size):
                label = "pos" if i % 2 == 0 else "neg"
                words = rng.sample(FILL, 4) + rng.sample(POS if label == "pos" else NEG, 2)
                rng.shuffle(words)
                w.writerow([" ".join(words), {"pos": "neg", "neg": "pos"}[label] if flip else label])
        paths[split] = str(folder / f"{split}.csv")
    return paths


def _recipe(tmp, model: dict, epochs: int, flip: bool = False, **extra) -> dict:
    paths = _data(tmp / ("flipped" if flip else "data"), flip)
    return {"task": {"name": "text-classification", "max_length": 16, "tokenizer": {"vocab_size": 200}},
            "model": {"name": "hf-classifier", **model},
            "data": {"train": paths["train"], "test": paths["test"], "validation_split": 0.2,
                     "cache_dir": str(tmp / "cache")},
            "optimizer": {"name": "adamw", "lr": 0.003},
            "train": {"epochs": epochs, "batch_size": 8, "seed": 1, "log_every": 2, "progress": "off"},
            "tracking": {"runs_dir": str(tmp / "runs"), "tensorboard": False}, **extra}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A 3-layer tiny BERT that learns the generated words."""
    import fmkit

    tmp = tmp_path_factory.mktemp("nlp-teacher")
    config = {"model_type": "bert", "hidden_size": 16, "num_hidden_layers": 3, "num_attention_heads": 2,
              "intermediate_size": 32, "max_position_embeddings": 32}
    run = fmkit.train(_recipe(tmp, {"config": config}, epochs=6), run_dir=str(tmp / "run"))
    assert run.results["accuracy"] > 0.9
    return run.run_dir


def test_init_from_keeps_the_chosen_layers_embeddings_and_head(teacher):
    import fmkit

    loaded = fmkit.load(str(teacher))
    t = loaded.model.hf.state_dict()
    context = {**loaded.task.model_context(), "inference": False}
    student = fmkit.get_registry().build("model", {"name": "hf-classifier",
                                                   "init_from": {"run": str(teacher), "layers": [0, 2]}}, context)
    s = student.hf.state_dict()
    assert student.hf.config.num_hidden_layers == 2 and len(student.hf.bert.encoder.layer) == 2
    for key, value in s.items():
        source = key.replace("encoder.layer.1.", "encoder.layer.2.")
        assert torch.equal(value, t[source]), key
    assert any("encoder.layer.1." in k for k in s)  # the student's layer 1 is the teacher's layer 2
    with pytest.raises(fmkit.errors.UsageError, match=r"model\.init_from\.layers: \[0, 3\] .* 3 \(0 to 2\)"):
        fmkit.get_registry().build("model", {"name": "hf-classifier",
                                             "init_from": {"run": str(teacher), "layers": [0, 3]}}, context)


def test_a_student_from_the_teachers_layers_follows_the_teacher(tmp_path, teacher):
    """On labels that contradict the teacher, the distilled (alpha=1) 2-layer student keeps the
    teacher's answers, while the same student without the teacher term (alpha=0) learns the labels."""
    import fmkit

    results = {}
    for alpha in (0.0, 1.0):
        recipe = _recipe(tmp_path, {"init_from": {"run": str(teacher), "layers": [0, 2]}}, epochs=4, flip=True,
                         distill={"teacher": str(teacher), "alpha": alpha, "temperature": 1.0})
        recipe["train"]["eval_every"] = 10_000  # one evaluation at the end (the flipped labels would pick the start)
        run = fmkit.train(recipe, run_dir=str(tmp_path / f"alpha{alpha}"))
        losses = [json.loads(x)["loss"] for x in (run.run_dir / "metrics.jsonl").read_text().splitlines()
                  if json.loads(x)["split"] == "train"]
        results[alpha] = (run.results["agreement"], losses)
    # alpha=0 leaves the teacher's answers (to chance, then to the flipped labels); alpha=1 keeps them
    assert results[0.0][0] <= 0.6 and results[1.0][0] > 0.9, results
    assert results[1.0][1][0] > 0.0  # the teacher term is in the loss (a student equal to its teacher gives 0)
    # the student's run predicts and carries its tokenizer (the teacher's)
    run_dir = tmp_path / "alpha1.0"
    assert len(fmkit.load(str(run_dir)).model.hf.bert.encoder.layer) == 2
    assert [p["label"] for p in fmkit.predict(str(run_dir), ["good great film", "awful boring plot"])] \
        == ["pos", "neg"]


# ---------------------------------------------------------------------------- token classification
def _token_recipe(tmp, model: dict, epochs: int, **extra) -> dict:
    from test_nlp_tasks import write_conll

    data = tmp / "conll"
    data.mkdir(exist_ok=True)
    train, test = write_conll(data / "train.conll", 120, 0), write_conll(data / "test.conll", 30, 1)
    return {"task": {"name": "token-classification", "max_length": 32, "tokenizer": {"vocab_size": 300}},
            "model": {"name": "hf-token-classifier", **model},
            "data": {"name": "token-files", "train": train, "test": test, "validation_split": 0.2,
                     "cache_dir": str(tmp / "cache")},
            "optimizer": {"name": "adamw", "lr": 0.003},
            "train": {"epochs": epochs, "batch_size": 8, "seed": 1, "log_every": 2, "progress": "off"},
            "tracking": {"runs_dir": str(tmp / "runs"), "tensorboard": False}, **extra}


def test_token_classification_distils_with_cached_teacher_outputs(tmp_path):
    """Per-token scores are padded to each batch's longest sentence: the teacher's outputs are cached
    per sentence at its own sub-words (Task.distill_mask), and the loss is the one computed on the fly
    on the student's batches, padding left out of both."""
    import fmkit

    config = {"model_type": "bert", "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 32, "max_position_embeddings": 64}
    teacher = fmkit.train(_token_recipe(tmp_path, {"config": config}, epochs=3), run_dir=str(tmp_path / "teacher"))
    student = {"init_from": {"run": str(teacher.run_dir), "layers": [0]}}
    losses = {}
    for cache in ("on", "off"):
        recipe = _token_recipe(tmp_path, student, epochs=1,
                               distill={"teacher": str(teacher.run_dir), "alpha": 0.7, "cache": cache})
        run = fmkit.train(recipe, run_dir=str(tmp_path / cache))
        losses[cache] = [json.loads(x)["loss"] for x in (run.run_dir / "metrics.jsonl").read_text().splitlines()
                         if json.loads(x)["split"] == "train"]
        results = json.loads((run.run_dir / "eval.json").read_text())
        assert "teacher_entity_f1" in results and 0.0 <= results["agreement"] <= 1.0
    assert len(list((tmp_path / "cache").glob("distill-token-classification-*.pt"))) == 1
    assert len(losses["on"]) == len(losses["off"]) > 3
    assert losses["on"] == pytest.approx(losses["off"], rel=1e-5, abs=1e-6)

    # a student that tokenises differently cannot use the teacher's cached per-token outputs: named
    other = _token_recipe(tmp_path, {"config": config}, epochs=1,
                          distill={"teacher": str(teacher.run_dir), "cache": "on"})
    other["task"]["tokenizer"] = {"vocab_size": 120}
    with pytest.raises(fmkit.errors.FmkitError, match=r"positions .* preprocess the examples differently"):
        fmkit.train(other, run_dir=str(tmp_path / "other"))
