"""fmkit-nlp structured pruning: attention heads and FFN neurons of BERT-style encoders removed by
|gradient x weight| importance, on tiny models and generated text."""
from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from test_nlp_distill import _recipe  # noqa: E402

TEXTS = ["good great film", "the plot was dull and boring", "a very lovely story", "awful actors"]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A 2-layer tiny BERT, 4 heads and 64 FFN neurons a layer, that learns the generated words."""
    import fmkit

    tmp = tmp_path_factory.mktemp("nlp-prune")
    config = {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
              "intermediate_size": 64, "max_position_embeddings": 32}
    run = fmkit.train(_recipe(tmp, {"config": config}, epochs=4, export={"formats": ["onnx"]}),
                      run_dir=str(tmp / "source"))
    assert run.results["accuracy"] > 0.9
    return tmp, run


def test_heads_and_ffn_neurons_are_removed_and_the_run_reloads_evaluates_and_exports(source):
    import fmkit

    tmp, src = source
    run = fmkit.prune(str(src.run_dir), heads=0.5, ffn=0.5, output=str(tmp / "pruned"))
    assert run.results["parameters_after"] < 0.75 * run.results["parameters_before"]
    assert run.results["accuracy"] > 0.8
    record = json.loads((run.run_dir / "prune.json").read_text())
    assert record["summary"]["heads"] == "8 -> 4" and record["summary"]["ffn"] == "128 -> 64"
    model = fmkit.load(str(run.run_dir)).model
    layers = model.hf.bert.encoder.layer
    assert sum(m.attention.self.num_attention_heads for m in layers) == 4
    for m, shape in zip(layers, record["structure"]["layers"]):
        assert m.attention.self.query.weight.shape == (8 * shape["heads"], 32)  # head size 8
        assert m.attention.output.dense.weight.shape == (32, 8 * shape["heads"])
        assert m.intermediate.dense.weight.shape == (32, 32) and m.output.dense.weight.shape == (32, 32)
    assert sum(p.numel() for p in model.parameters()) == run.results["parameters_after"]
    scores = fmkit.evaluate(str(run.run_dir))
    assert scores["loss"] == pytest.approx(run.results["loss"], rel=1e-4)
    export = run.run_dir / "exports" / "onnx"
    meta = json.loads((export / "export.json").read_text())
    assert meta["structure"] == record["structure"]
    assert meta["verification"]["max_abs_diff"] <= meta["verification"]["tolerance"]
    a = fmkit.load(str(export), backend="onnx").predict(TEXTS)
    b = fmkit.load(str(export)).predict(TEXTS)
    assert [x["label"] for x in a] == [x["label"] for x in b]
    assert max(abs(x["score"] - y["score"]) for x, y in zip(a, b)) < 1e-4
    with pytest.raises(fmkit.errors.UsageError, match="pruned model has per-layer head counts"):
        fmkit.export(str(run.run_dir), "hf", output=str(tmp / "hf"))
    assert not (tmp / "hf").exists()


def test_a_pruned_run_resumes_in_its_pruned_shape(source):
    """``--resume`` of a pruned run rebuilds the recorded shape before the checkpoint loads (the
    source is not pruned again), here continuing for one more epoch."""
    import fmkit

    tmp, src = source
    run = fmkit.prune(str(src.run_dir), ffn=0.25, output=str(tmp / "resumed"))
    more = fmkit.train(str(run.run_dir / "recipe.yaml"), overrides=["train.epochs=2"], resume=str(run.run_dir))
    assert more.results["parameters_after"] == run.results["parameters_after"]
    assert sorted(p.name for p in (run.run_dir / "checkpoints").glob("step-*"))[-1] > "step-00000012"
    model = fmkit.load(str(run.run_dir)).model
    assert [m.intermediate.dense.out_features for m in model.hf.bert.encoder.layer] == [48, 48]


def test_a_dead_head_and_dead_neurons_go_first_and_removing_them_changes_nothing():
    """Importance is the mask gradient: a head whose value projection is zero and FFN neurons whose
    input weights are zero contribute nothing, score 0, are the ones removed, and the pruned encoder
    gives the same outputs with smaller matrices."""
    from transformers import BertConfig, BertModel

    from fmkit_nlp.prune import prune

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=20, max_position_embeddings=16, hidden_act="relu")
    bert = BertModel(config, add_pooling_layer=False).eval()
    with torch.no_grad():
        layer = bert.encoder.layer[1]
        layer.attention.self.value.weight[8:12] = 0  # head 2 (head size 4) of layer 1 outputs nothing
        layer.attention.self.value.bias[8:12] = 0
        for m in bert.encoder.layer:  # relu(-1) = 0: neurons 3 and 7 of each layer are dead
            m.intermediate.dense.weight[[3, 7]] = 0
            m.intermediate.dense.bias[[3, 7]] = -1.0
    ids = torch.randint(1, 50, (6, 10))
    batches = [{"input_ids": ids[:3]}, {"input_ids": ids[3:]}]
    target = torch.randn(16)
    loss = lambda m, b: (m(input_ids=b["input_ids"]).last_hidden_state * target).sum() ** 2  # noqa: E731
    with torch.no_grad():
        before = bert(input_ids=ids).last_hidden_state
    structure = prune(bert, {"heads": 1 / 8, "ffn": 0.1}, batches, loss)  # one head of 8, 2 neurons of 20 a layer
    assert [la["heads"] for la in structure["layers"]] == [4, 3]
    assert [la["ffn"] for la in structure["layers"]] == [18, 18]
    assert layer.attention.self.value.weight.shape == (12, 16) and layer.intermediate.dense.weight.shape == (18, 16)
    assert layer.attention.output.dense.weight.shape == (16, 12) and layer.output.dense.weight.shape == (16, 18)
    with torch.no_grad():
        after = bert(input_ids=ids).last_hidden_state
    assert torch.allclose(before, after, atol=1e-5), (before - after).abs().max()


def test_a_model_with_other_layers_is_not_pruned_by_fmkit_nlp():
    from fmkit_nlp.prune import prune

    assert prune(torch.nn.Sequential(torch.nn.Linear(4, 4)), {"heads": 0.5}, [], None) is None
