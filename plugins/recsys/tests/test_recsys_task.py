"""fmkit-recsys task pieces: full-ranking metrics, history exclusion, objectives, losses, baselines."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from fmkit.errors import DataError


def _task(max_length=4, **kw):
    from fmkit_recsys.task import SeqRecParams, SequentialRecommendation

    t = SequentialRecommendation(SeqRecParams(max_length=max_length, **kw))
    t.attach_catalogue({"10": {"title": "Ten", "text": "Ten. Genres: Drama"}, "99": {"title": "New", "text": "New"}})
    t.setup([{"user": "a", "items": ["1", "2", "3"]}, {"user": "b", "items": ["2", "3", "10"]}], {})
    return t  # labels 1, 2, 3, 10, 99 -> indices 1..5


def test_ranking_metrics_by_hand_ties_split_and_misses_count():
    from fmkit_recsys.ranking import RankingMetrics, RankingParams, target_ranks

    scores = torch.tensor([[-math.inf, 0.9, 0.5, 0.1, 0.7],   # target 2 (0.5): 2 items above -> rank 2
                           [-math.inf, 0.3, 0.3, 0.3, 0.3],   # all tied: target ranks in the middle (1.5)
                           [-math.inf, 0.1, 0.2, -math.inf, 0.3]])  # target 3 is excluded: a miss
    targets = torch.tensor([2, 1, 3])
    assert target_ranks(scores, targets).tolist() == [2.0, 1.5, math.inf]
    m = RankingMetrics(RankingParams(ks=[1, 3]))
    m.update(scores[:2], targets[:2])
    m.update(scores[2:], targets[2:])  # streaming: the same as one batch
    r = m.compute()
    assert r["hr@1"] == 0 and r["hr@3"] == pytest.approx(2 / 3)
    assert r["ndcg@3"] == pytest.approx((1 / math.log2(4) + 1 / math.log2(3.5)) / 3)
    assert r["mrr"] == pytest.approx((1 / 3 + 1 / 2.5) / 3)
    m.update(torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([-100]))  # an item unknown to training: a miss
    assert m.compute()["hr@3"] == pytest.approx(2 / 4)


def test_evaluation_excludes_the_whole_history_not_only_what_the_model_reads():
    t = _task(max_length=2)
    f = t.preprocess({"history": ["1", "2", "3"], "target": "10"})
    assert f["input_ids"].tolist() == [2, 3] and f["exclude"].tolist() == [1, 2, 3] and f["targets"] == 4
    batch = t.collate([f, t.preprocess({"history": ["unknown", "2"], "target": "zzz"})])
    scores = torch.tensor([[9.0, 8, 7, 6, 1, 0], [9.0, 8, 7, 6, 1, 0]])
    preds, targets = t.metric_inputs(scores, batch)
    assert torch.isinf(preds[0, :4]).all() and preds[0, 4] == 1  # padding column and items 1, 2, 3 excluded
    assert torch.isinf(preds[1, [0, 2]]).all() and preds[1, 1] == 8
    assert targets.tolist() == [4, -100]


def test_answers_rank_unseen_items_with_titles_and_report_unknown_history():
    t = _task()
    batch = t.encode_raw([{"history": ["1", 3, "nope"], "k": 2}, ["10"]])
    out = torch.tensor([[5.0, 4, 3, 2, 1, 0.5], [5.0, 4, 3, 2, 1, 0.5]])
    a, b = t.format_batch_predictions(out, batch)
    assert [x["item"] for x in a["items"]] == ["2", "10"] and a["items"][1]["title"] == "Ten"
    assert a["unknown_history"] == ["nope"]
    assert [x["item"] for x in b["items"]] == ["1", "2", "3", "99"]  # k capped by the items left
    assert b["items"][3] == {"item": "99", "score": 0.5, "title": "New"}  # in the catalogue, never interacted with
    for bad, msg in [({"history": "1,2"}, "must be a list"), ({"history": [1.5]}, r"history\[0\]"),
                     ({"history": [1], "k": 0}, "input.k"), ({"items": [1]}, "unknown fields"), ({}, "history is missing")]:
        with pytest.raises(DataError, match=msg):
            t.raw_to_example(bad)


def test_causal_and_masked_objectives_build_their_targets():
    t = _task(max_length=4, mask_prob=0.5)
    batch = t.collate([t.preprocess({"items": ["1", "2", "3", "10"]}), t.preprocess({"items": ["2", "3"]})])
    assert batch["items"].tolist() == [[1, 2, 3, 4], [0, 0, 2, 3]]  # padded columns trimmed to the longest

    class Causal(torch.nn.Module):
        fmkit_objective = "causal"

    inp, tgt = t._training_inputs(Causal(), batch)
    assert inp.tolist() == [[1, 2, 3], [0, 0, 2]] and tgt.tolist() == [[2, 3, 4], [0, 0, 3]]

    class Masked(torch.nn.Module):
        fmkit_objective = "masked"

    b = t.augment_batch(batch, seed=7)
    assert torch.equal(b["noise"], t.augment_batch(batch, seed=7)["noise"])  # seeded: exact resume
    inp, tgt = t._training_inputs(Masked(), b)
    masked = inp == 6  # the mask token is N + 1
    assert masked.any(1).all() and torch.equal(tgt > 0, masked)
    assert torch.equal(tgt[masked], batch["items"][:, 1:][masked])


def test_sampled_losses_score_only_candidates_and_ignore_accidental_hits():
    from fmkit_recsys.losses import BPRParams, SampledSoftmaxParams, bpr, sampled_softmax
    from fmkit_recsys.models import SASRec, SeqModelParams

    t = _task(max_length=4, negatives=3)
    torch.manual_seed(0)
    model = SASRec(SeqModelParams(hidden_size=8, num_layers=1, num_heads=2, dropout=0.0), t.model_context())
    batch = t.augment_batch(t.collate([t.preprocess({"items": ["1", "2", "3", "10"]})]), seed=1)
    batch["negatives"] = torch.tensor([[4, 5, 1]])  # 4 is also a target: an accidental hit
    out = t.forward(model, batch)
    assert out.shape == (3, 4) and batch["targets"].tolist() == [2, 3, 4]
    full = model(batch["items"][:, :-1], positions=batch["items"][:, 1:] > 0)
    assert torch.allclose(out[:, 0], full.gather(1, batch["targets"][:, None])[:, 0], atol=1e-5)
    assert torch.allclose(out[:, 1:], full[:, [4, 5, 1]], atol=1e-5)
    rel = torch.zeros(3, 4, dtype=torch.bool)
    rel[:, 0] = True  # the accidental hit (row 2, column 1) is neither positive nor negative
    loss = t.loss(out, batch, sampled_softmax(SampledSoftmaxParams(), {}))
    kept = out.masked_fill(torch.tensor([[False] * 4, [False] * 4, [False, True, False, False]]), -math.inf)
    want = (torch.logsumexp(kept, 1) - out[:, 0]).mean()
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    loss_bpr = t.loss(out, batch, bpr(BPRParams(), {}))
    pairs = [(r, 0, j) for r in range(3) for j in (1, 2, 3) if (r, j) != (2, 1)]
    want = -sum(torch.nn.functional.logsigmoid(out[r, 0] - out[r, j]) for r, _, j in pairs) / len(pairs)
    assert loss_bpr.item() == pytest.approx(want.item(), rel=1e-5)
    loss_bpr.backward()
    assert model.items.weight.grad is not None


@pytest.mark.parametrize("negatives", [0, 2])
def test_unseen_items_excluded_from_the_training_loss_are_not_learnt_down(negatives):
    """Item 99 (index 5) is in the catalogue only: by default a negative of every training step; with
    task.unseen_items: excluded no gradient reaches its vector or bias, so nothing ranks it down."""
    from fmkit_recsys.models import SASRec, SeqModelParams

    grads = {}
    for mode in ("negatives", "excluded"):
        t = _task(max_length=4, negatives=negatives, unseen_items=mode)
        torch.manual_seed(0)
        model = SASRec(SeqModelParams(hidden_size=8, num_layers=1, num_heads=2, dropout=0.0), t.model_context())
        batch = t.augment_batch(t.collate([t.preprocess({"items": ["1", "2", "3", "10"]})]), seed=1)
        if negatives:
            batch["negatives"] = torch.tensor([[5, 1]])
        t.loss(t.forward(model, batch), batch, torch.nn.functional.cross_entropy).backward()
        grads[mode] = (model.items.weight.grad[5].abs().sum().item(), model.output_bias.grad[5].abs().item(),
                       model.items.weight.grad[1].abs().sum().item())
    assert grads["negatives"][0] > 0 and grads["negatives"][1] > 0
    assert grads["excluded"][0] == 0 and grads["excluded"][1] == 0  # left out of the loss
    assert grads["excluded"][2] > 0  # the items training sequences contain still learn
    t = _task(unseen_items="excluded")
    batch = t.collate([t.preprocess({"history": ["1", "2"], "target": "99"})])  # evaluation: 99 is still ranked
    out = torch.tensor([[0.0, 1, 2, 3, 4, 9]])
    assert t.metric_inputs(out, batch)[0][0, 5] == 9
    assert math.isfinite(t.loss(out, batch, torch.nn.functional.cross_entropy).item())  # evaluation loss: no mask


def test_ease_popularity_and_knn_are_fitted_on_training_sequences():
    from fmkit_recsys.baselines import EASE, EASEParams, ItemKNN, ItemKNNParams, NoParams, Popularity

    seqs = [[1, 2], [1, 2, 3], [2, 3], [1, 4]]
    ctx = {"num_items": 4, "train_sequences": seqs}
    ease = EASE(EASEParams(l2=1.0), ctx)
    x = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 0], [1, 0, 0, 1]], float)
    p = np.linalg.inv(x.T @ x + np.eye(4))
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0)
    assert np.allclose(ease.weights[1:, 1:].numpy(), b, atol=1e-5)
    scores = ease(torch.tensor([[0, 0, 1], [0, 2, 3]]))
    assert torch.allclose(scores[1], torch.tensor([0.0, *(b[1] + b[2])], dtype=torch.float32), atol=1e-5)  # items 2 and 3's rows
    assert torch.allclose(scores[0], torch.tensor([0.0, *b[0]], dtype=torch.float32), atol=1e-5)  # padding adds nothing
    pop = Popularity(NoParams(), ctx)(torch.zeros(2, 3, dtype=torch.long))
    assert pop.shape == (2, 5) and pop[0, 4] < pop[0, 3] < pop[0, 2] == pop[0, 1]
    knn = ItemKNN(ItemKNNParams(neighbours=1, shrink=0.0), ctx)
    assert (knn.weights[1:] > 0).sum(1).tolist() == [1, 1, 1, 1]  # one neighbour each
    assert knn(torch.tensor([[3]]))[0].argmax() == 2  # item 3's users also had item 2
    with pytest.raises(Exception, match="training sequences"):
        EASE(EASEParams(), {"num_items": 4})


@pytest.mark.parametrize("id_dropout", [0.0, 0.5])
def test_id_dropout_drops_id_corrections_and_biases_in_training_only(id_dropout):
    """model.id_dropout: in a training step a random share of the items is scored from its text
    vector alone (no ID correction, no bias, no gradient to either); evaluation keeps every item's."""
    from fmkit_recsys.text_items import TextAwareParams, TextAwareRecommender

    n = 400
    model = TextAwareRecommender(TextAwareParams(hidden_size=8, num_layers=1, num_heads=2, text_dim=6,
                                                 id_dropout=id_dropout),
                                 {"num_items": n, "max_length": 4, "inference": True})
    torch.manual_seed(0)
    with torch.no_grad():
        model.items.text.normal_()
        model.items.ids.normal_()
        model.output_bias.uniform_(1.0, 2.0)
    text_only = model.items.proj(model.items.text)
    model.train()
    torch.manual_seed(1)
    table, bias = model.item_vectors()
    dropped = torch.isclose(table, text_only).all(1)
    assert not dropped[0] and not dropped[-1]  # padding and the mask token keep theirs
    assert torch.equal(dropped[: n + 1], bias == 0)  # an item loses its ID correction and its bias together
    share = dropped[1: n + 1].float().mean().item()
    assert abs(share - id_dropout) < 0.1
    torch.manual_seed(1)  # the same draw: the forward pass takes its items' vectors first
    out = model(torch.tensor([[1, 2, 3, 4]]), positions=torch.tensor([[True] * 4]))
    out.logsumexp(1).sum().backward()
    no_grad = model.items.ids.grad.abs().sum(1) == 0
    assert torch.equal(no_grad[1: n + 1], dropped[1: n + 1])
    model.eval()
    table, bias = model.item_vectors()
    assert not torch.isclose(table, text_only).all(1)[1:].any() and bool((bias >= 1).all())
